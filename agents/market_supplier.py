"""Suppliers of the market: the DERs and the upstream microgrid at the root bus.

A DER offers its output range (a renewable's availability from its profile) at its
marginal cost and is paid, for what the market operator clears, its personalised price:
its marginal value to the market (its cost minus its reduced cost in the clearing:
above its cost where its limit or a DSO cut holds it back), within
``[0, der_price_max_usd_per_kwh]`` (seed 001). The upstream microgrid offers up to its
transformer limit at the day's LMP profile and is paid the LMP.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import mesa
import numpy as np

from gridcosim.agents.base import GridAgent, Output, Record
from gridcosim.scenarios.market_schema import MarketDer
from gridcosim.simulator.market.messages import UPSTREAM, Clearing, SupplyOffer


class SupplierAgent(GridAgent, ABC):
    """What DERs and the upstream microgrid share: an offer, an award, a settlement."""

    def __init__(self, model: mesa.Model, name: str):
        super().__init__(model)
        self.name = name
        self._start = 0
        self._p = np.zeros(0)
        self._price = np.zeros(0)
        self.p_kw = self.price_usd_per_kwh = self.revenue_usd = self.cost_usd = 0.0

    @property
    def state_key(self) -> str:
        """``supplier:<name>``."""
        return f"supplier:{self.name}"

    @property
    def entity_id(self) -> str:
        """The supplier's name."""
        return self.name

    @abstractmethod
    def offer(self, start: int, slots: int) -> SupplyOffer:
        """The offer for the window from ``start``."""

    def award(self, clearing: Clearing, price_usd_per_kwh: np.ndarray, start: int) -> None:
        """The cleared output per slot and the price it is paid."""
        self._start = start
        self._p = np.asarray(clearing.of(self.name), dtype=float)
        self._price = np.asarray(price_usd_per_kwh, dtype=float)

    def commit(self, slot: int) -> None:
        """Produce the slot's award; account revenue and cost."""
        k, dt = slot - self._start, self.model.series.slot_hours
        self.p_kw = float(self._p[k])
        self.price_usd_per_kwh = float(self._price[k])
        self.revenue_usd = self.price_usd_per_kwh * self.p_kw * dt
        self.cost_usd = self._unit_cost(slot) * self.p_kw * dt

    @abstractmethod
    def _unit_cost(self, slot: int) -> float:
        """Its marginal cost in slot ``slot`` ($/kWh)."""


class MarketDerAgent(SupplierAgent):
    """A DER selling into the market (dispatchable, wind or PV)."""

    RECORDS = (Record("market_der", "a DER selling into the market (DER name)", (
        Output("p_kw", "kW", "cleared output", "injection positive"),
        Output("available_kw", "kW", "largest output it could offer"),
        Output("price_usd_per_kwh", "USD/kWh", "selling price paid: its marginal value in the "
               "clearing, within [0, der_price_max]"),
        Output("revenue_usd", "USD", "paid for its output", "received positive"),
        Output("cost_usd", "USD", "generation cost of its output"),
    ), cost_in="market"),)

    def __init__(self, model: mesa.Model, spec: MarketDer, available_kw: np.ndarray):
        super().__init__(model, spec.name)
        self.spec, self._available = spec, np.asarray(available_kw, dtype=float)
        self.available_kw = 0.0

    def offer(self, start: int, slots: int) -> SupplyOffer:
        """``0 .. available`` per slot at its cost."""
        hi = self._available[start:start + slots]
        return SupplyOffer(self.name, (0.0,) * slots, tuple(hi.tolist()),
                           (self.spec.cost_usd_per_kwh,) * slots)

    def commit(self, slot: int) -> None:
        """Produce the award (and note the availability)."""
        super().commit(slot)
        self.available_kw = float(self._available[slot])

    def _unit_cost(self, slot: int) -> float:
        return self.spec.cost_usd_per_kwh


class UpstreamMicrogridAgent(SupplierAgent):
    """The upstream microgrid behind the feeder's transformer: energy at the day's LMP."""

    RECORDS = (Record("upstream", "the upstream microgrid at the root bus (upstream)", (
        Output("p_kw", "kW", "energy sold to the market (p_m)", "into the feeder positive"),
        Output("price_usd_per_kwh", "USD/kWh", "the LMP it is paid"),
        Output("revenue_usd", "USD", "paid by the market operator", "received positive"),
        Output("cost_usd", "USD", "the same energy at the LMP"),
    ), cost_in="market"),)

    def __init__(self, model: mesa.Model, p_max_kw: float, lmp_usd_per_kwh: np.ndarray):
        super().__init__(model, UPSTREAM)
        self.p_max_kw, self.lmp = p_max_kw, np.asarray(lmp_usd_per_kwh, dtype=float)

    def offer(self, start: int, slots: int) -> SupplyOffer:
        """``0 .. p_max`` at the LMP of each slot."""
        return SupplyOffer(self.name, (0.0,) * slots, (self.p_max_kw,) * slots,
                           tuple(self.lmp[start:start + slots].tolist()))

    def _unit_cost(self, slot: int) -> float:
        return float(self.lmp[slot])
