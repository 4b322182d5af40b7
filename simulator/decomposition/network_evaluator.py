"""The DSO's network LP with the exchanges fixed: upper bounds and the final re-solve."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pyomo.environ as pyo

from gridcosim.simulator.decomposition.network_reload import NetworkReloader
from gridcosim.simulator.highs_instance import INF, SolveOutcome
from gridcosim.simulator.highs_model import HighsModel
from gridcosim.simulator.messages import RestoredExchange
from gridcosim.simulator.models.lindistflow_model import NetworkWindow
from gridcosim.simulator.models.master_model import slot_variables
from gridcosim.simulator.schedule import NetworkSchedule

#: An exchange's column bounds: (active lower, upper), (reactive lower, upper), per slot.
_Bounds = tuple[tuple[tuple[float, ...], tuple[float, ...]],
                tuple[tuple[float, ...], tuple[float, ...]]]


def _bounds(ex: RestoredExchange) -> _Bounds:
    """The bounds :meth:`NetworkEvaluator.evaluate` gives an exchange's columns."""
    q = (ex.q_min_kvar, ex.q_max_kvar) if ex.q_min_kvar else (ex.q_kvar, ex.q_kvar)
    return (ex.p_kw, ex.p_kw), q


class NetworkEvaluator:
    """Network cost of given microgrid exchanges.

    Args:
        master_model: The Pyomo master (:func:`simulator.models.master_model.build_master`),
            used here with every eta fixed at 0, so that the objective is the network
            cost alone and the model is not built twice.
        compiled: The master's compiled HiGHS model before any cut (copied instead of
            compiling the Pyomo model a second time).
        reloader: ``compiled``'s window-data rows and columns (listed once for both).

    """

    def __init__(self, master_model: pyo.ConcreteModel, compiled: HighsModel | None = None,
                 reloader: NetworkReloader | None = None):
        self.model = master_model
        self.hm = HighsModel.clone(compiled) if compiled is not None else HighsModel(master_model)
        for eta in self.model.eta.values():
            self.hm.set_col_bounds(self.hm.col(eta), 0.0, 0.0)
        net = self.model.net
        p_ex, q_ex = self.hm.slot_columns(net.p_ex), self.hm.slot_columns(net.q_ex)
        self._cols = {i: (p_ex[i].tolist(), q_ex[i].tolist()) for i in net.MG}
        self._reloader = (reloader.on(self.hm) if reloader is not None and compiled is not None
                          else NetworkReloader(self.hm, net))
        self._schedule_cols = self._columns(net)
        self._limit_cols = np.concatenate(list(self._schedule_cols["v"].values()))
        self._limit_rows = [self.hm.row(c) for c in net.thermal.values()]
        #: the last solve: the model's state after it, the exchange bounds it had, its outcome
        self._last: tuple[int, dict[str, _Bounds], SolveOutcome] | None = None

    def _columns(self, net: Any) -> dict[str, Any]:
        slots = list(net.T)
        return {
            "p_sub": np.array([self.hm.col(net.p_sub[t]) for t in slots], dtype=np.int64),
            "q_sub": np.array([self.hm.col(net.q_sub[t]) for t in slots], dtype=np.int64),
            "v": self.hm.slot_columns(net.v), "q_svc": self.hm.slot_columns(net.q_svc),
            "curtail": self.hm.slot_columns(net.curtail),
        }

    def reload(self, previous: NetworkWindow, window: NetworkWindow) -> None:
        """Sync this LP with the next window (the master already updated the Pyomo model)."""
        self._reloader.load(previous, window)

    def evaluate(self, exchanges: Mapping[str, RestoredExchange]) -> SolveOutcome:
        """Solve the network LP with the given exchanges.

        Active exchanges are fixed; a reactive exchange is fixed too, or free within the
        schedule's reactive band when the microgrid gave one (the DSO then picks the
        reactive support it needs, :meth:`with_reactive`).

        If nothing changed since the last solve but the reactive bounds, narrowed around
        the values that solve chose (the settlement after the price round that found the
        schedule), its outcome is the answer and HiGHS is not run: that optimum stays
        feasible, so optimal, and its basis stays optimal with the same duals (a fixed
        column's reduced cost may have either sign), which is what HiGHS would return
        after no iteration.
        """
        bounds = {mg: _bounds(ex) for mg, ex in exchanges.items()}
        if self._narrowed(bounds):
            return self._last[2]
        for mg, (p_cols, q_cols) in self._cols.items():
            (p_lo, p_hi), (q_lo, q_hi) = bounds[mg]
            self.hm.set_cols_bounds(p_cols, p_lo, p_hi)
            self.hm.set_cols_bounds(q_cols, q_lo, q_hi)
        out = self.hm.solve()
        self._last = (self.hm.state, bounds, out)
        return out

    def _narrowed(self, bounds: dict[str, _Bounds]) -> bool:
        """Whether ``bounds`` are the last solve's, the reactive ones narrowed around its values.

        Only if the model has not changed since (no other bound, row or basis) and that
        solve was optimal.
        """
        if self._last is None:
            return False
        state, last, out = self._last
        if state != self.hm.state or out.status != "optimal" or out.x is None:
            return False
        for mg, ((p_lo, p_hi), (q_lo, q_hi)) in bounds.items():
            (old_p_lo, old_p_hi), (old_q_lo, old_q_hi) = last[mg]
            if p_lo != old_p_lo or p_hi != old_p_hi:
                return False
            q = out.x[self._cols[mg][1]]
            if not (np.all(np.asarray(old_q_lo) <= q_lo) and np.all(q_lo <= q)
                    and np.all(q <= q_hi) and np.all(np.asarray(q_hi) <= old_q_hi)):
                return False
        return True

    def with_reactive(self, exchanges: Mapping[str, RestoredExchange], outcome: SolveOutcome
                      ) -> dict[str, RestoredExchange]:
        """The exchanges with the reactive values the evaluated network LP chose."""
        return {mg: replace(ex, q_kvar=tuple(float(outcome.x[c]) for c in self._cols[mg][1]))
                for mg, ex in exchanges.items()}

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

    def limits_active(self, outcome: SolveOutcome, tol: float = 1e-7) -> bool:
        """Whether a network limit binds in the last solve (``outcome``).

        A voltage at its bound, a line-rating row or an AC cut at its right-hand side.
        Without one, the LP value is linear around the fixed exchanges (the energy price)
        and :meth:`marginal_values` is its unique slope; with one, the duals may be one of
        several (a kink in the nodal price).
        """
        rows, _, _ = self.hm.compiled_shape
        cut_rows = list(range(rows, self.hm.num_rows))
        return self.hm.any_at_bound(outcome, self._limit_cols, self._limit_rows + cut_rows, tol)

    def add_cut(self, slot: int, keys: list, coefs: list[float], rhs: float) -> None:
        """Add a network cut ``Σ coefs·x[keys] ≤ rhs`` on one slot's variables (AC cuts).

        The master gets the same cut; without it here, the network LP that prices and
        re-optimises exchange combinations would hand back the schedule the cut removed.
        """
        variables = slot_variables(self.model, slot)
        self.hm.add_row([self.hm.col(variables[k]) for k in keys], coefs, -INF, rhs)

    def schedule(self, outcome: SolveOutcome) -> NetworkSchedule:
        """The network schedule of an evaluated outcome (read from HiGHS's columns).

        The objective is the network cost alone (every eta is fixed at 0).
        """
        x, c = outcome.x, self._schedule_cols

        def series(cols: np.ndarray) -> tuple[float, ...]:
            return tuple(np.round(x[cols], 9).tolist())

        return NetworkSchedule(
            p_sub_kw=series(c["p_sub"]), q_sub_kvar=series(c["q_sub"]),
            cost_usd=float(outcome.objective),
            vm_pu={n: tuple(np.round(np.sqrt(np.maximum(x[cols], 0.0)), 9).tolist())
                   for n, cols in c["v"].items()},
            q_svc_kvar=tuple(series(cols) for cols in c["q_svc"].values()),
            curtail_kw={n: series(cols) for n, cols in c["curtail"].items()})
