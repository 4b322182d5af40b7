"""A battery: stored energy carried from slot to slot; it covers others' shortfalls.

It runs its planned net output as far as its stored energy allows, then discharges more
(or charges less) to cover what the microgrid's renewables fall short by, within its
power and energy limits.
"""

from __future__ import annotations

import mesa

from gridcosim.agents.base import Output, Record, Timing
from gridcosim.agents.der_agent import DerAgent, Shortfall
from gridcosim.scenarios.schema import Storage
from gridcosim.simulator.schedule import UnitSchedule


class StorageAgent(DerAgent):
    """A battery: stored energy carried from slot to slot."""

    KIND = "storage"
    STATE = ("e_kwh", "p_kw", "throughput_kwh")
    RECORDS = (Record("storage", "a battery (unit name)", (
        Output("p_kw", "kW", "net output", "discharge positive"),
        Output("e_kwh", "kWh", "stored energy", timing=Timing.END, initial=True),
    ), cost_in="microgrid"),)

    def __init__(self, model: mesa.Model, spec: Storage):
        super().__init__(model, spec)
        self.e_kwh = spec.e_initial_kwh
        self.throughput_kwh = 0.0

    def window_state(self) -> dict[str, float]:
        """The stored energy."""
        return {"e_kwh": float(self.e_kwh)}

    def max_discharge_kw(self, slot_hours: float) -> float:
        """Largest net discharge possible in the next slot (power and energy limits)."""
        s = self.spec
        by_energy = max(0.0, self.e_kwh - s.e_min_kwh) * s.eta_discharge / slot_hours
        return min(s.p_discharge_max_kw, by_energy)

    def energy_after(self, p_kw: float, slot_hours: float) -> float:
        """Energy after one slot at net output ``p_kw`` (discharge positive)."""
        s = self.spec
        if p_kw >= 0:
            return self.e_kwh - p_kw * slot_hours / s.eta_discharge
        return self.e_kwh - p_kw * s.eta_charge * slot_hours

    def dispatch(self, plan: UnitSchedule, k: int) -> Shortfall:
        """The planned net output, capped by what the stored energy allows.

        Earlier covers of the same plan leave less energy than planned; the cap is a
        shortfall of this unit.
        """
        limit = self.max_discharge_kw(self.model.series.slot_hours)
        self.p_kw = min(plan.p_kw[k], limit)
        return Shortfall(plan.p_kw[k] - self.p_kw)

    def absorb(self, shortfall_kw: float, slot_hours: float) -> float:
        """Discharge more (or charge less), up to the limit; return what is left."""
        extra = min(shortfall_kw, max(0.0, self.max_discharge_kw(slot_hours) - self.p_kw))
        self.p_kw += extra
        return shortfall_kw - extra

    def settle(self, slot_hours: float) -> float:
        """Update the stored energy (kept within its limits)."""
        self.e_kwh = min(max(self.energy_after(self.p_kw, slot_hours), self.spec.e_min_kwh),
                         self.spec.e_max_kwh)
        self.throughput_kwh += abs(self.p_kw) * slot_hours
        return 0.0
