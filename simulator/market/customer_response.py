"""Price-responsive customers: quadratic utility and its closed-form response (seed 001).

A customer's forecast consumption per slot is ``p0_kw``; price-based demand response may
move it within the band ``[(1 - f) p0, (1 + f) p0]`` (:data:`FLEXIBILITY`: residential
``f = 0.10``, the other classes ``0.05``). Its utility per slot is
``(alpha p - beta p^2) dt_h`` (``alpha`` in $/kWh, ``beta`` in $/kWh per kW). Facing a
price ``pi`` ($/kWh) it maximises ``alpha p - beta p^2 - pi p`` over its band; with
``beta > 0`` the unique response is ``clip((alpha - pi) / (2 beta), lo, hi)``
(:func:`response_kw`). Where ``p0 = 0`` the band is ``[0, 0]`` and so is the response.

Two parameter sets (:class:`UtilityParameters`): the seed's scalar ``alpha = 0.25``,
``beta = 0.002`` (with which a customer of a few hundred watts sits at the top of its band
at every price the aggregator may set), and the calibrated default
``beta = (alpha - 0.18) / (2 p0)``, for which the forecast is the response at 0.18 $/kWh.

On a price range ``[price_min, price_max]`` the response is affine in the price on up to
three pieces per slot (:func:`response_pieces`, :class:`ResponsePiece`): constant ``hi``
below ``alpha - 2 beta hi``, ``(alpha - pi) / (2 beta)`` in between, constant ``lo`` above
``alpha - 2 beta lo``. The load aggregator's exact pricing works piece by piece.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

#: Flexibility band (fraction of the forecast either way) per customer class (seed 001).
FLEXIBILITY: dict[str, float] = {"residential": 0.10, "industrial": 0.05, "commercial": 0.05,
                                 "agricultural": 0.05}
#: Seed 001's utility parameters: ``alpha`` ($/kWh) and ``beta`` ($/kWh per kW).
SEED_ALPHA_USD_PER_KWH = 0.25
SEED_BETA = 0.002
#: The price at which the calibrated response equals the forecast ($/kWh).
REFERENCE_PRICE_USD_PER_KWH = 0.18


class ResponsePiece(IntEnum):
    """Where on its band the response lies, by price (cheapest prices first)."""

    AT_HI = 0
    INTERIOR = 1
    AT_LO = 2


def _frozen(values: np.ndarray | float, name: str, slots: int | None = None) -> np.ndarray:
    """A read-only float copy of a 1-D array, checked finite (and of ``slots`` entries)."""
    arr = np.array(values, dtype=float)
    if arr.ndim != 1 or (slots is not None and arr.shape != (slots,)):
        want = "a 1-D array" if slots is None else f"shape ({slots},)"
        raise ValueError(f"{name} must have {want}, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    arr.setflags(write=False)
    return arr


def _checked_forecast_kw(p0_kw: np.ndarray, flexibility: float) -> np.ndarray:
    """The forecast as an array, after checking it and the flexibility."""
    if not 0.0 <= flexibility < 1.0:
        raise ValueError(f"flexibility must be in [0, 1), got {flexibility}")
    p0 = _frozen(p0_kw, "p0_kw")
    if np.any(p0 < 0.0):
        raise ValueError("p0_kw must be non-negative")
    return p0


@dataclass(frozen=True, eq=False)
class UtilityParameters:
    """One customer's utility and flexibility band over the market window.

    Attributes:
        alpha_usd_per_kwh: Linear utility coefficient ($/kWh), the same every slot.
        beta: Quadratic utility coefficient per slot ($/kWh per kW), positive.
        p_lo_kw: Bottom of the band per slot.
        p_hi_kw: Top of the band per slot (``>= p_lo_kw >= 0``).

    """

    alpha_usd_per_kwh: float
    beta: np.ndarray
    p_lo_kw: np.ndarray
    p_hi_kw: np.ndarray

    def __post_init__(self) -> None:
        """Freeze the arrays and check their shapes, signs and order."""
        if not np.isfinite(self.alpha_usd_per_kwh) or self.alpha_usd_per_kwh <= 0.0:
            raise ValueError(f"alpha_usd_per_kwh must be positive, got {self.alpha_usd_per_kwh}")
        lo = _frozen(self.p_lo_kw, "p_lo_kw")
        object.__setattr__(self, "p_lo_kw", lo)
        object.__setattr__(self, "p_hi_kw", _frozen(self.p_hi_kw, "p_hi_kw", lo.size))
        object.__setattr__(self, "beta", _frozen(self.beta, "beta", lo.size))
        if np.any(self.beta <= 0.0):
            raise ValueError("beta must be positive in every slot")
        if np.any(lo < 0.0) or np.any(self.p_hi_kw < lo):
            raise ValueError("the band must satisfy 0 <= p_lo_kw <= p_hi_kw")

    @property
    def slots(self) -> int:
        """Number of slots of the window."""
        return int(self.beta.size)

    @classmethod
    def seed(cls, p0_kw: np.ndarray, flexibility: float,
             alpha: float = SEED_ALPHA_USD_PER_KWH, beta: float = SEED_BETA,
             ) -> UtilityParameters:
        """Seed 001's scalar parameters around the forecast ``p0_kw``."""
        p0 = _checked_forecast_kw(p0_kw, flexibility)
        return cls(alpha, np.full(p0.size, float(beta)), (1.0 - flexibility) * p0,
                   (1.0 + flexibility) * p0)

    @classmethod
    def calibrated(cls, p0_kw: np.ndarray, flexibility: float,
                   alpha: float = SEED_ALPHA_USD_PER_KWH,
                   reference_price_usd_per_kwh: float = REFERENCE_PRICE_USD_PER_KWH,
                   ) -> UtilityParameters:
        """``beta = (alpha - ref) / (2 p0)``: the forecast is the response at ``ref``.

        Where ``p0 = 0`` the seed's ``beta`` is used (the response is 0 anyway).
        """
        if not alpha > reference_price_usd_per_kwh:
            raise ValueError("alpha must exceed the reference price to calibrate beta")
        p0 = _checked_forecast_kw(p0_kw, flexibility)
        safe = np.where(p0 > 0.0, p0, 1.0)
        beta = np.where(p0 > 0.0, (alpha - reference_price_usd_per_kwh) / (2.0 * safe),
                        SEED_BETA)
        return cls(alpha, beta, (1.0 - flexibility) * p0, (1.0 + flexibility) * p0)

    def price_at_hi_usd_per_kwh(self) -> np.ndarray:
        """Per slot, the price at and below which the response is the band's top."""
        return self.alpha_usd_per_kwh - 2.0 * self.beta * self.p_hi_kw

    def price_at_lo_usd_per_kwh(self) -> np.ndarray:
        """Per slot, the price at and above which the response is the band's bottom."""
        return self.alpha_usd_per_kwh - 2.0 * self.beta * self.p_lo_kw


@dataclass(frozen=True, eq=False)
class ResponsePieces:
    """The response on a price range as affine pieces, arrays (slots, 3) by :class:`ResponsePiece`.

    On piece ``k`` of slot ``t`` (prices ``lower[t, k] .. upper[t, k]``, used only where
    ``nonempty[t, k]``) the response is ``p_intercept_kw + p_slope_kw_per_usd_per_kwh * pi``.
    Neighbouring pieces share their end price; together they cover the range.
    """

    lower_usd_per_kwh: np.ndarray
    upper_usd_per_kwh: np.ndarray
    nonempty: np.ndarray
    p_intercept_kw: np.ndarray
    p_slope_kw_per_usd_per_kwh: np.ndarray


def response_pieces(params: UtilityParameters, price_min_usd_per_kwh: float,
                    price_max_usd_per_kwh: float) -> ResponsePieces:
    """Split ``[price_min, price_max]`` into the response's pieces, slot by slot."""
    at_hi = params.price_at_hi_usd_per_kwh()
    at_lo = params.price_at_lo_usd_per_kwh()
    lower = np.stack([np.full(params.slots, price_min_usd_per_kwh),
                      np.maximum(price_min_usd_per_kwh, at_hi),
                      np.maximum(price_min_usd_per_kwh, at_lo)], axis=1)
    upper = np.stack([np.minimum(price_max_usd_per_kwh, at_hi),
                      np.minimum(price_max_usd_per_kwh, at_lo),
                      np.full(params.slots, price_max_usd_per_kwh)], axis=1)
    lower = np.minimum(lower, price_max_usd_per_kwh)
    upper = np.maximum(upper, price_min_usd_per_kwh)
    nonempty = np.stack([at_hi >= price_min_usd_per_kwh,
                         (at_hi <= price_max_usd_per_kwh) & (at_lo >= price_min_usd_per_kwh),
                         at_lo <= price_max_usd_per_kwh], axis=1)
    half_inv_beta = 0.5 / params.beta
    intercept = np.stack([params.p_hi_kw, params.alpha_usd_per_kwh * half_inv_beta,
                          params.p_lo_kw], axis=1)
    slope = np.stack([np.zeros(params.slots), -half_inv_beta, np.zeros(params.slots)], axis=1)
    return ResponsePieces(lower, upper, nonempty, intercept, slope)


def response_kw(params: UtilityParameters, price_usd_per_kwh: np.ndarray) -> np.ndarray:
    """The utility-maximising consumption per slot at the given prices.

    Args:
        params: The customer.
        price_usd_per_kwh: Prices, shape ``(..., slots)``.

    Returns:
        ``clip((alpha - pi) / (2 beta), p_lo, p_hi)``, the prices' shape.

    """
    unclipped = (params.alpha_usd_per_kwh - np.asarray(price_usd_per_kwh)) / (2.0 * params.beta)
    return np.clip(unclipped, params.p_lo_kw, params.p_hi_kw)


def utility_usd(params: UtilityParameters, p_kw: np.ndarray, slot_hours: float) -> np.ndarray:
    """Utility per slot, ``(alpha p - beta p^2) dt_h``."""
    p = np.asarray(p_kw, dtype=float)
    return (params.alpha_usd_per_kwh * p - params.beta * p * p) * slot_hours


def payment_usd(price_usd_per_kwh: np.ndarray, p_kw: np.ndarray,
                slot_hours: float) -> np.ndarray:
    """What the customer pays per slot, ``pi p dt_h``."""
    return np.asarray(price_usd_per_kwh, dtype=float) * np.asarray(p_kw, dtype=float) * slot_hours
