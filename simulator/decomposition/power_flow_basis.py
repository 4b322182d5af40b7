"""The network LP's first basis: the one of its power-flow solution.

With every injection given (bus loads, microgrid exchanges, SVC outputs at a bound, no
curtailment) the LinDistFlow equations of a radial feeder are a power flow: each branch
flow is the sum of the loads below it and each voltage follows from its parent's. The
basis that holds those unknowns basic (branch flows, the voltages of every bus but the
fixed root, the substation import; the slacks of the inequality rows, i.e. the thermal
sides) and everything else at a bound is therefore square, triangular along the tree,
hence non-singular, and primal feasible whenever no voltage or rating limit binds. It is
also dual feasible when curtailment costs more than energy. A window that starts cold
(the first one of a run, or a single-window solve) starts its network LP from it instead
of from scratch: on the scale case's 96,312-row LP the zero-exchange solve went from
3.07 s (presolve and 37,903 dual simplex iterations) to 0.1 s (0 iterations), to the same
optimum (2026-12-02; ``benchmarks/bench_scale.py``'s loop column: 5.3 s → 2.3 s). Where
limits bind, the dual simplex moves on from it (``tests/test_power_flow_basis.py``).

HiGHS has crash procedures, but none knows which columns are a feeder's state, so the
basis is set here from the model's components.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from gridcosim.simulator.highs_model import HighsModel
from gridcosim.simulator.warm_basis import WarmBasis

#: The network block's state variables: basic in the power-flow basis (where not fixed).
STATE_VARIABLES = ("p_flow", "q_flow", "v", "p_sub", "q_sub", "p_sub_phase", "q_sub_phase")
_LOWER, _BASIC, _UPPER, _ZERO = 0, 1, 2, 3


def power_flow_basis(hm: HighsModel, block: pyo.Block) -> WarmBasis | None:
    """The power-flow basis of a compiled model holding a LinDistFlow block.

    ``None`` if it does not count one basic column or row per row (a model with rows
    beyond the network's equalities and inequalities, such as appended cuts).
    """
    rows, cols, _ = hm.compiled_shape
    if (hm.num_rows, hm.num_cols) != (rows, cols):
        return None
    col_lo, col_hi, row_lo, row_hi = hm.lp_bounds()
    col_status = np.full(cols, _ZERO, dtype=np.int8)  # nonbasic: at a bound, else at zero
    col_status[np.isfinite(col_hi)] = _UPPER
    col_status[np.isfinite(col_lo)] = _LOWER
    state = hm.columns(data for name in STATE_VARIABLES
                       if (var := block.component(name)) is not None for data in var.values())
    free = state[col_lo[state] < col_hi[state]]  # the root's fixed voltages stay nonbasic
    col_status[free] = _BASIC
    row_status = np.where(row_lo < row_hi, _BASIC, _LOWER).astype(np.int8)  # slacks basic
    basic = int((col_status == _BASIC).sum() + (row_status == _BASIC).sum())
    return WarmBasis(col_status, row_status) if basic == rows else None
