"""The monolithic reference on the seed case (docs/formulation.md §4), checked independently.

Every schedule is re-checked by :mod:`tests.feasibility` (plain numpy, no Pyomo) and the
objective is recomputed from the schedules alone.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
from feasibility import (
    check_microgrid_schedule,
    check_network_schedule,
    recompute_cost_usd,
    recompute_network_cost_usd,
    renewable_forecast,
    replace_units,
    state_of,
)

from gridcosim.scenarios.loader import load_scenario
from gridcosim.scenarios.network import NetworkData, load_network
from gridcosim.scenarios.schema import Scenario
from gridcosim.simulator.models.lindistflow_model import NetworkWindow
from gridcosim.simulator.models.microgrid_model import MicrogridWindow
from gridcosim.simulator.models.monolithic_model import solve_monolithic
from gridcosim.simulator.schedule import Solution
from gridcosim.simulator.windows import microgrid_window, network_window, published_bounds


def windows(scenario: Scenario, network: NetworkData
            ) -> tuple[NetworkWindow, list[MicrogridWindow]]:
    mgs = [microgrid_window(scenario, mg) for mg in scenario.microgrids]
    return network_window(scenario, network, [published_bounds(w) for w in mgs]), mgs


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_scenario("ieee123-nmg")


@pytest.fixture(scope="module")
def network(scenario: Scenario) -> NetworkData:
    return load_network(scenario.network.source)


@pytest.fixture(scope="module")
def seed(scenario: Scenario, network: NetworkData
         ) -> tuple[NetworkWindow, list[MicrogridWindow]]:
    return windows(scenario, network)


@pytest.fixture(scope="module")
def solutions(seed: tuple[NetworkWindow, list[MicrogridWindow]]) -> tuple[Solution, Solution]:
    net, mgs = seed
    return solve_monolithic(net, mgs), solve_monolithic(net, mgs)


def check_mg(w: MicrogridWindow, sched: object) -> list[str]:
    return check_microgrid_schedule(
        w.spec, sched, renewable_forecast(w), w.load_kw, w.load_kvar, w.slot_hours,
        w.curtailment_cost_usd_per_kwh, w.state)


def check_net(w: NetworkWindow, sol: Solution) -> list[str]:
    return check_network_schedule(
        sol.network, w.network, w.load_kw, w.load_kvar, w.svcs, w.v_min_pu, w.v_max_pu,
        w.v_ref_pu, sol.microgrids)


def test_status_optimal_and_bound_closed(solutions: tuple[Solution, Solution]) -> None:
    sol = solutions[0]
    assert sol.status == "optimal"
    assert math.isfinite(sol.objective_usd)
    bound = sol.info["bound_usd"]
    assert abs(sol.objective_usd - bound) <= 1e-6 * abs(sol.objective_usd), (
        sol.objective_usd, bound)


def test_deterministic(solutions: tuple[Solution, Solution]) -> None:
    first, second = solutions
    assert abs(first.objective_usd - second.objective_usd) <= 1e-9
    assert first.network == second.network
    assert first.microgrids == second.microgrids


def test_microgrid_schedules_feasible(seed: tuple[NetworkWindow, list[MicrogridWindow]],
                                      solutions: tuple[Solution, Solution]) -> None:
    _, mgs = seed
    sol = solutions[0]
    assert [s.name for s in sol.microgrids] == [w.spec.name for w in mgs]
    problems = [p for w, s in zip(mgs, sol.microgrids, strict=True) for p in check_mg(w, s)]
    assert problems == []


def test_network_schedule_feasible(seed: tuple[NetworkWindow, list[MicrogridWindow]],
                                   solutions: tuple[Solution, Solution]) -> None:
    net, _ = seed
    assert check_net(net, solutions[0]) == []


def test_objective_is_sum_of_recomputed_costs(
        seed: tuple[NetworkWindow, list[MicrogridWindow]],
        solutions: tuple[Solution, Solution]) -> None:
    net, mgs = seed
    sol = solutions[0]
    network_cost = recompute_network_cost_usd(
        sol.network, net.price_usd_per_kwh, net.slot_hours, net.curtailment_cost_usd_per_kwh)
    mg_costs = [recompute_cost_usd(w.spec, s, w.slot_hours, w.curtailment_cost_usd_per_kwh,
                                   w.state) for w, s in zip(mgs, sol.microgrids, strict=True)]
    total = network_cost + sum(mg_costs)
    assert abs(total - sol.objective_usd) <= 1e-6 * abs(sol.objective_usd), (
        total, sol.objective_usd)
    assert abs(network_cost - sol.network.cost_usd) <= 1e-6 * abs(network_cost)


def test_checker_is_not_vacuous(seed: tuple[NetworkWindow, list[MicrogridWindow]],
                                solutions: tuple[Solution, Solution]) -> None:
    """Perturbed schedules are reported (so an empty list above means something)."""
    net, mgs = seed
    sol = solutions[0]
    w, s = mgs[0], sol.microgrids[0]
    gen = s.generators[0]
    # One more kW on the DG in the last slot: P balance and cost break.
    bumped = dataclasses.replace(gen, p_kw=gen.p_kw[:-1] + (gen.p_kw[-1] + 1.0,))
    problems = check_mg(w, replace_units(s, "generator", (bumped,)))
    assert any("P balance" in p for p in problems), problems
    assert any("cost" in p for p in problems), problems
    # A start-up the reported cost does not pay for: the DG is OFF before the window.
    assert not w.state.of(gen.name)["on"] and gen.on[0] == 1
    problems = check_mg(w, dataclasses.replace(s, cost_usd=s.cost_usd - 10.0))
    assert any("cost" in p for p in problems), problems
    # Storage energy that does not follow the balance.
    ess = s.storage[0]
    wrong = dataclasses.replace(ess, series={**ess.series,
                                             "e_kwh": (ess.e_kwh[0] + 1.0,) + ess.e_kwh[1:]})
    problems = check_mg(w, replace_units(s, "storage", (wrong,)))
    assert any("energy balance" in p for p in problems), problems
    # A different initial state breaks the ramp / start-up accounting.
    hot = state_of(w.spec, dg_on=(True,), dg_p_kw=(w.spec.generators[0].p_max_kw,),
                   e_kwh=[w.state.of(e.name)["e_kwh"] for e in w.spec.storage])
    problems = check_microgrid_schedule(
        w.spec, s, renewable_forecast(w), w.load_kw, w.load_kvar, w.slot_hours,
        w.curtailment_cost_usd_per_kwh, hot)
    assert any("ramp" in p or "cost" in p for p in problems), problems
    # Network: a voltage moved by 0.01 p.u. breaks the LinDistFlow drop.
    vm = dict(sol.network.vm_pu)
    vm[50] = tuple(v + 0.01 for v in vm[50])
    problems = check_net(net, dataclasses.replace(sol, network=dataclasses.replace(
        sol.network, vm_pu=vm)))
    assert any("bus 50" in p and "drop" in p for p in problems), problems
    # Network: a tightened band is reported as a voltage violation.
    low = min(min(v) for v in sol.network.vm_pu.values())
    problems = check_network_schedule(
        sol.network, net.network, net.load_kw, net.load_kvar, net.svcs, low + 0.01,
        net.v_max_pu, net.v_ref_pu, sol.microgrids)
    assert any("outside" in p for p in problems), problems


def test_impossible_voltage_band_is_infeasible(
        seed: tuple[NetworkWindow, list[MicrogridWindow]]) -> None:
    """v_min 1.05 > v_ref 1.0: bus 2 (a leaf off the root, load only) cannot reach it.

    Bus 2 has no microgrid, SVC or capacitor, so its branch flow is load minus curtailment
    >= 0 and v_2 <= v_1 = 1.0 < 1.05². (The scenario schema forbids v_min > v_ref, so the
    window is edited directly.)
    """
    net, mgs = seed
    sol = solve_monolithic(dataclasses.replace(net, v_min_pu=1.05), mgs)
    assert sol.status == "infeasible"
    assert sol.network is None and sol.microgrids == ()
    assert math.isnan(sol.objective_usd)


def test_impossible_microgrid_is_infeasible(scenario: Scenario, network: NetworkData) -> None:
    """A schema-valid scenario with no feasible schedule.

    mg7's DG starts ON at 50 kW with P_min 50 and ramp 10 kW/slot: it can never switch off
    (50 -> 0 needs a 50 kW ramp), so it produces >= P_min = 50 kW in slot 1. Without
    storage or local load that power can only leave through the PCC, whose rating is
    1 kW (renewable output can drop to 0, it cannot absorb): infeasible.
    """
    mg7 = scenario.microgrids[0]
    dg = mg7.generators[0].model_copy(update={
        "p_min_kw": 50.0, "ramp_kw_per_slot": 10.0, "initial_on": True, "initial_p_kw": 50.0})
    broken = mg7.model_copy(update={"generators": (dg,), "storage": (), "pcc_p_max_kw": 1.0})
    variant = scenario.model_copy(update={"microgrids": (broken, *scenario.microgrids[1:])})
    variant = Scenario.model_validate(variant.model_dump())  # re-validate the edited units
    net, mgs = windows(variant, network)
    sol = solve_monolithic(net, mgs)
    assert sol.status == "infeasible"
    assert sol.network is None
