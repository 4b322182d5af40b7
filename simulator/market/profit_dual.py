"""The Lagrangian dual of the load aggregator's pricing problem (seed 001).

Per customer the load aggregator maximises ``sum_t f_t(pi_t)`` subject to
``price_min <= pi_t <= price_max`` and ``sum_t pi_t <= cap``, where
``f_t(pi) = (pi - rho_t) p_t(pi) dt_h`` is slot ``t``'s profit and ``p_t`` the customer's
response. The response is affine on up to three price pieces
(:func:`~gridcosim.simulator.market.customer_response.response_pieces`), so on each piece
``f_t`` is a concave quadratic ``c2 pi^2 + c1 pi + c0`` (:class:`ProfitPieces`).

A search node allows each slot a subset of its pieces. For every ``mu >= 0``,
``D(mu) = mu cap + sum_t max_{allowed pieces, pi} (f_t(pi) - mu pi)`` bounds the node's
maximum (weak duality needs no concavity); the inner maxima are closed forms (a piece's
end or its quadratic's vertex). ``D`` is convex and :func:`lagrangian_dual` minimises it
by bisection on the sign of its right derivative ``cap - sum_t pi_t(mu)`` (least
maximisers), which is monotone. Every evaluated ``D(mu)`` is a valid bound, so the
bisection's precision affects pruning only. With one piece per slot the node is a concave
QP and the minimum of ``D`` is its optimum (strong duality); :func:`assignment_optimum`
recovers a feasible primal point from the bracket.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gridcosim.simulator.market.customer_response import UtilityParameters, response_pieces

_BISECTION_ROUNDS = 40
_MU_RESOLUTION = 1e-14
_FRACTIONS = np.arange(1, 8) / 8.0
_FIELDS = ("lower", "upper", "valid", "c2", "c1", "c0", "x_per_slope")
_STEEP = 1e200


@dataclass(frozen=True, eq=False)
class ProfitPieces:
    """Profit ``c2 pi^2 + c1 pi + c0`` ($) per piece on ``[lower, upper]``: arrays (..., T, 3).

    ``valid`` marks the nonempty pieces. ``x_per_slope`` is ``-1 / (2 c2)`` on curved
    pieces and huge on linear ones: ``clip((c1 - mu) x_per_slope, lower, upper)`` is the
    least maximiser of ``f - mu pi`` (prices are non-negative). A stack over customers
    has a leading axis.
    """

    lower: np.ndarray
    upper: np.ndarray
    valid: np.ndarray
    c2: np.ndarray
    c1: np.ndarray
    c0: np.ndarray
    x_per_slope: np.ndarray

    def customer(self, index: int | np.ndarray) -> ProfitPieces:
        """One customer's pieces out of a stack (or a stack of the indexed ones)."""
        return ProfitPieces(*(getattr(self, name)[index] for name in _FIELDS))

    def on(self, pieces: np.ndarray) -> ProfitPieces:
        """One customer's chosen piece per slot, arrays (T,)."""
        at = np.arange(pieces.size), pieces
        return ProfitPieces(*(getattr(self, name)[at] for name in _FIELDS))


def profit_pieces(customers: Sequence[UtilityParameters], rho: np.ndarray,
                  price_min_usd_per_kwh: float, price_max_usd_per_kwh: float,
                  slot_hours: float) -> ProfitPieces:
    """Stack the customers' profit per response piece, ``(pi - rho)(d0 + d1 pi) dt_h``."""
    parts = [response_pieces(c, price_min_usd_per_kwh, price_max_usd_per_kwh)
             for c in customers]
    d0 = np.stack([r.p_intercept_kw for r in parts])
    d1 = np.stack([r.p_slope_kw_per_usd_per_kwh for r in parts])
    cost = np.asarray(rho, dtype=float)[:, None]
    c2 = d1 * slot_hours
    x_per_slope = np.where(c2 < 0.0, -0.5 / np.where(c2 < 0.0, c2, -1.0), _STEEP)
    return ProfitPieces(np.stack([r.lower_usd_per_kwh for r in parts]),
                        np.stack([r.upper_usd_per_kwh for r in parts]),
                        np.stack([r.nonempty for r in parts]), c2,
                        (d0 - cost * d1) * slot_hours, -cost * d0 * slot_hours, x_per_slope)


def piece_maxima(pp: ProfitPieces, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per piece, the least maximiser of ``f - mu pi`` and the maximum (``mu``: leading shape)."""
    slope = pp.c1 - np.asarray(mu, dtype=float)[..., None, None]
    x = np.clip(slope * pp.x_per_slope, pp.lower, pp.upper)
    return x, (pp.c2 * x + slope) * x + pp.c0


def slot_maxima(pp: ProfitPieces, allowed: np.ndarray,
                mu: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per slot: the allowed piece maximising ``f - mu pi``, its maximiser, the maximum.

    On ties the cheapest piece wins, so the maximiser is the least one.
    """
    x, value = piece_maxima(pp, mu)
    value = np.where(allowed, value, -np.inf)
    piece = np.argmax(value, axis=-1)[..., None]
    return (piece[..., 0], np.take_along_axis(x, piece, -1)[..., 0],
            np.take_along_axis(value, piece, -1)[..., 0])


def dual_value_usd(pp: ProfitPieces, allowed: np.ndarray, mu: np.ndarray,
                   cap: float) -> np.ndarray:
    """``D(mu) = mu cap + sum_t max (f_t - mu pi)`` over the allowed pieces."""
    return np.asarray(mu) * cap + slot_maxima(pp, allowed, mu)[2].sum(axis=-1)


@dataclass(frozen=True, eq=False)
class Dual:
    """A node's Lagrangian bound ($) and the bisection's final bracket on ``mu``."""

    bound_usd: np.ndarray
    mu_lo: np.ndarray
    mu_hi: np.ndarray

    def node(self, index: int) -> Dual:
        """One node's dual out of a batch."""
        return Dual(self.bound_usd[index], self.mu_lo[index], self.mu_hi[index])


def _grid(pp: ProfitPieces) -> ProfitPieces:
    """The pieces with an axis for several ``mu`` inserted before the slots."""
    return ProfitPieces(*(getattr(pp, name)[..., None, :, :] for name in _FIELDS))


def _price_sums(pp: ProfitPieces, allowed: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Sum over slots of the least maximisers at each ``mu``, shape ``mu.shape`` (..., G)."""
    x, value = piece_maxima(_grid(pp), mu)
    value = np.where(allowed[..., None, :, :], value, -np.inf)
    best = value.max(axis=-1, keepdims=True)
    return np.where(value == best, x, np.inf).min(axis=-1).sum(axis=-1)


def _local_models(pp: ProfitPieces, allowed: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Near each ``mu`` (n, 2): each slot's ``L(mu)`` on its selected piece as a quadratic.

    On a piece, ``L(mu) = max_pi (f - mu pi)`` is ``f(end) - mu end`` where the maximiser
    is an end, else ``(c1 - mu)^2 / (-4 c2) + c0``. Returns the coefficients ``(a, b, g)``
    of ``a + b mu + g mu^2`` stacked last, (n, 2, T, 3).
    """
    grid = _grid(pp)
    x, value = piece_maxima(grid, mu)
    piece = np.argmax(np.where(allowed[..., None, :, :], value, -np.inf), axis=-1)[..., None]
    x, c2, c1, c0, lower, upper = (
        np.take_along_axis(np.broadcast_to(v, value.shape), piece, -1)[..., 0]
        for v in (x, grid.c2, grid.c1, grid.c0, grid.lower, grid.upper))
    inside = (c2 < 0.0) & (x > lower) & (x < upper)
    g = np.where(inside, 0.25 / np.where(inside, -c2, 1.0), 0.0)
    a = np.where(inside, c1 * c1 * g + c0, (c2 * x + c1) * x + c0)
    b = np.where(inside, -2.0 * c1 * g, -x)
    return np.stack([a, b, g], axis=-1)


def _proposals(pp: ProfitPieces, allowed: np.ndarray, mu_lo: np.ndarray, mu_hi: np.ndarray,
               cap: float) -> np.ndarray:
    """Guesses of the minimiser from the models at the bracket's ends, (n, 4).

    Where ``sum_t x_t = cap`` on each end's model (``x = -b - 2 g mu``), and where the
    two ends' models of ``D`` meet (a slot switching pieces). Not finite where undefined.
    """
    models = _local_models(pp, allowed, np.stack([mu_lo, mu_hi], axis=-1))
    a, b, g = (models[..., i].sum(axis=-1) for i in range(3))
    with np.errstate(divide="ignore", invalid="ignore"):
        roots = (-b - cap) / (2.0 * g)
        da, db, dg = a[..., 0] - a[..., 1], b[..., 0] - b[..., 1], g[..., 0] - g[..., 1]
        disc = np.sqrt(np.maximum(db * db - 4.0 * da * dg, 0.0))
        curved = np.abs(dg) > 1e-300
        cross = [np.where(curved, (-db + sign * disc) / (2.0 * dg), -da / db)
                 for sign in (-1.0, 1.0)]
    return np.concatenate([roots, np.stack(cross, axis=-1)], axis=-1)


def _narrowed(pp: ProfitPieces, allowed: np.ndarray, mu_lo: np.ndarray, mu_hi: np.ndarray,
              step: np.ndarray, cap: float) -> tuple[np.ndarray, np.ndarray]:
    """One round of the bisection: the bracket's new ends.

    Tests evenly spaced points and the local models' guesses, each ``step`` either side
    (a wrong guess only costs time).
    """
    guess = _proposals(pp, allowed, mu_lo, mu_hi, cap)
    grid = np.concatenate([mu_lo[:, None] + (mu_hi - mu_lo)[:, None] * _FRACTIONS,
                           guess - step[:, None], guess + step[:, None]], axis=-1)
    inside = np.isfinite(grid) & (grid > mu_lo[:, None]) & (grid < mu_hi[:, None])
    grid = np.sort(np.where(inside, grid, mu_hi[:, None]), axis=-1)
    over = (_price_sums(pp, allowed, grid) > cap).sum(axis=-1)
    below = np.take_along_axis(grid, np.maximum(over - 1, 0)[:, None], -1)[:, 0]
    above = np.take_along_axis(grid, np.minimum(over, grid.shape[-1] - 1)[:, None], -1)[:, 0]
    return (np.where(over > 0, below, mu_lo),
            np.where(over < grid.shape[-1], above, mu_hi))


def lagrangian_dual(pp: ProfitPieces, allowed: np.ndarray, cap: float) -> Dual:
    """Minimise ``D`` for a batch of nodes, arrays (nodes, T, 3).

    Bisection on the sign of ``cap - sum_t pi_t(mu)``, accelerated by local models.
    Invariant: the least maximisers' prices sum above the cap at ``mu_lo`` and within it
    at ``mu_hi``. ``mu_hi`` starts above every piece's largest slope, where each slot takes
    its least allowed price (``f`` is continuous, so no dearer price can beat it); if
    those exceed the cap the node is empty and its bound is ``-inf``. Nodes leave the
    batch once their bracket is below ``_MU_RESOLUTION`` of its start.
    """
    slopes = np.where(pp.valid, pp.c1 + 2.0 * pp.c2 * pp.lower, 0.0)
    mu_top = np.maximum(slopes.max(axis=(-2, -1)), 0.0) + 1.0
    sums = _price_sums(pp, allowed, np.stack([np.zeros_like(mu_top), mu_top], axis=-1))
    feasible = sums[:, 1] <= cap + 1e-12
    mu_lo = np.zeros_like(mu_top)
    mu_hi = np.where(sums[:, 0] > cap, mu_top, 0.0)
    todo = np.flatnonzero(mu_hi - mu_lo > _MU_RESOLUTION * mu_top)
    for _ in range(_BISECTION_ROUNDS):
        if not todo.size:
            break
        lo, hi = _narrowed(pp.customer(todo), allowed[todo], mu_lo[todo], mu_hi[todo],
                           0.25 * _MU_RESOLUTION * mu_top[todo], cap)
        mu_lo[todo], mu_hi[todo] = lo, hi
        todo = todo[hi - lo > _MU_RESOLUTION * mu_top[todo]]
    bound = np.minimum(dual_value_usd(pp, allowed, mu_lo, cap),
                       dual_value_usd(pp, allowed, mu_hi, cap))
    return Dual(np.where(feasible, bound, -np.inf), mu_lo, mu_hi)


def concave_groups(pp: ProfitPieces) -> np.ndarray:
    """Per slot, a label per piece that changes only at convex kinks: (T, 3) ints.

    Pieces meeting at a kink where the slope does not rise form one concave group.
    Splitting more than needed (e.g. at a point piece) is harmless.
    """
    ends = pp.upper[:, :2]
    left = 2.0 * pp.c2[:, :2] * ends + pp.c1[:, :2]
    right = 2.0 * pp.c2[:, 1:] * ends + pp.c1[:, 1:]
    joined = pp.valid[:, :2] & pp.valid[:, 1:] & (right <= left + 1e-12)
    return np.concatenate([np.zeros((ends.shape[0], 1), dtype=int),
                           np.cumsum(~joined, axis=1)], axis=1)


def one_hot(pieces: np.ndarray) -> np.ndarray:
    """Allowed-piece masks with exactly the given piece per slot, (..., T) -> (..., T, 3)."""
    return pieces[..., None] == np.arange(3)


def assignment_optimum(pp: ProfitPieces, pieces: np.ndarray, dual: Dual,
                       cap: float) -> tuple[np.ndarray, np.ndarray]:
    """A feasible point of each assignment's QP from its dual's bracket, and its profit.

    The least maximisers at ``mu_hi`` fit the cap and those at ``mu_lo`` exceed it; on one
    piece per slot the blend meeting the cap stays on the pieces and, each ``f_t`` being
    concave there, is within the bracket's precision of the optimum. Arrays (n, T) and (n,).
    """
    allowed = one_hot(pieces)
    x_hi = slot_maxima(pp, allowed, dual.mu_hi)[1]
    x_lo = slot_maxima(pp, allowed, dual.mu_lo)[1]
    room, spread = cap - x_hi.sum(axis=-1), (x_lo - x_hi).sum(axis=-1)
    share = np.where(spread > 0.0, np.clip(room / np.where(spread > 0.0, spread, 1.0), 0, 1), 0)
    x = x_hi + share[:, None] * (x_lo - x_hi)
    chosen = [np.take_along_axis(getattr(pp, name), pieces[..., None], -1)[..., 0]
              for name in ("c2", "c1", "c0")]
    return x, ((chosen[0] * x + chosen[1]) * x + chosen[2]).sum(axis=-1)
