"""The market day of ``tem-eulv`` against another power flow and the centralised optimum.

Reads the session's market runs (``test_market_run.market_runs``: made once).

* **Violations before cuts, none after**, on pandapower's ``runpp_3ph`` (the DSO checks
  with OpenDSS): the day's responded demand from the trajectory, cleared here by merit order
  with no network limit (what the operator's LP gives without cuts), violates the phase-b
  lower limit at every slot the DSO cut and at no neighbouring slot; the adopted clearing
  (DER outputs from the trajectory) keeps every bus-phase within the band at those slots,
  and its voltages agree with the ones the run recorded.
* **Loop = centralised** (seed 001, Proposition 3): with ``cut_model = "lindist3flow"`` the
  adopted cost equals the centralised LinDist3Flow LP's on the same final demand; with the
  default AC cuts the difference is measured and reported.

About 7 s (16 three-phase power flows at ~0.3 s, two centralised LPs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_market_run import (
    DAY,
    V_TOL_PU,
    Facts,
    Runs,
    Trajectory,
    lindist_dict,
    load_frames,
    market_runs,
    read_trajectory,
    run_document,
    scenario_facts,
)

from gridcosim.scenarios.loader import scenario_from_dict
from gridcosim.scenarios.market_schema import CutModel
from gridcosim.scenarios.schema import AcEngine
from gridcosim.simulator.market.centralised import centralised_clearing
from gridcosim.simulator.market.messages import UPSTREAM, SupplyOffer
from gridcosim.simulator.models.lindist3flow import LinDist3Flow
from gridcosim.simulator.validation.phase_engines.base import (
    BalancedInjection,
    PhaseEngine,
    PhaseInjection,
    PhaseOperatingPoint,
)
from gridcosim.simulator.validation.phase_engines.select import phase_engine

LOOP_RTOL = 1e-6
ENGINE_AGREEMENT_PU = 1e-5


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """The shared market runs (made once per session, :func:`market_runs`)."""
    return market_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def facts() -> Facts:
    """The scenario's own numbers."""
    return scenario_facts()


@pytest.fixture(scope="module")
def trajectory(runs: Runs) -> Trajectory:
    return read_trajectory(runs.audited_file)


@pytest.fixture(scope="module")
def engine(facts: Facts) -> PhaseEngine:
    return phase_engine(facts.network, AcEngine.PANDAPOWER)


# ============================================================================ references
def merit_order(offers: Sequence[SupplyOffer], demand_kw: np.ndarray) -> dict[str, np.ndarray]:
    """The cheapest dispatch of each slot's demand with no network limit (no cuts)."""
    out = {o.supplier: np.zeros(len(demand_kw)) for o in offers}
    for t, demand in enumerate(demand_kw):
        left = float(demand)
        for offer in sorted(offers, key=lambda o: o.cost_usd_per_kwh[t]):
            take = min(max(left, 0.0), offer.p_max_kw[t])
            out[offer.supplier][t], left = take, left - take
        assert abs(left) < 1e-9, f"slot {t}: the offers cannot serve {demand} kW"
    return out


def pp_voltages(engine: PhaseEngine, facts: Facts, p: np.ndarray, q: np.ndarray,
                der_kw: Mapping[str, float]) -> pd.Series:
    """|V| per (bus, phase) from runpp_3ph: the loads, the DERs as P-only injections."""
    market = facts.scenario.market
    assert market is not None
    balanced = tuple(BalancedInjection(d.bus, der_kw[d.name], 0.0) for d in market.ders
                     if len(d.phases) > 1)
    single = tuple(PhaseInjection(d.bus, d.phases, der_kw[d.name], 0.0) for d in market.ders
                   if len(d.phases) == 1)
    result = engine.solve(PhaseOperatingPoint(p, q, balanced, single,
                                              facts.scenario.network.v_ref_pu))
    assert result.converged, result.message
    return result.vm_pu


def _lowest(vm: pd.Series) -> tuple[float, str]:
    _, phase = vm.idxmin()
    return float(vm.min()), str(phase)


@pytest.fixture(scope="module")
def no_cut_check(trajectory: Trajectory, facts: Facts, engine: PhaseEngine
                 ) -> dict[int, pd.Series]:
    """runpp_3ph of the no-cut clearing at the cut slots and their neighbours."""
    p, q = load_frames(trajectory, facts.network)
    dispatch = merit_order(facts.offers(), p.sum(axis=1))
    slots = cut_slots(trajectory)
    around = sorted({s + d for s in slots for d in (-1, 0, 1)} & set(range(DAY)))
    return {t: pp_voltages(engine, facts, p[t], q[t], {k: v[t] for k, v in dispatch.items()})
            for t in around}


def cut_slots(trajectory: Trajectory) -> list[int]:
    cuts = trajectory["market/cuts"]["market"].to_numpy()
    return [int(t) for t in np.flatnonzero(cuts > 0)]


# ============================================================================ 2. cuts
def test_no_cut_clearing_violates_phase_b_where_the_dso_cut(
        no_cut_check: dict[int, pd.Series], trajectory: Trajectory,
        record_property: Any) -> None:
    slots = cut_slots(trajectory)
    assert slots, "the DSO made no cut: nothing to check"
    v_min = 0.95
    lowest = {t: _lowest(vm) for t, vm in no_cut_check.items()}
    for t in slots:
        value, phase = lowest[t]
        assert value < v_min and phase == "b", (t, value, phase)
    for t in sorted(set(no_cut_check) - set(slots)):  # not cut: runpp_3ph agrees
        assert lowest[t][0] >= v_min - V_TOL_PU, (t, lowest[t])
    worst = min(lowest[t][0] for t in slots)
    where = min(slots, key=lambda t: lowest[t][0])
    record_property("no_cut_min_phase_b_pu", worst)
    print(f"no-cut clearing, runpp_3ph: lowest phase-b voltage {worst:.4f} p.u. at slot "
          f"{where}; cut slots {slots}")
    assert worst < v_min


def test_no_cut_clearing_is_cheaper_where_the_dso_cut(trajectory: Trajectory,
                                                      facts: Facts) -> None:
    """The cuts bind: the adopted cost is above the unconstrained one exactly at cut slots."""
    p, _ = load_frames(trajectory, facts.network)
    dispatch = merit_order(facts.offers(), p.sum(axis=1))
    cost = facts.cost_per_kwh()
    free = sum(cost[s].to_numpy() * dispatch[s] for s in dispatch) * facts.slot_hours
    adopted = trajectory["market/cost_usd"]["market"].to_numpy()
    slots = cut_slots(trajectory)
    assert np.all(adopted >= free - 1e-9)
    assert np.all(adopted[slots] > free[slots] + 1e-6)
    others = np.setdiff1d(np.arange(DAY), slots)
    np.testing.assert_allclose(adopted[others], free[others], rtol=1e-9, atol=1e-9)


def test_adopted_clearing_is_within_the_band_on_runpp_3ph(
        trajectory: Trajectory, facts: Facts, engine: PhaseEngine) -> None:
    p, q = load_frames(trajectory, facts.network)
    der = trajectory["market_der/p_kw"]
    net = facts.scenario.network
    for t in cut_slots(trajectory):
        vm = pp_voltages(engine, facts, p[t], q[t], der.iloc[t].to_dict())
        assert vm.min() >= net.v_min_pu - V_TOL_PU and vm.max() <= net.v_max_pu + V_TOL_PU, (
            t, _lowest(vm), float(vm.max()))
        for phase in "abc":  # the run's recorded (OpenDSS) voltages agree
            recorded = trajectory[f"phase_bus/vm_{phase}_pu"].iloc[t]
            mine = vm.xs(phase, level="phase").reindex([int(b) for b in recorded.index])
            assert np.nanmax(np.abs(mine.to_numpy() - recorded.to_numpy())) < \
                ENGINE_AGREEMENT_PU, (t, phase)


# ============================================================================ 3. centralised
@pytest.fixture(scope="module")
def lindist(facts: Facts) -> LinDist3Flow:
    return LinDist3Flow(facts.network)


def loop_vs_centralised(trajectory: Trajectory, facts: Facts, lindist: LinDist3Flow
                        ) -> float:
    """Relative excess of the adopted cost over the centralised LP on the final demand."""
    p, q = load_frames(trajectory, facts.network)
    central = centralised_clearing(facts.network, facts.connections(), facts.limits(),
                                   facts.offers(), p, q, facts.slot_hours, lindist=lindist)
    assert central.status == "optimal"
    assert set(central.p_kw) == {d.name for d in facts.scenario.market.ders} | {  # type: ignore
        UPSTREAM}
    adopted = float(trajectory["market/cost_usd"].to_numpy().sum())
    return (adopted - central.cost_usd) / central.cost_usd


def test_lindist3flow_variant_differs_only_in_its_cut_model(facts: Facts) -> None:
    variant = scenario_from_dict(lindist_dict())
    assert variant.market is not None and variant.market.cut_model is CutModel.LINDIST3FLOW
    back = variant.model_copy(update={"market": variant.market.model_copy(
        update={"cut_model": CutModel.AC})})
    assert back == facts.scenario


def test_lindist3flow_loop_equals_centralised(runs: Runs, facts: Facts, lindist: LinDist3Flow,
                                              record_property: Any) -> None:
    assert runs.lindist.code == 0, runs.lindist.stderr
    assert run_document(runs.lindist)["status"] == "finished"
    trajectory = read_trajectory(runs.lindist_file)
    assert trajectory.statuses == ["optimal"]
    assert trajectory["market/cuts"].to_numpy().sum() > 0  # the limits bind
    gap = loop_vs_centralised(trajectory, facts, lindist)
    record_property("lindist3flow_loop_vs_centralised_relative", gap)
    print(f"lindist3flow loop vs centralised: relative cost difference {gap:+.3e}")
    assert abs(gap) <= LOOP_RTOL


def test_ac_loop_against_centralised_is_measured(trajectory: Trajectory, facts: Facts,
                                                 lindist: LinDist3Flow,
                                                 record_property: Any) -> None:
    """With AC cuts the loop is not the LinDist3Flow optimum: the difference is reported."""
    gap = loop_vs_centralised(trajectory, facts, lindist)
    record_property("ac_loop_vs_centralised_relative", gap)
    print(f"AC-cut loop vs centralised LinDist3Flow: relative cost difference {gap:+.4%}")
    assert np.isfinite(gap)
