"""Customer load classes: residential, industrial, commercial, agricultural.

A customer agent is the aggregate load of one bus. Its forecast is its nominal load times
its class's profile; each slot it draws its realised consumption with the run's noise
and is served what the DSO does not curtail. Its flexibility band (seed 001: residential
±10 %, the others ±5 %) is what price-based demand response (the market scenario) may use.
"""

from __future__ import annotations

import mesa
import numpy as np

from gridcosim.agents.base import GridAgent, Output, Record
from gridcosim.simulator.windows import load_multiplier

FLEXIBILITY = {"residential": 0.10, "industrial": 0.05, "commercial": 0.05,
               "agricultural": 0.05}


class CustomerAgent(GridAgent):
    """The aggregate customer of one load bus.

    Args:
        model: The co-simulation.
        bus: The load bus.
        customer_class: Its class (the profile it follows).
        nominal_kw: Nominal active load.
        nominal_kvar: Nominal reactive load.
        multiplier: Its forecast multiplier per slot (default: its class's profile times
            ``load_scale``; :func:`simulator.windows.bus_multipliers` gives a bus's).

    """

    STATE = ("p_kw", "q_kvar", "energy_kwh")
    RECORDS = (Record("customer", "the aggregate customer of a load bus (bus id)", (
        Output("p_kw", "kW", "active power served (after the DSO's curtailment)",
               "consumption positive"),
        Output("q_kvar", "kvar", "reactive power served", "consumption positive"),
    )),)

    def __init__(self, model: mesa.Model, bus: int, customer_class: str, nominal_kw: float,
                 nominal_kvar: float, multiplier: np.ndarray | None = None):
        super().__init__(model)
        self.bus = bus
        self.customer_class = customer_class
        self.flexibility = FLEXIBILITY[customer_class]
        span = slice(0, model.series.slots)
        mult = (load_multiplier(model.scenario, model.series, customer_class, span)
                if multiplier is None else np.asarray(multiplier, dtype=float))
        self.profile_kw = nominal_kw * mult
        self.profile_kvar = nominal_kvar * mult
        self.p_kw = 0.0
        self.q_kvar = 0.0
        self.energy_kwh = 0.0
        self._curtail_kw: tuple[float, ...] = ()
        self._curtail_start = 0

    @property
    def state_key(self) -> str:
        """``customer:<bus>``."""
        return f"customer:{self.bus}"

    @property
    def entity_id(self) -> str:
        """The bus id."""
        return str(self.bus)

    def decide(self, curtail_kw: tuple[float, ...], start: int) -> None:
        """Take the DSO's curtailment of this bus for the window starting at ``start``."""
        self._curtail_kw, self._curtail_start = curtail_kw, start

    def observe(self, slot: int) -> None:
        """Draw the realised consumption: forecast × (1 + noise·N(0,1)), at least 0."""
        noise = self.model.settings.noise
        factor = 1.0 + noise * self.model.rng.standard_normal() if noise > 0 else 1.0
        factor = max(factor, 0.0)
        self.p_kw = float(self.profile_kw[slot]) * factor
        self.q_kvar = float(self.profile_kvar[slot]) * factor

    def meter(self, slot: int) -> tuple[float, float]:
        """Realised minus forecast consumption of ``slot`` before curtailment (kW, kvar)."""
        return (self.p_kw - float(self.profile_kw[slot]),
                self.q_kvar - float(self.profile_kvar[slot]))

    def commit(self, slot: int) -> None:
        """Be served the consumption less the DSO's curtailment; count the energy."""
        k = slot - self._curtail_start
        curtail = self._curtail_kw[k] if self._curtail_kw else 0.0
        served = max(self.p_kw - curtail, 0.0)
        if self.p_kw > 0:
            self.q_kvar *= served / self.p_kw
        self.p_kw = served
        self.energy_kwh += served * self.model.series.slot_hours
