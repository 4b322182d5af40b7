"""A curtailable load: serves its realised demand less the planned curtailment.

Its realised demand is the forecast with the run's noise. It keeps the plan's curtailment
in kW, so a demand above the forecast is a shortfall of the unit (it draws more than
planned), one below it a surplus. When others fall short it curtails more, up to its
contracted share of the realised demand, paying the contract price for every kWh.
"""

from __future__ import annotations

import math

import mesa

from gridcosim.agents.base import Output, Record
from gridcosim.agents.der_agent import DerAgent, Shortfall
from gridcosim.scenarios.schema import CurtailableLoad
from gridcosim.simulator.schedule import UnitSchedule


class CurtailableLoadAgent(DerAgent):
    """A load with an interruptible-supply contract."""

    KIND = "curtailable_load"
    STATE = ("p_kw", "q_kvar", "demand_kw", "curtailed_kw", "cost_usd", "curtailed_kwh")
    RECORDS = (Record("curtailable_load", "a curtailable load (unit name)", (
        Output("p_kw", "kW", "active injection (minus the served demand)",
               "injection into the microgrid positive"),
        Output("q_kvar", "kvar", "reactive injection", "injection positive"),
        Output("demand_kw", "kW", "realised demand (forecast with noise)"),
        Output("curtailed_kw", "kW", "curtailed demand"),
        Output("cost_usd", "USD", "curtailment payment of the slot"),
    ), cost_in="microgrid"),)

    def __init__(self, model: mesa.Model, spec: CurtailableLoad):
        super().__init__(model, spec)
        self.demand_kw = 0.0
        self.curtailed_kw = 0.0
        self.cost_usd = 0.0
        self.curtailed_kwh = 0.0
        self._tan = math.tan(math.acos(spec.power_factor))

    def observe(self, slot: int) -> None:
        """Draw the realised demand: forecast × (1 + noise·N(0,1)), at least 0."""
        forecast = float(self.forecast(self.model.series, slot, 1)[0])
        noise = self.model.settings.noise
        factor = 1.0 + noise * self.model.rng.standard_normal() if noise > 0 else 1.0
        self.demand_kw = max(0.0, forecast * factor)

    def dispatch(self, plan: UnitSchedule, k: int) -> Shortfall:
        """The planned curtailment (within the contract), the rest of the demand served."""
        self.curtailed_kw = min(plan.curtailed_kw[k], self._limit_kw())
        self._serve()
        return Shortfall(plan.p_kw[k] - self.p_kw)

    def absorb(self, shortfall_kw: float, slot_hours: float) -> float:
        """Curtail more, up to the contracted share, to cover others' shortfall."""
        extra = min(shortfall_kw, max(0.0, self._limit_kw() - self.curtailed_kw))
        self.curtailed_kw += extra
        self._serve()
        return shortfall_kw - extra

    def settle(self, slot_hours: float) -> float:
        """Pay the contract price for the curtailed energy."""
        self.cost_usd = self.spec.curtail_cost_usd_per_kwh * self.curtailed_kw * slot_hours
        self.curtailed_kwh += self.curtailed_kw * slot_hours
        return self.cost_usd

    def _limit_kw(self) -> float:
        return self.spec.max_curtail_fraction * self.demand_kw

    def _serve(self) -> None:
        served = self.demand_kw - self.curtailed_kw
        self.p_kw, self.q_kvar = -served, -self._tan * served
