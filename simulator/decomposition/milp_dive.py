"""A microgrid's MILP answered from its LP relaxation wherever a dive proves the optimum.

Each microgrid's MILP is solved for three things: price responses (cost minus the value
of the exchange at the signal's prices, the dual bound being ``L(λ)``), the restoration
at a proposal (the distance to the nearest schedule the microgrid can run) and the
starting schedule. On the microgrids' models the LP relaxation is tight (equal optimal
values) on almost every such solve, but its vertex often has a few fractional
commitments or modes, and HiGHS spends 8–90 ms per MILP on presolve, heuristics and the
root, where the LP takes well under one. So :class:`RelaxedMILP` answers in three steps,
each exact:

1. the LP relaxation (a clone of the compiled MILP without integrality, holding the
   MILP's costs and bounds): its value ``z`` is a lower bound on the MILP's; an integral
   vertex is a MILP optimum;
2. otherwise a depth-first dive on the fractional binaries (the most fractional first,
   its nearest value first), pruning every node whose LP value exceeds ``z`` by more than
   the MILP's own gap tolerance: an integral leaf is then optimal within that tolerance,
   with ``z`` as its proven bound;
3. otherwise (the LP is not tight, or the dive ran out of its LP budget) the MILP itself,
   started from the best integral schedule the dive met.

The outcome has the MILP's form: ``objective`` the schedule's value and ``bound`` a proven
lower bound within ``max(mip_abs_gap, mip_rel_gap·|objective|)`` of it. What it returns
depends only on the relaxation's starting state and the solves of the window (the
relaxation is reset with the window's other models).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gridcosim.simulator.highs_instance import DEFAULT_OPTIONS, SolveOutcome
from gridcosim.simulator.highs_model import HighsModel
from gridcosim.simulator.warm_basis import WarmBasis

#: A binary within this of 0 or 1 counts as integral (as in the responder's LP check).
INTEGRAL_TOL = 1e-9
#: LP solves a dive may spend before the MILP takes over.
DIVE_BUDGET = 24


@dataclass
class DiveState:
    """One dive's bookkeeping: the bound's limit, the LP budget left, the best schedule met."""

    limit: float
    lower: np.ndarray
    upper: np.ndarray
    budget: int = DIVE_BUDGET
    best: SolveOutcome | None = None

    def offer(self, out: SolveOutcome) -> None:
        """Keep an integral schedule above the limit if it is the best one met."""
        if self.best is None or out.objective < self.best.objective:
            self.best = out


@dataclass
class RelaxedMILP:
    """A compiled MILP and the LP relaxation that answers for it where it can.

    The caller keeps the relaxation's rows and bounds equal to the MILP's (both are set
    together); the objective is copied from the MILP at every solve.

    Args:
        milp: The compiled MILP (the relaxation is a clone: same rows and columns).
        binary_cols: The MILP's binary columns.
        options: HiGHS options of the relaxation.

    """

    milp: HighsModel
    binary_cols: list[int]
    options: dict[str, Any] | None = None
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.lp = HighsModel.clone(self.milp, relax_integrality=True, options=self.options)
        self._root: Any = None  # HiGHS's basis at the last root solve since the reset
        self._binary = np.asarray(self.binary_cols, dtype=np.int32)
        opts = {**DEFAULT_OPTIONS, **self.milp._options}
        self._rel_gap = float(opts["mip_rel_gap"])
        self._abs_gap = float(opts["mip_abs_gap"])

    def solve(self, start: HighsModel | None = None) -> SolveOutcome:
        """The MILP's optimum as it stands now (its objective, rows and bounds).

        ``start``: an LP of the same rows and columns whose current basis the relaxation
        starts from (e.g. the unified LP just solved at the same proposal).
        """
        tick = time.perf_counter()
        self.lp.copy_costs(self.milp)
        if start is not None:
            self.lp.take_basis(start)
        root = self.lp.solve()
        self._root = self.lp.highs.getBasis()
        if root.status != "optimal" or not root.has_solution:
            return self._milp(None)  # infeasible or troubled: the MILP says what it is
        bound = float(root.objective)
        lower, upper = self.lp.col_bounds(self._binary)
        state = DiveState(bound + self._tolerance(bound), lower, upper)
        try:
            found = self._dive(root, state)
        finally:  # the binaries' own bounds back
            self.lp.set_cols_bounds(self._binary, lower, upper)
        if found is None:
            return self._milp(state.best)
        self.counts["lp" if found is root else "dive"] += 1
        return SolveOutcome("optimal", float(found.objective), min(bound, found.objective),
                            found.x, None, time.perf_counter() - tick)

    def reset(self, basis: WarmBasis | None = None) -> None:
        """Start the next window from ``basis`` (else cold), as a freshly compiled LP."""
        self.lp.reset(basis)
        self._root = None

    @property
    def last_root(self) -> Any:
        """HiGHS's basis at the relaxation's last root solve since :meth:`reset` (or ``None``)."""
        return self._root

    def _milp(self, start: SolveOutcome | None) -> SolveOutcome:
        self.counts["milp"] += 1
        if start is not None:
            self.milp.set_start(start.x)
        return self.milp.solve()

    def _tolerance(self, bound: float) -> float:
        """How far above the bound a schedule may be: HiGHS's own MIP gap test."""
        return max(self._abs_gap, self._rel_gap * abs(bound))

    def _integral(self, out: SolveOutcome) -> bool:
        values = out.x[self._binary]
        return bool(np.all(np.abs(values - np.round(values)) <= INTEGRAL_TOL))

    def _dive(self, out: SolveOutcome, state: DiveState) -> SolveOutcome | None:
        """Depth first from ``out`` to an integral node within the limit (or ``None``)."""
        values = out.x[self._binary]
        frac = np.abs(values - np.round(values))
        if frac.max(initial=0.0) <= INTEGRAL_TOL:
            return out
        k = int(np.argmax(frac))
        nearest = float(np.round(values[k]))
        for value in (nearest, 1.0 - nearest):
            if state.budget <= 0:
                break
            state.budget -= 1
            child = self._solve_fixed(k, value)
            if child is None:
                continue
            if child.objective <= state.limit:
                found = self._dive(child, state)
                if found is not None:
                    return found
            elif self._integral(child):
                state.offer(child)
        self.lp.set_col_bounds(int(self._binary[k]), state.lower[k], state.upper[k])
        return None

    def _solve_fixed(self, k: int, value: float) -> SolveOutcome | None:
        self.lp.set_col_bounds(int(self._binary[k]), value, value)
        out = self.lp.solve()
        return out if out.status == "optimal" and out.has_solution else None
