"""The market operator: clears the transactions, knowing no topology.

It receives the suppliers' offers, the load aggregator's demand bid and the DSO's cuts
(:class:`~simulator.market.messages.MarketCut`: coefficients on suppliers, a bound) and
solves its clearing LP (:mod:`simulator.market.clearing`); it imports no network code.
It pays the DERs their marginal values (clipped to the DER price ceiling) and the
upstream microgrid the LMP, and is paid the clearing price for the demand it serves;
what is left is its surplus (the network's congestion rent).
"""

from __future__ import annotations

from collections.abc import Sequence

import mesa
import numpy as np

from gridcosim.agents.base import GridAgent, Output, Record
from gridcosim.simulator.market.clearing import ClearingModel, ClearingOutcome
from gridcosim.simulator.market.messages import (
    UPSTREAM,
    Clearing,
    DemandBid,
    MarketCut,
    SupplyOffer,
)


class MarketOperatorAgent(GridAgent):
    """Clears each window; keeps the adopted clearing and its counts."""

    RECORDS = (Record("market", "the market operator (market)", (
        Output("p_m_kw", "kW", "energy bought from the upstream microgrid",
               "into the feeder positive"),
        Output("demand_kw", "kW", "responded demand served"),
        Output("clearing_price_usd_per_kwh", "USD/kWh", "marginal price of demand (cuts "
               "included)"),
        Output("cost_usd", "USD", "cost of the slot's supply at the offers' costs"),
        Output("surplus_usd", "USD", "paid by the aggregator minus paid to the suppliers"),
        Output("iterations", "1", "clearings of the day (all pricing rounds)"),
        Output("cuts", "1", "DSO cuts on this slot in the window's last pricing round"),
        Output("rounds", "1", "pricing rounds of the window"),
    )),)
    state_key = "market"

    def __init__(self, model: mesa.Model, suppliers: Sequence[str], slots: int,
                 der_price_max_usd_per_kwh: float):
        super().__init__(model)
        self.lp = ClearingModel(suppliers, slots, model.series.slot_hours)
        self.der_price_max = der_price_max_usd_per_kwh
        self.outcome: ClearingOutcome | None = None
        self._offers: dict[str, SupplyOffer] = {}
        self._cut_slots: list[int] = []
        self.window_start, self.window_rounds = 0, 0
        self.window_clearings = self.window_cuts = 0
        self._adopted = self._cuts_per_slot = np.zeros(0)
        self.p_m_kw = self.demand_kw = self.clearing_price_usd_per_kwh = 0.0
        self.cost_usd = self.surplus_usd = 0.0
        self.iterations = self.cuts = self.rounds = 0

    @property
    def entity_id(self) -> str:
        """``market``."""
        return "market"

    def open_window(self, offers: Sequence[SupplyOffer], start: int) -> None:
        """Take the window's offers."""
        self._offers = {o.supplier: o for o in offers}
        self.lp.set_offers(offers)
        self.window_start, self.window_rounds = start, 0
        self.window_clearings = self.window_cuts = 0

    def new_round(self, bid: DemandBid) -> None:
        """A new demand to serve: the cuts made for the old one go."""
        self.lp.drop_cuts()
        self.lp.set_demand(bid.p_kw)
        self._cut_slots = []
        self.window_rounds += 1

    def clear(self) -> ClearingOutcome:
        """Solve the clearing LP with the cuts so far."""
        self.outcome = self.lp.solve()
        self.window_clearings += 1
        return self.outcome

    def add_cuts(self, cuts: Sequence[MarketCut]) -> None:
        """The DSO's cuts on the last clearing."""
        self.lp.add_cuts(cuts)
        self._cut_slots += [c.slot for c in cuts]
        self.window_cuts += len(cuts)

    def selling_prices(self) -> dict[str, np.ndarray]:
        """What each supplier is paid per kWh: DERs their clipped marginal value, upstream LMP."""
        self._cleared()
        values = self.outcome.marginal_value_usd_per_kwh  # type: ignore[union-attr]
        out = {s: np.clip(v, 0.0, self.der_price_max) for s, v in values.items() if s != UPSTREAM}
        out[UPSTREAM] = np.asarray(self._offers[UPSTREAM].cost_usd_per_kwh, dtype=float)
        return out

    def adopt(self) -> Clearing:
        """Adopt the last clearing for the window; count its cuts per slot."""
        clearing = self._cleared()
        self._cuts_per_slot = np.bincount(np.asarray(self._cut_slots, dtype=int),
                                          minlength=self.lp.slots)
        self._adopted = np.asarray(clearing.clearing_price_usd_per_kwh)
        return clearing

    def _cleared(self) -> Clearing:
        """The last clearing (a day with none was never adopted: a bug if asked)."""
        if self.outcome is None or self.outcome.clearing is None:
            raise RuntimeError("the market operator has no clearing to settle or adopt")
        return self.outcome.clearing

    def commit(self, slot: int) -> None:
        """The slot's purchase, prices, costs and surplus."""
        k, dt = slot - self.window_start, self.model.series.slot_hours
        clearing = self.outcome.clearing  # type: ignore[union-attr]
        prices = self.selling_prices()
        supply = {s: clearing.of(s)[k] for s in self.lp.suppliers}
        self.p_m_kw = float(supply[UPSTREAM])
        self.demand_kw = float(sum(supply.values()))
        self.clearing_price_usd_per_kwh = float(self._adopted[k])
        self.cost_usd = float(sum(self._offers[s].cost_usd_per_kwh[k] * p * dt
                                  for s, p in supply.items()))
        paid = sum(prices[s][k] * p * dt for s, p in supply.items())
        self.surplus_usd = float(self.clearing_price_usd_per_kwh * self.demand_kw * dt - paid)
        self.iterations, self.rounds = self.window_clearings, self.window_rounds
        self.cuts = int(self._cuts_per_slot[k])
