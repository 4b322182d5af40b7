"""The DSO's inner master: its network LP over convex combinations of runnable schedules.

Every restored exchange a controller sends (a price response, an accepted or a restored
schedule) is one its microgrid can run, with its true cost. The inner master (a
Dantzig–Wolfe restricted master) gives each microgrid a convex combination ``μ`` of the
schedules it sent::

    min  N(P, Q) + Σ_i Σ_k μ_ik c_ik
    s.t. the network (docs/formulation.md §2),
         P_i,t = Σ_k μ_ik P_ik,t,   Σ_k μ_ik q⁻_ik,t ≤ Q_i,t ≤ Σ_k μ_ik q⁺_ik,t,
         Σ_k μ_ik = 1,   μ ≥ 0

(``q⁻, q⁺`` the schedule's reactive band). Three things come out of it:

* its value ``V`` bounds the convexified problem from above (not the MILP: a combination
  of runnable schedules need not be runnable), and the master's bound from below, so
  ``V − LB`` measures how much the price rounds can still gain;
* the duals of the exchange rows are nodal prices at the combination: what one more kW
  (kvar) exported by microgrid i is worth to the DSO there. They are the Dantzig–Wolfe
  prices: a microgrid's price response to them is the schedule that lowers ``V`` most,
  and its Lagrangian cut raises the master's bound (docs/formulation.md §7);
* its solution satisfies every Lagrangian and unified cut (both are valid at any convex
  combination of runnable schedules, costs combined alike), so when ``V`` meets the
  master's bound it is one of the master's optimal solutions: the one the DSO proposes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridcosim.simulator.highs_instance import INF, LP_RESOLVE_OPTIONS
from gridcosim.simulator.highs_model import HighsModel
from gridcosim.simulator.messages import ExchangeBounds, RestoredExchange

#: Digits to which two schedules must agree to count as the same column.
_SAME_DIGITS = 9

#: Nodal prices of one microgrid per slot ($ per kW, $ per kvar, over the slot).
Prices = tuple[tuple[float, ...], tuple[float, ...]]


@dataclass(frozen=True)
class InnerSolution:
    """One solve of the inner master.

    Attributes:
        value_usd: The combination's network cost plus combined microgrid costs.
        prices: Per microgrid, the value of one more kW / kvar exported, per slot.
        exchanges: Per microgrid, the combined exchange; ``cost_usd`` is the combined cost.
        columns: How many schedules the inner master held.

    """

    value_usd: float
    prices: dict[str, Prices]
    exchanges: dict[str, RestoredExchange]
    columns: int


@dataclass(frozen=True)
class _Rows:
    """One microgrid's rows in the inner master."""

    p: list[int]
    q_low: list[int]
    q_high: list[int]
    convexity: int


@dataclass(frozen=True)
class _Column:
    """One runnable schedule of a microgrid: its rows' coefficients and its cost."""

    mg: str
    coefs: np.ndarray  # p rows, q-low rows, q-high rows, convexity row
    cost_usd: float


class InnerMaster:
    """The network LP over convex combinations of each microgrid's runnable schedules.

    The LP is built when it is first solved (most windows settle before they need it):
    until then schedules and cuts are kept, and the build adds them in one call each, in
    the order they came, so the LP is the one an eager build would have made.

    Args:
        network: The DSO's compiled network LP (cloned at the first solve; eta columns
            fixed at 0; its cut rows are dropped from the clone, the inner master gets
            cuts through :meth:`add_cut`).
        p_cols: Per microgrid, its active-exchange columns in the network LP.
        q_cols: Per microgrid, its reactive-exchange columns.
        bounds: The bounds each controller publishes.

    """

    def __init__(self, network: HighsModel, p_cols: dict[str, list[int]],
                 q_cols: dict[str, list[int]], bounds: list[ExchangeBounds]):
        self.network, self.bounds = network, bounds
        self.p_cols, self.q_cols = p_cols, q_cols
        self.hm: HighsModel | None = None
        self._rows: dict[str, _Rows] = {}
        self._columns: dict[str, list[tuple[int, float]]] = {b.mg: [] for b in bounds}
        self._pending: list[_Column] = []
        self._cuts: list[tuple[list[int], list[float], float]] = []
        self._seen: set[tuple] = set()
        self._senders: set[str] = set()
        self.added = 0  # columns added so far (a change counter)

    def _build(self) -> HighsModel:
        """Clone the network LP, add every microgrid's rows, the cuts and the schedules."""
        hm = HighsModel.clone(self.network, options=LP_RESOLVE_OPTIONS)
        hm.truncate()
        rows: list[tuple[list[int], list[float], float, float]] = []
        for b in self.bounds:
            p, q = self.p_cols[b.mg], self.q_cols[b.mg]
            hm.set_cols_bounds(p, b.p_min_kw, b.p_max_kw)
            hm.set_cols_bounds(q, b.q_min_kvar, b.q_max_kvar)
            first = hm.num_rows + len(rows)
            rows += ([([c], [1.0], 0.0, 0.0) for c in p] + [([c], [1.0], 0.0, INF) for c in q]
                     + [([c], [1.0], -INF, 0.0) for c in q] + [([], [], 1.0, 1.0)])
            n, m = len(p), len(q)
            self._rows[b.mg] = _Rows(p=list(range(first, first + n)),
                                     q_low=list(range(first + n, first + n + m)),
                                     q_high=list(range(first + n + m, first + n + 2 * m)),
                                     convexity=first + n + 2 * m)
        rows += [(cols, coefs, -INF, rhs) for cols, coefs, rhs in self._cuts]
        hm.add_rows(rows)
        self.hm = hm
        for column in self._pending:
            self._add_column(column)
        self._pending = []
        return hm

    @property
    def ready(self) -> bool:
        """Whether every microgrid has sent at least one schedule."""
        return self._senders == set(self._columns)

    def add(self, mg: str, ex: RestoredExchange) -> bool:
        """Add one runnable schedule of ``mg`` as a column; False if it is already in."""
        q_low = ex.q_min_kvar or ex.q_kvar
        q_high = ex.q_max_kvar or ex.q_kvar
        key = (mg, *np.round([*ex.p_kw, *q_low, *q_high, ex.cost_usd], _SAME_DIGITS))
        if key in self._seen:
            return False
        self._seen.add(key)
        coefs = np.concatenate([-np.asarray(ex.p_kw, dtype=float),
                                -np.asarray(q_low, dtype=float),
                                -np.asarray(q_high, dtype=float), [1.0]])
        column = _Column(mg, coefs, float(ex.cost_usd))
        if self.hm is None:
            self._pending.append(column)
        else:
            self._add_column(column)
        self._senders.add(mg)
        self.added += 1
        return True

    def _add_column(self, column: _Column) -> None:
        rows = self._rows[column.mg]
        idx = np.array([*rows.p, *rows.q_low, *rows.q_high, rows.convexity], dtype=np.int32)
        keep = column.coefs != 0.0
        col = self.hm.add_column(column.cost_usd, 0.0, INF, idx[keep], column.coefs[keep])
        self._columns[column.mg].append((col, column.cost_usd))

    def add_cut(self, cols: list[int], coefs: list[float], rhs: float) -> None:
        """Add a network cut ``Σ coefs·x[cols] ≤ rhs`` (an AC cut the master also got)."""
        if self.hm is None:
            self._cuts.append((list(cols), list(coefs), rhs))
        else:
            self.hm.add_row(cols, coefs, -INF, rhs)

    def solve(self) -> InnerSolution | None:
        """The best combination and its prices.

        ``None`` if not every microgrid has a schedule yet or the network cannot take any
        combination.
        """
        if not self.ready:
            return None
        hm = self.hm if self.hm is not None else self._build()
        out = hm.solve()
        if out.status != "optimal" or out.row_dual is None:
            return None
        y, x = out.row_dual, out.x
        prices, exchanges = {}, {}
        for mg, rows in self._rows.items():
            prices[mg] = (tuple(-float(y[r]) for r in rows.p),
                          tuple(-float(y[lo] + y[hi]) for lo, hi in zip(rows.q_low, rows.q_high,
                                                                       strict=True)))
            cost = sum(float(x[col]) * c for col, c in self._columns[mg])
            exchanges[mg] = RestoredExchange(tuple(float(x[c]) for c in self.p_cols[mg]),
                                             tuple(float(x[c]) for c in self.q_cols[mg]),
                                             cost)
        return InnerSolution(float(out.objective), prices, exchanges, self.added)
