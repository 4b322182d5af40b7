"""A Pyomo model compiled once into a persistent HiGHS instance.

The optimisation models are written in Pyomo (their math lives in
:mod:`simulator.models`); the decomposition loop solves them hundreds of times with a
changed right-hand side, a fixed binary or an added cut. Going through a Pyomo solver
interface on every solve costs about as much as HiGHS itself on these small LPs, so the
loop compiles each model once into a HiGHS instance and then talks to HiGHS
directly: row bounds are refreshed from Pyomo's mutable parameters, columns and rows
(cuts, branch selectors) are appended, and HiGHS warm-starts from its last basis.

Pyomo variables fixed with ``Var.fix()`` are compiled as constants: re-fixing one later
has no effect on the compiled model. Fix values through :meth:`HighsModel.set_col_bounds`
or mutable parameters instead.

HiGHS instances, options, statuses and solve outcomes are in
:mod:`~gridcosim.simulator.highs_instance`.

Dual convention (pinned by a test): HiGHS's row dual is ``d objective / d rhs`` of a
minimisation, so a binding ``>=`` row has a positive dual and a binding ``<=`` row a
negative one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import highspy
import numpy as np
import pyomo.environ as pyo
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler

from gridcosim.scenarios.errors import SolverError
from gridcosim.simulator.highs_instance import (
    DEFAULT_OPTIONS,
    INF,
    STATUS,
    RhsRows,
    SolveOutcome,
    quiet_highs,
)
from gridcosim.simulator.warm_basis import WarmBasis


class HighsModel:
    """A linear (mixed-integer) Pyomo model held in a persistent HiGHS instance.

    Args:
        model: A Pyomo model with one minimised linear objective.
        relax_integrality: Compile integer columns as continuous (LP relaxation).
        options: HiGHS options on top of :data:`DEFAULT_OPTIONS`.

    """

    def __init__(self, model: pyo.ConcreteModel, *, relax_integrality: bool = False,
                 options: dict[str, Any] | None = None):
        self.model = model
        self._options = {**DEFAULT_OPTIONS, **(options or {})}
        self.highs = quiet_highs(self._options)
        self._col: dict[int, int] = {}
        self._row: dict[int, int] = {}
        self._row_offset: dict[int, tuple[float, float]] = {}
        self._rhs_cache: dict[int, tuple[int, bool, bool, float, float]] = {}
        self._n_int = 0
        self._solved = False
        self._compile(relax_integrality)
        self._compiled = (self.num_rows, self.num_cols, self._n_int)

    @classmethod
    def clone(cls, other: HighsModel, *, options: dict[str, Any] | None = None) -> HighsModel:
        """A second HiGHS instance of ``other``'s current LP (no second Pyomo compile).

        The clone shares the Pyomo model and its column and row maps; cuts added to
        either instance afterwards stay in that instance.
        """
        new = cls.__new__(cls)
        new.model = other.model
        new._options = {**DEFAULT_OPTIONS, **(options or {})}
        new.highs = quiet_highs(new._options)
        new.highs.passModel(other.highs.getLp())
        new._col, new._row = other._col, other._row
        new._row_offset, new._rhs_cache = other._row_offset, {}
        new._cost, new._offset = dict(other._cost), other._offset
        new._n_int, new._solved, new._compiled = other._n_int, False, other._compiled
        if other.is_mip:
            new.highs.setOptionValue("presolve", "choose")
        return new

    # ----------------------------------------------------------------- compile
    def _compile(self, relax: bool) -> None:
        info = LinearStandardFormCompiler().write(self.model, mixed_form=True)
        cols = info.columns
        self._col = {id(v): j for j, v in enumerate(cols)}
        lb = np.array([-INF if v.lb is None else v.lb for v in cols], dtype=float)
        ub = np.array([INF if v.ub is None else v.ub for v in cols], dtype=float)
        self.highs.addVars(len(cols), lb, ub)
        cost = info.c.toarray().ravel() if info.c.shape[0] else np.zeros(len(cols))
        self.highs.changeColsCost(len(cols), np.arange(len(cols), dtype=np.int32), cost)
        self._cost: dict[int, float] = {j: float(c) for j, c in enumerate(cost) if c}
        self._offset = float(info.c_offset[0]) if len(info.c_offset) else 0.0
        ints = [j for j, v in enumerate(cols) if v.is_integer() or v.is_binary()]
        if ints and not relax:
            self._set_integrality(ints)
        self._add_compiled_rows(info)

    def _set_integrality(self, cols: list[int]) -> None:
        idx = np.array(cols, dtype=np.int32)
        kinds = np.full(len(cols), highspy.HighsVarType.kInteger)
        self.highs.changeColsIntegrality(len(cols), idx, kinds)
        self._n_int += len(cols)
        self.highs.setOptionValue("presolve", "choose")  # LP re-solve options do not suit MIPs

    def _add_compiled_rows(self, info: Any) -> None:
        a = info.A.tocsr()
        merged: dict[int, list] = {}
        order: list[int] = []
        for r, entry in enumerate(info.rows):
            con = entry.constraint
            key = id(con)
            if key not in merged:
                merged[key] = [con, -INF, INF, r]
                order.append(key)
            rhs = float(info.rhs[r])
            if entry.bound_type in (0, 1):
                merged[key][2] = rhs
            if entry.bound_type in (0, -1):
                merged[key][1] = rhs
        for key in order:
            con, lo, hi, r = merged[key]
            start, end = a.indptr[r], a.indptr[r + 1]
            row = self.add_row(a.indices[start:end], a.data[start:end], lo, hi)
            self._row[key] = row
            self._row_offset[key] = (
                lo - pyo.value(con.lower) if con.has_lb() else 0.0,
                hi - pyo.value(con.upper) if con.has_ub() else 0.0,
            )

    # ----------------------------------------------------------------- access
    @property
    def num_cols(self) -> int:
        """Number of columns (variables) in HiGHS."""
        return self.highs.getNumCol()

    @property
    def num_rows(self) -> int:
        """Number of rows (constraints) in HiGHS."""
        return self.highs.getNumRow()

    @property
    def compiled_shape(self) -> tuple[int, int, int]:
        """Rows, columns and integer columns as compiled (before anything appended)."""
        return self._compiled

    @property
    def is_mip(self) -> bool:
        """Whether any column is integer."""
        return self._n_int > 0

    def col(self, var: Any) -> int:
        """Column index of a Pyomo variable."""
        return self._col[id(var)]

    def row(self, con: Any) -> int:
        """Row index of a Pyomo constraint."""
        return self._row[id(con)]

    # ----------------------------------------------------------------- changes
    def refresh_rows(self, cons: list[Any]) -> None:
        """Re-read the bounds of ``cons`` from their (mutable-parameter) expressions."""
        for con in cons:
            off_lo, off_hi = self._row_offset[id(con)]
            lo = pyo.value(con.lower) + off_lo if con.has_lb() else -INF
            hi = pyo.value(con.upper) + off_hi if con.has_ub() else INF
            self.highs.changeRowBounds(self._row[id(con)], lo, hi)

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
        rows = cons if isinstance(cons, RhsRows) else self.rhs_rows(cons)
        v = np.asarray(values, dtype=float)
        if v.shape != rows.idx.shape:
            raise ValueError(f"{len(v)} values for {len(rows.idx)} rows")
        lo = np.where(np.isnan(rows.off_lo), -INF, v + rows.off_lo)
        hi = np.where(np.isnan(rows.off_hi), INF, v + rows.off_hi)
        self.highs.changeRowsBounds(len(rows.idx), rows.idx, lo, hi)

    def _rhs_info(self, con: Any) -> tuple[int, bool, bool, float, float]:
        key = id(con)
        info = self._rhs_cache.get(key)
        if info is None:
            info = (self._row[key], con.has_lb(), con.has_ub(), *self._row_offset[key])
            self._rhs_cache[key] = info
        return info

    def set_cols_bounds(self, cols: Any, lb: Any, ub: Any) -> None:
        """Change several columns' bounds at once."""
        idx = np.asarray(cols, dtype=np.int32)
        lo = np.broadcast_to(np.asarray(lb, dtype=float), idx.shape).copy()
        hi = np.broadcast_to(np.asarray(ub, dtype=float), idx.shape).copy()
        self.highs.changeColsBounds(len(idx), idx, lo, hi)

    def reset(self, basis: WarmBasis | None = None) -> None:
        """Forget the solver state; the next solve starts from ``basis``, else cold.

        A model re-loaded for a new window then answers exactly as a model compiled
        afresh for it and given the same basis, whatever it solved before (what makes a
        resumed run equal an uninterrupted one). A basis of other dimensions is ignored.
        With a basis the LP moves to a new HiGHS instance first: HiGHS keeps scaling,
        edge weights and factor data across ``clearSolver``, and a basis set on top of
        them would not start as it does in a fresh instance.
        """
        fits = basis is not None and basis.fits(self.num_rows, self.num_cols)
        if fits:
            lp = self.highs.getLp()
            self.highs = quiet_highs(self._options)
            self.highs.passModel(lp)
            if self._n_int:
                self.highs.setOptionValue("presolve", "choose")
        else:
            self.highs.clearSolver()
        self._solved = False
        if fits:
            status = self.highs.setBasis(basis.to_highs())
            self._solved = status == highspy.HighsStatus.kOk

    def basis(self) -> WarmBasis | None:
        """The current basis (``None`` if HiGHS has no valid one)."""
        found = self.highs.getBasis()
        return WarmBasis.from_highs(found) if found.valid else None

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

    def truncate(self) -> None:
        """Drop every row and column appended since compilation (cuts, branch selectors).

        HiGHS keeps the basis of the remaining rows and columns, so the next solve starts
        warm from the last one.
        """
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
            self._cost = {j: c for j, c in self._cost.items() if j < cols}

    def set_col_bounds(self, col: int, lb: float, ub: float) -> None:
        """Change one column's bounds."""
        self.highs.changeColBounds(int(col), float(lb), float(ub))

    def add_row(self, cols: Any, coefs: Any, lb: float, ub: float) -> int:
        """Append a row ``lb <= sum coefs * x[cols] <= ub``; return its index."""
        idx = np.asarray(cols, dtype=np.int32)
        val = np.asarray(coefs, dtype=float)
        self.highs.addRow(float(lb), float(ub), len(idx), idx, val)
        return self.highs.getNumRow() - 1

    def set_col_cost(self, col: int, cost: float) -> None:
        """Change one column's objective coefficient."""
        self.highs.changeColCost(int(col), float(cost))
        self._cost[int(col)] = float(cost)

    @contextmanager
    def temporary_costs(self, costs: dict[int, float]) -> Iterator[None]:
        """Solve with some objective coefficients replaced; restore them afterwards."""
        saved = {c: self._cost.get(c, 0.0) for c in costs}
        for c, cost in costs.items():
            self.set_col_cost(c, cost)
        try:
            yield
        finally:
            for c, cost in saved.items():
                self.set_col_cost(c, cost)

    def add_col(self, cost: float, lb: float, ub: float, *, integer: bool = False) -> int:
        """Append a column (with no row entries yet); return its index."""
        self.highs.addVar(float(lb), float(ub))
        j = self.highs.getNumCol() - 1
        if cost:
            self.set_col_cost(j, cost)
        if integer:
            self._set_integrality([j])
        return j

    # ----------------------------------------------------------------- solve
    def solve(self, *, time_limit_s: float | None = None) -> SolveOutcome:
        """Run HiGHS and return the outcome; raise :class:`SolverError` on a solver error."""
        if time_limit_s is not None:
            self.highs.setOptionValue("time_limit", float(time_limit_s))
        tick = time.perf_counter()
        cold = not self._solved and not self.is_mip
        status = self._run_from_scratch() if cold else self._run()  # dual simplex from cold
        self._solved = True
        if status == "error":  # a warm start gone numerically bad: retry from scratch
            status = self._run_from_scratch()
        if status == "error":
            text = self.highs.modelStatusToString(self.highs.getModelStatus())
            raise SolverError(f"HiGHS failed: {text}")
        return self._outcome(status, time.perf_counter() - tick)

    def _run_from_scratch(self) -> str:
        """Re-run without the basis, with presolve and the dual simplex."""
        saved = {k: self._options.get(k, d) for k, d in (("presolve", "choose"),
                                                           ("simplex_strategy", 1))}
        if self._n_int:
            saved["presolve"] = "choose"
        self.highs.clearSolver()
        self.highs.setOptionValue("presolve", "on")
        self.highs.setOptionValue("simplex_strategy", 1)
        try:
            return self._run()
        finally:
            for key, val in saved.items():
                self.highs.setOptionValue(key, val)

    def _run(self) -> str:
        run_status = self.highs.run()
        status = STATUS.get(self.highs.getModelStatus(), "error")
        return "error" if run_status == highspy.HighsStatus.kError else status

    def _outcome(self, status: str, wall: float) -> SolveOutcome:
        info = self.highs.getInfo()
        if info.primal_solution_status != 2:  # 2 = kSolutionStatusFeasible
            return SolveOutcome(status, None, None, None, None, wall)
        sol = self.highs.getSolution()
        obj = info.objective_function_value + self._offset
        if self.is_mip:
            bound = info.mip_dual_bound + self._offset
            duals = None
        else:
            bound = obj
            duals = np.asarray(sol.row_dual) if sol.dual_valid else None
            col_duals = np.asarray(sol.col_dual) if sol.dual_valid else None
            return SolveOutcome(status, obj, bound, np.asarray(sol.col_value), duals, wall,
                                col_duals)
        return SolveOutcome(status, obj, bound, np.asarray(sol.col_value), duals, wall)

    def value(self, outcome: SolveOutcome, var: Any) -> float:
        """Value of a Pyomo variable in ``outcome``."""
        return float(outcome.x[self._col[id(var)]])

    def load_values(self, outcome: SolveOutcome) -> None:
        """Copy ``outcome``'s column values into the Pyomo variables (for extraction)."""
        for var in self.model.component_data_objects(pyo.Var, descend_into=True):
            if var.fixed:  # compiled as a constant: its value stays as fixed
                continue
            j = self._col.get(id(var))
            var.set_value(None if j is None else float(outcome.x[j]), skip_validation=True)


def _at_bound(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, tol: float) -> bool:
    """Whether a value is within ``tol`` of its finite lower or upper bound (fixed: no)."""
    with np.errstate(invalid="ignore"):  # inf - inf
        near = (np.abs(values - lo) <= tol) | (np.abs(hi - values) <= tol)
    return bool(np.any(near & (hi - lo > tol)))
