"""Window-to-window warm starts and the LP-first MILP: faster, and changing no optimum.

References: a Pyomo model solved by ``pyomo.contrib.solver``'s HiGHS (``reference_milp``),
the MILP solved by HiGHS itself, the monolithic MILP of every window, the Pyomo indices of
a model (for the slot shift) and the uninterrupted run (for a resumed one).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import pyomo.environ as pyo
import pytest
from test_price_signals import price_vectors, problems, reference_milp

from gridcosim.scenarios import variants
from gridcosim.scenarios.loader import load_scenario
from gridcosim.scenarios.schema import Scenario
from gridcosim.simulator.cosim import CoSimulation, RunSettings
from gridcosim.simulator.decomposition.controller_pool import ControllerGroup
from gridcosim.simulator.decomposition.controller_responder import MicrogridResponder
from gridcosim.simulator.decomposition.controller_warm_start import (
    ControllerWarmStart,
    WindowStarts,
)
from gridcosim.simulator.decomposition.milp_dive import RelaxedMILP
from gridcosim.simulator.decomposition.network_models import NetworkModels
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.simulator.highs_model import HighsModel
from gridcosim.simulator.messages import KeySource, PriceSignal, ScheduleKey
from gridcosim.simulator.models.monolithic_model import solve_monolithic
from gridcosim.simulator.solve import solve_scenario
from gridcosim.simulator.warm_basis import WarmBasis

REL = 1e-6
WEEK = "ieee123-nmg-week"


def rel_diff(a: float, b: float) -> float:
    return abs(a - b) / max(1.0, abs(b))


def cold(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every warm start of this change off: MILPs solved by HiGHS, no moved bases."""
    monkeypatch.setattr(RelaxedMILP, "solve", lambda self, start=None: self._milp(None))
    monkeypatch.setattr(WindowStarts, "moved", lambda self, carried, window: (None, None))
    monkeypatch.setattr(NetworkModels, "moved", lambda self, basis, window: basis)


# ---------------------------------------------------------------- the slot shift
def test_slot_shift_moves_every_slot_indexed_status_one_slot_on() -> None:
    m = pyo.ConcreteModel()
    m.T, m.K = pyo.RangeSet(0, 3), pyo.RangeSet(0, 1)
    m.x = pyo.Var(m.K, m.T, bounds=(0, 1))
    m.y = pyo.Var(m.T, bounds=(0, 5))
    m.z = pyo.Var(bounds=(0, 9))
    m.c = pyo.Constraint(m.T, rule=lambda m, t: m.x[0, t] + m.x[1, t] + m.y[t] >= 1)
    m.d = pyo.Constraint(expr=sum(m.y[t] for t in m.T) + m.z >= 2)
    m.obj = pyo.Objective(expr=sum(m.y[t] for t in m.T) + m.z + sum(m.x.values()))
    hm = HighsModel(m)
    for shift in (1, 2):
        moves = hm.slot_shift(4, shift)
        for t in m.T:
            src = min(t + shift, 3)
            for k in m.K:
                assert moves.col[hm.col(m.x[k, t])] == hm.col(m.x[k, src])
            assert moves.col[hm.col(m.y[t])] == hm.col(m.y[src])
            assert moves.row[hm.row(m.c[t])] == hm.row(m.c[src])
        assert moves.col[hm.col(m.z)] == hm.col(m.z) and moves.row[hm.row(m.d)] == hm.row(m.d)
    basis = WarmBasis(np.arange(hm.num_cols, dtype=np.int8) % 3,
                      np.arange(hm.num_rows, dtype=np.int8) % 2, slot=7)
    moved = hm.slot_shift(4, 1).basis(basis, 8)
    assert moved.slot == 8 and moved.col_status[hm.col(m.y[0])] == basis.col_status[hm.col(m.y[1])]
    assert hm.slot_shift(4, 1).basis(WarmBasis(basis.col_status[:-1], basis.row_status)) is None


def test_basis_text_keeps_statuses_and_slot_and_reads_untagged_texts() -> None:
    rng = np.random.default_rng(3)
    basis = WarmBasis(rng.integers(0, 5, 40).astype(np.int8),
                      rng.integers(0, 5, 25).astype(np.int8), slot=12)
    back = WarmBasis.from_text(basis.to_text())
    assert back.slot == 12 and np.array_equal(back.col_status, basis.col_status)
    assert np.array_equal(back.row_status, basis.row_status)
    assert WarmBasis.from_text(WarmBasis(basis.col_status, basis.row_status).to_text()).slot is None
    import base64
    import zlib
    old = np.concatenate([np.array([40], dtype=np.int64).view(np.int8), basis.col_status,
                          basis.row_status])  # the form earlier checkpoints hold
    text = base64.b64encode(zlib.compress(old.tobytes())).decode("ascii")
    read = WarmBasis.from_text(text)
    assert read.slot is None and np.array_equal(read.col_status, basis.col_status)
    state = ControllerWarmStart("mg7", 5, basis, None)
    again = ControllerWarmStart.from_json(json.loads(json.dumps(state.to_json())))
    assert again.mg == "mg7" and again.start == 5 and again.relaxed is None
    assert np.array_equal(again.lp.col_status, basis.col_status)


# ---------------------------------------------------------------- the LP-first MILP
def test_relaxed_milp_falls_back_to_the_milp_where_the_lp_is_not_tight() -> None:
    m = pyo.ConcreteModel()  # max x + y, 2x + 2y <= 3, binary: LP 1.5, MILP 1
    m.x, m.y = pyo.Var(domain=pyo.Binary), pyo.Var(domain=pyo.Binary)
    m.c = pyo.Constraint(expr=2 * m.x + 2 * m.y <= 3)
    m.obj = pyo.Objective(expr=-m.x - m.y)
    hm = HighsModel(m)
    relaxed = RelaxedMILP(hm, [hm.col(m.x), hm.col(m.y)])
    out = relaxed.solve()
    assert relaxed.counts["milp"] == 1
    assert out.objective == pytest.approx(-1.0, abs=1e-9) and out.bound == pytest.approx(-1.0)


def test_relaxed_milp_price_responses_equal_the_milp_and_a_pyomo_reference() -> None:
    scenario = load_scenario(WEEK)
    cosim = CoSimulation(scenario, RunSettings(slots=1, horizon=24))
    settings = DecompositionSettings()
    counts: dict[str, int] = {}
    for k, mc in enumerate(cosim.microgrids):
        w = mc.window(0, 24)
        r = MicrogridResponder(w, settings)
        for j, (lp, lq) in enumerate(price_vectors(w).values()):
            signal = PriceSignal(w.spec.name, ScheduleKey(KeySource.PRICE, 10 * k + j), lp, lq)
            got = r.respond_to_price(signal)
            with r.milp.hm.temporary_costs(_price_costs(r, signal)):
                want = r.milp.hm.solve()  # HiGHS's own MILP on the same instance
            assert want.status == "optimal"
            assert rel_diff(got.restored.cost_usd - _value(got, lp, lq),
                            want.objective) <= 1e-9, (w.spec.name, j)
            assert got.bound_usd <= want.objective + 1e-9 * max(1.0, abs(want.objective))
            assert rel_diff(got.bound_usd, want.objective) <= 1e-9
            if j == 0:
                assert rel_diff(got.bound_usd, reference_milp(w, prices=(lp, lq))) <= REL
            assert problems(w, r.schedule(signal.key)) == [], (w.spec.name, j)
        for key, n in r.milp.relaxed.counts.items():
            counts[key] = counts.get(key, 0) + n
    assert counts.get("dive", 0) > 0, counts  # fractional vertices were dived on
    cosim.close()


def _price_costs(r: MicrogridResponder, signal: PriceSignal) -> dict[int, float]:
    """The price response's objective by hand: MG cost − λ·exchange, slacks free."""
    m, hm = r.milp.model, r.milp.hm
    costs = {j: 0.0 for j in range(hm.num_cols)}
    for var, coef in r.milp._cost:
        costs[var] = coef
    for t in m.mg.T:
        costs[hm.col(m.mg.p_ex[t])] = -signal.p_usd_per_kw[t]
        costs[hm.col(m.mg.q_ex[t])] = -signal.q_usd_per_kvar[t]
    return costs


def _value(resp: Any, lp: tuple[float, ...], lq: tuple[float, ...]) -> float:
    ex = resp.restored
    return float(np.dot(lp, ex.p_kw) + np.dot(lq, ex.q_kvar))


# ---------------------------------------------------------------- optima unchanged
#: Monolithic optimum of each variant (solved once for the module).
_REFERENCES: dict[str, float] = {}
VARIANT_BUILDS = {"stressed": variants.stressed, "startup_x6": variants.startup_x6,
                  "perturbed_2": lambda s: variants.perturbed(s, 2)}


@pytest.mark.parametrize(("name", "price_signals"), [
    ("stressed", True),
    pytest.param("startup_x6", False, marks=pytest.mark.slow),
    pytest.param("perturbed_2", True, marks=pytest.mark.slow),
    pytest.param("stressed", False, marks=pytest.mark.slow),
    pytest.param("startup_x6", True, marks=pytest.mark.slow)])
def test_variants_reach_the_same_optimum_with_and_without_warm_starts(
        base: Scenario, monkeypatch: pytest.MonkeyPatch, name: str,
        price_signals: bool) -> None:
    scenario = VARIANT_BUILDS[name](base)
    settings = DecompositionSettings(price_signals=price_signals)
    warm = solve_scenario(scenario, "decomposition", settings)
    with monkeypatch.context() as patch:
        cold(patch)
        plain = solve_scenario(scenario, "decomposition", settings)
    if name not in _REFERENCES:
        _REFERENCES[name] = solve_scenario(scenario, "monolithic").objective_usd
    assert warm.status == plain.status == "optimal"
    assert rel_diff(warm.objective_usd, plain.objective_usd) <= REL
    assert rel_diff(warm.objective_usd, _REFERENCES[name]) <= REL


# ---------------------------------------------------------------- rolling horizons
SETTINGS = RunSettings(slots=3, horizon=6, noise=0.05, seed=4)
#: Benders cuts alone: the windows iterate and every controller's unified LP carries its
#: basis (with price signals these windows settle before iterating and only the MILP's
#: relaxation, which answered the prices, has one).
BENDERS = RunSettings(slots=3, horizon=6, noise=0.05, seed=4,
                      decomposition=DecompositionSettings(price_signals=False))


def _run(settings: RunSettings = SETTINGS, steps: int | None = None,
         state: dict[str, Any] | None = None) -> tuple[CoSimulation, list[float], str]:
    """Run ``steps`` slots (or to the end): the model, each window's monolithic optimum
    (one worker) and the checkpoint at the stop (taken, as a recorder does, before the
    controllers' workers are closed)."""
    model = CoSimulation(load_scenario(WEEK), settings)
    if state is not None:
        model.restore(state)
    optima = []
    try:
        for _ in range(steps or settings.slots or 0):
            if not model.running:
                break
            model.step()
            if settings.decomposition.workers == 1:
                windows = [r.window for r in model._pool.responders.values()]
                optima.append(solve_monolithic(model.dso._models.master.window, windows
                                               ).objective_usd)
        checkpoint = json.dumps(model.snapshot(), sort_keys=True)
    finally:
        model.close()
    return model, optima, checkpoint


def _trajectory(model: CoSimulation) -> list[Any]:
    return [(r.start, r.status, r.iterations, r.cost_usd, r.lower_bound_usd)
            for r in model.dso.reports] + [mc.total_cost_usd for mc in model.microgrids] + [
        model.dso.total_cost_usd]


@pytest.fixture(scope="module")
def uninterrupted() -> tuple[CoSimulation, list[float], str]:
    return _run()


def test_rolling_horizon_windows_reach_their_optima_with_and_without_warm_starts(
        uninterrupted: tuple[CoSimulation, list[float], str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    warm, warm_optima, _ = uninterrupted
    cold(monkeypatch)
    plain, plain_optima, _ = _run()
    for model, optima in ((warm, warm_optima), (plain, plain_optima)):
        assert len(model.dso.reports) == len(optima) == SETTINGS.slots
        for report, optimum in zip(model.dso.reports, optima, strict=True):
            assert report.status == "optimal"
            assert rel_diff(report.cost_usd, optimum) <= REL, (report.start, optimum)
    assert rel_diff(warm.dso.reports[0].cost_usd, plain.dso.reports[0].cost_usd) <= REL


def test_two_workers_give_the_same_rolling_horizon_and_warm_starts(
        uninterrupted: tuple[CoSimulation, list[float], str]) -> None:
    one, _, one_state = uninterrupted
    two_workers = replace(SETTINGS.decomposition, workers=2)
    two, _, two_state = _run(RunSettings(**{**SETTINGS.__dict__,
                                            "decomposition": two_workers}))
    assert _trajectory(two) == _trajectory(one)
    assert two_state == one_state  # the checkpoint, the controllers' bases included
    assert len(json.loads(one_state)["controllers"]) == 6


@pytest.mark.parametrize(("settings", "basis"), [
    pytest.param(SETTINGS, "relaxed", id="prices"),
    pytest.param(BENDERS, "lp", id="benders", marks=pytest.mark.slow)])  # 14 s
def test_resumed_run_starts_from_the_checkpointed_bases_and_continues_exactly(
        uninterrupted: tuple[CoSimulation, list[float], str], settings: RunSettings,
        basis: str, monkeypatch: pytest.MonkeyPatch) -> None:
    whole, _, whole_state = uninterrupted if settings is SETTINGS else _run(settings)
    _, _, checkpoint = _run(settings, steps=2)
    state = json.loads(checkpoint)
    assert len(state["controllers"]) == 6 and all(c[basis] for c in state["controllers"])
    given: list[Any] = []
    load = ControllerGroup.load

    def spy(self: ControllerGroup, windows: Any, warm: Any = None) -> None:
        given.append(warm)
        load(self, windows, warm)

    monkeypatch.setattr(ControllerGroup, "load", spy)
    resumed, _, resumed_state = _run(settings, state=state)
    assert [w.start for w in given[0]] == [1] * 6  # the bases of the window before the stop
    assert all(w is None for w in given[1:])  # then each controller carries its own
    assert [r.cost_usd for r in resumed.dso.reports] == [r.cost_usd
                                                         for r in whole.dso.reports[2:]]
    assert _trajectory(resumed)[-7:] == _trajectory(whole)[-7:]  # the agents' totals
    assert resumed_state == whole_state
