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


@dataclass(frozen=True)
class SolveOutcome:
    """What one HiGHS run returned.

    Attributes:
        status: ``optimal``, ``infeasible``, ``time_limit``, ... (HiGHS model status).
        objective: Objective of the incumbent, ``None`` without a primal solution.
        bound: Proven lower bound (the MIP dual bound; the objective for an LP).
        x: Column values, ``None`` without a primal solution.
        row_dual: Row duals (LPs only), ``None`` otherwise.
        wall_s: HiGHS run time.
        col_dual: Column duals (reduced costs, ``d objective / d bound`` of a column at a
            bound; LPs only), ``None`` otherwise.

    """

    status: str
    objective: float | None
    bound: float | None
    x: np.ndarray | None
    row_dual: np.ndarray | None
    wall_s: float
    col_dual: np.ndarray | None = None

    @property
    def has_solution(self) -> bool:
        """Whether a primal solution is available."""
        return self.x is not None


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
