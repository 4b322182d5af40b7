"""A price-responsive customer of the market (seed 001's residential, industrial, ...).

Each customer is one load of the feeder. It knows its original profile (what it would
consume anyway) and its utility; facing the load aggregator's personalised prices it
consumes the closed-form utility optimum within its flexibility band
(:func:`simulator.market.customer_response.response_kw`). Its contract with the
aggregator (band and utility parameters) is what the aggregator prices with: it is sent
to the aggregator alone.
"""

from __future__ import annotations

import mesa
import numpy as np

from gridcosim.agents.base import GridAgent, Output, Record
from gridcosim.scenarios.market_schema import MarketCustomers, UtilityCalibration
from gridcosim.simulator.market.customer_response import (
    FLEXIBILITY,
    UtilityParameters,
    payment_usd,
    response_kw,
    utility_usd,
)
from gridcosim.simulator.market.messages import DemandResponse, PersonalisedPrices


class PriceResponsiveCustomer(GridAgent):
    """One customer: its original profile, its utility, its answers to prices.

    Args:
        model: The market simulation.
        name: The feeder load it is.
        customer_class: ``residential``, ``industrial``, ``commercial`` or ``agricultural``.
        p0_kw: Original consumption per slot of the run.
        q_per_p: Reactive over active consumption (its power factor).
        terms: The customers' utility settings.

    """

    RECORDS = (Record("market_customer", "a price-responsive customer (feeder load name)", (
        Output("p_kw", "kW", "consumption at its personalised price", "consumption positive"),
        Output("q_kvar", "kvar", "reactive consumption (the load's power factor)",
               "consumption positive"),
        Output("p_original_kw", "kW", "original profile (what it consumes at the reference "
               "price)", "consumption positive"),
        Output("price_usd_per_kwh", "USD/kWh", "personalised price of the load aggregator"),
        Output("utility_usd", "USD", "utility of the consumption (alpha p - beta p^2) dt"),
        Output("payment_usd", "USD", "paid to the load aggregator (price x energy)",
               "paid by the customer positive"),
    )),)

    def __init__(self, model: mesa.Model, name: str, customer_class: str, p0_kw: np.ndarray,
                 q_per_p: float, terms: MarketCustomers):
        super().__init__(model)
        self.name, self.customer_class = name, customer_class
        self.p0_kw, self.q_per_p, self._terms = np.asarray(p0_kw, dtype=float), q_per_p, terms
        self._start = 0
        self._prices = np.zeros(0)
        self._window = np.zeros(0)
        self._params: UtilityParameters | None = None
        self.p_kw = self.q_kvar = self.p_original_kw = self.price_usd_per_kwh = 0.0
        self.utility_usd = self.payment_usd = 0.0

    @property
    def state_key(self) -> str:
        """``customer:<load name>``."""
        return f"customer:{self.name}"

    @property
    def entity_id(self) -> str:
        """The load name."""
        return self.name

    def contract(self, start: int, slots: int) -> UtilityParameters:
        """Band and utility over the window from ``start`` (for the aggregator alone)."""
        p0 = self.p0_kw[start:start + slots]
        flexibility = FLEXIBILITY[self.customer_class]
        terms = self._terms
        if terms.utility is UtilityCalibration.SEED:
            return UtilityParameters.seed(p0, flexibility, terms.alpha_usd_per_kwh,
                                          terms.beta_usd_per_kwh_per_kw)
        return UtilityParameters.calibrated(p0, flexibility, terms.alpha_usd_per_kwh,
                                            terms.reference_price_usd_per_kwh)

    def respond(self, prices: PersonalisedPrices, start: int) -> DemandResponse:
        """Consume the utility optimum at ``prices`` over the window from ``start``."""
        self._start, self._prices = start, np.asarray(prices.price_usd_per_kwh, dtype=float)
        self._params = self.contract(start, len(self._prices))
        self._window = response_kw(self._params, self._prices)
        return DemandResponse(self.name, tuple(self._window.tolist()),
                              tuple((self._window * self.q_per_p).tolist()))

    def commit(self, slot: int) -> None:
        """Consume the slot's answer; account its utility and payment."""
        k, dt, params = slot - self._start, self.model.series.slot_hours, self._params
        self.p_kw = float(self._window[k])
        self.q_kvar = self.p_kw * self.q_per_p
        self.p_original_kw = float(self.p0_kw[slot])
        self.price_usd_per_kwh = float(self._prices[k])
        self.utility_usd = float(utility_usd(params, self._window, dt)[k])
        self.payment_usd = float(payment_usd(self._prices, self._window, dt)[k])
