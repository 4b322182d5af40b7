"""The distribution system operator (DSO) agent.

The DSO owns the network (topology, impedances, bus loads, SVCs, limits) and runs the
decomposition's master side; it checks every planned window with AC power flows
(pandapower) and, if asked, adds AC feasibility cuts until the plan is AC-feasible. It
talks to the microgrid controllers only through the engine's pool of responders and its
messages: it does not import the microgrid or DER agent modules and never holds a
microgrid's units.
"""

from __future__ import annotations

from dataclasses import dataclass

import mesa

from gridcosim.agents.base import GridAgent
from gridcosim.scenarios.network import NetworkData
from gridcosim.scenarios.schema import Scenario
from gridcosim.scenarios.series import ScenarioSeries
from gridcosim.simulator.decomposition.controller_pool import ResponderPool
from gridcosim.simulator.decomposition.loop import Decomposition, NetworkModels
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.simulator.schedule import NetworkSchedule, Solution
from gridcosim.simulator.validation.ac_cuts import ACCutGenerator, window_validator
from gridcosim.simulator.validation.ac_loop import ACDecomposition
from gridcosim.simulator.validation.results import ValidationReport
from gridcosim.simulator.validation.validator import NetworkValidator
from gridcosim.simulator.warm_basis import WarmBasis
from gridcosim.simulator.windows import network_window


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


class DSOAgent(GridAgent):
    """Coordinates each window with the microgrid controllers and keeps the network plan."""

    STATE = ("cost_usd", "warm_start")
    state_key = "dso"

    def __init__(self, model: mesa.Model, scenario: Scenario, network: NetworkData,
                 series: ScenarioSeries, settings: DecompositionSettings, ac_cuts: bool = False):
        super().__init__(model)
        # the DSO keeps the scenario without its microgrids: their units are private
        self._scenario = scenario.model_copy(update={"microgrids": ()})
        self._network, self._series = network, series
        self._settings, self._ac_cuts = settings, ac_cuts
        self._validator: NetworkValidator | None = None
        self._models: NetworkModels | None = None
        self.ac_report: ValidationReport | None = None
        self.plan: NetworkSchedule | None = None
        self.plan_start = 0
        self.reports: list[WindowReport] = []
        self.cost_usd = 0.0
        #: The network LPs' starting basis for the next window (compressed text: part of
        #: the checkpoint, so a resumed run starts its LPs where this run would have).
        self.warm_start = ""

    @property
    def bus_ids(self) -> tuple[int, ...]:
        """Bus ids of the DSO's network (for recording voltages)."""
        return self._network.bus_ids

    def coordinate(self, pool: ResponderPool, start: int, slots: int) -> Solution:
        """Run the decomposition over ``slots`` slots from ``start``; keep the network plan."""
        window = network_window(self._scenario, self._network, pool.bounds(), start, slots,
                                self._series)
        if self._validator is None:  # the pandapower feeder is built once per run
            self._validator = window_validator(window)
        self._validator.reset()
        cuts = ACCutGenerator(self._validator, window)
        basis = WarmBasis.from_text(self.warm_start) if self.warm_start else None
        engine = (ACDecomposition(window, pool, self._settings, cuts, self._models, basis)
                  if self._ac_cuts else
                  Decomposition(window, pool, self._settings, models=self._models, basis=basis))
        self._models = engine.models  # re-loaded by the next window of the same length
        solution = engine.run()
        final = engine.models.final_basis()  # the next window starts from it
        self.warm_start = "" if final is None else final.to_text()
        self.plan, self.plan_start = solution.network, start
        self.ac_report = self._check(cuts, solution)
        info = solution.info
        self.reports.append(WindowReport(
            start, slots, solution.status, info.get("iterations", 0), info.get("cuts", {}),
            info.get("lower_bound_usd", float("nan")), solution.objective_usd, solution.wall_s,
            info.get("gap", float("inf")), tuple(info.get("infeasible_microgrids", ()))))
        return solution

    @staticmethod
    def _check(cuts: ACCutGenerator, solution: Solution) -> ValidationReport | None:
        """AC power flows of the planned schedule (recorded as ``bus/vm_pu``)."""
        if solution.network is None:
            return None
        return cuts.check(solution.network, solution.exchanges)

    def commit(self, slot: int, load_deviation_kw: float, load_deviation_kvar: float,
               exchange_deviation_kw: float, exchange_deviation_kvar: float
               ) -> tuple[float, float, float]:
        """Realise slot ``slot``: the substation absorbs every deviation.

        Returns the substation's (P, Q, cost). SVCs and curtailment run as planned; in the
        lossless LinDistFlow balance the deviations pass straight to the substation.
        """
        k = slot - self.plan_start
        p_sub = self.plan.p_sub_kw[k] + load_deviation_kw - exchange_deviation_kw
        q_sub = self.plan.q_sub_kvar[k] + load_deviation_kvar - exchange_deviation_kvar
        price = float(self._series.price_usd_per_kwh.iloc[slot])
        curtail = sum(v[k] for v in self.plan.curtail_kw.values())
        cost = (price * p_sub + self._scenario.curtailment_cost_usd_per_kwh * curtail) * (
            self._scenario.horizon.slot_hours)
        self.cost_usd += cost
        return p_sub, q_sub, cost
