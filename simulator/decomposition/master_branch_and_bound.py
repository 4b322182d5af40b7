"""A small best-first branch and bound over the master's few binary columns.

The master has thousands of continuous network columns and a handful of binaries
(branch selectors, restoration-cut switches). HiGHS's MIP solver re-solves the root LP
from scratch at every call (0.2-0.4 s on the IEEE 123 master), while the LP relaxation,
kept in the same persistent instance, re-solves from its last basis in milliseconds after
a bound change. So the master keeps its binaries continuous in HiGHS and branches here.
With the disjunctive (hull) form of the selector constraints the trees stay small.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gridcosim.simulator.highs_instance import SolveOutcome
from gridcosim.simulator.highs_model import HighsModel

_INT_TOL = 1e-6


@dataclass(frozen=True)
class BranchAndBoundResult:
    """Outcome of :func:`branch_and_bound` (``bound`` is a valid lower bound)."""

    status: str
    objective: float
    bound: float
    incumbent: SolveOutcome | None
    nodes: int


def _fractional(x: np.ndarray, cols: Sequence[int]) -> int | None:
    """The binary column farthest from integrality, or ``None`` if all are integral."""
    best, best_frac = None, _INT_TOL
    for col in cols:
        frac = abs(x[col] - round(x[col]))
        if frac > best_frac:
            best, best_frac = col, frac
    return best


def branch_and_bound(hm: HighsModel, binaries: Sequence[int], upper: dict[int, float], *,
                     rel_gap: float = 1e-9, time_limit_s: float = 60.0,
                     node_limit: int = 20000, start: dict[int, float] | None = None
                     ) -> BranchAndBoundResult:
    """Minimise ``hm`` with ``binaries`` in {0, 1}: best-first search on their bounds.

    Args:
        hm: The model; binary columns are continuous in [0, ub] in HiGHS.
        binaries: Columns that must be integral.
        upper: Their upper bounds outside the search (0 for a column switched off).
        rel_gap: Prune nodes whose LP bound is within this of the incumbent.
        time_limit_s: Stop after this long (status ``time_limit``, bound from open nodes).
        node_limit: Stop after this many LPs (status ``node_limit``).
        start: A full assignment of the binaries tried first (e.g. the last incumbent's);
            its LP gives an early incumbent that prunes the search.

    """
    tick = time.perf_counter()
    best: SolveOutcome | None = None
    best_obj = math.inf
    heap: list[tuple[float, int, dict[int, float]]] = [(-math.inf, 0, {})]
    if start:
        heap.append((-math.inf, -1, dict(start)))
        heapq.heapify(heap)
    nodes, status, counter = 0, "optimal", 1
    while heap:
        if nodes >= node_limit or time.perf_counter() - tick > time_limit_s:
            status = "node_limit" if nodes >= node_limit else "time_limit"
            break
        parent_bound, _, fix = heapq.heappop(heap)
        if parent_bound >= best_obj - rel_gap * max(1.0, abs(best_obj)):
            break  # best-first: every open node is at least as bad
        out = _solve_node(hm, binaries, upper, fix)
        nodes += 1
        if not out.has_solution or out.status != "optimal" or (
                out.objective >= best_obj - rel_gap * max(1.0, abs(best_obj))):
            continue
        col = _fractional(out.x, binaries)
        if col is None:
            best, best_obj = out, out.objective
            continue
        for value in (1.0, 0.0):
            heapq.heappush(heap, (out.objective, counter, {**fix, col: value}))
            counter += 1
    _reset(hm, binaries, upper)
    bound = min([best_obj, *(b for b, _, _ in heap)]) if status != "optimal" else best_obj
    if best is None and status == "optimal":
        status = "infeasible"
    return BranchAndBoundResult(status, best_obj, bound, best, nodes)


def _solve_node(hm: HighsModel, binaries: Sequence[int], upper: dict[int, float],
                fix: dict[int, float]) -> SolveOutcome:
    for col in binaries:
        value = fix.get(col)
        if value is None:
            hm.set_col_bounds(col, 0.0, upper[col])
        elif value > upper[col]:
            hm.set_col_bounds(col, upper[col], upper[col])
            return SolveOutcome("infeasible", None, None, None, None, 0.0)
        else:
            hm.set_col_bounds(col, value, value)
    return hm.solve()


def _reset(hm: HighsModel, binaries: Sequence[int], upper: dict[int, float]) -> None:
    for col in binaries:
        hm.set_col_bounds(col, 0.0, upper[col])
