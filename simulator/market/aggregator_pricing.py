"""The load aggregator's pricing policies: flat, time-of-use, profit-maximising (seed 001).

The load aggregator (LA) sets each customer's price per slot within
``[price_min, price_max]`` with a daily cap on the sum of a customer's prices
(:class:`PriceRules`) and buys the energy at the upstream cost ``rho_t`` ($/kWh).

* :func:`flat_prices`: ``clip(cap / T, price_min, price_max)`` in every slot.
* :func:`time_of_use_prices`: the ``ceil(T / 2)`` dearest slots (by ``rho``, ties by slot
  index) at ``price_max``, the others at ``price_min``; over the cap, prices are scaled by
  ``cap / sum`` and clipped until the sum meets the cap, whose fixed point keeps the cheap
  slots at ``price_min`` and lowers the dear ones to ``(cap - n_cheap price_min) / n_dear``.
* :func:`profit_maximising_prices`: the global maximum of the LA's profit
  ``sum_t (pi_t - rho_t) p_t(pi_t) dt_h`` per customer, with ``p_t`` the customer's
  response (:func:`~gridcosim.simulator.market.customer_response.response_kw`).

The profit-maximising policy is exact although each slot's profit is not concave in its
price (the customer's band makes it piecewise: linear at the band's top, concave
quadratic inside, linear at its bottom). The textbook QP, which substitutes
``pi = alpha - 2 beta p`` and so keeps only the interior pieces, misses the prices that
rise to ``price_max`` while the load stays at the band's bottom.
:mod:`~gridcosim.simulator.market.profit_search` describes the method: a Lagrangian
certificate, else a branch and bound over the pieces; HiGHS solves the final QPs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gridcosim.scenarios.market_schema import PricingPolicy
from gridcosim.simulator.market.customer_response import UtilityParameters, response_kw
from gridcosim.simulator.market.piece_qp import PricingError
from gridcosim.simulator.market.profit_dual import profit_pieces
from gridcosim.simulator.market.profit_search import maximise_profit, price_order_pairs

__all__ = ["PriceRules", "PricingError", "PricingPolicy", "PricingResult", "flat_prices",
           "la_profit_usd", "profit_maximising_prices", "set_prices", "time_of_use_prices"]


@dataclass(frozen=True)
class PriceRules:
    """The bounds on the load aggregator's prices.

    Attributes:
        price_min_usd_per_kwh: Least price in any slot (non-negative).
        price_max_usd_per_kwh: Largest price in any slot.
        daily_cap_usd: Cap on the sum of one customer's prices over the window (seed 001:
            4.32 for 24 hourly slots, i.e. 0.18 $/kWh on average).

    """

    price_min_usd_per_kwh: float = 0.12
    price_max_usd_per_kwh: float = 0.24
    daily_cap_usd: float = 4.32

    def __post_init__(self) -> None:
        """Check the bounds are finite, non-negative and ordered."""
        values = (self.price_min_usd_per_kwh, self.price_max_usd_per_kwh, self.daily_cap_usd)
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"price rules must be finite, got {values}")
        if self.price_min_usd_per_kwh < 0.0:
            raise ValueError("price_min_usd_per_kwh must be non-negative")
        if not self.price_min_usd_per_kwh < self.price_max_usd_per_kwh:
            raise ValueError("price_min_usd_per_kwh must be below price_max_usd_per_kwh")

    def check_slots(self, slots: int) -> None:
        """Raise ``ValueError`` unless ``slots`` prices at ``price_min`` meet the cap."""
        if slots < 1:
            raise ValueError(f"a pricing window needs at least one slot, got {slots}")
        if self.daily_cap_usd < slots * self.price_min_usd_per_kwh - 1e-12:
            raise ValueError(f"daily_cap_usd {self.daily_cap_usd} is below {slots} slots at "
                             f"price_min_usd_per_kwh {self.price_min_usd_per_kwh}")


@dataclass(frozen=True, eq=False)
class PricingResult:
    """The profit-maximising prices and how they were found.

    Attributes:
        prices_usd_per_kwh: Price per customer and slot, shape (customers, slots).
        profit_usd: The load aggregator's profit per customer.
        cap_dual_kwh: Per customer, the cap's multiplier ``mu`` ($ of profit per $/kWh of
            cap): the certificate's where ``certified``, else the final QP's row dual.
        certified: Per customer, whether the Lagrangian certificate holds at ``mu``
            (``mu cap + sum_t max_pi (f_t(pi) - mu pi)`` is within
            ``CERTIFICATE_TOL_USD`` of the profit); where it does not (a duality gap),
            the branch and bound proved the optimum.
        nodes: Search nodes bounded over all customers (one root each).
        qp_solves: HiGHS QP solves over all customers.
        wall_s: Wall time of the whole computation.

    """

    prices_usd_per_kwh: np.ndarray
    profit_usd: np.ndarray
    cap_dual_kwh: np.ndarray
    certified: np.ndarray
    nodes: int
    qp_solves: int
    wall_s: float


def flat_prices(slots: int, rules: PriceRules) -> np.ndarray:
    """The same price every slot: ``clip(cap / slots, price_min, price_max)``."""
    rules.check_slots(slots)
    price = min(max(rules.daily_cap_usd / slots, rules.price_min_usd_per_kwh),
                rules.price_max_usd_per_kwh)
    return np.full(slots, price)


def time_of_use_prices(upstream_cost_usd_per_kwh: np.ndarray, rules: PriceRules) -> np.ndarray:
    """``price_max`` in the ``ceil(T / 2)`` dearest slots, ``price_min`` in the others.

    Dearest by upstream cost, ties broken by slot index. Over the cap, the dear slots'
    price drops until the sum meets it (the fixed point of scaling by ``cap / sum`` and
    clipping; with 24 slots and the seed's rules the sum is exactly the cap).
    """
    rho = np.asarray(upstream_cost_usd_per_kwh, dtype=float)
    rules.check_slots(rho.size)
    dear = np.argsort(-rho, kind="stable")[: math.ceil(rho.size / 2)]
    prices = np.full(rho.size, rules.price_min_usd_per_kwh)
    prices[dear] = rules.price_max_usd_per_kwh
    if prices.sum() > rules.daily_cap_usd + 1e-12:
        cheap_usd = (rho.size - dear.size) * rules.price_min_usd_per_kwh
        prices[dear] = max((rules.daily_cap_usd - cheap_usd) / dear.size,
                           rules.price_min_usd_per_kwh)
    return prices


def la_profit_usd(params: UtilityParameters, prices_usd_per_kwh: np.ndarray,
                  upstream_cost_usd_per_kwh: np.ndarray, slot_hours: float) -> np.ndarray:
    """The load aggregator's profit from one customer, ``sum_t (pi_t - rho_t) p_t dt_h``.

    Args:
        params: The customer.
        prices_usd_per_kwh: Its prices, shape ``(..., slots)``.
        upstream_cost_usd_per_kwh: ``rho`` per slot.
        slot_hours: Slot length (h).

    Returns:
        The profit, shape ``(...)`` (a 0-d array for one price vector).

    """
    prices = np.asarray(prices_usd_per_kwh, dtype=float)
    margin = prices - np.asarray(upstream_cost_usd_per_kwh, dtype=float)
    return np.sum(margin * response_kw(params, prices), axis=-1) * slot_hours


def profit_maximising_prices(customers: Sequence[UtilityParameters],
                             upstream_cost_usd_per_kwh: np.ndarray, rules: PriceRules,
                             slot_hours: float = 1.0) -> PricingResult:
    """Each customer's prices maximising the load aggregator's profit, globally.

    Args:
        customers: The customers' utilities and bands (all over the same slots).
        upstream_cost_usd_per_kwh: ``rho`` per slot (the market's clearing price).
        rules: Price bounds and cap.
        slot_hours: Slot length (h).

    Returns:
        The prices, profits, multipliers and certificates (see the module's docstring).

    Raises:
        ValueError: On mismatched slots or infeasible rules.
        PricingError: If HiGHS fails on a QP or falls short of the search.

    """
    start = time.perf_counter()
    rho = _checked_window(customers, upstream_cost_usd_per_kwh, rules, slot_hours)
    if not customers:
        return PricingResult(np.zeros((0, rho.size)), np.zeros(0), np.zeros(0),
                             np.zeros(0, dtype=bool), 0, 0, time.perf_counter() - start)
    stack = profit_pieces(customers, rho, rules.price_min_usd_per_kwh,
                          rules.price_max_usd_per_kwh, slot_hours)
    pairs = [price_order_pairs(c, rho) for c in customers]
    optima, solves = maximise_profit(stack, rules.daily_cap_usd, pairs)
    return PricingResult(np.stack([o.solution.prices_usd_per_kwh for o in optima]),
                         np.array([o.solution.profit_usd for o in optima]),
                         np.array([o.mu_kwh for o in optima]),
                         np.array([o.certified for o in optima]),
                         sum(o.nodes for o in optima), solves, time.perf_counter() - start)


def _checked_window(customers: Sequence[UtilityParameters], upstream_cost_usd_per_kwh: np.ndarray,
                    rules: PriceRules, slot_hours: float) -> np.ndarray:
    """``rho`` as an array, after checking it, the slot length and the customers' slots."""
    rho = np.asarray(upstream_cost_usd_per_kwh, dtype=float)
    if rho.ndim != 1 or not np.all(np.isfinite(rho)):
        raise ValueError("upstream_cost_usd_per_kwh must be a finite 1-D array")
    if not slot_hours > 0.0:
        raise ValueError(f"slot_hours must be positive, got {slot_hours}")
    rules.check_slots(rho.size)
    mismatched = [i for i, c in enumerate(customers) if c.slots != rho.size]
    if mismatched:
        raise ValueError(f"customers {mismatched} do not have {rho.size} slots")
    return rho


def set_prices(policy: PricingPolicy, customers: Sequence[UtilityParameters],
               upstream_cost_usd_per_kwh: np.ndarray, rules: PriceRules,
               slot_hours: float = 1.0) -> np.ndarray:
    """Every customer's prices under ``policy``, shape (customers, slots).

    Flat and time-of-use prices are the same vector for every customer.
    """
    rho = _checked_window(customers, upstream_cost_usd_per_kwh, rules, slot_hours)
    match PricingPolicy(policy):
        case PricingPolicy.FLAT:
            prices = flat_prices(rho.size, rules)
        case PricingPolicy.TIME_OF_USE:
            prices = time_of_use_prices(rho, rules)
        case PricingPolicy.PROFIT:
            return profit_maximising_prices(customers, rho, rules, slot_hours).prices_usd_per_kwh
    return np.tile(prices, (len(customers), 1))
