"""The load aggregator (LA): personalised prices for its customers, their demand to the market.

It holds each customer's contract (band and utility, :meth:`PriceResponsiveCustomer.contract`)
and prices with the scenario's policy (flat, time-of-use, or its profit-maximising
prices: :mod:`simulator.market.aggregator_pricing`) against its purchase cost, the
market's clearing price. It sends each customer only its own prices, bids the total
responded demand to the market operator and passes the customers' metered consumption to
the DSO. Its money per slot: revenue from its customers minus purchases at the clearing
price.
"""

from __future__ import annotations

from collections.abc import Sequence

import mesa
import numpy as np

from gridcosim.agents.base import GridAgent, Output, Record
from gridcosim.scenarios.market_schema import Aggregator
from gridcosim.simulator.market.aggregator_pricing import PriceRules, set_prices
from gridcosim.simulator.market.customer_response import UtilityParameters
from gridcosim.simulator.market.messages import (
    DemandBid,
    DemandResponse,
    MeteredDemand,
    PersonalisedPrices,
)


class LoadAggregatorAgent(GridAgent):
    """Prices the customers, aggregates their demand, settles with them and the market."""

    RECORDS = (Record("aggregator", "the load aggregator (la)", (
        Output("revenue_usd", "USD", "paid by its customers", "received positive"),
        Output("purchase_usd", "USD", "the customers' energy at the market's clearing price",
               "paid positive"),
        Output("profit_usd", "USD", "revenue minus purchase"),
        Output("mean_price_usd_per_kwh", "USD/kWh", "customers' mean personalised price"),
    )),)
    state_key = "aggregator"

    def __init__(self, model: mesa.Model, spec: Aggregator):
        super().__init__(model)
        self.spec = spec
        self.rules = PriceRules(spec.price_min_usd_per_kwh, spec.price_max_usd_per_kwh,
                                spec.daily_cap_usd)
        self._contracts: dict[str, UtilityParameters] = {}
        self._prices: dict[str, np.ndarray] = {}
        self._demand: dict[str, np.ndarray] = {}
        self._reactive: dict[str, np.ndarray] = {}
        self._clearing_price = np.zeros(0)
        self._start = 0
        self.revenue_usd = self.purchase_usd = self.profit_usd = 0.0
        self.mean_price_usd_per_kwh = 0.0

    @property
    def entity_id(self) -> str:
        """``la``."""
        return "la"

    def enrol(self, contracts: dict[str, UtilityParameters], start: int) -> None:
        """The customers' contracts for the window from ``start``."""
        self._contracts, self._start = dict(contracts), start

    def quote(self, purchase_usd_per_kwh: np.ndarray) -> dict[str, np.ndarray]:
        """Personalised prices against an expected purchase cost per slot (not yet sent)."""
        names = list(self._contracts)
        prices = set_prices(self.spec.policy, [self._contracts[n] for n in names],
                            np.asarray(purchase_usd_per_kwh, dtype=float), self.rules,
                            self.model.series.slot_hours)
        return {n: np.asarray(prices[i], dtype=float) for i, n in enumerate(names)}

    def announce(self, quote: dict[str, np.ndarray]) -> list[PersonalisedPrices]:
        """Send each customer its own prices of ``quote``."""
        self._prices = dict(quote)
        return [PersonalisedPrices(n, tuple(p.tolist())) for n, p in quote.items()]

    def bid(self, responses: Sequence[DemandResponse]) -> DemandBid:
        """The total responded demand per slot (what the market must serve)."""
        self._demand = {r.customer: np.asarray(r.p_kw, dtype=float) for r in responses}
        self._reactive = {r.customer: np.asarray(r.q_kvar, dtype=float) for r in responses}
        return DemandBid(tuple(np.sum(list(self._demand.values()), axis=0).tolist()))

    def metered(self) -> MeteredDemand:
        """Each customer's responded consumption, as the DSO's meters will read it."""
        names = tuple(self._demand)
        return MeteredDemand(names, tuple(tuple(self._demand[n].tolist()) for n in names),
                             tuple(tuple(self._reactive[n].tolist()) for n in names))

    def settle_window(self, clearing_price_usd_per_kwh: Sequence[float]) -> None:
        """The market's clearing prices of the adopted window (its purchase prices)."""
        self._clearing_price = np.asarray(clearing_price_usd_per_kwh, dtype=float)

    def commit(self, slot: int) -> None:
        """The slot's revenue, purchases and profit."""
        k, dt = slot - self._start, self.model.series.slot_hours
        energy = {n: d[k] * dt for n, d in self._demand.items()}
        self.revenue_usd = float(sum(self._prices[n][k] * e for n, e in energy.items()))
        self.purchase_usd = float(self._clearing_price[k] * sum(energy.values()))
        self.profit_usd = self.revenue_usd - self.purchase_usd
        self.mean_price_usd_per_kwh = float(np.mean([p[k] for p in self._prices.values()]))
