"""Price signals: nodal prices, the controllers' Lagrangian cuts and the master's use of them.

Every reference is computed independently of the code under test: ``L(λ)`` and the
microgrid's cost at a fixed exchange by a fresh Pyomo model solved through
``pyomo.contrib.solver``'s HiGHS, schedules by :mod:`tests.feasibility` (plain numpy),
nodal prices by finite differences of the network LP, and optima by the monolithic MILP.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo
import pytest
from feasibility import check_microgrid_schedule, recompute_cost_usd, renewable_forecast
from pyomo.contrib.solver.common.results import TerminationCondition
from pyomo.contrib.solver.solvers.highs import Highs

from gridcosim.scenarios import variants
from gridcosim.scenarios.network import NetworkData
from gridcosim.scenarios.schema import Scenario
from gridcosim.simulator.decomposition.controller_pool import make_pool
from gridcosim.simulator.decomposition.controller_responder import MicrogridResponder
from gridcosim.simulator.decomposition.loop import Decomposition
from gridcosim.simulator.decomposition.master_problem import MasterProblem
from gridcosim.simulator.decomposition.network_evaluator import NetworkEvaluator
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.simulator.messages import (
    Accept,
    KeySource,
    PriceResponse,
    PriceSignal,
    RestoredExchange,
    ScheduleKey,
)
from gridcosim.simulator.models.lindistflow_model import NetworkWindow
from gridcosim.simulator.models.master_model import build_master
from gridcosim.simulator.models.microgrid_model import MicrogridWindow, add_microgrid
from gridcosim.simulator.models.monolithic_model import solve_monolithic
from gridcosim.simulator.schedule import MicrogridSchedule
from gridcosim.simulator.solve import with_unit_schedules
from gridcosim.simulator.windows import microgrid_window, network_window, published_bounds

REL = 1e-6
Prices = tuple[tuple[float, ...], tuple[float, ...]]


def rel_diff(a: float, b: float) -> float:
    return abs(a - b) / max(1.0, abs(b))


def dot(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return float(np.dot(a, b))


def problems(w: MicrogridWindow, sched: MicrogridSchedule) -> list[str]:
    return check_microgrid_schedule(w.spec, sched, renewable_forecast(w), w.load_kw, w.load_kvar,
                                    w.slot_hours, w.curtailment_cost_usd_per_kwh, w.state)


def price_vectors(w: MicrogridWindow) -> dict[str, Prices]:
    """Utility price x Δt; a perturbed one with negative entries and reactive prices; 3x."""
    base = np.asarray(w.price_usd_per_kwh, dtype=float) * w.slot_hours
    scale = np.resize([1.3, -0.5, 0.8, 2.0, -1.0, 0.6], w.slots)
    zero = (0.0,) * w.slots
    return {"utility": (tuple(base), zero),
            "perturbed": (tuple(base * scale), tuple(0.03 * np.resize([1.0, -1.0, 0.5], w.slots))),
            "high": (tuple(3.0 * base), zero)}


def reference_milp(w: MicrogridWindow, prices: Prices | None = None,
                   fixed: tuple[tuple[float, ...], tuple[float, ...]] | None = None) -> float:
    """Proven lower bound (gap 1e-9) of ``min C − λ_P·P − λ_Q·Q``, exchange free or fixed."""
    m = pyo.ConcreteModel()
    m.mg = pyo.Block()
    add_microgrid(m.mg, w)
    b = m.mg
    expr = b.cost_usd
    if prices is not None:
        expr = expr - sum(lp * b.p_ex[t] + lq * b.q_ex[t]
                          for t, lp, lq in zip(b.T, *prices, strict=True))
    if fixed is not None:
        for t, p, q in zip(b.T, *fixed, strict=True):
            b.p_ex[t].fix(p)
            b.q_ex[t].fix(q)
    m.obj = pyo.Objective(expr=expr)
    res = Highs().solve(m, load_solutions=False, raise_exception_on_nonoptimal_result=False,
                        rel_gap=1e-9, threads=1, solver_options={"mip_abs_gap": 1e-9})
    assert res.termination_condition == TerminationCondition.convergenceCriteriaSatisfied
    return float(res.objective_bound)


@dataclass
class Controller:
    window: MicrogridWindow
    responder: MicrogridResponder
    start: RestoredExchange                      # the Accept of initial_cuts (near zero)
    answers: dict[str, PriceResponse]


@pytest.fixture(scope="module")
def controllers(base: Scenario) -> list[Controller]:
    out = []
    for tag, mg in enumerate(base.microgrids):
        w = microgrid_window(base, mg)
        r = MicrogridResponder(w, DecompositionSettings())
        accept = r.initial_cuts(False)[0]
        assert isinstance(accept, Accept)
        answers = {}
        for k, (name, (lp, lq)) in enumerate(price_vectors(w).items()):
            key = ScheduleKey(KeySource.PRICE, 10 * tag + k + 1)
            resp = r.respond_to_price(PriceSignal(w.spec.name, key, lp, lq))
            assert resp is not None and resp.mg == w.spec.name
            assert (resp.p_usd_per_kw, resp.q_usd_per_kvar) == (lp, lq)
            answers[name] = resp
        out.append(Controller(w, r, accept.restored, answers))
    return out


def dso_window(scenario: Scenario, network: NetworkData) -> NetworkWindow:
    bounds = [published_bounds(microgrid_window(scenario, mg)) for mg in scenario.microgrids]
    return network_window(scenario, network, bounds)


def test_lagrangian_bound_is_tight_and_valid(controllers: list[Controller]) -> None:
    for c in controllers:
        profiles = [(c.start.p_kw, c.start.q_kvar)]
        profiles += [(a.restored.p_kw, a.restored.q_kvar) for a in c.answers.values()]
        true_cost = [reference_milp(c.window, fixed=pq) for pq in profiles]
        for name, resp in c.answers.items():
            ex, lam = resp.restored, (resp.p_usd_per_kw, resp.q_usd_per_kvar)
            attained = ex.cost_usd - dot(lam[0], ex.p_kw) - dot(lam[1], ex.q_kvar)
            key = (c.window.spec.name, name)
            assert resp.bound_usd <= attained + 1e-6, key
            assert rel_diff(resp.bound_usd, attained) <= REL, key
            assert rel_diff(resp.bound_usd, reference_milp(c.window, prices=lam)) <= REL, key
            for (p, q), cost in zip(profiles, true_cost, strict=True):
                assert cost >= resp.bound_usd + dot(lam[0], p) + dot(lam[1], q) - 1e-6, key


def test_price_response_schedules_are_runnable(controllers: list[Controller]) -> None:
    for c in controllers:
        w = c.window
        for name, resp in c.answers.items():
            sched = c.responder.schedule(resp.key)
            assert problems(w, sched) == [], (w.spec.name, name)
            cost = recompute_cost_usd(w.spec, sched, w.slot_hours,
                                      w.curtailment_cost_usd_per_kwh, w.state)
            assert rel_diff(resp.restored.cost_usd, cost) <= REL, (w.spec.name, name)
            np.testing.assert_allclose(sched.p_ex_kw, resp.restored.p_kw, atol=1e-6)
            np.testing.assert_allclose(sched.q_ex_kvar, resp.restored.q_kvar, atol=1e-6)


def finite_difference_check(ev: NetworkEvaluator, point: dict[str, RestoredExchange]
                            ) -> dict[str, Prices]:
    """Assert each marginal value lies between the ±1 kW (kvar) one-sided differences.

    The LP value is convex in the fixed exchange, so ``−D⁺ ≤ value ≤ −D⁻`` always holds;
    where ``D⁺ = D⁻`` (a non-degenerate point) the value must equal both.
    """
    out = ev.evaluate(point)
    assert out.status == "optimal"
    values, f0 = ev.marginal_values(out), float(out.objective)
    for mg, ex in point.items():
        for k in (0, 1):
            for t in range(len(ex.p_kw)):
                f = {}
                for h in (-1.0, 1.0):
                    pq = [list(ex.p_kw), list(ex.q_kvar)]
                    pq[k][t] += h
                    o = ev.evaluate({**point, mg: RestoredExchange(*map(tuple, pq), 0.0)})
                    assert o.status == "optimal"
                    f[h] = float(o.objective)
                d_plus, d_minus, v = f[1.0] - f0, f0 - f[-1.0], values[mg][k][t]
                assert -d_plus - 1e-7 <= v <= -d_minus + 1e-7, (mg, k, t, d_plus, d_minus, v)
                if abs(d_plus - d_minus) <= 1e-9:
                    assert v == pytest.approx(-d_plus, abs=1e-7), (mg, k, t)
    return values


def test_marginal_values_seed_are_the_utility_price(
        base: Scenario, network: NetworkData, controllers: list[Controller]) -> None:
    w = dso_window(base, network)
    ev = NetworkEvaluator(build_master(w))
    energy = np.asarray(w.price_usd_per_kwh) * w.slot_hours
    zero = RestoredExchange((0.0,) * w.slots, (0.0,) * w.slots, 0.0)
    for point in ({c.window.spec.name: zero for c in controllers},
                  {c.window.spec.name: c.answers["utility"].restored for c in controllers}):
        for p, q in finite_difference_check(ev, point).values():
            np.testing.assert_allclose(p, energy, atol=1e-9)
            np.testing.assert_allclose(q, 0.0, atol=1e-9)


def test_marginal_values_stressed_follow_binding_limits(
        base: Scenario, network: NetworkData, controllers: list[Controller]) -> None:
    stressed = variants.stressed(base)
    w = dso_window(stressed, network)
    ev = NetworkEvaluator(build_master(w))
    point = {c.window.spec.name: c.answers["utility"].restored for c in controllers}
    values = finite_difference_check(ev, point)
    energy = np.asarray(w.price_usd_per_kwh) * w.slot_hours
    # the voltage band binds: nodal prices leave the utility price, reactive power has value
    assert max(np.max(np.abs(np.asarray(p) - energy)) for p, _ in values.values()) > 1e-2
    assert max(np.max(np.abs(q)) for _, q in values.values()) > 1e-2


def test_master_with_lagrangian_cuts_at_utility_price_is_exact(
        base: Scenario, network: NetworkData, controllers: list[Controller]) -> None:
    w = dso_window(base, network)
    master = MasterProblem(w)
    sol = master.solve(relaxed=True)
    assert sol.status == "optimal"
    bounds = [sol.lower_bound]
    for c in controllers:
        master.add_lagrangian_cut(c.answers["utility"])
        sol = master.solve(relaxed=True)
        assert sol.status == "optimal"
        assert sol.lower_bound >= bounds[-1] - 1e-9 * max(1.0, abs(bounds[-1]))
        bounds.append(sol.lower_bound)
    assert master.cut_counts["lagrangian"] == len(controllers)
    exchanges = master.exchanges(sol)
    for c in controllers:  # each cut holds at the master's optimum
        resp, ex = c.answers["utility"], exchanges[c.window.spec.name]
        cut = resp.bound_usd + dot(resp.p_usd_per_kw, ex.p_kw)
        assert ex.cost_usd >= cut - 1e-6
    ref = solve_monolithic(w, [c.window for c in controllers])
    assert ref.status == "optimal"
    assert rel_diff(sol.lower_bound, ref.objective_usd) <= REL, (sol.lower_bound, ref)


def test_stressed_decomposition_with_price_rounds_every_iteration(
        base: Scenario, network: NetworkData) -> None:
    scenario = variants.stressed(base)
    windows = [microgrid_window(scenario, mg) for mg in scenario.microgrids]
    ref = solve_monolithic(dso_window(scenario, network), windows)
    assert ref.status == "optimal"
    settings = DecompositionSettings(price_signals=True, price_every=1)
    pool = make_pool(windows, settings)
    try:
        dec = Decomposition(network_window(scenario, network, pool.bounds()), pool, settings)
        sol = with_unit_schedules(dec.run(), pool)
    finally:
        pool.close()
    assert sol.status == "optimal", sol.info
    assert rel_diff(sol.objective_usd, ref.objective_usd) <= REL, (sol.objective_usd, ref)
    assert sol.info["lower_bound_usd"] <= ref.objective_usd + REL * abs(ref.objective_usd)
    assert sol.info["cuts"]["lagrangian"] > len(windows)
    by_name = {s.name: s for s in sol.microgrids}
    for w in windows:
        assert problems(w, by_name[w.spec.name]) == [], w.spec.name
