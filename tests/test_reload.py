"""Compiled window models re-loaded for the next window give what rebuilding gives.

References: the model compiled afresh (its whole HiGHS LP and its answers), the monolithic
MILP, a fresh Pyomo model solved by ``pyomo.contrib.solver`` (``reference_milp``) and the
numpy schedule checks of :mod:`tests.feasibility` (``problems``, from the new state).
"""

from __future__ import annotations

from typing import Any

import highspy
import numpy as np
import pyomo.environ as pyo
import pytest
import scipy.sparse as sp
from feasibility import state_of
from test_price_signals import price_vectors, problems, reference_milp

from gridcosim.scenarios.loader import load_scenario
from gridcosim.scenarios.network import load_network
from gridcosim.scenarios.schema import Microgrid
from gridcosim.scenarios.series import scenario_series
from gridcosim.simulator.cosim import CoSimulation, RunSettings
from gridcosim.simulator.decomposition.controller_pool import make_pool
from gridcosim.simulator.decomposition.controller_responder import MicrogridResponder
from gridcosim.simulator.decomposition.loop import Decomposition
from gridcosim.simulator.decomposition.master_problem import MasterProblem
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.simulator.highs_instance import INF
from gridcosim.simulator.highs_model import HighsModel
from gridcosim.simulator.messages import (
    ExchangeProposal,
    KeySource,
    PriceSignal,
    RestoredExchange,
    ScheduleKey,
    UnifiedCut,
)
from gridcosim.simulator.models.lindistflow_model import NetworkWindow
from gridcosim.simulator.models.microgrid_model import MicrogridState, MicrogridWindow
from gridcosim.simulator.models.monolithic_model import solve_monolithic
from gridcosim.simulator.solve import with_unit_schedules
from gridcosim.simulator.windows import microgrid_window, network_window, published_bounds

REL, H = 1e-6, 6
Windows = tuple[NetworkWindow, list[MicrogridWindow]]


def rel_diff(a: float, b: float) -> float:
    return abs(a - b) / max(1.0, abs(b))


@pytest.fixture(scope="module")
def week() -> tuple[Any, ...]:
    week = load_scenario("ieee123-nmg-week")  # its microgrids have no local load: add some
    mgs = tuple(mg.model_copy(update={"local_load_kw": 150.0, "local_load_kvar": 50.0,
                                      "local_load_class": ("commercial", "industrial")[k % 2]})
                for k, mg in enumerate(week.microgrids))
    scenario = week.model_copy(update={"microgrids": mgs})
    network = load_network(scenario.network.source)
    return scenario, network, scenario_series(scenario, network)


def state(mg: Microgrid, varied: int) -> MicrogridState:
    """0: the scenario's (all off); 1: on mid-range (the ramp keeps them on), storage high;
    2: on at full output, storage empty."""
    if varied == 0:
        return MicrogridState.initial(mg)
    p = [g.p_max_kw if varied == 2 else (g.p_min_kw + g.p_max_kw) / 2 for g in mg.generators]
    e = [s.e_min_kwh if varied == 2 else 0.3 * s.e_min_kwh + 0.7 * s.e_max_kwh
         for s in mg.storage]
    return state_of(mg, (True,) * len(p), tuple(p), tuple(e))


def windows(week: tuple[Any, ...], start: int, slots: int = H, varied: int = 0) -> Windows:
    scenario, network, series = week
    mgw = [microgrid_window(scenario, mg, state(mg, varied), start, slots, series)
           for mg in scenario.microgrids]
    bounds = [published_bounds(w) for w in mgw]
    return network_window(scenario, network, bounds, start, slots, series), mgw


def assert_same_lp(got: HighsModel, want: HighsModel) -> None:
    """The whole HiGHS LP: constraint matrix, costs, bounds and integrality."""
    def data(hm: HighsModel) -> list[Any]:
        lp = hm.highs.getLp()
        a = lp.a_matrix_
        kind = sp.csc_matrix if a.format_ == highspy.MatrixFormat.kColwise else sp.csr_matrix
        vectors = (lp.col_cost_, lp.col_lower_, lp.col_upper_, lp.row_lower_, lp.row_upper_)
        return [kind((a.value_, a.index_, a.start_), shape=(lp.num_row_, lp.num_col_)),
                [int(v) for v in lp.integrality_], *(np.asarray(v, float) for v in vectors)]

    (mat, ints, *vectors), (mat_w, ints_w, *vectors_w) = data(got), data(want)
    assert abs(mat - mat_w).max() <= 1e-12 and ints == ints_w
    for k, (a, b) in enumerate(zip(vectors, vectors_w, strict=True)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=str(k))


def small_lp() -> tuple[pyo.ConcreteModel, HighsModel]:
    """min x + 2y s.t. x + y >= 4 on [0, 10]^2: x = 4, objective 4."""
    m = pyo.ConcreteModel()
    m.x, m.y = pyo.Var(bounds=(0, 10)), pyo.Var(bounds=(0, 10))
    m.c = pyo.Constraint(expr=m.x + m.y >= 4)
    m.obj = pyo.Objective(expr=m.x + 2 * m.y)
    return m, HighsModel(m)


def test_truncate_restores_the_compiled_lp() -> None:
    m, hm = small_lp()
    compiled = HighsModel(m)
    assert hm.solve().objective == pytest.approx(4.0, abs=1e-9)
    for _ in range(2):  # a truncated model grows and is truncated again
        z = hm.add_col(0.5, 0.0, 3.0)
        hm.add_row([hm.col(m.x), z], [1.0, 1.0], -INF, 1.0)  # x <= 1: y = 3, objective 7
        hm.add_row([hm.col(m.y), z], [1.0, -1.0], -INF, 9.0)
        assert hm.solve().objective == pytest.approx(7.0, abs=1e-9)
        hm.truncate()
        assert (hm.num_rows, hm.num_cols) == (compiled.num_rows, compiled.num_cols) == (1, 2)
        assert_same_lp(hm, compiled)
        out = hm.solve()
        assert out.status == "optimal" and out.bound == pytest.approx(4.0, abs=1e-9)
        assert out.objective == pytest.approx(compiled.solve().objective, abs=1e-9)
        assert out.row_dual[hm.row(m.c)] == pytest.approx(1.0, abs=1e-9)


def test_truncate_drops_appended_integer_column() -> None:
    _, hm = small_lp()  # an LP again after truncation: its own bound and duals
    hm.add_col(1.0, 0.0, 3.0, integer=True)
    hm.truncate()
    out = hm.solve()
    assert not hm.is_mip and out.bound == pytest.approx(4.0) and out.row_dual is not None


def test_network_models_reloaded_equal_rebuilt(week: tuple[Any, ...]) -> None:
    settings = DecompositionSettings()
    net_a, mgw_a = windows(week, 0)
    net_b, mgw_b = windows(week, 40)
    pools = [make_pool(mgw_a, settings), *(make_pool(mgw_b, settings) for _ in range(2))]
    try:
        first = Decomposition(net_a, pools[0], settings)
        assert first.run().status == "optimal"
        assert first.master.hm.num_rows > first.master.hm._compiled[0]  # cuts were added
        fresh = Decomposition(net_b, pools[1], settings)
        second = Decomposition(net_b, pools[2], settings, models=first.models)
        assert second.models is first.models and second.master.window is net_b
        assert second.master is first.master and second.evaluator is first.evaluator
        zero = RestoredExchange((0.0,) * H, (0.0,) * H, 0.0)
        point = {w.spec.name: zero for w in mgw_b}  # the exchange columns: fixed at 0
        assert rel_diff(second.evaluator.evaluate(point).objective,
                        fresh.evaluator.evaluate(point).objective) <= 1e-9
        assert_same_lp(second.master.hm, fresh.master.hm)
        assert_same_lp(second.evaluator.hm, fresh.evaluator.hm)
        assert_same_lp(HighsModel(second.master.synced_model()), HighsModel(fresh.master.model))
        rebuilt, reloaded = fresh.run(), second.run()
    finally:
        for pool in pools:
            pool.close()
    shorter = Decomposition(windows(week, 40, slots=5)[0], pools[0], settings,
                            models=first.models)
    ref = solve_monolithic(net_b, mgw_b)
    assert ref.status == rebuilt.status == reloaded.status == "optimal"
    assert rel_diff(reloaded.objective_usd, ref.objective_usd) <= REL, (reloaded, ref)
    assert rel_diff(rebuilt.objective_usd, ref.objective_usd) <= REL, (rebuilt, ref)
    assert shorter.models is not first.models and shorter.master is not first.master
    assert shorter.master.window.slots == 5 and first.master.window.slots == H


def responses(r: MicrogridResponder) -> list[float]:
    """MILP price responses (bound, incumbent cost) and the unified LP at a far point."""
    w, out = r.window, []
    for k, (lp, lq) in enumerate(price_vectors(w).values()):
        resp = r.respond_to_price(PriceSignal(w.spec.name, ScheduleKey(KeySource.PRICE, 100 + k),
                                              lp, lq))
        assert resp is not None
        assert problems(w, r.schedule(resp.key)) == [], (w.spec.name, w.state)
        out += [resp.bound_usd, resp.restored.cost_usd]
        if k == 0:  # an independent reference for the first signal
            assert rel_diff(resp.bound_usd, reference_milp(w, prices=(lp, lq))) <= REL
    b = r.bounds()
    cut = r.respond(ExchangeProposal(w.spec.name, ScheduleKey(KeySource.PROPOSAL, 99), 0,
                                     (b.p_max_kw,) * w.slots, (b.q_min_kvar / 2,) * w.slots,
                                     0.0), 1e-7).response
    assert isinstance(cut, UnifiedCut)
    return [*out, cut.f]


def test_microgrid_responder_reloaded_equals_rebuilt(week: tuple[Any, ...]) -> None:
    settings = DecompositionSettings()
    kept = [MicrogridResponder(w, settings) for w in windows(week, 0)[1]]
    before = [responses(r) for r in kept]  # leaves bases, costs and tags behind
    assert all(r.initial_cuts(False) for r in kept)  # a schedule under tag 0
    for slot, varied in ((40, 1), (75, 2), (100, 0)):
        for r, w, old in zip(kept, windows(week, slot, varied=varied)[1], before, strict=True):
            assert r.reload(w) and r.window is w
            with pytest.raises(KeyError):  # nothing of the previous window is served
                r.schedule(0)
            fresh = MicrogridResponder(w, settings)
            assert r.bounds() == fresh.bounds()
            for e, f in ((r.lp, fresh.lp), (r.milp, fresh.milp)):
                for x in (e, f):  # the coupling rows hold the last proposal: set one
                    x.hm.set_rhs([*x.rows_p, *x.rows_q, x.model.couple_eta], [1.0] * (2 * H + 1))
                assert_same_lp(e.hm, f.hm)
            got, want = responses(r), responses(fresh)
            for a, b in zip(got, want, strict=True):
                assert rel_diff(a, b) <= 1e-9, (w.spec.name, slot, a, b)
            assert max(rel_diff(a, b) for a, b in zip(got, old, strict=True)) > 1e-6
    other = windows(week, 40)[1]
    for r, w in zip(kept, other[1:] + other[:1], strict=True):  # another microgrid's spec
        held = r.window
        assert not r.reload(w) and r.window is held
    assert not kept[0].reload(windows(week, 40, slots=5)[1][0])


@pytest.mark.parametrize("price_signals", [True, False])
def test_reloaded_pool_and_models_give_the_monolithic_optimum(
        week: tuple[Any, ...], price_signals: bool) -> None:
    settings = DecompositionSettings(price_signals=price_signals)
    net_a, mgw_a = windows(week, 0)
    net_b, mgw_b = windows(week, 40, varied=1)
    pool = make_pool(mgw_a, settings)
    try:
        first = Decomposition(net_a, pool, settings)
        assert first.run().status == "optimal"
        held = dict(pool.responders)
        pool.load(mgw_b)
        assert all(pool.responders[n] is r for n, r in held.items())
        second = Decomposition(net_b, pool, settings, models=first.models)
        assert second.master is first.master
        sol = with_unit_schedules(second.run(), pool)
    finally:
        pool.close()
    ref = solve_monolithic(net_b, mgw_b)
    assert sol.status == ref.status == "optimal", sol.info
    assert rel_diff(sol.objective_usd, ref.objective_usd) <= REL, (sol.objective_usd, ref)
    by_name = {s.name: s for s in sol.microgrids}
    for w in mgw_b:  # the schedules start from the new initial state
        assert problems(w, by_name[w.spec.name]) == [], w.spec.name


@pytest.mark.parametrize(("name", "builds"), [("ieee123-nmg-week", 1), ("ieee123-nmg", 4)])
def test_cosim_builds_models_once_per_window_length(
        monkeypatch: pytest.MonkeyPatch, name: str, builds: int) -> None:
    """Week: four 6-slot windows; seed (6 slots): windows of 6, 5, 4 and 3 slots."""
    built, gaps = {MasterProblem: 0, MicrogridResponder: 0}, []
    for cls in built:
        def init(self: Any, *args: Any, _cls: type = cls, _orig: Any = cls.__init__,
                 **kwargs: Any) -> None:
            built[_cls] += 1
            _orig(self, *args, **kwargs)
        monkeypatch.setattr(cls, "__init__", init)

    def run(self: Decomposition, _run: Any = Decomposition.run) -> Any:  # each window checked
        sol = _run(self)
        mgw = [r.window for r in self.pool.responders.values()]
        gaps.append(rel_diff(sol.objective_usd, solve_monolithic(self.window, mgw).objective_usd))
        return sol
    monkeypatch.setattr(Decomposition, "run", run)
    scenario = load_scenario(name)
    model = CoSimulation(scenario, RunSettings(slots=4, horizon=6, commit=1))
    assert model.run() == "finished" and len(gaps) == 4 and max(gaps) <= REL, gaps
    assert built == {MasterProblem: builds, MicrogridResponder: len(scenario.microgrids) * builds}
    assert model.dso._models.master.window.slots == model.dso.reports[-1].slots
