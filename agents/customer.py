"""Customer load classes: residential, industrial, commercial, agricultural.

A customer agent holds its original (forecast) profile and its flexibility band (seed
001: residential ±10 %, the others ±5 %). In the DSO–microgrid case it is a passive load
whose realised consumption differs from the forecast by seeded noise; the flexibility is
what price-based demand response (the market scenario) may use.
"""

from __future__ import annotations

import mesa
import numpy as np

from gridcosim.agents.base import GridAgent

FLEXIBILITY = {"residential": 0.10, "industrial": 0.05, "commercial": 0.05,
               "agricultural": 0.05}


class CustomerAgent(GridAgent):
    """The aggregate customer of one load bus."""

    STATE = ("p_kw", "q_kvar", "energy_kwh")

    def __init__(self, model: mesa.Model, bus: int, customer_class: str,
                 profile_kw: np.ndarray, profile_kvar: np.ndarray):
        super().__init__(model)
        self.bus = bus
        self.customer_class = customer_class
        self.profile_kw = profile_kw
        self.profile_kvar = profile_kvar
        self.flexibility = FLEXIBILITY[customer_class]
        self.p_kw = 0.0
        self.q_kvar = 0.0
        self.energy_kwh = 0.0

    @property
    def state_key(self) -> str:
        """``customer:<bus>``."""
        return f"customer:{self.bus}"

    def observe(self, slot: int, noise: float) -> float:
        """Realised consumption of ``slot`` (forecast × (1 + noise·N(0,1)), ≥ 0)."""
        factor = 1.0 + noise * self.model.rng.standard_normal() if noise > 0 else 1.0
        factor = max(factor, 0.0)
        self.p_kw = float(self.profile_kw[slot]) * factor
        self.q_kvar = float(self.profile_kvar[slot]) * factor
        return self.p_kw

    def commit(self, curtail_kw: float, slot_hours: float) -> None:
        """Record the energy served after the DSO's curtailment."""
        served = max(self.p_kw - curtail_kw, 0.0)
        if self.p_kw > 0:
            self.q_kvar *= served / self.p_kw
        self.p_kw = served
        self.energy_kwh += served * slot_hours
