"""HiGHS's QP of the load aggregator's pricing problem with one piece per slot (seed 001).

With each slot's price restricted to one piece of its response
(:class:`~gridcosim.simulator.market.profit_dual.ProfitPieces`), the profit
``sum_t c2 pi_t^2 + c1 pi_t + c0`` is concave and separable with one linear row, the cap
``sum_t pi_t <= cap``. HiGHS minimises its negation (a positive semidefinite diagonal
Hessian ``-2 c2``; none if every piece is linear, then HiGHS solves an LP); the row dual
gives the cap's multiplier ``mu = -dual >= 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np

from gridcosim.simulator.highs_instance import INF, STATUS, quiet_highs
from gridcosim.simulator.market.profit_dual import ProfitPieces, dual_value_usd

#: HiGHS options for the QPs: no Hessian regularisation (it would shift the solution).
HIGHS_OPTIONS = {"threads": 1, "random_seed": 0, "qp_regularization_value": 0.0}


class PricingError(RuntimeError):
    """HiGHS did not solve a pricing QP to optimality, or disagreed with the search."""


@dataclass(frozen=True, eq=False)
class Solution:
    """A solved piece assignment: prices, pieces, the cap's multiplier ``mu``, profits."""

    prices_usd_per_kwh: np.ndarray
    pieces: np.ndarray
    mu_kwh: float
    slot_profit_usd: np.ndarray

    @property
    def profit_usd(self) -> float:
        """The customer's total profit."""
        return float(self.slot_profit_usd.sum())

    def gap_usd(self, pp: ProfitPieces, mu: float, cap: float) -> float:
        """The Lagrangian certificate's gap at ``mu`` over all pieces (>= 0 up to rounding)."""
        return float(dual_value_usd(pp, pp.valid, np.array(mu), cap)) - self.profit_usd


class QpSolver:
    """One HiGHS instance solving QPs with one piece per slot, and its count of solves."""

    def __init__(self) -> None:
        self._highs = quiet_highs(HIGHS_OPTIONS)
        self.solves = 0

    def solve(self, pp: ProfitPieces, pieces: np.ndarray, cap: float) -> Solution:
        """Maximise the profit on the given pieces within the cap.

        Raises:
            PricingError: If HiGHS does not report an optimum.

        """
        chosen = pp.on(pieces)
        self._highs.passModel(_qp_model(chosen, cap))
        self._highs.run()
        self.solves += 1
        status = STATUS.get(self._highs.getModelStatus(), "unknown")
        if status != "optimal":
            raise PricingError(f"HiGHS returned {status!r} for a pricing QP")
        sol = self._highs.getSolution()
        x = np.clip(np.asarray(sol.col_value), chosen.lower, chosen.upper)
        profit = (chosen.c2 * x + chosen.c1) * x + chosen.c0
        return Solution(x, pieces, max(0.0, -float(sol.row_dual[0])), profit)


def _qp_model(chosen: ProfitPieces, cap: float) -> highspy.HighsModel:
    """``min sum(-c2 x^2 - c1 x)`` on ``[lower, upper]`` with ``sum x <= cap``."""
    n = chosen.c2.size
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, 1
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = -chosen.c1, chosen.lower, chosen.upper
    lp.row_lower_, lp.row_upper_ = np.array([-INF]), np.array([cap])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.arange(n + 1, dtype=np.int32)
    lp.a_matrix_.index_ = np.zeros(n, dtype=np.int32)
    lp.a_matrix_.value_ = np.ones(n)
    model = highspy.HighsModel()
    model.lp_ = lp
    curved = np.flatnonzero(chosen.c2 < 0.0).astype(np.int32)
    if curved.size:
        counts = np.zeros(n + 1, dtype=np.int32)
        counts[curved + 1] = 1
        hessian = highspy.HighsHessian()
        hessian.dim_, hessian.format_ = n, highspy.HessianFormat.kTriangular
        hessian.start_, hessian.index_ = np.cumsum(counts, dtype=np.int32), curved
        hessian.value_ = -2.0 * chosen.c2[curved]
        model.hessian_ = hessian
    return model
