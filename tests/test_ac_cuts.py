"""AC feasibility cuts at the LinDistFlow optimum of ieee123-nmg-stressed (seed 001 (A12)).

The schedule is the monolithic MILP's (LinDistFlow, no AC cut): it holds every LinDistFlow
voltage at or above 0.95 p.u., and the AC power flow puts 3-9 buses per slot below it.

The cut is a first-order model of the violation: moving x̂ by ``h·d`` (d = +1 kW on every
microgrid export and +1 kvar on every SVC), the gap between the cut's prediction and the AC
violation over the same buses shrinks as h² (ratio 4.00 per halving, measured 3.99-4.00
for h = 16 ... 1). While no bus crosses the limit that is also the gap to ``E_t`` itself;
when one does, ``E_t`` has a kink and the gap is first order in the crossing term.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gridcosim.scenarios import load_scenario
from gridcosim.scenarios.network import load_network
from gridcosim.simulator.decomposition.master_problem import MasterProblem
from gridcosim.simulator.messages import RestoredExchange
from gridcosim.simulator.models.lindistflow_model import NetworkWindow
from gridcosim.simulator.models.monolithic_model import solve_monolithic
from gridcosim.simulator.schedule import Solution
from gridcosim.simulator.validation.ac_cuts import ACCutGenerator, window_validator
from gridcosim.simulator.validation.cut import ACFeasibilityCut
from gridcosim.simulator.validation.operating_point import OperatingPoint, operating_points
from gridcosim.simulator.validation.results import ValidationReport
from gridcosim.simulator.windows import microgrid_window, network_window, published_bounds

STEPS = (16.0, 8.0, 4.0, 2.0, 1.0)
SLOT = 5  # the slot whose smallest violation (1.2e-3 p.u.) no small step clears


@pytest.fixture(scope="module")
def window_and_solution() -> tuple[NetworkWindow, Solution]:
    scenario = load_scenario("ieee123-nmg-stressed")
    mgs = [microgrid_window(scenario, mg) for mg in scenario.microgrids]
    window = network_window(scenario, load_network(scenario.network.source),
                            [published_bounds(w) for w in mgs])
    solution = solve_monolithic(window, mgs)
    assert solution.status == "optimal"
    return window, solution


@pytest.fixture(scope="module")
def exchanges(window_and_solution) -> dict[str, RestoredExchange]:
    _, solution = window_and_solution
    return {m.name: RestoredExchange(m.p_ex_kw, m.q_ex_kvar, m.cost_usd)
            for m in solution.microgrids}


@pytest.fixture(scope="module")
def generator(window_and_solution) -> ACCutGenerator:
    window, _ = window_and_solution
    return ACCutGenerator(window_validator(window), window)


@pytest.fixture(scope="module")
def report(window_and_solution, exchanges, generator) -> ValidationReport:
    _, solution = window_and_solution
    return generator.check(solution.network, exchanges)


def shifted(point: OperatingPoint, window: NetworkWindow, ratio: dict[int, float],
            delta: dict[tuple[str, str | int], float]) -> OperatingPoint:
    """``point`` with the master variables moved by ``delta`` (kW / kvar)."""
    load_kw, load_kvar = point.load_kw.copy(), point.load_kvar.copy()
    mg_kw, mg_kvar, svc = list(point.mg_kw), list(point.mg_kvar), list(point.svc_kvar)
    names = [e.mg for e in window.exchanges]
    row = {bus: k for k, bus in enumerate(window.network.bus_ids)}
    for (kind, key), d in delta.items():
        if kind == "p_ex":
            mg_kw[names.index(key)] += d
        elif kind == "q_ex":
            mg_kvar[names.index(key)] += d
        elif kind == "q_svc":
            svc[key] += d
        else:  # curtailment: less load at the load's power factor
            load_kw[row[key]] -= d
            load_kvar[row[key]] -= d * ratio[key]
    return dataclasses.replace(point, load_kw=load_kw, load_kvar=load_kvar,
                               mg_kw=tuple(mg_kw), mg_kvar=tuple(mg_kvar), svc_kvar=tuple(svc))


def test_lindistflow_optimum_violates_the_ac_band(window_and_solution,
                                                  report: ValidationReport) -> None:
    _, solution = window_and_solution
    lin_min = min(min(v) for v in solution.network.vm_pu.values())
    assert lin_min == pytest.approx(0.95, abs=1e-7)  # the band binds in LinDistFlow ...
    assert not report.feasible  # ... and the AC power flow falls below it
    frame = report.slot_frame()
    assert (frame["status"] == "ok").all() and (frame["violation_pu"] > 1e-3).all()
    assert (frame["vm_min_pu"] < 0.947).all()
    assert frame["max_abs_vm_gap_pu"].between(2.5e-3, 5e-3).all()
    assert (frame["losses_kw"] > 100).all()
    vm_lin = report.vm_lin_pu_table()
    assert (vm_lin.to_numpy() >= report.vm_pu_table().to_numpy() - 1e-8).all()


def test_cut_speaks_only_transaction_variables(window_and_solution, report, generator
                                               ) -> None:
    window, _ = window_and_solution
    cut = cut_of_slot(window_and_solution, report, generator, SLOT)
    kinds = {key[0] for key, _ in cut.coefficients}
    assert kinds == {"p_ex", "q_ex", "q_svc", "curtail"}
    assert [k for k, _ in cut.coefficients] == [k for k, _ in cut.x_hat]
    assert {f.name for f in dataclasses.fields(ACFeasibilityCut)} == {
        "slot", "e_pu", "coefficients", "x_hat", "margin_pu", "source"}
    coef = dict(cut.coefficients)
    assert all(coef[("p_ex", e.mg)] < 0 for e in window.exchanges)  # export raises voltage
    assert all(c < 0 for (kind, _), c in cut.coefficients if kind == "curtail")
    assert cut.e_pu == pytest.approx(report.slots[SLOT].violation_pu)
    keys, coefs, rhs = cut.row()
    x_hat = dict(cut.x_hat)
    assert max(abs(c) for c in coefs) == pytest.approx(1.0)
    activity = sum(c * x_hat[k] for k, c in zip(keys, coefs, strict=True))
    assert activity > rhs  # the cut cuts off x̂


def cut_of_slot(window_and_solution, report: ValidationReport, generator: ACCutGenerator,
                slot: int) -> ACFeasibilityCut:
    window, solution = window_and_solution
    exchanges = {m.name: RestoredExchange(m.p_ex_kw, m.q_ex_kvar, m.cost_usd)
                 for m in solution.microgrids}
    point = operating_points(window, solution.network, exchanges)[slot]
    return generator.cut(report.slots[slot], point, solution.network)


def test_cut_error_shrinks_quadratically(window_and_solution, exchanges, report, generator
                                         ) -> None:
    window, solution = window_and_solution
    point = operating_points(window, solution.network, exchanges)[SLOT]
    base = report.slots[SLOT]
    cut = cut_of_slot(window_and_solution, report, generator, SLOT)
    x_hat = dict(cut.x_hat)
    direction = {k: 1.0 for k, _ in cut.coefficients if k[0] in ("p_ex", "q_svc")}
    active = [list(report.bus_ids).index(v.element) for v in base.violations]
    errors = []
    for h in STEPS:
        moved = generator.validator.solve(shifted(point, window, generator._ratio,
                                                  {k: h * d for k, d in direction.items()}))
        predicted = cut.predicted_violation({k: x_hat[k] + h * d for k, d in direction.items()})
        e_active = float(np.sum(window.v_min_pu - moved.vm_pu[active]))
        errors.append(abs(e_active - predicted))
        if h <= 2.0:  # small steps: no bus crosses the limit, so E_t itself is matched
            assert {v.element for v in moved.violations} == {v.element for v in base.violations}
            assert moved.violation_pu == pytest.approx(e_active, abs=1e-12)
            assert abs(moved.violation_pu - predicted) < 1e-3 * abs(moved.violation_pu
                                                                     - base.violation_pu)
    ratios = [errors[k] / errors[k + 1] for k in range(len(errors) - 1)]
    print("errors", [f"{e:.2e}" for e in errors], "ratios", [f"{r:.3f}" for r in ratios])
    assert all(3.8 < r < 4.2 for r in ratios)


def test_lindistflow_cut_is_the_documented_alternative(window_and_solution, report) -> None:
    window, _ = window_and_solution
    jac = ACCutGenerator(window_validator(window), window)
    ldf = ACCutGenerator(jac.validator, window, sensitivity="lindistflow")
    a = dict(cut_of_slot(window_and_solution, report, jac, SLOT).coefficients)
    b = dict(cut_of_slot(window_and_solution, report, ldf, SLOT).coefficients)
    assert a.keys() == b.keys()
    rel = max(abs(a[k] - b[k]) for k in a) / max(abs(v) for v in a.values())
    assert rel < 0.2
    assert all(np.sign(a[k]) == np.sign(b[k]) for k in a if abs(a[k]) > 1e-3 * max(
        abs(v) for v in a.values()))


def test_failed_power_flow_gives_a_cut_towards_lower_loading(window_and_solution, generator
                                                             ) -> None:
    window, solution = window_and_solution
    ids = list(window.network.bus_ids)
    heavy = OperatingPoint(SLOT, window.load_kw[SLOT].reindex(ids).to_numpy() * 5.0,
                           window.load_kvar[SLOT].reindex(ids).to_numpy() * 5.0,
                           (0.0,) * len(window.exchanges), (0.0,) * len(window.exchanges),
                           (0.0,) * len(window.svcs))
    result = generator.validator.solve(heavy)
    assert result.status == "pf_failed"
    cut = generator.cut(result, heavy, solution.network)
    assert cut.source == "pf_failed" and cut.e_pu == generator.failed_step_pu
    coef = dict(cut.coefficients)
    assert all(np.isfinite(c) for c in coef.values())
    assert all(c < 0 for (kind, _), c in cut.coefficients if kind in ("curtail", "p_ex"))


def test_master_translates_keys_to_its_columns(window_and_solution, report, generator
                                               ) -> None:
    window, _ = window_and_solution
    master = MasterProblem(window)
    cut = cut_of_slot(window_and_solution, report, generator, SLOT)
    cols = master.slot_columns(SLOT)
    net = master.model.net
    assert cols[("p_ex", "mg7")] == master.hm.col(net.p_ex["mg7", SLOT])
    assert cols[("curtail", 65)] == master.hm.col(net.curtail[65, SLOT])
    rows = master.hm.num_rows
    master.add_ac_cut(cut)
    assert master.hm.num_rows == rows + 1 and master.cut_counts["ac"] == 1
    solved = master.solve()
    assert solved.status == "optimal"
    x = {k: float(solved.outcome.x[c]) for k, c in cols.items()}
    assert cut.predicted_violation(x) <= 1e-7  # the master now satisfies the cut
