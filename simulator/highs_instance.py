"""HiGHS instances as the project makes them: options, statuses, solve outcomes.

Instances are made by :func:`quiet_highs`: highspy's ``Highs`` class prints a banner on
file descriptor 1 when it is constructed (highspy 1.16), before any option can be set,
which would corrupt ``--json`` output. The bindings' base class ``highspy._Highs`` prints
nothing until it runs, and its options are set first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np

INF = highspy.kHighsInf

#: HiGHS model statuses by the names the project uses.
STATUS = {
    highspy.HighsModelStatus.kOptimal: "optimal",
    highspy.HighsModelStatus.kInfeasible: "infeasible",
    highspy.HighsModelStatus.kUnbounded: "unbounded",
    highspy.HighsModelStatus.kUnboundedOrInfeasible: "infeasible_or_unbounded",
    highspy.HighsModelStatus.kTimeLimit: "time_limit",
    highspy.HighsModelStatus.kIterationLimit: "iteration_limit",
    highspy.HighsModelStatus.kSolutionLimit: "solution_limit",
    highspy.HighsModelStatus.kInterrupt: "interrupted",
}

#: Options for LPs re-solved after small changes (measured: primal simplex without presolve
#: re-solves the cut-augmented master and the elastic LPs fastest; benchmarks/).
LP_RESOLVE_OPTIONS: dict[str, Any] = {"presolve": "off", "simplex_strategy": 4}

#: Options used for every HiGHS instance unless a caller overrides them.
DEFAULT_OPTIONS: dict[str, Any] = {
    "output_flag": False,
    "threads": 1,
    "mip_rel_gap": 1e-9,
    "mip_abs_gap": 1e-9,
    "random_seed": 0,
}


#: An array of :class:`SolveOutcome` not yet read from HiGHS's solution.
_UNREAD: Any = object()
#: The ``highspy.HighsSolution`` field of each array.
_SOLUTION_FIELDS = {"x": "col_value", "row_dual": "row_dual", "col_dual": "col_dual",
                    "row_value": "row_value"}


class SolveOutcome:
    """What one HiGHS run returned (immutable).

    Attributes:
        status: ``optimal``, ``infeasible``, ``time_limit``, ... (HiGHS model status).
        objective: Objective of the incumbent, ``None`` without a primal solution.
        bound: Proven lower bound (the MIP dual bound; the objective for an LP).
        x: Column values, ``None`` without a primal solution.
        row_dual: Row duals (LPs only), ``None`` otherwise.
        wall_s: HiGHS run time.
        col_dual: Column duals (reduced costs, ``d objective / d bound`` of a column at a
            bound; LPs only), ``None`` otherwise.
        row_value: Row activities (only of outcomes read from HiGHS, else ``None``).

    An outcome made by :meth:`from_highs` holds the solution HiGHS handed back (a copy,
    unchanged by later solves) and turns each array into numpy when it is first read:
    highspy gives every array as a Python list (about 0.4 ms each on the week's network
    LP of 11,286 columns and 8,832 rows), and most solves read one or two of the four.

    """

    __slots__ = ("status", "objective", "bound", "wall_s", "_arrays", "_solution")

    def __init__(self, status: str, objective: float | None, bound: float | None,
                 x: np.ndarray | None, row_dual: np.ndarray | None, wall_s: float,
                 col_dual: np.ndarray | None = None) -> None:
        self._set(status, objective, bound, wall_s,
                  {"x": x, "row_dual": row_dual, "col_dual": col_dual, "row_value": None}, None)

    def _set(self, status: str, objective: float | None, bound: float | None, wall_s: float,
             arrays: dict[str, Any], solution: Any) -> None:
        for name, value in (("status", status), ("objective", objective), ("bound", bound),
                            ("wall_s", wall_s), ("_arrays", arrays), ("_solution", solution)):
            object.__setattr__(self, name, value)

    @classmethod
    def from_highs(cls, status: str, objective: float, bound: float, solution: Any,
                   wall_s: float, *, duals: bool) -> SolveOutcome:
        """An outcome whose arrays are read from ``solution`` (a ``HighsSolution``) on use.

        ``duals``: whether it has row and column duals (LPs with valid duals).
        """
        out = cls.__new__(cls)
        dual = _UNREAD if duals else None
        out._set(status, objective, bound, wall_s, {"x": _UNREAD, "row_dual": dual,
                 "col_dual": dual, "row_value": _UNREAD}, solution)
        return out

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"SolveOutcome is immutable (cannot set {name!r})")

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled (and copied) with its arrays read."""
        return SolveOutcome, (self.status, self.objective, self.bound, self.x, self.row_dual,
                              self.wall_s, self.col_dual)

    def __repr__(self) -> str:
        return (f"SolveOutcome(status={self.status!r}, objective={self.objective!r}, "
                f"bound={self.bound!r}, wall_s={self.wall_s!r})")

    def _array(self, name: str) -> np.ndarray | None:
        value = self._arrays[name]
        if value is _UNREAD:
            value = np.asarray(getattr(self._solution, _SOLUTION_FIELDS[name]))
            self._arrays[name] = value
        return value

    @property
    def x(self) -> np.ndarray | None:
        """Column values, ``None`` without a primal solution."""
        return self._array("x")

    @property
    def row_dual(self) -> np.ndarray | None:
        """Row duals (LPs only), ``None`` otherwise."""
        return self._array("row_dual")

    @property
    def col_dual(self) -> np.ndarray | None:
        """Column duals (LPs only), ``None`` otherwise."""
        return self._array("col_dual")

    @property
    def row_value(self) -> np.ndarray | None:
        """Row activities (outcomes read from HiGHS only), ``None`` otherwise."""
        return self._array("row_value")

    @property
    def has_solution(self) -> bool:
        """Whether a primal solution is available."""
        return self._arrays["x"] is not None

    def with_x(self, x: np.ndarray) -> SolveOutcome:
        """The same outcome with other column values and no duals."""
        return SolveOutcome(self.status, self.objective, self.bound, x, None, self.wall_s)


@dataclass(frozen=True)
class RhsRows:
    """Rows whose right-hand side follows a parameter: indices and bound offsets.

    An offset is NaN where the row has no such bound.
    """

    idx: np.ndarray
    off_lo: np.ndarray
    off_hi: np.ndarray


def quiet_highs(options: dict[str, Any]) -> Any:
    """A HiGHS instance with ``options`` set before it can print anything.

    ``highspy._Highs`` is the C++ binding that ``highspy.Highs`` extends with Python
    callbacks (which the project does not use); constructing it prints nothing.
    """
    highs = highspy._Highs()
    highs.setOptionValue("output_flag", False)
    for key, val in options.items():
        highs.setOptionValue(key, val)
    return highs
