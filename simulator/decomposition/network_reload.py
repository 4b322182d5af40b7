"""Move the DSO's compiled network models to the next window of the same shape.

A rolling horizon re-plans every K slots with windows of the same length: the same
feeder, microgrids and SVCs, only new bus loads, prices and published cost bounds. The
master and the network LP are compiled once per window length and then re-loaded here
instead of rebuilt (building and compiling the 24-slot LinDistFlow model costs about
0.4 s; re-loading it a few milliseconds). Everything the previous window appended (cuts,
branch selectors) is dropped; the caller then restarts the solver from a chosen basis
(:meth:`~gridcosim.simulator.decomposition.network_models.NetworkModels.for_window`), so a re-loaded
model answers exactly as one compiled afresh for the window (``tests/test_reload.py``).
"""

from __future__ import annotations

import copy

import numpy as np
import pyomo.environ as pyo

from gridcosim.simulator.highs_model import HighsModel
from gridcosim.simulator.models.lindistflow_model import (
    NetworkWindow,
    curtailment_bounds,
    same_shape,
    window_loads,
)


class NetworkReloader:
    """Rows and columns of a compiled LinDistFlow block that carry window data.

    Args:
        hm: The compiled model (master or network LP).
        block: Its LinDistFlow block (:func:`simulator.models.lindistflow_model.add_network`).

    """

    def __init__(self, hm: HighsModel, block: pyo.Block):
        self.hm, self.block = hm, block
        slots = list(block.T)  # a Pyomo set is slow to iterate: once, not once per bus
        keys = [(n, t) for n in block.N for t in slots]
        self._rows = hm.rhs_rows([block.p_balance[k] for k in keys]
                                 + [block.q_balance[k] for k in keys])
        self._curtail = [hm.col(v) for v in block.curtail.values()]
        self._p_sub = [hm.col(block.p_sub[t]) for t in block.T]

    def on(self, hm: HighsModel) -> NetworkReloader:
        """The same rows and columns of a copy of the compiled model (no second listing)."""
        new = copy.copy(self)
        new.hm = hm
        return new

    def load(self, previous: NetworkWindow, window: NetworkWindow) -> None:
        """Drop appended rows and columns; set loads, curtailment bounds and prices.

        Only the compiled model changes: the Pyomo block keeps the data it was built (or
        last synced) with (:meth:`MasterProblem.synced_model
        <gridcosim.simulator.decomposition.master_problem.MasterProblem.synced_model>`).

        Args:
            previous: The window the model holds now.
            window: The next window (same shape, :func:`same_shape`).

        """
        if not same_shape(previous, window):
            raise ValueError("the next window does not have the shape of the compiled model")
        hm, b = self.hm, self.block
        hm.truncate()
        p, q = window_loads(b, window)
        hm.set_rhs(self._rows, np.concatenate([p.ravel(), q.ravel()]))
        hm.set_cols_bounds(self._curtail, 0.0, curtailment_bounds(b, window))
        hm.set_costs(self._p_sub, window.slot_hours
                     * np.asarray(window.price_usd_per_kwh, dtype=float))
