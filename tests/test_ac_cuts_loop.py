"""The decomposition with AC validation (Step 7) on ieee123-nmg-stressed and edge cases.

* Stressed case: the first schedule every microgrid accepts violates the AC band, AC cuts
  follow, and the final schedule's AC voltages are inside the band, checked here with a
  plain ``pandapower.runpp`` on a net built from the solution (not with the validator);
  its cost is at least the no-AC cost. Measured (``pytest -s``): 58 AC cuts in 21
  validations, 90 iterations (20 without AC), 3979.51 $ vs 3852.75 $, AC |V| min
  0.9500000 p.u. (the cuts aim ``margin_pu = 1e-5`` inside the band; acceptance is
  ``E_t <= 1e-6``, and the test allows that tolerance).
* Cuts that leave the master no solution give status ``infeasible`` and a finished run.
* A feeder so overloaded that its power flows diverge gives ``pf_failed`` slots, cuts
  towards lower loading, and a finished run.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandapower as pp
import pytest

from gridcosim.scenarios import load_scenario
from gridcosim.scenarios.network import load_network
from gridcosim.scenarios.pandapower_net import build_pandapower_net
from gridcosim.scenarios.schema import Scenario
from gridcosim.simulator import cli
from gridcosim.simulator.decomposition.controller_pool import make_pool
from gridcosim.simulator.decomposition.loop import Decomposition
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.simulator.models.lindistflow_model import NetworkWindow
from gridcosim.simulator.schedule import Solution
from gridcosim.simulator.solve import with_unit_schedules
from gridcosim.simulator.validation.ac_cuts import ACCutGenerator, window_validator
from gridcosim.simulator.validation.ac_loop import ACDecomposition
from gridcosim.simulator.windows import microgrid_window, network_window

TOL_PU = 1e-6


def run(scenario: Scenario, ac: bool, **cut_options: float
        ) -> tuple[Solution, Decomposition, NetworkWindow]:
    settings = DecompositionSettings()
    pool = make_pool([microgrid_window(scenario, mg) for mg in scenario.microgrids], settings)
    try:
        window = network_window(scenario, load_network(scenario.network.source), pool.bounds())
        if ac:
            cuts = ACCutGenerator(window_validator(window), window, **cut_options)
            loop: Decomposition = ACDecomposition(window, pool, settings, cuts)
        else:
            loop = Decomposition(window, pool, settings)
        return with_unit_schedules(loop.run(), pool), loop, window
    finally:
        pool.close()


def runpp_voltages(window: NetworkWindow, solution: Solution) -> np.ndarray:
    """AC |V| (slot x bus) of a solution from plain pandapower runs on a fresh net."""
    network = window.network
    ratio = {n: network.load_q_kvar[n] / network.load_p_kw[n] for n in solution.network.curtail_kw}
    out = []
    for t in range(window.slots):
        net = build_pandapower_net(network, v_ref_pu=window.v_ref_pu)
        for idx in net.load.index:
            bus = int(net.load.at[idx, "bus"])
            curtail = solution.network.curtail_kw.get(bus, (0.0,) * window.slots)[t]
            net.load.at[idx, "p_mw"] = (window.load_kw.at[bus, t] - curtail) / 1000.0
            net.load.at[idx, "q_mvar"] = (window.load_kvar.at[bus, t]
                                          - curtail * ratio.get(bus, 0.0)) / 1000.0
        for mg in solution.microgrids:
            pp.create_sgen(net, bus=mg.bus, p_mw=mg.p_ex_kw[t] / 1000.0,
                           q_mvar=mg.q_ex_kvar[t] / 1000.0)
        for svc, q in zip(window.svcs, solution.network.q_svc_kvar, strict=True):
            pp.create_sgen(net, bus=svc.bus, p_mw=0.0, q_mvar=q[t] / 1000.0)
        pp.runpp(net, numba=False)
        out.append(net.res_bus["vm_pu"].reindex(list(network.bus_ids)).to_numpy())
    return np.array(out)


@pytest.fixture(scope="module")
def stressed() -> Scenario:
    return load_scenario("ieee123-nmg-stressed")


@pytest.fixture(scope="module")
def without_ac(stressed: Scenario) -> Solution:
    return run(stressed, ac=False)[0]


@pytest.fixture(scope="module")
def with_ac(stressed: Scenario) -> tuple[Solution, ACDecomposition, NetworkWindow]:
    return run(stressed, ac=True)


def test_stressed_schedule_becomes_ac_feasible(without_ac: Solution, with_ac) -> None:
    solution, loop, window = with_ac
    first_report, first_cuts = loop.cuts.history[0]
    assert not first_report.feasible and first_cuts  # the first accepted schedule violates
    assert solution.status == "optimal"
    n_cuts = sum(len(cuts) for _, cuts in loop.cuts.history)
    assert solution.info["cuts"]["ac"] == n_cuts > 0
    vm = runpp_voltages(window, solution)
    print(f"AC cuts {solution.info['cuts']['ac']}, validations {len(loop.cuts.history)}, "
          f"iterations {solution.info['iterations']} (no AC: {without_ac.info['iterations']});"
          f" cost {solution.objective_usd:.4f} vs {without_ac.objective_usd:.4f}; "
          f"AC |V| in [{vm.min():.7f}, {vm.max():.7f}]")
    tol = loop.cuts.tol_pu  # accepted when E_t <= tol (the cuts aim 1e-5 inside)
    assert vm.min() >= window.v_min_pu - tol and vm.max() <= window.v_max_pu + tol
    assert solution.objective_usd >= without_ac.objective_usd - 1e-6
    lin = np.array([[solution.network.vm_pu[b][t] for b in window.network.bus_ids]
                    for t in range(window.slots)])
    assert lin.min() > window.v_min_pu + 1e-3  # LinDistFlow had to be pushed above 0.95


def test_no_ac_schedule_violates_in_runpp(stressed: Scenario, without_ac: Solution) -> None:
    """The same independent check rejects the schedule found without AC cuts."""
    window = network_window(stressed, load_network("ieee123"), [])  # loads, SVCs, band
    vm = runpp_voltages(window, without_ac)
    assert vm.min() < stressed.network.v_min_pu - 1e-3


def test_ac_report_and_records(with_ac) -> None:
    solution, loop, window = with_ac
    final = solution.info["ac"]["final"]
    assert final["feasible"] and final["power_flows_failed"] == 0
    assert all(s["status"] == "ok" and s["violation_pu"] <= TOL_PU for s in final["slots"])
    assert all(2e-3 < s["max_abs_vm_gap_pu"] < 6e-3 for s in final["slots"])
    assert all(s["losses_kw"] > 100 for s in final["slots"])
    assert set(final["vm_pu"]) == {str(b) for b in window.network.bus_ids}
    assert loop.best_report.vm_pu_table().shape == (window.slots, len(window.network.bus_ids))
    frame = loop.records_frame()
    validated = frame.dropna(subset=["ac_feasible"])
    assert len(validated) == len(loop.cuts.history)
    assert frame["cuts_ac"].iloc[-1] == solution.info["cuts"]["ac"]
    assert frame["cuts_ac"].is_monotonic_increasing
    assert bool(validated["ac_feasible"].iloc[-1]) and not bool(validated["ac_feasible"].iloc[0])
    json.dumps(solution.to_json_dict())  # serialisable as the CLI prints it


def test_master_made_infeasible_by_ac_cuts_is_a_status(stressed: Scenario) -> None:
    """An artificially strong cut (margin 1e6 p.u.): the master has no solution left."""
    solution, loop, _ = run(stressed, ac=True, margin_pu=1e6)
    assert solution.status == "infeasible"
    assert solution.info["cuts"]["ac"] >= 1
    assert solution.network is None and math.isnan(solution.objective_usd)  # no AC incumbent
    assert solution.info["ac"]["final"] is None


def test_non_converging_power_flows_finish_the_run() -> None:
    """Loads x5.5 with a 0.55 p.u. floor: LinDistFlow accepts, Newton-Raphson diverges."""
    base = load_scenario("ieee123-nmg")
    network = base.network.model_copy(update={"load_scale": 5.5, "v_min_pu": 0.55})
    scenario = base.model_copy(update={"network": network, "name": "overloaded",
                                       "horizon": base.horizon.model_copy(update={"slots": 2})})
    solution, loop, _ = run(scenario, ac=True)
    first_report, _ = loop.cuts.history[0]
    assert first_report.power_flows_failed > 0
    assert solution.info["ac"]["pf_failed_cuts"] > 0
    assert solution.status in ("optimal", "not_converged", "infeasible")
    if solution.status == "optimal":
        assert solution.info["ac"]["final"]["feasible"]
    frame = loop.records_frame()
    assert frame["ac_pf_failed"].dropna().iloc[0] > 0
    assert np.isfinite(frame["ac_violation_pu"].dropna()).all()


def test_cli_ac_flag(capsys: pytest.CaptureFixture[str]) -> None:
    """``gridcosim solve --ac``: the seed case is AC-feasible as it is (0.9-1.1 p.u.).

    Its price responses settle it in one iteration; the incumbent passed the AC check
    (only AC-feasible incumbents count) and the final schedule is checked again.
    """
    assert cli.main(["solve", "ieee123-nmg", "--ac", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "optimal" and out["cuts"]["ac"] == 0
    final = out["ac"]["final"]
    assert final["feasible"] and final["power_flows_failed"] == 0
    assert min(min(v) for v in final["vm_pu"].values()) >= 0.9
