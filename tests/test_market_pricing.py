"""Price-responsive customers and the load aggregator's pricing policies (seed 001).

References are independent of the code under test: the customer's response against a
brute-force maximisation over a fine grid of consumptions; the profit-maximising prices
against every feasible price vector of a 0.0025 $/kWh grid (small windows), against an
exact dynamic programme over that grid (the 55 x 24 case), and against the textbook QP
(``pi = alpha - 2 beta p``: interior of the band only) solved by its own KKT bisection;
the Lagrangian certificate re-derived per slot from closed-form candidates.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from gridcosim.simulator.market.aggregator_pricing import (
    PriceRules,
    PricingPolicy,
    flat_prices,
    la_profit_usd,
    profit_maximising_prices,
    set_prices,
    time_of_use_prices,
)
from gridcosim.simulator.market.customer_response import (
    FLEXIBILITY,
    UtilityParameters,
    payment_usd,
    response_kw,
    utility_usd,
)

STEP = 0.0025
GRID = 0.12 + STEP * np.arange(49)  # 0.12 .. 0.24 $/kWh
RULES = PriceRules()


def customer(kind: str, p0_kw: np.ndarray, flexibility: float) -> UtilityParameters:
    """A customer with the seed's or the calibrated utility."""
    if kind == "seed":
        return UtilityParameters.seed(p0_kw, flexibility)
    return UtilityParameters.calibrated(p0_kw, flexibility)


def slot_profits(params: UtilityParameters, rho: np.ndarray) -> np.ndarray:
    """The LA's profit of each slot at each grid price, shape (49, T)."""
    prices = np.broadcast_to(GRID[:, None], (GRID.size, rho.size))
    return (prices - rho) * response_kw(params, prices)


def grid_optimum(params: UtilityParameters, rho: np.ndarray, cap: float) -> float:
    """Max over ALL grid price vectors within the cap, enumerated (T <= 4)."""
    budget = round((cap - rho.size * GRID[0]) / STEP)
    best = -math.inf
    for first in range(GRID.size):
        rest = np.stack(np.meshgrid(*[np.arange(GRID.size)] * (rho.size - 1),
                                    indexing="ij"), -1).reshape(-1, rho.size - 1)
        index = np.concatenate([np.full((rest.shape[0], 1), first), rest], axis=1)
        index = index[index.sum(axis=1) <= budget]
        if index.size:
            best = max(best, float(la_profit_usd(params, GRID[index], rho, 1.0).max()))
    return best


def grid_dp_optimum(params: UtilityParameters, rho: np.ndarray, cap: float) -> float:
    """The same maximum by dynamic programming over the sum of grid indices (any T)."""
    budget = round((cap - rho.size * GRID[0]) / STEP)
    values = slot_profits(params, rho)
    best = np.full(budget + 1, -np.inf)
    best[0] = 0.0
    for t in range(rho.size):
        shifted = np.full((GRID.size, budget + 1), -np.inf)
        for k in range(GRID.size):
            shifted[k, k:] = best[: budget + 1 - k] + values[k, t]
        best = shifted.max(axis=0)
    return float(best.max())


def textbook_prices(params: UtilityParameters, rho: np.ndarray,
                    cap: float) -> np.ndarray | None:
    """The textbook QP: profit on the band's interior only, KKT by bisection on ``mu``.

    On the interior ``f_t = (pi - rho)(alpha - pi) / (2 beta)``, stationary where
    ``pi = (alpha + rho) / 2 - beta mu``. ``None`` if the interiors do not fit the cap.
    """
    alpha, beta = params.alpha_usd_per_kwh, params.beta
    lo = np.maximum(0.12, alpha - 2 * beta * params.p_hi_kw)
    hi = np.minimum(0.24, alpha - 2 * beta * params.p_lo_kw)
    if np.any(lo > hi) or lo.sum() > cap:
        return None

    def prices(mu: float) -> np.ndarray:
        return np.clip((alpha + rho) / 2 - beta * mu, lo, hi)

    if prices(0.0).sum() <= cap:
        return prices(0.0)
    low, high = 0.0, 1e6
    for _ in range(200):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if prices(mid).sum() > cap else (low, mid)
    return prices(high)


def lagrangian_gap_usd(params: UtilityParameters, rho: np.ndarray, prices: np.ndarray,
                       mu: float, cap: float) -> tuple[float, np.ndarray]:
    """``mu cap + sum_t max_pi g_t(pi) - profit`` and each slot's shortfall, where
    ``g_t = (pi - rho) p(pi) - mu pi`` is maximised over its closed-form candidates."""
    alpha, beta = params.alpha_usd_per_kwh, params.beta
    at_hi = np.clip(alpha - 2 * beta * params.p_hi_kw, 0.12, 0.24)
    at_lo = np.clip(alpha - 2 * beta * params.p_lo_kw, 0.12, 0.24)
    vertex = np.clip((alpha + rho) / 2 - beta * mu, at_hi, at_lo)
    candidates = np.stack([np.full(rho.size, 0.12), np.full(rho.size, 0.24), at_hi, at_lo,
                           vertex])

    def g(pi: np.ndarray) -> np.ndarray:
        return (pi - rho) * response_kw(params, pi) - mu * pi

    best = g(candidates).max(axis=0)
    own = g(prices)
    profit = float(la_profit_usd(params, prices, rho, 1.0))
    return mu * cap + float(best.sum()) - profit, best - own


# --- the customer's response ------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_response_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p0 = rng.uniform(0.0, 40.0, 8)
    p0[0] = 0.0
    params = customer("seed" if seed % 2 else "calibrated", p0, (0.10, 0.05)[seed % 3 > 0])
    prices = np.concatenate([[0.0, 0.12, 0.18, 0.24, 0.5], rng.uniform(0.0, 0.3, 3)])
    response = response_kw(params, prices)
    for t in range(p0.size):
        p = np.linspace(params.p_lo_kw[t], params.p_hi_kw[t], 20001)
        surplus = params.alpha_usd_per_kwh * p - params.beta[t] * p ** 2 - prices[t] * p
        own = (params.alpha_usd_per_kwh * response[t] - params.beta[t] * response[t] ** 2
               - prices[t] * response[t])
        assert params.p_lo_kw[t] - 1e-12 <= response[t] <= params.p_hi_kw[t] + 1e-12
        assert own >= surplus.max() - 1e-12
        assert abs(response[t] - p[np.argmax(surplus)]) <= p[1] - p[0] + 1e-12
    assert response[0] == 0.0


def test_calibrated_response_at_reference_price_is_forecast() -> None:
    p0 = np.array([0.0, 0.05, 0.3, 1.7, 3.0])
    for flexibility in (0.10, 0.05):
        params = UtilityParameters.calibrated(p0, flexibility)
        np.testing.assert_allclose(response_kw(params, np.full(5, 0.18)), p0, atol=1e-12)
        assert np.all(response_kw(params, np.full(5, 0.24)) < p0 + 1e-12)


def test_seed_beta_pins_small_customer_at_band_top() -> None:
    params = UtilityParameters.seed(np.full(3, 0.23), FLEXIBILITY["residential"])
    for price in np.linspace(0.12, 0.24, 25):
        np.testing.assert_array_equal(response_kw(params, np.full(3, price)), params.p_hi_kw)


def test_utility_and_payment_per_slot() -> None:
    params = UtilityParameters.seed(np.array([1.0, 2.0]), 0.05)
    p = np.array([1.0, 2.0])
    np.testing.assert_allclose(utility_usd(params, p, 0.5),
                               0.5 * (0.25 * p - 0.002 * p ** 2))
    np.testing.assert_allclose(payment_usd(np.array([0.2, 0.1]), p, 0.5), [0.1, 0.1])


def test_invalid_parameters_are_rejected() -> None:
    with pytest.raises(ValueError, match="beta"):
        UtilityParameters(0.25, np.array([0.002, -1.0]), np.zeros(2), np.ones(2))
    with pytest.raises(ValueError, match="shape"):
        UtilityParameters(0.25, np.full(3, 0.002), np.zeros(2), np.ones(2))
    with pytest.raises(ValueError, match="band"):
        UtilityParameters(0.25, np.full(2, 0.002), np.ones(2), np.zeros(2))
    with pytest.raises(ValueError, match="flexibility"):
        UtilityParameters.calibrated(np.ones(2), 1.5)
    with pytest.raises(ValueError, match="non-negative"):
        UtilityParameters.seed(np.array([1.0, -1.0]), 0.1)
    with pytest.raises(ValueError, match="below"):
        PriceRules(0.24, 0.12)
    with pytest.raises(ValueError, match="cap"):
        flat_prices(24, PriceRules(daily_cap_usd=2.0))


# --- flat and time-of-use ----------------------------------------------------------------


def test_flat_prices_respect_bounds_and_cap() -> None:
    np.testing.assert_allclose(flat_prices(24, RULES), 0.18)
    np.testing.assert_allclose(flat_prices(4, RULES), 0.24)  # cap / 4 is above the max
    assert flat_prices(30, PriceRules(daily_cap_usd=4.32)).sum() <= 4.32 + 1e-12


def test_time_of_use_puts_dearest_half_at_max() -> None:
    rho = np.random.default_rng(3).uniform(0.03, 0.224, 24)
    prices = time_of_use_prices(rho, RULES)
    dearest = np.sort(np.argsort(rho)[-12:])
    np.testing.assert_array_equal(np.flatnonzero(prices == 0.24), dearest)
    assert np.all(prices[np.setdiff1d(np.arange(24), dearest)] == 0.12)
    assert prices.sum() == pytest.approx(4.32, abs=1e-12)


@pytest.mark.parametrize("slots", [3, 5, 7])
def test_time_of_use_meets_a_binding_cap(slots: int) -> None:
    rules = PriceRules(daily_cap_usd=slots * 0.18)
    rho = np.zeros(slots)  # all tied: the first ceil(T / 2) slots by index are the dear ones
    prices = time_of_use_prices(rho, rules)
    dear = math.ceil(slots / 2)
    assert prices.sum() <= rules.daily_cap_usd + 1e-12
    assert np.all((prices >= 0.12) & (prices <= 0.24))
    assert np.all(prices[:dear] > prices[dear:].max())
    assert np.all(prices[dear:] == 0.12)


def test_set_prices_dispatches_on_policy() -> None:
    rng = np.random.default_rng(5)
    rho = rng.uniform(0.03, 0.224, 24)
    customers = [UtilityParameters.calibrated(rng.uniform(0.05, 3.0, 24), f)
                 for f in (0.10, 0.05)]
    np.testing.assert_array_equal(set_prices(PricingPolicy.FLAT, customers, rho, RULES),
                                  np.tile(flat_prices(24, RULES), (2, 1)))
    np.testing.assert_array_equal(set_prices(PricingPolicy("tou"), customers, rho, RULES),
                                  np.tile(time_of_use_prices(rho, RULES), (2, 1)))
    np.testing.assert_array_equal(
        set_prices(PricingPolicy.PROFIT, customers, rho, RULES),
        profit_maximising_prices(customers, rho, RULES).prices_usd_per_kwh)
    assert set_prices(PricingPolicy.FLAT, [], rho, RULES).shape == (0, 24)


# --- the profit-maximising policy --------------------------------------------------------

SMALL_CASES = [(slots, kind, flexibility, seed) for seed in range(3)
               for slots, kind, flexibility in [(3, "calibrated", 0.10), (3, "seed", 0.05),
                                                (4, "calibrated", 0.05), (4, "seed", 0.10)]]


@pytest.mark.parametrize(("slots", "kind", "flexibility", "seed"), SMALL_CASES)
def test_profit_prices_beat_every_grid_point_and_the_textbook_qp(
        slots: int, kind: str, flexibility: float, seed: int) -> None:
    rng = np.random.default_rng(100 * slots + seed)
    p0 = rng.uniform(0.2, 3.0, slots) if kind == "calibrated" else rng.uniform(12, 26, slots)
    rho = rng.uniform(0.03, 0.30, slots)
    params = customer(kind, p0, flexibility)
    rules = PriceRules(daily_cap_usd=slots * 0.18)
    result = profit_maximising_prices([params], rho, rules)
    prices = result.prices_usd_per_kwh[0]
    assert np.all((prices >= 0.12 - 1e-12) & (prices <= 0.24 + 1e-12))
    assert prices.sum() <= rules.daily_cap_usd + 1e-9
    profit = float(la_profit_usd(params, prices, rho, 1.0))
    assert profit == pytest.approx(result.profit_usd[0], abs=1e-12)
    assert profit >= grid_optimum(params, rho, rules.daily_cap_usd) - 1e-9
    textbook = textbook_prices(params, rho, rules.daily_cap_usd)
    if textbook is not None:
        assert profit >= float(la_profit_usd(params, textbook, rho, 1.0)) - 1e-9


def test_textbook_qp_is_strictly_beaten() -> None:
    """Heavy slots priced at the maximum keep their (band-bottom) load: worth far more."""
    params = UtilityParameters.calibrated(np.array([2.0, 2.0, 0.5, 0.5]), 0.10)
    rho = np.full(4, 0.05)
    rules = PriceRules(daily_cap_usd=4 * 0.18)
    result = profit_maximising_prices([params], rho, rules)
    textbook = la_profit_usd(params, textbook_prices(params, rho, 0.72), rho, 1.0)
    grid = grid_optimum(params, rho, 0.72)
    assert grid > float(textbook) + 0.05
    assert result.profit_usd[0] >= grid - 1e-9
    np.testing.assert_allclose(result.prices_usd_per_kwh[0, :2], 0.24)


def test_slot_length_scales_the_profit() -> None:
    rng = np.random.default_rng(8)
    params = UtilityParameters.calibrated(rng.uniform(0.2, 3.0, 6), 0.10)
    rho = rng.uniform(0.03, 0.3, 6)
    rules = PriceRules(daily_cap_usd=6 * 0.18)
    hourly = profit_maximising_prices([params], rho, rules, 1.0)
    quarter = profit_maximising_prices([params], rho, rules, 0.25)
    assert quarter.profit_usd[0] == pytest.approx(0.25 * hourly.profit_usd[0], abs=1e-12)
    assert float(la_profit_usd(params, quarter.prices_usd_per_kwh[0], rho, 0.25)) == (
        pytest.approx(quarter.profit_usd[0], abs=1e-12))


def check_day(customers: list[UtilityParameters], rho: np.ndarray,
              budget_s: float) -> np.ndarray:
    """Solve a day, check feasibility, the certificate flags and the grid optimum."""
    start = time.perf_counter()
    result = profit_maximising_prices(customers, rho, RULES)
    assert time.perf_counter() - start < budget_s
    prices = result.prices_usd_per_kwh
    assert np.all((prices >= 0.12 - 1e-12) & (prices <= 0.24 + 1e-12))
    assert np.all(prices.sum(axis=1) <= 4.32 + 1e-9)
    for i, params in enumerate(customers):
        profit = float(la_profit_usd(params, prices[i], rho, 1.0))
        assert profit == pytest.approx(result.profit_usd[i], abs=1e-12)
        gap, shortfall = lagrangian_gap_usd(params, rho, prices[i],
                                            result.cap_dual_kwh[i], 4.32)
        if result.certified[i]:
            assert np.all(shortfall <= 1e-9) and gap <= 1e-9
        else:
            assert gap > 1e-10
        assert profit >= grid_dp_optimum(params, rho, 4.32) - 1e-9
    return result.certified


def test_realistic_day_of_55_customers() -> None:
    rng = np.random.default_rng(2026)
    flexibilities = [FLEXIBILITY[c] for c in ("residential", "commercial", "industrial")]
    customers = [UtilityParameters.calibrated(rng.uniform(0.05, 3.0, 24),
                                              flexibilities[i % 3]) for i in range(55)]
    certified = check_day(customers, rng.uniform(0.03, 0.224, 24), budget_s=2.0)
    assert certified.any() and not certified.all()  # duality gaps do occur


def test_similar_slots_do_not_explode() -> None:
    """Equal or nearly equal slots: symmetric subtrees are cut by the ordering argument."""
    rng = np.random.default_rng(11)
    customers = [UtilityParameters.calibrated(np.ones(24), 0.10),
                 UtilityParameters.calibrated(1 + 0.1 * rng.uniform(-1, 1, 24), 0.10),
                 UtilityParameters.seed(np.full(24, 30.0), 0.05)]
    check_day(customers, np.full(24, 0.1), budget_s=2.0)
