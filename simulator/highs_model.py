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
from collections.abc import Iterable
from typing import Any

import highspy
import numpy as np
import pyomo.environ as pyo

from gridcosim.scenarios.errors import SolverError
from gridcosim.simulator.highs_changes import HighsChanges
from gridcosim.simulator.highs_instance import (
    DEFAULT_OPTIONS,
    INF,
    STATUS,
    SolveOutcome,
    quiet_highs,
)
from gridcosim.simulator.linear_compile import StandardForm, standard_form
from gridcosim.simulator.warm_basis import SlotShift, WarmBasis, statuses_at_optimum


class HighsModel(HighsChanges):
    """A linear (mixed-integer) Pyomo model held in a persistent HiGHS instance.

    Its bulk changes (bounds, right-hand sides, costs, appended rows and columns) are
    :class:`~gridcosim.simulator.highs_changes.HighsChanges`'.

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
        self._rhs_cache: dict[int, tuple[int, bool, bool, float, float]] = {}
        self._bound_exprs: dict[int, tuple[int, Any, Any, float, float]] = {}
        self._var_cols: list[tuple[Any, int | None]] | None = None
        self._n_int = 0
        self._solved = False
        self._state = 0  # counts solves and resets: what :meth:`basis` was read at
        self._basis_read: tuple[int, WarmBasis | None] | None = None
        self._deferred: WarmBasis | None = None  # a reset basis applied at the next solve
        self._optimum: tuple[int, SolveOutcome] | None = None  # the last optimal LP solve
        self._compile(relax_integrality)
        self._compiled = (self.num_rows, self.num_cols, self._n_int)

    @classmethod
    def clone(cls, other: HighsModel, *, options: dict[str, Any] | None = None,
              relax_integrality: bool = False) -> HighsModel:
        """A second HiGHS instance of ``other``'s current LP (no second Pyomo compile).

        The clone shares the Pyomo model and its column and row maps; cuts added to
        either instance afterwards stay in that instance. ``relax_integrality`` drops the
        integer columns' integrality (the LP relaxation of a compiled MILP).
        """
        new = cls.__new__(cls)
        new.model = other.model
        new._options = {**DEFAULT_OPTIONS, **(options or {})}
        new.highs = quiet_highs(new._options)
        lp = other.highs.getLp()
        if relax_integrality:
            lp.integrality_ = []
        new.highs.passModel(lp)
        new._col, new._row = other._col, other._row
        new._rhs_cache = other._rhs_cache
        new._bound_exprs, new._var_cols = other._bound_exprs, other._var_cols
        new._costs, new._offset = other._costs.copy(), other._offset
        new._n_int = 0 if relax_integrality else other._n_int
        rows, cols, _ = other._compiled
        new._solved, new._compiled = False, (rows, cols, new._n_int)
        new._state, new._basis_read, new._deferred, new._optimum = 0, None, None, None
        if new._n_int:
            new.highs.setOptionValue("presolve", "choose")
        return new

    # ----------------------------------------------------------------- compile
    def _compile(self, relax: bool) -> None:
        form = standard_form(self.model)
        cols = form.columns
        self._col = {id(v): j for j, v in enumerate(cols)}
        bounds = [v.bounds for v in cols]  # one Pyomo call per column for both bounds
        lb = np.array([-INF if lo is None else lo for lo, _ in bounds], dtype=float)
        ub = np.array([INF if hi is None else hi for _, hi in bounds], dtype=float)
        self.highs.addVars(len(cols), lb, ub)
        self.highs.changeColsCost(len(cols), np.arange(len(cols), dtype=np.int32), form.cost)
        self._costs = np.array(form.cost, dtype=float)
        self._offset = form.offset
        ints = [j for j, v in enumerate(cols) if v.is_integer() or v.is_binary()]
        if ints and not relax:
            self._set_integrality(ints)
        self._add_compiled_rows(form)

    def _add_compiled_rows(self, form: StandardForm) -> None:
        a = form.matrix
        first = self.num_rows
        self._state += 1
        self.highs.addRows(a.shape[0], form.row_lo, form.row_hi, a.nnz,
                           a.indptr[:-1].astype(np.int32), a.indices.astype(np.int32),
                           a.data.astype(float))  # one call for every row
        has_lo, has_hi = np.isfinite(form.row_lo).tolist(), np.isfinite(form.row_hi).tolist()
        for k, (con, off) in enumerate(zip(form.constraints, form.row_offset.tolist(),
                                           strict=True)):
            self._row[id(con)] = first + k
            self._rhs_cache[id(con)] = (first + k, has_lo[k], has_hi[k],
                                        off if has_lo[k] else 0.0, off if has_hi[k] else 0.0)

    # ----------------------------------------------------------------- access
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

    def columns(self, variables: Iterable[Any]) -> np.ndarray:
        """Column indices of Pyomo variables (in bulk)."""
        col = self._col
        return np.fromiter((col[id(v)] for v in variables), dtype=np.int64)

    def slot_columns(self, var: Any) -> dict[Any, np.ndarray]:
        """Columns of a variable indexed ``(key, t)`` over slots: key -> columns by slot.

        Keys and slots in the variable's index order; one pass over its data (indexing
        the variable once per key and slot costs several times more on large models).
        """
        out: dict[Any, list[int]] = {}
        col = self._col
        for index, data in var.items():
            key = index[0] if len(index) == 2 else index[:-1]
            out.setdefault(key, []).append(col[id(data)])
        return {key: np.array(cols, dtype=np.int64) for key, cols in out.items()}

    @property
    def state(self) -> int:
        """The solver-state counter: it moves with every solve, reset and change."""
        return self._state

    def row(self, con: Any) -> int:
        """Row index of a Pyomo constraint."""
        return self._row[id(con)]

    def reset(self, basis: WarmBasis | None = None) -> None:
        """Forget the solver state; the next solve starts from ``basis``, else cold.

        A model re-loaded for a new window then answers exactly as a model compiled
        afresh for it and given the same basis, whatever it solved before (what makes a
        resumed run equal an uninterrupted one). A basis of other dimensions is ignored.
        With a basis the LP moves to a new HiGHS instance first: HiGHS keeps scaling,
        edge weights and factor data across ``clearSolver``, and a basis set on top of
        them would not start as it does in a fresh instance.
        """
        self._state += 1
        self._deferred = None
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

    def reset_when_solved(self, basis: WarmBasis | None) -> None:
        """:meth:`reset`, the new instance made at the next solve (if one comes).

        For a model a window may never solve (the master of a window its price rounds
        settle). Rows appended before that solve (cuts) join the basis as basic, as HiGHS
        adds rows to a basis; if columns were appended too, the solve starts cold.
        """
        self.reset()
        if basis is not None and basis.fits(self.num_rows, self.num_cols):
            self._deferred = basis

    def _start_deferred(self) -> None:
        """Apply a pending :meth:`reset_when_solved` basis (before solver state is read)."""
        if self._deferred is None:
            return
        basis, self._deferred = self._deferred, None
        extra_rows = self.num_rows - len(basis.row_status)
        if self.num_cols != len(basis.col_status) or extra_rows < 0:
            return
        self.reset(WarmBasis(basis.col_status,
                             np.concatenate([basis.row_status,
                                             np.ones(extra_rows, dtype=np.int8)])))

    def slot_shift(self, slots: int, shift: int) -> SlotShift:
        """How this model's compiled columns and rows move ``shift`` slots on (a warm start).

        ``slots`` is the window length (the size of the model's slot sets ``T``).
        """
        rows, cols, _ = self._compiled
        found = SlotShift.of(self.model, self._col, self._row, slots, shift)
        if (len(found.row), len(found.col)) != (rows, cols):
            raise ValueError("the compiled maps do not cover the compiled model")
        return found

    def take_basis(self, other: HighsModel) -> None:
        """Start the next solve from ``other``'s current basis (same rows and columns).

        Within a window only: the basis goes over as HiGHS holds it, with no new instance
        (:meth:`reset` is the window-to-window rule).
        """
        self._state += 1
        other._start_deferred()
        found = other.highs.getBasis()
        if found.valid and self.highs.setBasis(found) == highspy.HighsStatus.kOk:
            self._solved = True

    def basis(self) -> WarmBasis | None:
        """The current basis (``None`` if HiGHS has no valid one).

        Read once per solver state: asked again before the next solve or reset, the same
        object comes back (reading a basis out of HiGHS costs about a microsecond per
        row and column).
        """
        self._start_deferred()
        if self._basis_read is None or self._basis_read[0] != self._state:
            basis = self._basis_at_optimum()
            if basis is None:
                found = self.highs.getBasis()
                basis = WarmBasis.from_highs(found) if found.valid else None
            self._basis_read = (self._state, basis)
        return self._basis_read[1]

    def _basis_at_optimum(self) -> WarmBasis | None:
        """The basis of the optimal LP solve just made, read in bulk (``None``: not that).

        :func:`~gridcosim.simulator.warm_basis.statuses_at_optimum` gives the statuses
        ``getBasis`` would give, from the basic variables, the solution and the bounds.
        """
        if self._optimum is None or self._optimum[0] != self._state:
            return None
        outcome = self._optimum[1]
        found, basic = self.highs.getBasicVariables()
        if (found != highspy.HighsStatus.kOk
                or self.highs.getLp().sense_ != highspy.ObjSense.kMinimize):
            return None
        basic = np.asarray(basic)
        bounds = self.lp_bounds()
        return WarmBasis(
            statuses_at_optimum(basic[basic >= 0], outcome.x, outcome.col_dual, *bounds[:2]),
            statuses_at_optimum(-1 - basic[basic < 0], outcome.row_value, -outcome.row_dual,
                                *bounds[2:]))

    # ----------------------------------------------------------------- solve
    def solve(self, *, time_limit_s: float | None = None) -> SolveOutcome:
        """Run HiGHS and return the outcome; raise :class:`SolverError` on a solver error.

        ``time_limit_s`` limits this solve (``None``: no limit).
        """
        self._start_deferred()
        # HiGHS (before 2.0) checks ``time_limit`` against the run time summed over every
        # run of the instance, not against this run's: a limit per solve is the run time
        # so far plus the limit, and a solve without one has none
        limit = INF if time_limit_s is None else self.highs.getRunTime() + float(time_limit_s)
        self.highs.setOptionValue("time_limit", limit)
        tick = time.perf_counter()
        self._state += 1
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
        sol = self.highs.getSolution()  # a copy: later solves leave it as it is
        obj = info.objective_function_value + self._offset
        if self.is_mip:
            return SolveOutcome.from_highs(status, obj, info.mip_dual_bound + self._offset,
                                           sol, wall, duals=False)
        out = SolveOutcome.from_highs(status, obj, obj, sol, wall, duals=sol.dual_valid)
        self._optimum = (self._state, out) if status == "optimal" and sol.dual_valid else None
        return out

    def value(self, outcome: SolveOutcome, var: Any) -> float:
        """Value of a Pyomo variable in ``outcome``."""
        return float(outcome.x[self._col[id(var)]])

    def load_values(self, outcome: SolveOutcome) -> None:
        """Copy ``outcome``'s column values into the Pyomo variables (for extraction).

        The model's variables and their columns are listed once (the first call).
        """
        if self._var_cols is None:
            self._var_cols = [(var, self._col.get(id(var))) for var in
                              self.model.component_data_objects(pyo.Var, descend_into=True)]
        x = outcome.x.tolist()
        for var, j in self._var_cols:
            if var.fixed:  # compiled as a constant: its value stays as fixed
                continue
            var.set_value(None if j is None else x[j], skip_validation=True)
