"""The distribution system operator (DSO) agent.

The DSO owns the network (topology, impedances, bus loads, SVCs, limits) and runs the
decomposition's master side. It talks to the microgrid controllers only through the
engine's pool of responders and its messages: it does not import the microgrid or DER
agent modules and never holds a microgrid's units.
"""

from __future__ import annotations

from dataclasses import dataclass

import mesa

from scenarios.network import NetworkData
from scenarios.schema import Scenario
from scenarios.series import ScenarioSeries
from simulator.decomposition.loop import Decomposition, Validator
from simulator.decomposition.pool import ResponderPool
from simulator.decomposition.settings import DecompositionSettings
from simulator.schedule import NetworkSchedule, Solution
from simulator.windows import network_window


@dataclass(frozen=True)
class WindowReport:
    """What the DSO keeps of one coordinated window."""

    start: int
    slots: int
    status: str
    iterations: int
    cuts: dict[str, int]
    lower_bound_usd: float
    cost_usd: float
    wall_s: float


class DSOAgent(mesa.Agent):
    """Coordinates each window with the microgrid controllers and keeps the network plan."""

    def __init__(self, model: mesa.Model, scenario: Scenario, network: NetworkData,
                 series: ScenarioSeries, settings: DecompositionSettings,
                 validator: Validator | None = None):
        super().__init__(model)
        # the DSO keeps the scenario without its microgrids: their units are private
        self._scenario = scenario.model_copy(update={"microgrids": ()})
        self._network, self._series = network, series
        self._settings, self._validator = settings, validator
        self.plan: NetworkSchedule | None = None
        self.plan_start = 0
        self.reports: list[WindowReport] = []
        self.cost_usd = 0.0

    @property
    def bus_ids(self) -> tuple[int, ...]:
        """Bus ids of the DSO's network (for recording voltages)."""
        return self._network.bus_ids

    def coordinate(self, pool: ResponderPool, start: int, slots: int) -> Solution:
        """Run the decomposition over ``slots`` slots from ``start``; keep the network plan."""
        window = network_window(self._scenario, self._network, pool.bounds(), start, slots,
                                self._series)
        solution = Decomposition(window, pool, self._settings, self._validator).run()
        self.plan, self.plan_start = solution.network, start
        info = solution.info
        self.reports.append(WindowReport(
            start, slots, solution.status, info.get("iterations", 0), info.get("cuts", {}),
            info.get("lower_bound_usd", float("nan")), solution.objective_usd, solution.wall_s))
        return solution

    def commit(self, slot: int, load_deviation_kw: float, exchange_deviation_kw: float
               ) -> tuple[float, float]:
        """Realise slot ``slot``: the substation absorbs every deviation; return (P, cost)."""
        k = slot - self.plan_start
        p_sub = self.plan.p_sub_kw[k] + load_deviation_kw - exchange_deviation_kw
        price = float(self._series.price_usd_per_kwh.iloc[slot])
        curtail = sum(v[k] for v in self.plan.curtail_kw.values())
        cost = (price * p_sub + self._scenario.curtailment_cost_usd_per_kwh * curtail) * (
            self._scenario.horizon.slot_hours)
        self.cost_usd += cost
        return p_sub, cost
