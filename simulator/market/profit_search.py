"""Exact search for the load aggregator's profit-maximising prices (seed 001).

Per customer: maximise ``sum_t f_t(pi_t)`` subject to ``price_min <= pi_t <= price_max``
and ``sum_t pi_t <= cap`` (:mod:`~gridcosim.simulator.market.profit_dual` states the
problem, its pieces and its Lagrangian bound). ``f_t`` is concave on each of its up to
three pieces but not across them, so the textbook QP (interior pieces only) is not the
optimum in general. The method is exact:

* Root. The Lagrangian bound over all pieces, and the pieces of its maximisers at the
  bisection's upper end (their prices fit the cap). That assignment is a concave QP whose
  optimum is the minimum of its own dual, with a feasible point recovered
  (:func:`~gridcosim.simulator.market.profit_dual.assignment_optimum`): the incumbent.
* Certificate. ``gap(mu) = mu cap + sum_t max_pi (f_t(pi) - mu pi) - profit`` over ALL
  pieces is the sum of each slot's shortfall from its Lagrangian maximum plus ``mu`` times
  the cap's slack, both non-negative. If ``gap(mu) <= CERTIFICATE_TOL_USD`` for the QP's
  ``mu`` or the dual's, the prices are globally optimal (Lagrangian sufficiency).
* Search. Otherwise (a duality gap: the relaxation splits one slot between two pieces) a
  depth-first branch and bound splits one slot's allowed pieces per level by concave
  group (pieces joined at a concave kink; then piece by piece); the children partition
  the node. Each node's assignment (its maximisers' pieces) is evaluated like the root's.
  A node also drops (1) the pieces whose reduced bound ``D(mu) - (max_k L_tk(mu) -
  L_tk(mu))`` (slot ``t`` forced onto piece ``k`` at the same ``mu``: still a bound) does
  not beat the incumbent, and (2) the pieces that no price-ordered solution needs
  (:func:`price_order_pairs`: an exchange argument shows some optimum orders the prices
  of slots with proportional responses; without this, similar slots make the tree
  exponential). Take that ordered optimum and, per slot, the least piece holding its
  price: these pieces are ordered as the prices are, so (2) never drops them, one child
  keeps them at every branching, and (1) drops them only if the optimum cannot beat the
  incumbent. Nodes whose bound does not beat the incumbent by ``PRUNE_TOL_USD`` are
  pruned. Every branching splits a slot's pieces, so the depth is at most ``2 T`` and the
  search ends, at the global maximum to within ``PRUNE_TOL_USD``. (The problem is a
  knapsack in disguise, so the worst case stays exponential: nearly equal slots that are
  not proportional, e.g. loads within 1 % and upstream costs within 0.1 %, take up to
  ~0.5 s per customer.)
* Prices. HiGHS solves the QP of the optimal pieces
  (:class:`~gridcosim.simulator.market.piece_qp.QpSolver`); its solution is returned, its
  row dual is the cap's multiplier, and a profit short of the search's raises
  :class:`~gridcosim.simulator.market.piece_qp.PricingError`. Customers whose problems
  are proportional (one class, one profile scaled) share their optimal pieces and are
  searched once.

The customers' searches run in step, so each round bounds all their open nodes in one
vectorised dual.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from gridcosim.simulator.market.customer_response import UtilityParameters
from gridcosim.simulator.market.piece_qp import PricingError, QpSolver, Solution
from gridcosim.simulator.market.profit_dual import (
    Dual,
    ProfitPieces,
    assignment_optimum,
    concave_groups,
    lagrangian_dual,
    one_hot,
    piece_maxima,
    slot_maxima,
)

#: Largest gap between a certified profit and its Lagrangian bound ($ per customer).
CERTIFICATE_TOL_USD = 1e-10
#: A node is searched only if its bound exceeds the incumbent by more than this ($).
PRUNE_TOL_USD = 1e-11
_KINK_TOL = 1e-13


def _fix_pieces(pp: ProfitPieces, allowed: np.ndarray, dual: Dual, cap: float,
                incumbent_usd: float) -> np.ndarray:
    """Drop the pieces whose reduced bound (at either end of the bracket) cannot win.

    Forcing slot ``t`` onto piece ``k`` lowers ``D(mu)`` by ``max_j L_tj(mu) - L_tk(mu)``;
    if what is left does not beat the incumbent, neither does any solution using it.
    """
    keep = allowed.copy()
    for mu in (dual.mu_lo, dual.mu_hi):
        value = np.where(allowed, piece_maxima(pp, mu)[1], -np.inf)
        best = value.max(axis=1)
        bound = mu * cap + best.sum()
        keep &= bound - (best[:, None] - value) > incumbent_usd + PRUNE_TOL_USD
    return keep


def _tightened(pp: ProfitPieces, allowed: np.ndarray, dual: Dual, cap: float,
               incumbent_usd: float) -> np.ndarray | None:
    """A node after reduced-cost fixing, or ``None`` if it is pruned."""
    if dual.bound_usd <= incumbent_usd + PRUNE_TOL_USD:
        return None
    tighter = _fix_pieces(pp, allowed, dual, cap, incumbent_usd)
    return tighter if tighter.any(axis=1).all() else None


def price_order_pairs(params: UtilityParameters, rho: np.ndarray) -> np.ndarray:
    """Slot pairs ``(t, u)`` for which some optimum has ``pi_t >= pi_u``, shape (pairs, 2).

    Slots whose responses have the same kink prices respond in proportion to
    ``s = 1 / beta``: ``f_t(pi) = s_t (pi - rho_t) r(pi) dt_h`` with one nonincreasing
    ``r``. If ``s_t >= s_u``, ``rho_t >= rho_u`` and ``s_t rho_t >= s_u rho_u``, then for
    any ``x < y`` either ``f_u(y) <= f_u(x)`` (lowering ``pi_u`` from ``y`` to ``x`` loses
    nothing and frees cap) or ``f_t(y) - f_t(x) >= f_u(y) - f_u(x)`` (swapping the prices
    loses nothing). Pairs are oriented by one total order (``s``, ``rho``, slot); each
    repair raises ``(-sum pi, sum rank_t pi_t)`` lexicographically and uses only prices
    already present, so repairs end, in an optimum meeting every pair.
    """
    kinks = np.stack([params.price_at_hi_usd_per_kwh(), params.price_at_lo_usd_per_kwh()], 1)
    scale = 1.0 / params.beta
    rank = np.empty(scale.size, dtype=int)
    rank[np.lexsort((np.arange(scale.size), rho, scale))] = np.arange(scale.size)
    same = np.all(np.abs(kinks[:, None, :] - kinks[None, :, :]) <= _KINK_TOL, axis=-1)
    weight = scale * rho
    ordered = ((rank[:, None] > rank[None, :]) & (scale[:, None] >= scale[None, :])
               & (rho[:, None] >= rho[None, :]) & (weight[:, None] >= weight[None, :]))
    return np.argwhere(same & ordered)


def _ordered(allowed: np.ndarray, pairs: np.ndarray) -> np.ndarray | None:
    """Drop the pieces no price-ordered solution needs; ``None`` if a slot loses all.

    For each pair ``(t, u)`` (``pi_t >= pi_u``, same pieces) the least piece holding
    ``pi_t`` is at least the least holding ``pi_u``: ``t`` keeps no piece below ``u``'s
    least allowed one, ``u`` none above ``t``'s largest.
    """
    if not pairs.size:
        return allowed
    pieces = np.arange(3)
    for _ in range(allowed.shape[0]):
        low = np.where(allowed, pieces, 3).min(axis=1)
        high = np.where(allowed, pieces, -1).max(axis=1)
        need, limit = low.copy(), high.copy()
        np.maximum.at(need, pairs[:, 0], low[pairs[:, 1]])
        np.minimum.at(limit, pairs[:, 1], high[pairs[:, 0]])
        tighter = allowed & (pieces >= need[:, None]) & (pieces <= limit[:, None])
        if np.array_equal(tighter, allowed):
            break
        allowed = tighter
    return allowed if allowed.any(axis=1).all() else None


def _children(pp: ProfitPieces, allowed: np.ndarray, groups: np.ndarray, dual: Dual,
              preferred: np.ndarray) -> list[np.ndarray]:
    """Split one slot's allowed pieces by concave group, or else one by one.

    The slot is one with several groups (else several pieces) left, preferably one whose
    Lagrangian piece switches inside the bracket. The preferred piece's part comes last.
    """
    labels = np.where(allowed, groups, -1)
    split_groups = (labels.max(axis=1) > np.where(allowed, groups, 9).min(axis=1)).any()
    labels = labels if split_groups else np.where(allowed, np.arange(3), -1)
    free = labels.max(axis=1) > np.where(allowed, labels, 9).min(axis=1)
    switching = free & (slot_maxima(pp, allowed, dual.mu_lo)[0] != preferred)
    slot = int(np.argmax(switching)) if switching.any() else int(np.argmax(free))
    first = labels[slot, preferred[slot]]
    parts = sorted(set(labels[slot][allowed[slot]].tolist()), key=lambda g: g == first)
    children = []
    for part in parts:
        child = allowed.copy()
        child[slot] = labels[slot] == part
        children.append(child)
    return children


@dataclass(frozen=True, eq=False)
class CustomerOptimum:
    """One customer's optimum and its proof.

    Attributes:
        solution: The prices (HiGHS's solution of the optimal pieces' QP).
        mu_kwh: The certificate's multiplier if ``certified``, else the QP's row dual.
        certified: Whether the Lagrangian certificate holds at ``mu``.
        nodes: Search nodes bounded (1: the root only).

    """

    solution: Solution
    mu_kwh: float
    certified: bool
    nodes: int


def _certificate(pp: ProfitPieces, sol: Solution, mus: Sequence[float],
                 cap: float) -> tuple[float, float]:
    """The multiplier among ``mus`` with the smallest gap, and that gap."""
    gaps = [sol.gap_usd(pp, mu, cap) for mu in mus]
    best = int(np.argmin(gaps))
    return mus[best], gaps[best]


@dataclass(eq=False)
class _Search:
    """One customer's depth-first search: its incumbent and open nodes."""

    index: int
    pp: ProfitPieces
    best_pieces: np.ndarray
    best_usd: float
    stack: list[tuple[np.ndarray, Dual]]
    pairs: np.ndarray
    groups: np.ndarray = field(init=False)
    tried: set[bytes] = field(init=False)
    nodes: int = 1

    def __post_init__(self) -> None:
        """The concave groups, and the root assignment as already tried."""
        self.groups = concave_groups(self.pp)
        self.tried = {self.best_pieces.tobytes()}

    def expand(self, cap: float) -> tuple[np.ndarray | None, list[np.ndarray]]:
        """Pop a node; return its new feasible assignment (or ``None``) and its children.

        A pruned node returns neither; a node with one piece per slot has no children.
        """
        allowed, dual = self.stack.pop()
        allowed = _tightened(self.pp, allowed, dual, cap, self.best_usd)
        allowed = None if allowed is None else _ordered(allowed, self.pairs)
        if allowed is None:
            return None, []
        pieces = slot_maxima(self.pp, allowed, dual.mu_hi)[0]
        fresh = pieces.tobytes() not in self.tried
        self.tried.add(pieces.tobytes())
        offer = pieces if fresh and self.pp.on(pieces).lower.sum() <= cap + 1e-12 else None
        if allowed.sum(axis=1).max() < 2:
            return offer, []
        children = (_ordered(c, self.pairs)
                    for c in _children(self.pp, allowed, self.groups, dual, pieces))
        return offer, [c for c in children if c is not None]

    def offer(self, pieces: np.ndarray, profit_usd: float) -> None:
        """Keep an evaluated assignment if it beats the incumbent."""
        if profit_usd > self.best_usd:
            self.best_pieces, self.best_usd = pieces, profit_usd

    def push(self, child: np.ndarray, dual: Dual) -> None:
        """Open a child node unless its bound cannot beat the incumbent."""
        self.nodes += 1
        if dual.bound_usd > self.best_usd + PRUNE_TOL_USD:
            self.stack.append((child, dual))


def _evaluate(stack: ProfitPieces, owners: np.ndarray, pieces: np.ndarray,
              cap: float) -> np.ndarray:
    """The optimal profit of each assignment (its QP's optimum via its dual), (n,)."""
    rows = stack.customer(owners)
    return assignment_optimum(rows, pieces, lagrangian_dual(rows, one_hot(pieces), cap),
                              cap)[1]


def _branch_and_bound(stack: ProfitPieces, cap: float, searches: list[_Search]) -> None:
    """Run the searches in step, one node per customer and round.

    Each round evaluates the new assignments and bounds the children in one vectorised
    dual each.
    """
    while active := [s for s in searches if s.stack]:
        offers, children = [], []
        for search in active:
            offer, kids = search.expand(cap)
            offers += [] if offer is None else [(search, offer)]
            children += [(search, kid) for kid in kids]
        if offers:
            owners = np.array([s.index for s, _ in offers])
            profits = _evaluate(stack, owners, np.stack([p for _, p in offers]), cap)
            for (search, pieces), profit in zip(offers, profits, strict=True):
                search.offer(pieces, float(profit))
        if children:
            rows = stack.customer(np.array([s.index for s, _ in children]))
            duals = lagrangian_dual(rows, np.stack([kid for _, kid in children]), cap)
            for i, (search, kid) in enumerate(children):
                search.push(kid, duals.node(i))


def _representatives(stack: ProfitPieces) -> np.ndarray:
    """Per customer, the first customer whose problem is the same up to a positive factor.

    Customers of one class whose forecasts are one profile scaled (calibrated utility)
    have proportional profits on the same pieces, hence the same optimal pieces.
    """
    scale = np.abs(np.where(stack.valid, stack.c1, 0.0)).max(axis=(1, 2))
    scale = np.where(scale > 0.0, scale, 1.0)[:, None, None]
    parts = [stack.lower, stack.upper, stack.valid, stack.c2 / scale, stack.c1 / scale,
             stack.c0 / scale]
    keys = [np.round(np.concatenate([a[i].ravel() for a in parts]), 12).tobytes()
            for i in range(stack.c2.shape[0])]
    first: dict[bytes, int] = {}
    return np.array([first.setdefault(key, i) for i, key in enumerate(keys)])


def _search_all(stack: ProfitPieces, cap: float, pairs: Sequence[np.ndarray], roots: Dual,
                pieces: np.ndarray, profits: np.ndarray) -> dict[int, _Search]:
    """Search the representatives whose root is not certified; returns them by index."""
    reps = set(_representatives(stack).tolist())
    searches = [_Search(i, stack.customer(i), pieces[i], float(profits[i]),
                        [(_ordered(stack.valid[i], pairs[i]), roots.node(i))], pairs[i])
                for i in sorted(reps) if roots.bound_usd[i] - profits[i] > CERTIFICATE_TOL_USD]
    _branch_and_bound(stack, cap, searches)
    return {s.index: s for s in searches}


def maximise_profit(stack: ProfitPieces, cap: float,
                    pairs: Sequence[np.ndarray]) -> tuple[list[CustomerOptimum], int]:
    """Every customer's global optimum (see the module's docstring) and the QP solves.

    Args:
        stack: The customers' profit pieces, arrays (customers, T, 3).
        cap: The cap on the sum of a customer's prices.
        pairs: Per customer, its :func:`price_order_pairs`.

    Raises:
        PricingError: If HiGHS fails on a QP or finds less than the search.

    """
    roots = lagrangian_dual(stack, stack.valid, cap)
    pieces = slot_maxima(stack, stack.valid, roots.mu_hi)[0]
    profits = _evaluate(stack, np.arange(len(pieces)), pieces, cap)
    found = _search_all(stack, cap, pairs, roots, pieces, profits)
    qp, optima = QpSolver(), []
    for i, rep in enumerate(_representatives(stack)):
        search, pp = found.get(int(rep)), stack.customer(i)
        sol = qp.solve(pp, pieces[i] if search is None else search.best_pieces, cap)
        expected = profits[i] if search is None else search.best_usd
        if rep == i and sol.profit_usd < expected - CERTIFICATE_TOL_USD:
            raise PricingError(f"HiGHS's QP for customer {i} falls short of the search")
        mu, gap = _certificate(pp, sol, [sol.mu_kwh, float(roots.mu_lo[i]),
                                         float(roots.mu_hi[i])], cap)
        nodes = 1 if search is None or rep != i else search.nodes
        optima.append(CustomerOptimum(sol, mu, gap <= CERTIFICATE_TOL_USD, nodes))
    return optima, qp.solves
