"""The DSO's persistent master problem: proposals out, cuts in (seed 000, Steps 1-2, 7).

The master is compiled once per window (:func:`simulator.models.master_model.build_master`) and
only grows: unified cuts (rows), restoration cuts (rows with their own binaries), branch
selectors (binary columns with ``y_parent = y_c0 + y_c1``) and AC feasibility cuts. It never
sees a microgrid's units: only the published bounds and the messages' coefficients.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyomo.environ as pyo

from gridcosim.simulator.collector import collector_paused
from gridcosim.simulator.decomposition.cut_families import CutFamily
from gridcosim.simulator.decomposition.cut_pool import Cut, CutPool
from gridcosim.simulator.decomposition.master_branch_and_bound import branch_and_bound
from gridcosim.simulator.decomposition.network_reload import NetworkReloader
from gridcosim.simulator.highs_instance import INF, LP_RESOLVE_OPTIONS, SolveOutcome
from gridcosim.simulator.highs_model import HighsModel
from gridcosim.simulator.messages import (
    BranchNotice,
    ExchangeProposal,
    KeySource,
    PriceResponse,
    RestorationCut,
    RestoredExchange,
    ScheduleKey,
    UnifiedCut,
)
from gridcosim.simulator.models.lindistflow_model import NetworkWindow, load_network_data
from gridcosim.simulator.models.master_model import build_master, slot_variables

if TYPE_CHECKING:
    from gridcosim.simulator.validation.cut import ACFeasibilityCut

_TINY = 1e-12
_SELECTED = 1e-6


@dataclass(frozen=True)
class MasterSolution:
    """One master solve: status, bound, objective and the proposals it implies.

    With the binaries relaxed, a microgrid's exchange may be spread over several leaves;
    then it gets one proposal per leaf in use (the leaf's copy divided by its selector).
    ``integral`` tells whether every selector came out 0 or 1.
    """

    status: str
    lower_bound: float
    objective: float
    proposals: list[ExchangeProposal]
    integral: bool
    outcome: SolveOutcome | None
    inner: bool = False  # the proposals are the inner master's combination


class MasterProblem:
    """The DSO's master with cut bookkeeping.

    Args:
        window: The DSO's window data (network, loads, prices, published bounds).
        time_limit_s: Time limit of one master solve.
        mip_rel_gap: Relative gap of the branch and bound over the selectors.
        cut_purge_age: Unified and Lagrangian cuts slack at this many consecutive
            solutions are parked in a pool (0: every cut stays; :mod:`.cut_pool`).

    """

    def __init__(self, window: NetworkWindow, *, time_limit_s: float = 60.0,
                 mip_rel_gap: float = 1e-7, cut_purge_age: int = 0):
        with collector_paused():  # a large model build (simulator/collector.py)
            self.model = build_master(window)
            self.hm = HighsModel(self.model, options=LP_RESOLVE_OPTIONS)
            self.reloader = NetworkReloader(self.hm, self.model.net)
        self.pool = CutPool(self.hm, cut_purge_age)
        self.time_limit_s = time_limit_s
        net = self.model.net
        self.slots = list(net.T)
        p_ex, q_ex = self.hm.slot_columns(net.p_ex), self.hm.slot_columns(net.q_ex)
        self.p_cols = {i: p_ex[i].tolist() for i in net.MG}
        self.q_cols = {i: q_ex[i].tolist() for i in net.MG}
        self.eta_col = {i: self.hm.col(self.model.eta[i]) for i in net.MG}
        self.rel_gap = mip_rel_gap
        self._begin(window)

    def _begin(self, window: NetworkWindow) -> None:
        """Empty cut and branch bookkeeping for ``window``."""
        self.window = window
        self.bounds = {e.mg: e for e in window.exchanges}
        self._selector: dict[tuple[str, int], int] = {}
        self._copy: dict[tuple[str, int], list[int]] = {(i, 0): self._cols(i)
                                                        for i in self.p_cols}
        self._children: dict[tuple[str, int], tuple[int, int]] = {}
        self.cut_counts: Counter[CutFamily] = Counter()
        self._binaries: list[int] = []
        self._upper: dict[int, float] = {}
        self.nodes = 0
        self._last_x: np.ndarray | None = None
        self._proposals_made = 0
        self.pool.begin()

    def reload(self, window: NetworkWindow) -> None:
        """Start the next window of the same shape: new data, no cuts (nothing rebuilt).

        Only the compiled HiGHS models change (this one here, the network LP in
        :meth:`NetworkEvaluator.reload`; ``tests/test_reload.py`` compares them with models
        compiled afresh for the window): the Pyomo model keeps the data it last stored
        (:meth:`synced_model` stores the window's).
        """
        self.reloader.load(self.window, window)
        for e in window.exchanges:
            self.hm.set_col_bounds(self.eta_col[e.mg], 0.0, e.eta_ub_usd)
        self._begin(window)

    def synced_model(self) -> pyo.ConcreteModel:
        """The Pyomo master with the current window's data (stored only when asked).

        :meth:`reload` changes the compiled models alone; a caller that compiles or reads
        the Pyomo model's data gets it from here, equal to a model built for the window.
        """
        load_network_data(self.model.net, self.window)
        for e in self.window.exchanges:
            self.model.eta[e.mg].setub(e.eta_ub_usd)
        return self.model

    # ------------------------------------------------------------------ cuts
    def _box(self, mg: str) -> tuple[list[float], list[float]]:
        """Lower and upper bounds of (P_1..P_T, Q_1..Q_T, eta) as published."""
        b, n = self.bounds[mg], len(self.slots)
        lo = [b.p_min_kw] * n + [b.q_min_kvar] * n + [0.0]
        hi = [b.p_max_kw] * n + [b.q_max_kvar] * n + [b.eta_ub_usd]
        return lo, hi

    def _cols(self, mg: str) -> list[int]:
        return [*self.p_cols[mg], *self.q_cols[mg], self.eta_col[mg]]

    def add_unified_cut(self, cut: UnifiedCut) -> None:
        """Add ``f + π·(x − x̂) ≤ 0`` on the copy of x at the cut's branch node.

        At the root the copy is x itself. At node c it is the perspective
        ``f·y_c + π·(x_c − x̂·y_c) ≤ 0``: binding when c is selected (then x_c = x), void
        (0 ≤ 0) when it is not.
        """
        pi = [*cut.pi_p, *cut.pi_q, cut.pi_eta]
        x_hat = [*cut.p_hat_kw, *cut.q_hat_kvar, cut.eta_hat_usd]
        const = cut.f - sum(a * x for a, x in zip(pi, x_hat, strict=True))
        cols, coefs = [], []
        for col, a in zip(self._copy[(cut.mg, cut.leaf)], pi, strict=True):
            if abs(a) > _TINY:
                cols.append(col)
                coefs.append(a)
        if cut.leaf == 0:
            self.pool.add(Cut(np.array(cols, dtype=np.int32), np.array(coefs), -INF, -const))
        else:
            self.pool.add(Cut(np.array([*cols, self._selector[(cut.mg, cut.leaf)]],
                                       dtype=np.int32), np.array([*coefs, const]), -INF, 0.0))
        self.cut_counts[CutFamily.UNIFIED] += 1

    def add_lagrangian_cut(self, response: PriceResponse) -> None:
        """Add ``eta ≥ L + Σ λ_P P + Σ λ_Q Q`` on the root (valid at every branch leaf).

        ``L`` bounds the microgrid's whole MILP value function from below, so the cut holds
        for every exchange the microgrid can run, whichever leaf its schedule lies in.
        """
        cols, coefs = [self.eta_col[response.mg]], [1.0]
        for col, lam in zip([*self.p_cols[response.mg], *self.q_cols[response.mg]],
                            [*response.p_usd_per_kw, *response.q_usd_per_kvar], strict=True):
            if abs(lam) > _TINY:
                cols.append(col)
                coefs.append(-lam)
        self.pool.add(Cut(np.array(cols, dtype=np.int32), np.array(coefs), response.bound_usd,
                          INF))
        self.cut_counts[CutFamily.LAGRANGIAN] += 1

    def add_branch(self, notice: BranchNotice) -> None:
        """Split a node: selectors ``y_parent = y_c0 + y_c1`` and copies ``x_p = x_c0 + x_c1``.

        This is the disjunctive (convex-hull) form of the leaf-conditional cuts of
        docs/formulation.md §3c: each child's copy lies in ``y_c`` times the published box, so the
        master's LP relaxation stays tight, unlike a big-M form.
        """
        mg, parent = notice.mg, notice.parent
        lo, hi = self._box(mg)
        children = []
        for child in notice.children:
            y = self._add_binary(0.0 if child in notice.infeasible else 1.0)
            copy = [self.hm.add_col(0.0, -INF, INF) for _ in lo]
            for col, low, high in zip(copy, lo, hi, strict=True):
                self.hm.add_row([col, y], [1.0, -high], -INF, 0.0)
                self.hm.add_row([col, y], [1.0, -low], 0.0, INF)
            self._selector[(mg, child)] = y
            self._copy[(mg, child)] = copy
            children.append((y, copy))
        (y0, x0), (y1, x1) = children
        if parent == 0:
            self.hm.add_row([y0, y1], [1.0, 1.0], 1.0, 1.0)
        else:
            self.hm.add_row([y0, y1, self._selector[(mg, parent)]], [1.0, 1.0, -1.0], 0.0, 0.0)
        for a, b, p in zip(x0, x1, self._copy[(mg, parent)], strict=True):
            self.hm.add_row([a, b, p], [1.0, 1.0, -1.0], 0.0, 0.0)
        self._children[(mg, parent)] = notice.children
        self.cut_counts[CutFamily.BRANCH] += 1
        for cut in notice.cuts:
            self.add_unified_cut(cut)

    def add_restoration_cut(self, cut: RestorationCut) -> None:
        """Add ``Σ w|x − x̂| + w_eta (eta − eta_hat)⁺ ≥ F_F`` in split form with binaries."""
        lo, hi = self._box(cut.mg)
        x_hat = [*cut.p_hat_kw, *cut.q_hat_kvar, cut.eta_hat_usd]
        n = len(self.slots)
        weights = [cut.w_p] * n + [cut.w_q] * n + [cut.w_eta]
        dist_cols, dist_w = [], []
        for k, (col, x, low, high) in enumerate(zip(self._cols(cut.mg), x_hat, lo, hi,
                                                    strict=True)):
            plus, minus = self._abs_split(col, x, low, high)
            dist_cols.append(plus)
            dist_w.append(weights[k])
            if k < 2 * n:
                dist_cols.append(minus)
                dist_w.append(weights[k])
        self.hm.add_row(dist_cols, dist_w, cut.f, INF)
        self.cut_counts[CutFamily.RESTORATION] += 1

    def _abs_split(self, col: int, x_hat: float, low: float, high: float) -> tuple[int, int]:
        """Columns a⁺, a⁻ with a⁺ − a⁻ = x − x̂ and at most one of them non-zero."""
        up, down = max(high - x_hat, 0.0), max(x_hat - low, 0.0)
        plus = self.hm.add_col(0.0, 0.0, up)
        minus = self.hm.add_col(0.0, 0.0, down)
        z = self._add_binary(1.0)
        self.hm.add_row([col, plus, minus], [1.0, -1.0, 1.0], x_hat, x_hat)
        self.hm.add_row([plus, z], [1.0, -up], -INF, 0.0)
        self.hm.add_row([minus, z], [1.0, down], -INF, down)
        return plus, minus

    def _add_binary(self, upper: float) -> int:
        """A binary column, continuous in HiGHS and branched on by :meth:`solve`."""
        col = self.hm.add_col(0.0, 0.0, upper)
        self._binaries.append(col)
        self._upper[col] = upper
        return col

    def add_linear_cut(self, cols: list[int], coefs: list[float], rhs: float,
                       kind: CutFamily) -> None:
        """Add a generic ``Σ coefs·x[cols] ≤ rhs`` (used by AC feasibility cuts)."""
        self.hm.add_row(cols, coefs, -INF, rhs)
        self.cut_counts[kind] += 1

    def slot_variables(self, slot: int) -> dict[tuple[str, str | int], Any]:
        """Pyomo variables of one slot an AC feasibility cut may use, by key."""
        return slot_variables(self.model, slot)

    def slot_columns(self, slot: int) -> dict[tuple[str, str | int], int]:
        """Master column of each of :meth:`slot_variables`, by key."""
        return {key: self.hm.col(var) for key, var in self.slot_variables(slot).items()}

    def add_ac_cut(self, cut: ACFeasibilityCut) -> None:
        """Add an AC feasibility cut (formulation §6) on its slot's columns (family ``ac``)."""
        keys, coefs, rhs = cut.row()
        cols = self.slot_columns(cut.slot)
        self.add_linear_cut([cols[k] for k in keys], coefs, rhs, CutFamily.AC)

    # ------------------------------------------------------------------ solve
    def _leaves(self, mg: str, x: np.ndarray) -> list[tuple[int, float]]:
        """Leaves in use with their selector values (the root's is 1)."""
        out, stack = [], [(0, 1.0)]
        while stack:
            node, weight = stack.pop()
            if (mg, node) not in self._children:
                out.append((node, weight))
                continue
            for child in self._children[(mg, node)]:
                y = float(x[self._selector[(mg, child)]])
                if y > _SELECTED:
                    stack.append((child, y))
        return sorted(out)

    def _proposals(self, x: np.ndarray) -> list[ExchangeProposal]:
        props = []
        n = len(self.slots)
        for mg in self.p_cols:
            for leaf, y in self._leaves(mg, x):
                v = [float(x[c]) / y for c in self._copy[(mg, leaf)]]
                self._proposals_made += 1
                props.append(ExchangeProposal(
                    mg=mg, key=ScheduleKey(KeySource.PROPOSAL, self._proposals_made), leaf=leaf,
                    p_kw=tuple(v[:n]),
                    q_kvar=tuple(v[n:2 * n]), eta_usd=v[-1]))
        return props

    def proposals_at(self, exchanges: dict[str, RestoredExchange]) -> list[ExchangeProposal]:
        """Root proposals at given exchanges (``cost_usd`` is the proposed eta)."""
        props = []
        for mg in self.p_cols:
            ex = exchanges[mg]
            self._proposals_made += 1
            props.append(ExchangeProposal(
                mg=mg, key=ScheduleKey(KeySource.PROPOSAL, self._proposals_made), leaf=0,
                p_kw=ex.p_kw, q_kvar=ex.q_kvar, eta_usd=ex.cost_usd))
        return props

    @property
    def has_binaries(self) -> bool:
        """Whether the master has branch selectors or restoration-cut switches."""
        return bool(self._binaries)

    def solve(self, *, relaxed: bool = False) -> MasterSolution:
        """Solve the master (binaries relaxed, or branched on); no proposals if it fails.

        Parked cuts the solution violates go back in and the master is solved again, so
        the solution satisfies every cut ever added (:mod:`.cut_pool`).
        """
        while True:
            out, status, bound = self._solve_once(relaxed)
            if out is None or not out.has_solution or out.status != "optimal":
                return MasterSolution(status, float("nan"), float("nan"), [], False, out)
            if not self.pool.restore_violated(out.x):
                break
        self.pool.after_solve(out.x)
        x = out.x
        self._last_x = x
        integral = all(abs(x[c] - round(x[c])) <= 1e-6 for c in self._binaries)
        return MasterSolution(status, float(bound), float(out.objective), self._proposals(x),
                              integral, out)

    def _solve_once(self, relaxed: bool) -> tuple[SolveOutcome | None, str, float]:
        """One solve: the LP, or the branch and bound over the binaries."""
        if self._binaries and not relaxed:
            bb = branch_and_bound(self.hm, self._binaries, self._upper, rel_gap=self.rel_gap,
                                  time_limit_s=self.time_limit_s, start=self._start())
            self.nodes += bb.nodes
            return bb.incumbent, bb.status, bb.bound
        out = self.hm.solve(time_limit_s=self.time_limit_s)
        return out, out.status, out.bound

    def exchanges(self, sol: MasterSolution) -> dict[str, RestoredExchange]:
        """The exchanges of a solution (root copies; ``cost_usd`` carries eta)."""
        x = sol.outcome.x
        return {mg: RestoredExchange(tuple(float(x[c]) for c in self.p_cols[mg]),
                                     tuple(float(x[c]) for c in self.q_cols[mg]),
                                     float(x[self.eta_col[mg]]))
                for mg in self.p_cols}

    def _start(self) -> dict[int, float] | None:
        if self._last_x is None:
            return None
        last = self._last_x
        return {c: (float(round(last[c])) if c < len(last) else 0.0) for c in self._binaries}

    @property
    def branch_nodes(self) -> int:
        """Number of selector binaries added so far."""
        return len(self._selector)
