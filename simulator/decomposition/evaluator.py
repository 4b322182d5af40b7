"""The DSO's network LP with the exchanges fixed: upper bounds and the final re-solve."""

from __future__ import annotations

from collections.abc import Mapping

import pyomo.environ as pyo

from simulator.decomposition.reload import NetworkReloader
from simulator.highs_model import INF, HighsModel, SolveOutcome
from simulator.messages import RestoredExchange
from simulator.models.lindistflow import NetworkWindow
from simulator.models.master import slot_variables
from simulator.schedule import NetworkSchedule, extract_network


class NetworkEvaluator:
    """Network cost of given microgrid exchanges.

    Args:
        master_model: The Pyomo master (:func:`simulator.models.master.build_master`),
            compiled a second time here with every eta fixed at 0, so that its objective
            is the network cost alone and the model is not built twice.

    """

    def __init__(self, master_model: pyo.ConcreteModel):
        self.model = master_model
        self.hm = HighsModel(self.model)
        for eta in self.model.eta.values():
            self.hm.set_col_bounds(self.hm.col(eta), 0.0, 0.0)
        net = self.model.net
        self._cols = {i: ([self.hm.col(net.p_ex[i, t]) for t in net.T],
                          [self.hm.col(net.q_ex[i, t]) for t in net.T]) for i in net.MG}
        self._reloader = NetworkReloader(self.hm, net)

    def reload(self, previous: NetworkWindow, window: NetworkWindow) -> None:
        """Sync this LP with the next window (the master already updated the Pyomo model)."""
        self._reloader.load(previous, window, update_block=False)

    def evaluate(self, exchanges: Mapping[str, RestoredExchange]) -> SolveOutcome:
        """Solve the network LP with every exchange fixed to the given values."""
        for mg, (p_cols, q_cols) in self._cols.items():
            ex = exchanges[mg]
            for col, p in zip(p_cols, ex.p_kw, strict=True):
                self.hm.set_col_bounds(col, p, p)
            for col, q in zip(q_cols, ex.q_kvar, strict=True):
                self.hm.set_col_bounds(col, q, q)
        return self.hm.solve()

    def marginal_values(self, outcome: SolveOutcome
                        ) -> dict[str, tuple[tuple[float, ...], tuple[float, ...]]] | None:
        """What one more kW / kvar exported by each microgrid is worth, per slot ($).

        Minus the reduced cost of each fixed exchange column: the nodal price of the
        network LP at the microgrid's bus (energy price, plus whatever binding voltage,
        flow or AC-cut rows add), times the slot length. ``None`` without valid duals.
        """
        d = outcome.col_dual
        if d is None:  # HiGHS reported no valid duals
            return None
        return {mg: (tuple(-float(d[c]) for c in p_cols), tuple(-float(d[c]) for c in q_cols))
                for mg, (p_cols, q_cols) in self._cols.items()}

    def add_cut(self, slot: int, keys: list, coefs: list[float], rhs: float) -> None:
        """Add a network cut ``Σ coefs·x[keys] ≤ rhs`` on one slot's variables (AC cuts).

        The master gets the same cut; without it here, the network LP that prices and
        re-optimises exchange combinations would hand back the schedule the cut removed.
        """
        variables = slot_variables(self.model, slot)
        self.hm.add_row([self.hm.col(variables[k]) for k in keys], coefs, -INF, rhs)

    def schedule(self, outcome: SolveOutcome) -> NetworkSchedule:
        """The network schedule of an evaluated outcome."""
        self.hm.load_values(outcome)
        return extract_network(self.model.net)
