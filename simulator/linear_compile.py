"""A Pyomo model's standard form, read straight from flat linear rows where it can be.

:class:`~gridcosim.simulator.highs_model.HighsModel` needs a model's columns, its
objective, its constraint matrix and each row's bounds. Pyomo's
``LinearStandardFormCompiler`` finds them by walking every constraint's expression tree.
The network models write each row as one flat ``LinearExpression`` of
``coefficient × variable`` terms (:func:`~gridcosim.simulator.models.lindistflow_model.
linear`), so their coefficients can be read off the terms directly: the scale case's master
(96,312 rows) reads in 0.55–0.59 s instead of Pyomo's 1.16–1.24 s (2026-12-02, both
timed in one process; docs/decisions.md).

The result is exactly Pyomo's: the same columns in the same order (each variable
component's data in index order, components in the order the objective and then the
constraints first use them, unused columns dropped), the same rows and coefficients.
``tests/test_linear_compile.py`` compares the two on every network model. A model with
any other kind of row (a nested sum, a fixed variable, a constant in the body, a
maximised objective) is compiled by Pyomo's compiler, whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyomo.environ as pyo
import scipy.sparse as sp
from pyomo.core.expr.numeric_expr import LinearExpression, MonomialTermExpression
from pyomo.repn import generate_standard_repn
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler
from pyomo.repn.util import FileDeterminism_to_SortComponents, ordered_active_constraints

from gridcosim.simulator.highs_instance import INF


@dataclass(frozen=True)
class StandardForm:
    """A compiled model: ``min c·x + offset`` s.t. ``row_lo ≤ A x ≤ row_hi``.

    Attributes:
        columns: The Pyomo variable of each column.
        cost: Objective coefficient of each column.
        offset: Objective constant.
        matrix: Constraint matrix (CSR, one row per constraint).
        constraints: The Pyomo constraint of each row.
        row_lo: Lower bound of each row (``-INF``: none).
        row_hi: Upper bound of each row (``INF``: none).
        row_offset: Each row's compiled bounds minus the bounds Pyomo states for it: the
            body's constant, moved to the bounds by the compile (0 for a flat row).

    """

    columns: list[Any]
    cost: np.ndarray
    offset: float
    matrix: sp.csr_array
    constraints: list[Any]
    row_lo: np.ndarray
    row_hi: np.ndarray
    row_offset: np.ndarray


def standard_form(model: pyo.Block) -> StandardForm:
    """The model's standard form: from its flat rows if all are flat, else Pyomo's."""
    return _flat_form(model) or _pyomo_form(model)


def _pyomo_form(model: pyo.Block) -> StandardForm:
    """Pyomo's compile (mixed form: a ranged row comes as two entries, merged here)."""
    info = LinearStandardFormCompiler().write(model, mixed_form=True)
    merged: dict[int, list[Any]] = {}
    for r, entry in enumerate(info.rows):
        row = merged.setdefault(id(entry.constraint), [entry.constraint, -INF, INF, r])
        if entry.bound_type in (0, 1):
            row[2] = float(info.rhs[r])
        if entry.bound_type in (0, -1):
            row[1] = float(info.rhs[r])
    rows = list(merged.values())
    picked = np.array([r[3] for r in rows], dtype=np.int64)
    a = info.A.tocsr()
    cons = [r[0] for r in rows]
    row_lo = np.array([r[1] for r in rows], dtype=float)
    row_hi = np.array([r[2] for r in rows], dtype=float)
    cost = info.c.toarray().ravel() if info.c.shape[0] else np.zeros(len(info.columns))
    return StandardForm(
        list(info.columns), np.asarray(cost, dtype=float),
        float(info.c_offset[0]) if len(info.c_offset) else 0.0,
        a[picked] if len(picked) else a[:0], cons, row_lo, row_hi, _offsets(cons, row_lo, row_hi))


def _offsets(cons: list[Any], row_lo: np.ndarray, row_hi: np.ndarray) -> np.ndarray:
    """Compiled bound minus Pyomo's bound of each row (the same on both sides)."""
    out = np.zeros(len(cons))
    for k, con in enumerate(cons):
        lower, _, upper = con.to_bounded_expression(evaluate_bounds=True)
        out[k] = row_lo[k] - lower if lower is not None else row_hi[k] - upper
    return out


def _flat_form(model: pyo.Block) -> StandardForm | None:
    """The standard form read off flat linear rows (``None``: a row is not flat)."""
    config = LinearStandardFormCompiler.CONFIG()
    sorter = FileDeterminism_to_SortComponents(config.file_determinism)
    objectives = list(model.component_data_objects(pyo.Objective, active=True))
    if len(objectives) != 1 or objectives[0].sense != pyo.minimize:
        return None
    order = _ColumnOrder(sorter)
    objective = generate_standard_repn(objectives[0].expr, quadratic=False)
    if objective.nonlinear_expr is not None or objective.quadratic_vars:
        return None
    obj_cols = [order.index(v) for v in objective.linear_vars]
    cons, lower, upper, lengths, cols, coefs = [], [], [], [], [], []
    known = order.index_of.get
    for con in ordered_active_constraints(model, config):
        lo, body, hi = con.to_bounded_expression(evaluate_bounds=True)
        if type(body) is not LinearExpression or (lo is None and hi is None):
            return None
        terms = body.args
        for term in terms:
            if type(term) is not MonomialTermExpression:
                return None
            coef, var = term.args
            if type(coef) not in _NUMBERS or var.fixed:
                return None
            j = known(id(var))
            cols.append(order.index(var) if j is None else j)
            coefs.append(coef)
        if not terms:
            return None
        cons.append(con)
        lower.append(lo)
        upper.append(hi)
        lengths.append(len(terms))
    return _assemble(order, obj_cols, objective, cons, lower, upper, lengths, cols, coefs)


#: Coefficient types of a flat row (anything else, e.g. a parameter, goes to Pyomo).
_NUMBERS = (float, int)


class _ColumnOrder:
    """Pyomo's column order: a variable component's data all at once, at its first use."""

    def __init__(self, sorter: Any):
        self.sorter = sorter
        self.index_of: dict[int, int] = {}
        self.variables: list[Any] = []

    def index(self, var: Any) -> int:
        found = self.index_of.get(id(var))
        if found is None:
            for data in var.parent_component().values(self.sorter):
                self.index_of[id(data)] = len(self.variables)
                self.variables.append(data)
            found = self.index_of[id(var)]
        return found


def _assemble(order: _ColumnOrder, obj_cols: list[int], objective: Any, cons: list[Any],
              lower: list[Any], upper: list[Any], lengths: list[int], cols: list[int],
              coefs: list[float]) -> StandardForm | None:
    """Matrix and objective over the used columns (zero entries dropped, as Pyomo does)."""
    n = len(order.variables)
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    a = sp.csr_array((np.array(coefs, dtype=float), np.array(cols, dtype=np.int64), indptr),
                     shape=(len(cons), n))
    a.sum_duplicates()
    a.eliminate_zeros()
    if np.any(np.diff(a.indptr) == 0):  # a row of zeros only: Pyomo's rules decide
        return None
    cost = np.zeros(n)
    np.add.at(cost, np.array(obj_cols, dtype=np.int64),
              np.array([float(c) for c in objective.linear_coefs], dtype=float))
    used = (np.bincount(a.indices, minlength=n) > 0) | (cost != 0)
    keep = np.flatnonzero(used)
    a = a[:, keep].tocsr()
    a.sort_indices()
    return StandardForm(
        [order.variables[j] for j in keep], cost[keep], float(objective.constant), a, cons,
        np.array([-INF if lo is None else lo for lo in lower], dtype=float),
        np.array([INF if hi is None else hi for hi in upper], dtype=float), np.zeros(len(cons)))

