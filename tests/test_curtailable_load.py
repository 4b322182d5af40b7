"""A DER kind added as a plugin: curtailable loads (docs/extending.md).

The kind is three pieces (its model module, its agent module, its schema entry). These
tests check it end to end: scenario files accept it, the decomposition reaches the
monolithic optimum with it, every schedule keeps its contract (checked here with numpy,
from the scenario's data), and a co-simulation records its trajectory with costs that add
up. The curtailment must actually happen in the optimum, or the checks are vacuous.
"""

from __future__ import annotations

import math
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
from feasibility import check_microgrid_schedule, recompute_cost_usd, renewable_forecast

from gridcosim.outputs import read
from gridcosim.outputs.overview import summary_dict
from gridcosim.scenarios.errors import ScenarioError
from gridcosim.scenarios.loader import load_scenario, parse_toml, scenario_from_dict
from gridcosim.scenarios.schema import Scenario
from gridcosim.simulator.cosim import CoSimulation, RunSettings
from gridcosim.simulator.recording import Recorder
from gridcosim.simulator.schedule import MicrogridSchedule, Solution, UnitSchedule
from gridcosim.simulator.solve import solve_scenario
from gridcosim.simulator.status import RunStatus
from gridcosim.simulator.windows import microgrid_window

REL = 1e-6
TOL = 1e-6
#: Two contracts: a cheap one (curtailed whenever the price is high) and a dear one.
CONTRACTS = ({"demand_kw": 80.0, "power_factor": 0.95, "max_curtail_fraction": 0.4,
              "curtail_cost_usd_per_kwh": 0.09},
             {"demand_kw": 50.0, "power_factor": 0.9, "max_curtail_fraction": 1.0,
              "curtail_cost_usd_per_kwh": 0.4})


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    """Seed 000 with a curtailable load in every microgrid."""
    doc = load_scenario("ieee123-nmg").model_dump(mode="json")
    for i, mg in enumerate(doc["microgrids"]):
        mg["curtailable_loads"] = [{"name": f"cl{i}", **CONTRACTS[i % 2]}]
    return scenario_from_dict(doc)


@pytest.fixture(scope="module")
def solutions(scenario: Scenario) -> dict[str, Solution]:
    return {m: solve_scenario(scenario, m) for m in ("monolithic", "decomposition")}


def loads_of(sched: MicrogridSchedule) -> tuple[UnitSchedule, ...]:
    return sched.of_kind("curtailable_load")


def contract_problems(scenario: Scenario, sol: Solution) -> list[str]:
    """Every broken contract, balance or cost in the solution's microgrid schedules."""
    out = []
    for mg in scenario.microgrids:
        sched = next(s for s in sol.microgrids if s.name == mg.name)
        w = microgrid_window(scenario, mg)
        extra_p, extra_q, extra_cost = np.zeros(w.slots), np.zeros(w.slots), 0.0
        for spec, unit in zip(mg.curtailable_loads, loads_of(sched), strict=True):
            demand = spec.demand_kw * np.array(scenario.profiles.load) * 1.0
            served, x = -np.array(unit.p_kw), np.array(unit.curtailed_kw)
            tan = math.tan(math.acos(spec.power_factor))
            if not np.allclose(served + x, demand, atol=TOL):
                out.append(f"{unit.name}: served + curtailed != demand")
            if (x < -TOL).any() or (x > spec.max_curtail_fraction * demand + TOL).any():
                out.append(f"{unit.name}: curtailment outside [0, f D]")
            if not np.allclose(unit.q_kvar, -tan * served, atol=TOL):
                out.append(f"{unit.name}: reactive demand off its power factor")
            extra_p += unit.p_kw
            extra_q += unit.q_kvar
            extra_cost += spec.curtail_cost_usd_per_kwh * x.sum() * w.slot_hours
        # the other kinds' checker sees the curtailable loads as part of the local load
        others = check_microgrid_schedule(
            mg, sched, renewable_forecast(w), w.load_kw - extra_p,
            w.load_kvar - extra_q, w.slot_hours, w.curtailment_cost_usd_per_kwh, w.state)
        out += [p for p in others if "cost" not in p and "curtailment" not in p]
        cost = recompute_cost_usd(mg, sched, w.slot_hours, w.curtailment_cost_usd_per_kwh,
                                  w.state) + extra_cost
        if abs(cost - sched.cost_usd) > REL * max(1.0, cost):
            out.append(f"{mg.name}: cost {sched.cost_usd} but the schedule costs {cost}")
    return out


def parse_scenario(text: str) -> Scenario:
    return scenario_from_dict(parse_toml(text, "test"))


def test_scenario_file_accepts_the_kind_and_checks_its_fields() -> None:
    text = (files("gridcosim.scenarios") / "builtin" / "ieee123-nmg.toml").read_text()
    good = text + ('\n[[microgrids.curtailable_loads]]\nname = "cl"\ndemand_kw = 30.0\n'
                   "max_curtail_fraction = 0.5\ncurtail_cost_usd_per_kwh = 0.1\n")
    assert parse_scenario(good).microgrids[-1].curtailable_loads[0].demand_kw == 30.0
    with pytest.raises(ScenarioError, match="max_curtail_fraction"):
        parse_scenario(good.replace("max_curtail_fraction = 0.5", "max_curtail_fraction = 1.5"))
    with pytest.raises(ScenarioError, match="duplicate unit name"):
        parse_scenario(good.replace('name = "cl"', 'name = "dg7"'))
    with pytest.raises(ScenarioError, match=r"curtailable_loads\[0\].load_class: only applies"):
        parse_scenario(good + 'load_class = "commercial"\n')


def test_decomposition_reaches_the_monolithic_optimum(solutions: dict[str, Solution]) -> None:
    mono, dec = solutions["monolithic"], solutions["decomposition"]
    assert mono.status == dec.status == "optimal"
    assert abs(dec.objective_usd - mono.objective_usd) <= REL * abs(mono.objective_usd)


@pytest.mark.parametrize("method", ["monolithic", "decomposition"])
def test_schedules_keep_contracts_balances_and_costs(
        method: str, scenario: Scenario, solutions: dict[str, Solution]) -> None:
    assert contract_problems(scenario, solutions[method]) == []


def test_the_cheap_contract_is_used_and_the_dear_one_is_not(
        solutions: dict[str, Solution]) -> None:
    """Curtailment at 0.09 $/kWh beats the peak price; at 0.4 $/kWh it never pays."""
    units = [u for s in solutions["monolithic"].microgrids for u in loads_of(s)]
    cheap = sum(sum(u.curtailed_kw) for u in units if int(u.name[2:]) % 2 == 0)
    dear = sum(sum(u.curtailed_kw) for u in units if int(u.name[2:]) % 2 == 1)
    assert cheap > 1.0 and dear < TOL


def test_cosimulation_records_the_kind_and_costs_add_up(scenario: Scenario,
                                                        tmp_path: Path) -> None:
    model = CoSimulation(scenario, RunSettings(horizon=3, commit=3, noise=0.05, seed=3))
    model.recorder = Recorder(tmp_path / "run.h5", model)
    try:
        assert model.run() == RunStatus.FINISHED
    finally:
        model.recorder.close()
    group = read(tmp_path / "run.h5").groups["curtailable_load"]
    p, demand, x = (group[v].to_numpy() for v in ("p_kw", "demand_kw", "curtailed_kw"))
    fractions = np.array([CONTRACTS[i % 2]["max_curtail_fraction"]
                          for i in range(len(scenario.microgrids))])
    assert p.shape == (6, len(scenario.microgrids))
    assert np.allclose(-p, demand - x, atol=1e-9)
    assert (x >= -1e-9).all() and (x <= fractions * demand + 1e-9).all()
    assert x.sum() > 1.0
    agents = [a for mc in model.microgrids for a in mc.ders_of("curtailable_load")]
    assert sum(a.curtailed_kwh for a in agents) == pytest.approx(x.sum(), rel=1e-12)
    load_cost = group["cost_usd"].to_numpy().sum()
    assert load_cost == pytest.approx(
        sum(a.spec.curtail_cost_usd_per_kwh * a.curtailed_kwh for a in agents), rel=1e-12)
    # the microgrids' cost includes the loads' payments; the file's total counts them once
    facts = summary_dict(tmp_path / "run.h5")
    assert facts["cost_included_in"]["curtailable_load"] == "microgrid"
    assert facts["cost_usd"]["total"] == pytest.approx(
        facts["cost_usd"]["microgrid"] + facts["cost_usd"]["substation"], rel=1e-12)
    assert facts["cost_usd"]["microgrid"] == pytest.approx(
        sum(mc.total_cost_usd for mc in model.microgrids), rel=1e-12)
