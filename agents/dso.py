"""The distribution system operator (DSO) agent.

The DSO owns the network (topology, impedances, bus loads, SVCs, limits) and runs the
decomposition's master side; it checks each planned slot that runs with an AC power flow
(recorded as ``bus/vm_pu``) and, if asked, adds AC feasibility cuts until every slot of
the plan is AC-feasible. It
talks to the microgrid controllers only through the engine's pool of responders and its
messages: it does not import the microgrid or DER agent modules and never holds a
microgrid's units.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import mesa
import numpy as np

from gridcosim.agents.base import GridAgent, Output, Record
from gridcosim.scenarios.network import NetworkData
from gridcosim.scenarios.schema import Scenario
from gridcosim.scenarios.series import ScenarioSeries
from gridcosim.simulator.decomposition.controller_pool import ResponderPool
from gridcosim.simulator.decomposition.iteration_records import IterationRecord
from gridcosim.simulator.decomposition.loop import Decomposition
from gridcosim.simulator.decomposition.network_models import NetworkModels
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.simulator.decomposition.settlement_prices import settlement_prices
from gridcosim.simulator.models.lindistflow_model import NetworkWindow, network_nodes
from gridcosim.simulator.schedule import NetworkSchedule, Solution
from gridcosim.simulator.validation.ac_cuts import ACCutGenerator
from gridcosim.simulator.validation.ac_loop import ACDecomposition, cut_generator, network_validator
from gridcosim.simulator.validation.phase_cuts import PhaseCutGenerator, PhaseValidator
from gridcosim.simulator.validation.realised_flow import RealisedPowerFlow, RealisedSlot
from gridcosim.simulator.validation.results import ValidationReport
from gridcosim.simulator.validation.validator import NetworkValidator
from gridcosim.simulator.warm_basis import WarmBasis
from gridcosim.simulator.windows import RunLoads, network_window


@dataclass(frozen=True)
class WindowReport:
    """What the DSO keeps of one coordinated window.

    Attributes:
        start: First slot.
        slots: Window length.
        status: ``optimal``, ``not_converged`` or ``infeasible``.
        iterations: Master solves.
        cuts: Cuts added, by family.
        lower_bound_usd: The master's bound (NaN without one).
        cost_usd: Cost of the schedule settled on (NaN without one).
        gap: Relative gap between them (infinite without a bound).
        wall_s: Time spent.
        infeasible_microgrids: Microgrids that reported they can run nothing.
        records: The decomposition's record of each master solve (bounds, gap, cuts,
            times); empty for a market day.

    """

    start: int
    slots: int
    status: str
    iterations: int
    cuts: dict[str, int]
    lower_bound_usd: float
    cost_usd: float
    wall_s: float
    gap: float = float("inf")
    infeasible_microgrids: tuple[str, ...] = ()
    records: tuple[IterationRecord, ...] = ()


class DSOAgent(GridAgent):
    """Coordinates each window with the microgrid controllers and keeps the network plan.

    It owns the substation's state (realised import, cost) and records the substation,
    the bus voltages (LinDistFlow plan and AC power flow) and the SVCs.
    """

    STATE = ("total_cost_usd", "warm_start")
    RECORDS = (
        Record("substation", "the substation at the root bus", (
            Output("p_kw", "kW", "realised active import: the AC power flow of the realised "
                   "slot (losses included); the lossless estimate where it failed",
                   "import from the grid positive"),
            Output("q_kvar", "kvar", "realised reactive import (as p_kw)", "import positive"),
            Output("p_plan_kw", "kW", "planned active import (lossless plan)", "import positive"),
            Output("losses_kw", "kW", "AC losses of the realised slot (NaN: power flow failed)"),
            Output("realised_converged", "1", "1 the realised slot's AC power flow converged, "
                   "0 not"),
            Output("price_usd_per_kwh", "USD/kWh", "utility energy price"),
            Output("cost_usd", "USD", "the slot's realised import at its price, plus bus-load "
                   "curtailment"),
            Output("ac_losses_kw", "kW", "AC losses of the planned slot (NaN: no AC result)"),
            Output("max_abs_vm_gap_pu", "1", "largest |LinDistFlow − AC| voltage of the slot"),
            Output("ac_converged", "1", "1 the AC power flow converged, 0 not, NaN not run"),
        )),
        Record("bus", "a bus of the feeder (bus id; ``bus.phase`` on a three-phase feeder)", (
            Output("vm_lin_pu", "1", "planned voltage magnitude (LinDistFlow)"),
            Output("vm_pu", "1", "AC voltage magnitude of the plan (NaN if not converged)"),
            Output("vm_real_pu", "1", "AC voltage magnitude of the realised slot "
                   "(NaN if not converged)"),
        )),
        Record("svc", "a static var compensator (svc<bus>)", (
            Output("q_kvar", "kvar", "planned reactive output", "injection positive"),
        )),
    )
    state_key = "dso"

    def __init__(self, model: mesa.Model, scenario: Scenario, network: NetworkData,
                 series: ScenarioSeries, settings: DecompositionSettings, ac_cuts: bool = False):
        super().__init__(model)
        # the DSO keeps the scenario without its microgrids: their units are private
        self._scenario = scenario.model_copy(update={"microgrids": ()})
        self._network, self._series = network, series
        self._run_loads: RunLoads | None = None  # the bus loads, cut once per run
        self._settings, self._ac_cuts = settings, ac_cuts
        self._validator: NetworkValidator | PhaseValidator | None = None
        self._realised_flow: RealisedPowerFlow | None = None
        self.realised: RealisedSlot | None = None
        self._models: NetworkModels | None = None
        #: the plan's AC check: its cut generator and solution, checked slot by slot when a
        #: slot is recorded (a window's other slots are planned again before they run)
        self._planned: tuple[ACCutGenerator | PhaseCutGenerator, Solution] | None = None
        self._ac_reports: dict[int, ValidationReport] = {}
        self.plan: NetworkSchedule | None = None
        self.plan_start = 0
        self.reports: list[WindowReport] = []
        self.total_cost_usd = 0.0
        self.substation = SubstationSlot(0, 0.0, 0.0, 0.0, 0.0)
        #: The network LPs' starting basis for the next window (compressed text: part of
        #: the checkpoint, so a resumed run starts its LPs where this run would have).
        self.warm_start = ""

    @property
    def bus_ids(self) -> tuple[int, ...] | tuple[str, ...]:
        """What voltages are recorded for: bus ids, or ``"bus.phase"`` nodes (three-phase)."""
        return tuple(network_nodes(self._network))

    # ---------------------------------------------------------------- coordination
    def replan_due(self, slot: int, commit: int) -> bool:
        """Whether slot ``slot`` starts a window (every ``commit`` slots)."""
        return self.plan is None or (slot - self.plan_start) % commit == 0

    def coordinate(self, pool: ResponderPool, start: int, slots: int) -> Solution:
        """Run the decomposition over ``slots`` slots from ``start``; keep the network plan.

        The solution carries, for each microgrid, the nodal prices its adopted exchange is
        settled at (``Solution.prices``: one
        :class:`~gridcosim.simulator.messages.SettlementPrices` message each, sent with the
        awards). They are read after the next window's starting basis was taken,
        so pricing changes nothing the next window solves.
        """
        if self._run_loads is None:
            self._run_loads = RunLoads.of(self._scenario, self._network, self._series)
        window = network_window(self._scenario, self._network, pool.bounds(), start, slots,
                                self._series, self._run_loads)
        if self._validator is None:  # the AC feeder is built once per run
            engine = self._scenario.network.ac_engine
            self._validator = network_validator(window, engine)
            self._realised_flow = RealisedPowerFlow(window, engine, like=self._validator)
        self._validator.reset()
        cuts = cut_generator(window, validator=self._validator)
        engine = self._engine(window, pool, cuts)
        self._models = engine.models  # re-loaded by the next window of the same length
        solution = engine.run()
        final = engine.models.final_basis()  # the next window starts from it
        self.warm_start = "" if final is None else final.to_text()
        if solution.network is not None:
            solution = replace(solution, prices=settlement_prices(
                engine.evaluator, solution.exchanges, start, window.slot_hours))
        self.plan, self.plan_start = solution.network, start
        self._planned = (cuts, solution) if solution.network is not None else None
        self._ac_reports = {}
        self.reports.append(window_report(start, slots, solution, tuple(engine.records)))
        return solution

    def _engine(self, window: NetworkWindow, pool: ResponderPool,
                cuts: ACCutGenerator | PhaseCutGenerator) -> Decomposition:
        """The window's decomposition (with AC cuts if asked), from the kept basis."""
        basis = WarmBasis.from_text(self.warm_start) if self.warm_start else None
        if self._ac_cuts:
            return ACDecomposition(window, pool, self._settings, cuts, self._models, basis)
        return Decomposition(window, pool, self._settings, models=self._models, basis=basis)

    def planned_ac_report(self, k: int) -> ValidationReport | None:
        """The AC power flow of the plan's slot ``k`` (``None``: no plan), run once.

        Run when the slot is recorded: a window's later slots are planned again, by the
        next window, before they run, and their AC results would never be read.
        """
        if self._planned is None:
            return None
        if k not in self._ac_reports:
            cuts, solution = self._planned
            self._ac_reports[k] = cuts.check(solution.network, solution.exchanges, (k,))
        return self._ac_reports[k]

    def curtailment_kw(self, bus: int) -> tuple[float, ...]:
        """The plan's curtailment of a bus's load per slot (empty: none)."""
        return self.plan.curtail_kw.get(bus, ()) if self.plan is not None else ()

    # ---------------------------------------------------------------- a slot
    def commit(self, slot: int, load_deviation: tuple[float, float] = (0.0, 0.0),
               exchange_deviation: tuple[float, float] = (0.0, 0.0), *,
               served_kw: Mapping[int, tuple[float, float]] | None = None,
               exchanges: Mapping[str, tuple[float, float]] | None = None) -> None:
        """Realise slot ``slot``: the AC power flow of what the meters saw, then the bill.

        SVCs and curtailment run as planned. With the realised state (``served_kw`` per
        bus, ``exchanges`` per microgrid) the DSO runs its AC power flow: the substation
        import is that power flow's, losses included. Without it, or where it fails, the
        import is the lossless estimate: the plan's plus every deviation (kW, kvar).
        """
        k = slot - self.plan_start
        p_sub = self.plan.p_sub_kw[k] + load_deviation[0] - exchange_deviation[0]
        q_sub = self.plan.q_sub_kvar[k] + load_deviation[1] - exchange_deviation[1]
        self.realised = None
        if served_kw is not None and exchanges is not None and self._realised_flow is not None:
            svc = tuple(q[k] for q in self.plan.q_svc_kvar)
            self.realised = self._realised_flow.solve(slot, served_kw, exchanges, svc)
            if self.realised.converged:
                p_sub, q_sub = self.realised.p_sub_kw, self.realised.q_sub_kvar
        price = float(self._series.price_usd_per_kwh.iloc[slot])
        curtail = sum(v[k] for v in self.plan.curtail_kw.values())
        cost = (price * p_sub + self._scenario.curtailment_cost_usd_per_kwh * curtail) * (
            self._scenario.horizon.slot_hours)
        self.total_cost_usd += cost
        self.substation = SubstationSlot(slot, p_sub, q_sub, price, cost)

    # ---------------------------------------------------------------- outputs
    def record_ids(self, record: Record) -> list[str]:
        """``substation``; the bus ids; ``svc<bus>`` of every SVC."""
        if record.kind == "bus":
            return [str(b) for b in self.bus_ids]
        if record.kind == "svc":
            return [f"svc{s.bus}" for s in self._scenario.svcs]
        return ["substation"]

    def record_values(self, record: Record, *, initial: bool = False) -> dict[str, list[float]]:
        """The last committed slot's values of the record's kind."""
        k = self.substation.slot - self.plan_start
        if record.kind == "svc":
            return {"q_kvar": [q[k] for q in self.plan.q_svc_kvar]}
        ac = self._ac_values(k)
        real = self.realised
        nan = float("nan")
        if record.kind == "bus":
            return {"vm_lin_pu": [self.plan.vm_pu[b][k] for b in self.bus_ids],
                    "vm_pu": ac["vm_pu"],
                    "vm_real_pu": [nan] * len(self.bus_ids) if real is None
                    else real.vm_pu.tolist()}
        sub = self.substation
        return {"p_kw": [sub.p_kw], "q_kvar": [sub.q_kvar],
                "p_plan_kw": [self.plan.p_sub_kw[k]],
                "losses_kw": [nan if real is None else real.losses_kw],
                "realised_converged": [nan if real is None else float(real.converged)],
                "price_usd_per_kwh": [sub.price_usd_per_kwh], "cost_usd": [sub.cost_usd],
                "ac_losses_kw": [ac["losses"]], "max_abs_vm_gap_pu": [ac["gap"]],
                "ac_converged": [ac["converged"]]}

    def _in_bus_order(self, ids: Sequence[int | str], values: np.ndarray) -> np.ndarray:
        """Per-bus values given in ``ids`` order, in the DSO's bus order."""
        if tuple(ids) == tuple(self.bus_ids):
            return values
        where = {b: n for n, b in enumerate(ids)}
        return values[[where[b] for b in self.bus_ids]]

    def _ac_values(self, k: int) -> dict[str, Any]:
        nan = float("nan")
        report = self.planned_ac_report(k)
        result = None if report is None else report.slots[0]
        out: dict[str, Any] = {"vm_pu": [nan] * len(self.bus_ids), "losses": nan, "gap": nan,
                               "converged": nan if result is None else float(result.ok)}
        if result is not None and result.ok:
            out["vm_pu"] = self._in_bus_order(report.bus_ids, result.vm_pu).tolist()
            out["losses"], out["gap"] = result.losses_kw, report.vm_gap_pu(0)
        return out


@dataclass(frozen=True)
class SubstationSlot:
    """The substation in the last committed slot."""

    slot: int
    p_kw: float
    q_kvar: float
    price_usd_per_kwh: float
    cost_usd: float


def window_report(start: int, slots: int, solution: Solution,
                  records: tuple[IterationRecord, ...] = ()) -> WindowReport:
    """What the DSO keeps of a coordinated window (with its iteration records)."""
    info = solution.info
    return WindowReport(
        start, slots, solution.status, info.get("iterations", 0), info.get("cuts", {}),
        info.get("lower_bound_usd", float("nan")), solution.objective_usd, solution.wall_s,
        info.get("gap", float("inf")), tuple(info.get("infeasible_microgrids", ())), records)
