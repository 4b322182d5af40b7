"""Distributed energy resources inside a microgrid: generator, renewable, storage.

Each DER agent owns its unit data and its state (on/off and last output, stored energy,
cumulative cost and energy). Its microgrid controller reads the state to build the next
window's initial condition and writes the committed set-points back.
"""

from __future__ import annotations

import mesa

from gridcosim.agents.base import GridAgent
from gridcosim.scenarios.schema import Generator, Renewable, Storage


class GeneratorAgent(GridAgent):
    """A dispatchable generator with commitment state."""

    STATE = ("on", "p_kw", "q_kvar", "cost_usd", "energy_kwh", "starts", "last_cost_usd")

    def __init__(self, model: mesa.Model, spec: Generator):
        super().__init__(model)
        self.spec = spec
        self.on = spec.initial_on
        self.p_kw = spec.initial_p_kw
        self.q_kvar = 0.0
        self.cost_usd = 0.0
        self.energy_kwh = 0.0
        self.starts = 0
        self.last_cost_usd = 0.0

    @property
    def state_key(self) -> str:
        """``generator:<unit name>``."""
        return f"generator:{self.spec.name}"

    def commit(self, on: bool, p_kw: float, q_kvar: float, slot_hours: float) -> float:
        """Apply one slot's set-point; return the slot's cost (energy and start-up)."""
        started = on and not self.on
        cost = self.spec.cost_usd_per_kwh * p_kw * slot_hours
        cost += self.spec.startup_cost_usd if started else 0.0
        self.starts += int(started)
        self.on, self.p_kw, self.q_kvar = on, p_kw, q_kvar
        self.cost_usd += cost
        self.last_cost_usd = cost
        self.energy_kwh += p_kw * slot_hours
        return cost


class RenewableAgent(GridAgent):
    """A renewable unit: forecast from the scenario, realised value with seeded noise."""

    STATE = ("p_kw", "q_kvar", "available_kw", "energy_kwh")

    def __init__(self, model: mesa.Model, spec: Renewable):
        super().__init__(model)
        self.spec = spec
        self.p_kw = 0.0
        self.q_kvar = 0.0
        self.available_kw = 0.0
        self.energy_kwh = 0.0

    @property
    def state_key(self) -> str:
        """``renewable:<unit name>``."""
        return f"renewable:{self.spec.name}"

    def observe(self, forecast_kw: float, noise: float) -> float:
        """Draw the realised availability of the slot (forecast × (1 + noise·N(0,1)), ≥ 0)."""
        factor = 1.0 + noise * self.model.rng.standard_normal() if noise > 0 else 1.0
        self.available_kw = max(0.0, forecast_kw * factor)
        return self.available_kw

    def commit(self, p_kw: float, q_kvar: float, slot_hours: float) -> None:
        """Apply one slot's output."""
        self.p_kw, self.q_kvar = p_kw, q_kvar
        self.energy_kwh += p_kw * slot_hours


class StorageAgent(GridAgent):
    """A battery: stored energy carried from slot to slot."""

    STATE = ("e_kwh", "p_kw", "throughput_kwh")

    def __init__(self, model: mesa.Model, spec: Storage):
        super().__init__(model)
        self.spec = spec
        self.e_kwh = spec.e_initial_kwh
        self.p_kw = 0.0
        self.throughput_kwh = 0.0

    @property
    def state_key(self) -> str:
        """``storage:<unit name>``."""
        return f"storage:{self.spec.name}"

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

    def commit(self, p_kw: float, slot_hours: float) -> None:
        """Apply one slot's net output (discharge positive) and update the energy."""
        self.e_kwh = min(max(self.energy_after(p_kw, slot_hours), self.spec.e_min_kwh),
                         self.spec.e_max_kwh)
        self.p_kw = p_kw
        self.throughput_kwh += abs(p_kw) * slot_hours
