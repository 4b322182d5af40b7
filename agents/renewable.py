"""A renewable unit: forecast, realised availability, the plan's output capped by it.

The forecast is the unit's nominal output times its kind's profile; the realised
availability is drawn with the run's noise.
A curtailed output keeps its planned power factor, so the reactive output falls with it.
"""

from __future__ import annotations

import mesa

from gridcosim.agents.base import Output, Record
from gridcosim.agents.der_agent import DerAgent, Shortfall
from gridcosim.scenarios.schema import Renewable
from gridcosim.simulator.schedule import UnitSchedule


class RenewableAgent(DerAgent):
    """A renewable unit: forecast from the scenario, realised value with seeded noise."""

    KIND = "renewable"
    STATE = ("p_kw", "q_kvar", "available_kw", "energy_kwh")
    RECORDS = (Record("renewable", "a renewable unit (unit name)", (
        Output("p_kw", "kW", "active output", "injection into the microgrid positive"),
        Output("q_kvar", "kvar", "reactive output", "injection positive"),
        Output("available_kw", "kW", "realised availability (forecast with noise)"),
    ), cost_in="microgrid"),)

    def __init__(self, model: mesa.Model, spec: Renewable):
        super().__init__(model, spec)
        self.available_kw = 0.0
        self.energy_kwh = 0.0

    def observe(self, slot: int) -> None:
        """Draw the realised availability: forecast × (1 + noise·N(0,1)), at least 0."""
        forecast = float(self.forecast(self.model.series, slot, 1)[0])
        noise = self.model.settings.noise
        factor = 1.0 + noise * self.model.rng.standard_normal() if noise > 0 else 1.0
        self.available_kw = max(0.0, forecast * factor)

    def dispatch(self, plan: UnitSchedule, k: int) -> Shortfall:
        """The plan's output, or what is available; the shortfall is returned."""
        planned_p, planned_q = plan.p_kw[k], plan.q_kvar[k]
        self.p_kw = min(planned_p, self.available_kw)
        self.q_kvar = planned_q if planned_p == 0 else planned_q * self.p_kw / planned_p
        return Shortfall(planned_p - self.p_kw)

    def settle(self, slot_hours: float) -> float:
        """Count the energy; the output costs nothing."""
        self.energy_kwh += self.p_kw * slot_hours
        return 0.0
