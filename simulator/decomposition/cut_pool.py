"""The master's droppable cuts: kept in HiGHS while they bind, parked in a pool otherwise.

Unified cuts (§3a, at the root or as a leaf's perspective) and Lagrangian cuts (§7) are
valid inequalities: dropping one only weakens the master, so its bound stays a valid lower
bound. A cut that has been slack at ``age_limit`` consecutive master solutions is
deleted from the HiGHS model and parked; after every master solve the parked cuts are
checked at the solution and those it violates go back in before the master is solved
again. The solution the master returns therefore satisfies every cut ever added: it is
an optimal solution of the master with all of them, and the loop's bounds and its finite
convergence are those of the master that keeps everything (docs/formulation.md §4).

Selectors, copies and restoration-cut rows carry the branching and the distance cuts'
binaries; they are never dropped (nor are AC cuts, which the network LP holds too).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from gridcosim.simulator.highs_model import HighsModel

#: A cut binds when its slack is at most this, relative to ``1 + |bound|``.
BINDING_TOL = 1e-7
#: A parked cut is violated when the solution exceeds its bound by more than this
#: (relative to ``1 + |bound|``; HiGHS's primal feasibility tolerance).
VIOLATION_TOL = 1e-7


@dataclass(frozen=True)
class Cut:
    """One row ``lb ≤ Σ coefs·x[cols] ≤ ub`` (one of the bounds infinite)."""

    cols: np.ndarray
    coefs: np.ndarray
    lb: float
    ub: float


@dataclass
class _Rows:
    """Cuts with a sparse matrix of them built when asked (and kept until they change)."""

    cuts: list[Cut] = field(default_factory=list)
    _matrix: sp.csr_matrix | None = None

    def append(self, cut: Cut) -> None:
        self.cuts.append(cut)
        self._matrix = None

    def keep(self, mask: np.ndarray) -> list[Cut]:
        """Keep the cuts where ``mask`` holds; return the others."""
        gone = [c for c, k in zip(self.cuts, mask, strict=True) if not k]
        self.cuts = [c for c, k in zip(self.cuts, mask, strict=True) if k]
        self._matrix = None
        return gone

    def activity(self, x: np.ndarray) -> np.ndarray:
        """``A x`` for the cuts' rows."""
        if not self.cuts:
            return np.zeros(0)
        if self._matrix is None:
            lengths = [len(c.cols) for c in self.cuts]
            indptr = np.concatenate([[0], np.cumsum(lengths)])
            cols = np.concatenate([c.cols for c in self.cuts])
            self._matrix = sp.csr_matrix(
                (np.concatenate([c.coefs for c in self.cuts]), cols, indptr),
                shape=(len(self.cuts), int(cols.max(initial=0)) + 1))
        return self._matrix @ x[:self._matrix.shape[1]]

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.array([c.lb for c in self.cuts]), np.array([c.ub for c in self.cuts]))


class CutPool:
    """The droppable cut rows of one HiGHS model.

    Args:
        hm: The master's model.
        age_limit: Consecutive slack solutions after which a cut is parked (0: never).

    """

    def __init__(self, hm: HighsModel, age_limit: int):
        self.hm, self.age_limit = hm, age_limit
        self.begin()

    def begin(self) -> None:
        """Forget every cut (a new window; the model's appended rows are gone)."""
        self._kept = _Rows()
        self._rows: list[int] = []  # the HiGHS row of each kept cut, ascending
        self._ages: list[int] = []
        self._parked = _Rows()
        self._solves = 0
        self.dropped = 0
        self.readded = 0

    @property
    def kept(self) -> int:
        """Cuts in the model now."""
        return len(self._rows)

    @property
    def parked(self) -> int:
        """Cuts in the pool now."""
        return len(self._parked.cuts)

    def add(self, cut: Cut) -> None:
        """Add a cut's row to the model."""
        self._rows.append(self.hm.add_row(cut.cols, cut.coefs, cut.lb, cut.ub))
        self._kept.append(cut)
        self._ages.append(0)

    def restore_violated(self, x: np.ndarray) -> int:
        """Put the parked cuts that ``x`` violates back into the model; how many."""
        if not self._parked.cuts:
            return 0
        act = self._parked.activity(x)
        lb, ub = self._parked.bounds()
        tol = VIOLATION_TOL * (1.0 + np.minimum(np.abs(lb), np.abs(ub)))
        violated = (act < lb - tol) | (act > ub + tol)
        if not violated.any():
            return 0
        for cut in self._parked.keep(~violated):
            self.add(cut)
        self.readded += int(violated.sum())
        return int(violated.sum())

    def after_solve(self, x: np.ndarray) -> None:
        """Age the kept cuts at the master's solution; park the old slack ones."""
        if not self.age_limit or not self._rows:
            return
        act = self._kept.activity(x)
        lb, ub = self._kept.bounds()
        tol = BINDING_TOL * (1.0 + np.minimum(np.abs(lb), np.abs(ub)))
        binding = (act <= lb + tol) | (act >= ub - tol)
        self._ages = [0 if b else a + 1 for a, b in zip(self._ages, binding, strict=True)]
        self._solves += 1
        if self._solves % self.age_limit == 0:
            self._park(np.array(self._ages) >= self.age_limit)

    def _park(self, old: np.ndarray) -> None:
        """Delete the ``old`` cuts' rows from the model and park them."""
        if not old.any():
            return
        rows = np.asarray(self._rows)
        gone = rows[old].astype(np.int32)
        self.hm.highs.deleteRows(len(gone), gone)
        kept = rows[~old]
        self._rows = (kept - np.searchsorted(gone, kept)).tolist()  # rows below moved up
        self._ages = [a for a, o in zip(self._ages, old, strict=True) if not o]
        for cut in self._kept.keep(~old):
            self._parked.append(cut)
        self.dropped += int(old.sum())
