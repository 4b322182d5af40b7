"""``gridcosim validate``: the AC power flow of one operating point of a scenario.

Without a slot, the nominal point: every bus load at its data-set value times the
scenario's ``load_scale``, microgrid exchanges, SVC and DER outputs at zero. With a slot,
the planned point of that slot: the scenario's horizon solved by the monolithic
reference, its loads net of curtailment, microgrid exchanges and SVC outputs in that slot.
A three-phase network runs on the scenario's three-phase engine (OpenDSS or pandapower's
``runpp_3ph``, docs/formulation.md §6b) and reports every bus-phase; a balanced network
runs on the balanced AC validator and reports phase ``"a"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gridcosim.scenarios.errors import InputError
from gridcosim.scenarios.network import network_for
from gridcosim.scenarios.phase_network import PhaseNetwork
from gridcosim.scenarios.schema import Scenario
from gridcosim.simulator.messages import RestoredExchange
from gridcosim.simulator.models.lindistflow_model import NetworkWindow
from gridcosim.simulator.schedule import Solution
from gridcosim.simulator.validation.operating_point import OperatingPoint, operating_points
from gridcosim.simulator.validation.phase_engines.select import phase_engine, resolve_engine
from gridcosim.simulator.validation.phase_point import phase_point
from gridcosim.simulator.validation.results import PF_OK
from gridcosim.simulator.windows import microgrid_window, network_window, published_bounds


@dataclass(frozen=True)
class PointReport:
    """An AC power flow of one operating point, as ``validate`` reports it."""

    scenario: str
    slot: int | None
    engine: str
    converged: bool
    message: str
    losses_kw: float
    p_sub_kw: float
    q_sub_kvar: float
    buses: tuple[tuple[int, str, float], ...]

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON document (NaN written as ``null`` by the caller's ``finite``)."""
        return {"scenario": self.scenario, "slot": self.slot, "engine": self.engine,
                "converged": self.converged, "message": self.message,
                "losses_kw": self.losses_kw, "p_sub_kw": self.p_sub_kw,
                "q_sub_kvar": self.q_sub_kvar,
                "buses": [{"bus": b, "phase": p, "vm_pu": v} for b, p, v in self.buses]}


def validate_point(scenario: Scenario, slot: int | None = None) -> PointReport:
    """The AC power flow of the nominal point, or of slot ``slot``'s planned point."""
    if slot is not None and not 0 <= slot < scenario.horizon.slots:
        raise InputError(f"--slot {slot}: the scenario has slots 0..{scenario.horizon.slots - 1}")
    window, plan = _window_and_plan(scenario, slot)
    if isinstance(window.network, PhaseNetwork):
        return _phase_report(scenario, slot, window, plan)
    return _balanced_report(scenario, slot, window, plan)


def _window_and_plan(scenario: Scenario, slot: int | None
                     ) -> tuple[NetworkWindow, Solution | None]:
    network = network_for(scenario)
    mg_windows = [microgrid_window(scenario, mg) for mg in scenario.microgrids]
    window = network_window(scenario, network, [published_bounds(w) for w in mg_windows])
    if slot is None:
        return window, None
    from gridcosim.simulator.models.monolithic_model import solve_monolithic

    plan = solve_monolithic(window, mg_windows)
    if plan.network is None:
        raise InputError(f"slot {slot}: the monolithic solve found no schedule ({plan.status})")
    return window, plan


def operating_point(scenario: Scenario, window: NetworkWindow, plan: Solution | None,
                    slot: int | None) -> OperatingPoint:
    """The bus-level point: the nominal one, or slot ``slot`` of the plan."""
    if plan is None:
        net, buses = window.network, list(window.network.bus_ids)
        scale = scenario.network.load_scale
        zeros = (0.0,) * len(window.exchanges)
        return OperatingPoint(0, net.load_p_kw.reindex(buses).to_numpy(float) * scale,
                              net.load_q_kvar.reindex(buses).to_numpy(float) * scale,
                              zeros, zeros, (0.0,) * len(window.svcs))
    exchanges = {mg.name: RestoredExchange(mg.p_ex_kw, mg.q_ex_kvar, mg.cost_usd)
                 for mg in plan.microgrids}
    return operating_points(window, plan.network, exchanges)[slot]  # type: ignore[arg-type]


def _phase_report(scenario: Scenario, slot: int | None, window: NetworkWindow,
                  plan: Solution | None) -> PointReport:
    net: PhaseNetwork = window.network  # type: ignore[assignment]
    choice = resolve_engine(net, scenario.network.ac_engine)
    result = phase_engine(net, choice).solve(
        phase_point(window, operating_point(scenario, window, plan, slot)))
    buses = tuple((int(b), str(p), float(v)) for (b, p), v in result.vm_pu.items())
    return PointReport(scenario.name, slot, result.engine, result.converged, result.message,
                       result.losses_kw, result.p_sub_kw, result.q_sub_kvar, buses)


def _balanced_report(scenario: Scenario, slot: int | None, window: NetworkWindow,
                     plan: Solution | None) -> PointReport:
    from gridcosim.simulator.validation.ac_cuts import window_validator

    validator = window_validator(window)
    result = validator.solve(operating_point(scenario, window, plan, slot))
    ok = result.status == PF_OK
    nan = float("nan")
    vm = result.vm_pu if ok else [nan] * len(validator.bus_ids)
    buses = tuple((int(b), "a", float(v)) for b, v in zip(validator.bus_ids, vm, strict=True))
    return PointReport(scenario.name, slot, "pandapower", ok,
                       "" if ok else "the AC power flow did not converge",
                       result.losses_kw if ok else nan, result.p_sub_kw if ok else nan,
                       result.q_sub_kvar if ok else nan, buses)
