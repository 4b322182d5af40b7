"""The inner master and the price rounds at its prices (docs/formulation.md §7).

References are independent of the loop: the monolithic MILP for optima, the numpy
checkers of :mod:`tests.feasibility` for schedules, the network LP evaluated at fixed
exchanges for the inner master's value, and the master's own cut rows evaluated by hand.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from feasibility import check_microgrid_schedule, check_network_schedule, renewable_forecast

from gridcosim.scenarios import variants
from gridcosim.scenarios.loader import load_scenario
from gridcosim.scenarios.network import NetworkData, load_network
from gridcosim.scenarios.schema import Scenario
from gridcosim.scenarios.series import scenario_series
from gridcosim.simulator.decomposition.controller_pool import make_pool
from gridcosim.simulator.decomposition.loop import Decomposition
from gridcosim.simulator.decomposition.price_rounds import PriceRounds
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.simulator.messages import Accept, RestoredExchange
from gridcosim.simulator.models.monolithic_model import solve_monolithic
from gridcosim.simulator.solve import with_unit_schedules
from gridcosim.simulator.windows import microgrid_window, network_window

REL = 1e-6


def rel_diff(a: float, b: float) -> float:
    return abs(a - b) / max(1.0, abs(b))


def binding_week() -> Scenario:
    """``ieee123-nmg-week`` with loads ×2 and a 0.97–1.03 p.u. band (benchmarks/)."""
    week = load_scenario("ieee123-nmg-week")
    return week.model_copy(update={"network": week.network.model_copy(
        update={"load_scale": 2.0, "v_min_pu": 0.97, "v_max_pu": 1.03})})


def test_binding_window_from_slot_40_settles_at_the_inner_masters_proposal() -> None:
    """The decomposition's weak case: 445 Benders iterations with the price rounds at the
    answers' nodal prices alone; the rounds at the inner master's prices make its bound
    exact and the inner master's combination is accepted by every controller."""
    scenario = binding_week()
    net = load_network(scenario.network.source)
    series = scenario_series(scenario, net)
    mgw = [microgrid_window(scenario, mg, None, 40, 24, series) for mg in scenario.microgrids]
    settings = DecompositionSettings()
    pool = make_pool(mgw, settings)
    try:
        window = network_window(scenario, net, pool.bounds(), 40, 24, series)
        dec = Decomposition(window, pool, settings)
        sol = with_unit_schedules(dec.run(), pool)
    finally:
        pool.close()
    ref = solve_monolithic(window, mgw)
    assert ref.status == sol.status == "optimal", sol.info
    assert sol.info["iterations"] <= 2 and sol.info["cuts"]["branch"] == 0, sol.info
    assert dec.prices.sent > 2  # more than the rounds at the answers' prices
    assert rel_diff(sol.objective_usd, ref.objective_usd) <= REL
    assert 0.0 <= sol.info["gap"] <= REL
    assert sol.info["lower_bound_usd"] <= ref.objective_usd * (1 + 1e-9)
    by_name = {s.name: s for s in sol.microgrids}
    for w in mgw:
        assert check_microgrid_schedule(
            w.spec, by_name[w.spec.name], renewable_forecast(w), w.load_kw, w.load_kvar,
            w.slot_hours, w.curtailment_cost_usd_per_kwh, w.state) == [], w.spec.name
    assert check_network_schedule(sol.network, window.network, window.load_kw,
                                  window.load_kvar, window.svcs, window.v_min_pu,
                                  window.v_max_pu, window.v_ref_pu, sol.microgrids) == []


@pytest.fixture
def stressed_rounds(base: Scenario, network: NetworkData) -> Decomposition:
    """The stressed seed case after its price rounds, with probe cuts in the master."""
    scenario = variants.stressed(base)
    mgw = [microgrid_window(scenario, mg) for mg in scenario.microgrids]
    settings = DecompositionSettings()
    pool = make_pool(mgw, settings)
    dec = Decomposition(network_window(scenario, network, pool.bounds()), pool, settings)
    dec.start_window()
    for cut in pool.warm_start_cuts():  # unified cuts too, not only Lagrangian ones
        dec.master.add_unified_cut(cut)
    yield dec
    pool.close()


def test_inner_combination_satisfies_every_cut_of_the_master(
        stressed_rounds: Decomposition) -> None:
    """A convex combination of runnable schedules, costs combined alike, lies on the
    right side of every Lagrangian and unified cut: it is a master solution."""
    dec = stressed_rounds
    master, found = dec.master, dec.prices.inner.solve()
    assert found is not None and master.cut_counts["unified"] > 0
    x = np.zeros(master.hm.num_cols)
    for mg, ex in found.exchanges.items():
        x[master.p_cols[mg]] = ex.p_kw
        x[master.q_cols[mg]] = ex.q_kvar
        x[master.eta_col[mg]] = ex.cost_usd
    cuts = master.pool._kept.cuts
    assert len(cuts) == master.cut_counts["unified"] + master.cut_counts["lagrangian"]
    for cut in cuts:
        value = float(cut.coefs @ x[cut.cols])
        tol = 1e-6 * (1.0 + min(abs(cut.lb), abs(cut.ub)))
        assert cut.lb - tol <= value <= cut.ub + tol
    lower = master.solve(relaxed=True).lower_bound
    assert lower <= found.value_usd + 1e-9 * abs(found.value_usd)
    assert found.value_usd <= dec.best.upper_bound + 1e-9 * abs(found.value_usd)


def test_inner_master_with_one_schedule_each_is_the_network_lp_at_them(
        base: Scenario, network: NetworkData) -> None:
    """With one column per microgrid the combination is that schedule: the value is the
    network LP at the exchanges (reactive free in the bands) plus their costs."""
    scenario = variants.stressed(base)
    mgw = [microgrid_window(scenario, mg) for mg in scenario.microgrids]
    settings = DecompositionSettings()
    pool = make_pool(mgw, settings)
    try:
        dec = Decomposition(network_window(scenario, network, pool.bounds()), pool, settings)
        starts: dict[str, RestoredExchange] = {
            m.mg: m.restored for m in pool.initial_cuts(False) if isinstance(m, Accept)}
    finally:
        pool.close()
    assert len(starts) == len(mgw)
    inner = dec.prices.inner
    for mg, ex in starts.items():
        assert inner.add(mg, ex)
        assert not inner.add(mg, ex)  # the same schedule is one column
    found = inner.solve()
    out = dec.evaluator.evaluate(starts)
    assert out.status == "optimal" and found is not None
    expected = float(out.objective) + sum(ex.cost_usd for ex in starts.values())
    assert found.value_usd == pytest.approx(expected, rel=1e-9)
    for mg, ex in starts.items():
        assert found.exchanges[mg].p_kw == pytest.approx(ex.p_kw, abs=1e-7)
        assert found.exchanges[mg].cost_usd == pytest.approx(ex.cost_usd, rel=1e-9)


def test_without_the_inner_master_the_answers_rule_is_still_exact(
        base: Scenario, network: NetworkData) -> None:
    scenario = variants.stressed(base)
    mgw = [microgrid_window(scenario, mg) for mg in scenario.microgrids]
    settings = DecompositionSettings(inner_master=False, price_rounds=3)
    pool = make_pool(mgw, settings)
    try:
        window = network_window(scenario, network, pool.bounds())
        dec = Decomposition(window, pool, settings)
        sol = dec.run()
    finally:
        pool.close()
    ref = solve_monolithic(window, mgw)
    assert dec.prices.inner is None
    assert sol.status == "optimal" and sol.info["iterations"] > 1
    assert rel_diff(sol.objective_usd, ref.objective_usd) <= REL


@pytest.mark.parametrize(("upper_usd", "settled"), [
    (float("inf"), False),    # no incumbent yet: the rounds go on, whatever the bound
    (100.0 + 1e-9, True),     # within rel_gap / 10 of the bound
    (100.0 + 1e-3, False)])
def test_rounds_count_as_settled_only_with_an_incumbent_at_the_bound(
        upper_usd: float, settled: bool) -> None:
    """With no incumbent the upper bound is infinite, and so was the old tolerance
    ``settle_gap * |UB|``: the rounds stopped (and a window would end with no schedule)."""
    incumbent = SimpleNamespace(best=SimpleNamespace(upper_bound=upper_usd))
    rounds = PriceRounds(None, None, None, None, incumbent, rounds=1, settle_gap=1e-8)
    assert rounds._closed(100.0) is settled
