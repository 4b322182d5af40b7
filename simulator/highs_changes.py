"""Changes to a compiled HiGHS model, in bulk: bounds, right-hand sides, costs, cuts.

:class:`~gridcosim.simulator.highs_model.HighsModel` compiles a Pyomo model once; the
decomposition then only changes it. Every change here is one HiGHS call for many rows or
columns (a rolling horizon re-loads thousands of bounds per window), and each one counts
as a new solver state (:attr:`HighsChanges._state`: a basis read before it is read again
after it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import highspy
import numpy as np
import pyomo.environ as pyo

from gridcosim.simulator.highs_instance import INF, RhsRows, SolveOutcome


class HighsChanges:
    """The changes of a compiled model (mixed into :class:`HighsModel`).

    Attributes used: ``highs`` (the instance), ``_costs`` (every column's objective
    coefficient), the compiled maps ``_row``, ``_rhs_cache``,
    ``_bound_exprs``, the compiled shape ``_compiled``, ``_n_int``, ``_options`` and the
    state counter ``_state``.
    """

    highs: Any
    _costs: np.ndarray
    _row: dict[int, int]
    _rhs_cache: dict[int, tuple[int, bool, bool, float, float]]
    _bound_exprs: dict[int, tuple[int, Any, Any, float, float]]
    _compiled: tuple[int, int, int]
    _n_int: int
    _options: dict[str, Any]
    _state: int

    @property
    def num_cols(self) -> int:
        """Number of columns (variables) in HiGHS."""
        return self.highs.getNumCol()

    @property
    def num_rows(self) -> int:
        """Number of rows (constraints) in HiGHS."""
        return self.highs.getNumRow()

    def _set_integrality(self, cols: list[int]) -> None:
        idx = np.array(cols, dtype=np.int32)
        kinds = np.full(len(cols), highspy.HighsVarType.kInteger)
        self.highs.changeColsIntegrality(len(cols), idx, kinds)
        self._n_int += len(cols)
        self.highs.setOptionValue("presolve", "choose")  # LP re-solve options do not suit MIPs

    def refresh_rows(self, cons: list[Any]) -> None:
        """Re-read the bounds of ``cons`` from their (mutable-parameter) expressions."""
        self.set_row_bounds(*self.row_bounds(cons))

    def row_bounds(self, cons: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row indices and current bounds of ``cons``, read from their expressions.

        The bound expressions are taken from Pyomo once per row and evaluated on each call
        (they read the mutable parameters), so models that share a Pyomo model (clones)
        evaluate them once and each set them with :meth:`set_row_bounds`.
        """
        n = len(cons)
        idx, lo, hi = np.empty(n, dtype=np.int32), np.empty(n), np.empty(n)
        for k, con in enumerate(cons):
            row, lower, upper, off_lo, off_hi = self._bound_expr(con)
            idx[k] = row
            lo[k] = pyo.value(lower) + off_lo if lower is not None else -INF
            hi[k] = pyo.value(upper) + off_hi if upper is not None else INF
        return idx, lo, hi

    def _bound_expr(self, con: Any) -> tuple[int, Any, Any, float, float]:
        key = id(con)
        found = self._bound_exprs.get(key)
        if found is None:
            _, _, _, off_lo, off_hi = self._rhs_cache[key]
            found = (self._row[key], con.lower if con.has_lb() else None,
                     con.upper if con.has_ub() else None, off_lo, off_hi)
            self._bound_exprs[key] = found
        return found

    def set_row_bounds(self, rows: Any, lb: Any, ub: Any) -> None:
        """Change several rows' bounds at once."""
        self._state += 1
        idx = np.asarray(rows, dtype=np.int32)
        self.highs.changeRowsBounds(len(idx), idx, np.asarray(lb, dtype=float),
                                    np.asarray(ub, dtype=float))

    def rhs_rows(self, cons: list[Any]) -> RhsRows:
        """Row indices and bound offsets of parametric rows, for repeated :meth:`set_rhs`."""
        info = [self._rhs_info(con) for con in cons]
        return RhsRows(
            idx=np.array([i[0] for i in info], dtype=np.int32),
            off_lo=np.array([i[3] if i[1] else np.nan for i in info], dtype=float),
            off_hi=np.array([i[4] if i[2] else np.nan for i in info], dtype=float))

    def set_rhs(self, cons: list[Any] | RhsRows, values: Any) -> None:
        """Set the right-hand side of parametric rows directly (fast path of refresh_rows).

        ``values[k]`` is the value the parameter expression of ``cons[k]`` takes; the row
        keeps the bound type (equality, ``<=`` or ``>=``) it was compiled with. ``cons``
        may be a precomputed :meth:`rhs_rows`.
        """
        self._state += 1
        rows = cons if isinstance(cons, RhsRows) else self.rhs_rows(cons)
        v = np.asarray(values, dtype=float)
        if v.shape != rows.idx.shape:
            raise ValueError(f"{len(v)} values for {len(rows.idx)} rows")
        lo = np.where(np.isnan(rows.off_lo), -INF, v + rows.off_lo)
        hi = np.where(np.isnan(rows.off_hi), INF, v + rows.off_hi)
        self.highs.changeRowsBounds(len(rows.idx), rows.idx, lo, hi)

    def _rhs_info(self, con: Any) -> tuple[int, bool, bool, float, float]:
        """Row, whether it has a lower and an upper bound, and their offsets (compiled)."""
        return self._rhs_cache[id(con)]

    def set_cols_bounds(self, cols: Any, lb: Any, ub: Any) -> None:
        """Change several columns' bounds at once."""
        self._state += 1
        idx = np.asarray(cols, dtype=np.int32)
        lo = np.broadcast_to(np.asarray(lb, dtype=float), idx.shape).copy()
        hi = np.broadcast_to(np.asarray(ub, dtype=float), idx.shape).copy()
        self.highs.changeColsBounds(len(idx), idx, lo, hi)

    def col_bounds(self, cols: Any) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of ``cols`` as HiGHS holds them now."""
        idx = np.asarray(cols, dtype=np.int32)
        _, _, _, lo, hi, _ = self.highs.getCols(len(idx), idx)
        return np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)

    def lp_bounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every column's and row's bounds as HiGHS holds them (col lo, col hi, row lo, hi)."""
        lp = self.highs.getLp()
        return tuple(np.asarray(v, dtype=float) for v in (
            lp.col_lower_, lp.col_upper_, lp.row_lower_, lp.row_upper_))

    def set_col_bounds(self, col: int, lb: float, ub: float) -> None:
        """Change one column's bounds."""
        self._state += 1
        self.highs.changeColBounds(int(col), float(lb), float(ub))

    def add_row(self, cols: Any, coefs: Any, lb: float, ub: float) -> int:
        """Append a row ``lb <= sum coefs * x[cols] <= ub``; return its index."""
        self._state += 1
        idx = np.asarray(cols, dtype=np.int32)
        val = np.asarray(coefs, dtype=float)
        self.highs.addRow(float(lb), float(ub), len(idx), idx, val)
        return self.highs.getNumRow() - 1

    def add_rows(self, rows: list[tuple[Any, Any, float, float]]) -> range:
        """Append rows ``(cols, coefs, lb, ub)`` in one call; return their indices."""
        self._state += 1
        first = self.highs.getNumRow()
        lengths = [len(cols) for cols, _, _, _ in rows]
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int32)
        idx = np.concatenate([np.asarray(c, dtype=np.int32) for c, _, _, _ in rows] or
                             [np.empty(0, dtype=np.int32)]).astype(np.int32)
        val = np.concatenate([np.asarray(v, dtype=float) for _, v, _, _ in rows] or
                             [np.empty(0)]).astype(float)
        self.highs.addRows(len(rows), np.array([r[2] for r in rows], dtype=float),
                           np.array([r[3] for r in rows], dtype=float), len(idx), starts,
                           idx, val)
        return range(first, first + len(rows))

    def add_column(self, cost: float, lb: float, ub: float, rows: Any, values: Any) -> int:
        """Append a column with its row entries in one call; return its index."""
        self._state += 1
        idx = np.asarray(rows, dtype=np.int32)
        val = np.asarray(values, dtype=float)
        self.highs.addCol(float(cost), float(lb), float(ub), len(idx), idx, val)
        self._costs = np.append(self._costs, float(cost))
        return self.highs.getNumCol() - 1

    def set_col_cost(self, col: int, cost: float) -> None:
        """Change one column's objective coefficient."""
        self._state += 1
        self.highs.changeColCost(int(col), float(cost))
        self._costs[int(col)] = float(cost)

    def set_costs(self, cols: Any, costs: Any) -> None:
        """Change several columns' objective coefficients at once."""
        self._state += 1
        idx = np.asarray(cols, dtype=np.int32)
        val = np.broadcast_to(np.asarray(costs, dtype=float), idx.shape).copy()
        self.highs.changeColsCost(len(idx), idx, val)
        self._costs[idx] = val

    def copy_costs(self, other: HighsChanges) -> None:
        """Take ``other``'s objective coefficients (same columns) where they differ."""
        if len(other._costs) != len(self._costs):
            raise ValueError(f"{len(other._costs)} columns' costs for {len(self._costs)}")
        differ = np.flatnonzero(self._costs != other._costs)
        if len(differ):
            self.set_costs(differ, other._costs[differ])

    def costs(self, cols: Any) -> np.ndarray:
        """The objective coefficients of ``cols`` (as set now)."""
        return self._costs[np.asarray(cols, dtype=np.int64)].copy()

    @contextmanager
    def temporary_costs(self, costs: dict[int, float] | tuple[Any, Any]) -> Iterator[None]:
        """Solve with some objective coefficients replaced; restore them afterwards.

        ``costs`` maps columns to coefficients, or is a pair of arrays (columns,
        coefficients; each column once). Both changes are one bulk call each.
        """
        if isinstance(costs, dict):
            cols = np.fromiter(costs.keys(), dtype=np.int32, count=len(costs))
            values = np.fromiter(costs.values(), dtype=float, count=len(costs))
        else:
            cols, values = np.asarray(costs[0], dtype=np.int32), costs[1]
        saved = self._costs[cols].copy()
        self.set_costs(cols, values)
        try:
            yield
        finally:
            self.set_costs(cols, saved)

    def add_col(self, cost: float, lb: float, ub: float, *, integer: bool = False) -> int:
        """Append a column (with no row entries yet); return its index."""
        self._state += 1
        self.highs.addVar(float(lb), float(ub))
        j = self.highs.getNumCol() - 1
        self._costs = np.append(self._costs, 0.0)
        if cost:
            self.set_col_cost(j, cost)
        if integer:
            self._set_integrality([j])
        return j

    def set_start(self, x: np.ndarray) -> None:
        """Give a MIP solve a starting solution (every column's value; HiGHS checks it)."""
        self._state += 1
        sol = highspy.HighsSolution()
        sol.col_value = np.asarray(x, dtype=float).tolist()
        sol.value_valid = True
        self.highs.setSolution(sol)

    def truncate(self) -> None:
        """Drop every row and column appended since compilation (cuts, branch selectors).

        HiGHS keeps the basis of the remaining rows and columns, so the next solve starts
        warm from the last one.
        """
        self._state += 1
        rows, cols, n_int = self._compiled
        if self._n_int != n_int:  # integer columns were appended: they go too
            self._n_int = n_int
            if not n_int:
                self.highs.setOptionValue("presolve", self._options.get("presolve", "choose"))
        if self.num_rows > rows:
            extra = np.arange(rows, self.num_rows, dtype=np.int32)
            self.highs.deleteRows(len(extra), extra)
        if self.num_cols > cols:
            extra = np.arange(cols, self.num_cols, dtype=np.int32)
            self.highs.deleteCols(len(extra), extra)
            self._costs = self._costs[:cols].copy()

    def any_at_bound(self, outcome: SolveOutcome, cols: Any, rows: Any,
                     tol: float = 1e-7) -> bool:
        """Whether one of ``cols`` or ``rows`` sits at a finite bound in ``outcome``.

        Fixed columns and equality rows do not count. ``outcome`` must be this model's last
        solve (row activities are read from HiGHS).
        """
        cols, rows = np.asarray(cols, dtype=np.int32), np.asarray(rows, dtype=np.int32)
        if len(cols):
            _, _, _, lo, hi, _ = self.highs.getCols(len(cols), cols)
            if _at_bound(outcome.x[cols], lo, hi, tol):
                return True
        if len(rows):
            _, _, lo, hi, _ = self.highs.getRows(len(rows), rows)
            activity = np.asarray(self.highs.getSolution().row_value)[rows]
            return _at_bound(activity, lo, hi, tol)
        return False


def _at_bound(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, tol: float) -> bool:
    """Whether a value is within ``tol`` of its finite lower or upper bound (fixed: no)."""
    with np.errstate(invalid="ignore"):  # inf - inf
        near = (np.abs(values - lo) <= tol) | (np.abs(hi - values) <= tol)
    return bool(np.any(near & (hi - lo > tol)))
