"""Messages of the transactive energy market (docs/market.md; seed 001).

Small frozen records, the only things market agents hand each other. Who sends what:

* load aggregator → customer: :class:`PersonalisedPrices` (its own prices only);
* customer → load aggregator: :class:`DemandResponse`;
* DER / upstream microgrid → market operator: :class:`SupplyOffer`;
* load aggregator → market operator: :class:`DemandBid` (the total to serve per slot);
* market operator → DSO, DERs, upstream: :class:`Clearing` (who supplies how much);
* load aggregator → DSO: :class:`MeteredDemand` (each customer's consumption, as the
  DSO's meters would read it; the DSO knows where its customers are connected);
* DSO → market operator: :class:`MarketCut`, a linear constraint in transaction
  variables. It names no bus, phase or line: the market operator never sees topology.

Powers are kW (per slot, constant over the slot), prices $/kWh, one entry per slot of the
market window.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

#: Name the market operator's variables use for the purchase from the upstream microgrid.
UPSTREAM = "upstream"


class LimitKind(StrEnum):
    """Which kind of network limit a :class:`MarketCut` keeps (not which element)."""

    VOLTAGE_MIN = "voltage_min"
    VOLTAGE_MAX = "voltage_max"
    LINE_P = "line_p"
    LINE_Q = "line_q"


@dataclass(frozen=True)
class PersonalisedPrices:
    """The load aggregator's price for one customer, per slot ($/kWh)."""

    customer: str
    price_usd_per_kwh: tuple[float, ...]


@dataclass(frozen=True)
class DemandResponse:
    """A customer's consumption at its personalised prices, per slot (kW and kvar)."""

    customer: str
    p_kw: tuple[float, ...]
    q_kvar: tuple[float, ...]


@dataclass(frozen=True)
class SupplyOffer:
    """A supplier's offer: output range per slot at a constant marginal cost.

    Attributes:
        supplier: The DER's name, or :data:`UPSTREAM`.
        p_min_kw: Least output per slot.
        p_max_kw: Largest output per slot (a renewable's availability).
        cost_usd_per_kwh: Marginal cost per slot (the upstream microgrid's is the day's
            LMP profile).

    """

    supplier: str
    p_min_kw: tuple[float, ...]
    p_max_kw: tuple[float, ...]
    cost_usd_per_kwh: tuple[float, ...]


@dataclass(frozen=True)
class DemandBid:
    """The responded demand the market operator must serve, per slot (all customers)."""

    p_kw: tuple[float, ...]


@dataclass(frozen=True)
class Clearing:
    """The market operator's transactions for a window.

    Attributes:
        p_kw: Per supplier (DER names and :data:`UPSTREAM`), its output per slot.
        cost_usd: Cost of serving the demand at the offers' costs.
        clearing_price_usd_per_kwh: The balance's marginal price per slot (what one more
            kWh of demand would cost, cuts included).

    """

    p_kw: tuple[tuple[str, tuple[float, ...]], ...]
    cost_usd: float
    clearing_price_usd_per_kwh: tuple[float, ...]

    def of(self, supplier: str) -> tuple[float, ...]:
        """One supplier's output per slot."""
        return dict(self.p_kw)[supplier]


@dataclass(frozen=True)
class MeteredDemand:
    """Each customer's active and reactive consumption per slot (for the DSO's check)."""

    customers: tuple[str, ...]
    p_kw: tuple[tuple[float, ...], ...]
    q_kvar: tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class MarketCut:
    r"""A DSO feasibility cut for one limit in one slot: :math:`\sum_s a_s p_{s,t} \le b`.

    It is the first-order expansion :math:`u_l(\hat x) + \sum_s \partial u_l/\partial p_s
    (p_s - \hat p_s) \le 0` of one violated limit :math:`u_l \le 0` (a voltage in p.u., a
    line flow in p.u. of the per-phase base), rewritten in the suppliers' outputs.

    Attributes:
        slot: Slot within the market window.
        kind: Which kind of limit (no element: that would be topology).
        coefficients: :math:`a_s` per supplier (p.u. per kW); suppliers with zero
            coefficient may be left out.
        bound: :math:`b` (p.u.).
        violation: :math:`u_l(\hat x)` at the clearing that produced the cut (p.u., > 0).

    """

    slot: int
    kind: LimitKind
    coefficients: tuple[tuple[str, float], ...]
    bound: float
    violation: float
