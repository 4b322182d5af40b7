"""A dispatchable generator: commitment state, start-ups, cost.

It runs its planned set-point (commitment, P, Q); a start-up is charged at every off→on
transition, the initial state counting as the slot before the first.
"""

from __future__ import annotations

import mesa

from gridcosim.agents.base import Output, Record
from gridcosim.agents.der_agent import DerAgent, Shortfall
from gridcosim.scenarios.schema import Generator
from gridcosim.simulator.schedule import UnitSchedule


class GeneratorAgent(DerAgent):
    """A dispatchable generator with commitment state."""

    KIND = "generator"
    STATE = ("on", "p_kw", "q_kvar", "cost_usd", "total_cost_usd", "energy_kwh", "starts")
    RECORDS = (Record("generator", "a dispatchable generator (unit name)", (
        Output("p_kw", "kW", "active output", "injection into the microgrid positive",
               initial=True),
        Output("q_kvar", "kvar", "reactive output", "injection positive"),
        Output("on", "1", "commitment (1 on, 0 off)", initial=True),
        Output("cost_usd", "USD", "energy and start-up cost of the slot"),
    ), cost_in="microgrid"),)

    def __init__(self, model: mesa.Model, spec: Generator):
        super().__init__(model, spec)
        self.on = spec.initial_on
        self.p_kw = spec.initial_p_kw
        self.cost_usd = 0.0  # of the last slot
        self.total_cost_usd = 0.0
        self.energy_kwh = 0.0
        self.starts = 0
        self._next_on = self.on

    def window_state(self) -> dict[str, float]:
        """Commitment and output of the last slot."""
        return {"on": float(self.on), "p_kw": float(self.p_kw)}

    def dispatch(self, plan: UnitSchedule, k: int) -> Shortfall:
        """The plan's commitment and output."""
        self._next_on = bool(plan.on[k])
        return super().dispatch(plan, k)

    def settle(self, slot_hours: float) -> float:
        """Energy cost, plus the start-up cost when the unit goes off → on."""
        started = self._next_on and not self.on
        cost = self.spec.cost_usd_per_kwh * self.p_kw * slot_hours
        cost += self.spec.startup_cost_usd if started else 0.0
        self.starts += int(started)
        self.on = self._next_on
        self.cost_usd = cost
        self.total_cost_usd += cost
        self.energy_kwh += self.p_kw * slot_hours
        return cost
