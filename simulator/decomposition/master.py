"""The DSO's persistent master problem: proposals out, cuts in (seed 000, Steps 1-2, 7).

The master is compiled once per window (:func:`simulator.models.master.build_master`) and
only grows: unified cuts (rows), restoration cuts (rows with their own binaries), branch
selectors (binary columns with ``y_parent = y_c0 + y_c1``) and AC feasibility cuts. It never
sees a microgrid's units: only the published bounds and the messages' coefficients.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from simulator.highs_model import INF, LP_RESOLVE_OPTIONS, HighsModel, SolveOutcome
from simulator.messages import BranchNotice, ExchangeProposal, RestorationCut, UnifiedCut
from simulator.models.lindistflow import NetworkWindow
from simulator.models.master import build_master

_TINY = 1e-12


@dataclass(frozen=True)
class MasterSolution:
    """One master solve: its status, bound, objective and the proposals it implies."""

    status: str
    lower_bound: float
    objective: float
    proposals: dict[str, ExchangeProposal]
    outcome: SolveOutcome


class MasterProblem:
    """The DSO's master with cut bookkeeping.

    Args:
        window: The DSO's window data (network, loads, prices, published bounds).
        time_limit_s: Time limit of one master solve.

    """

    def __init__(self, window: NetworkWindow, *, time_limit_s: float = 60.0):
        self.window = window
        self.model = build_master(window)
        self.hm = HighsModel(self.model, options=LP_RESOLVE_OPTIONS)
        self.time_limit_s = time_limit_s
        self.bounds = {e.mg: e for e in window.exchanges}
        net = self.model.net
        self.slots = list(net.T)
        self.p_cols = {i: [self.hm.col(net.p_ex[i, t]) for t in net.T] for i in net.MG}
        self.q_cols = {i: [self.hm.col(net.q_ex[i, t]) for t in net.T] for i in net.MG}
        self.eta_col = {i: self.hm.col(self.model.eta[i]) for i in net.MG}
        self._selector: dict[tuple[str, int], int] = {}
        self._children: dict[tuple[str, int], tuple[int, int]] = {}
        self.cut_counts: Counter[str] = Counter()

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
        """Add ``f + π·(x − x̂) ≤ 0``, or ``≤ M (1 − y_leaf)`` for a non-root leaf."""
        pi = [*cut.pi_p, *cut.pi_q, cut.pi_eta]
        x_hat = [*cut.p_hat_kw, *cut.q_hat_kvar, cut.eta_hat_usd]
        rhs = -cut.f + sum(a * x for a, x in zip(pi, x_hat, strict=True))
        cols, coefs = [], []
        for col, a in zip(self._cols(cut.mg), pi, strict=True):
            if abs(a) > _TINY:
                cols.append(col)
                coefs.append(a)
        if cut.leaf != 0:
            lo, hi = self._box(cut.mg)
            big_m = cut.f + sum(max(a * (h - x), a * (low - x))
                                for a, x, low, h in zip(pi, x_hat, lo, hi, strict=True))
            big_m = max(big_m, 0.0)
            cols.append(self._selector[(cut.mg, cut.leaf)])
            coefs.append(big_m)
            rhs += big_m
        self.hm.add_row(cols, coefs, -INF, rhs)
        self.cut_counts["unified"] += 1

    def add_branch(self, notice: BranchNotice) -> None:
        """Add the two children's selectors, ``y_parent = y_c0 + y_c1``, and their cuts."""
        ys = [self.hm.add_col(0.0, 0.0, 1.0, integer=True) for _ in notice.children]
        for child, y in zip(notice.children, ys, strict=True):
            self._selector[(notice.mg, child)] = y
            if child in notice.infeasible:
                self.hm.set_col_bounds(y, 0.0, 0.0)
        self._children[(notice.mg, notice.parent)] = notice.children
        if notice.parent == 0:
            self.hm.add_row(ys, [1.0, 1.0], 1.0, 1.0)
        else:
            parent = self._selector[(notice.mg, notice.parent)]
            self.hm.add_row([*ys, parent], [1.0, 1.0, -1.0], 0.0, 0.0)
        self.cut_counts["branch"] += 1
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
        self.cut_counts["restoration"] += 1

    def _abs_split(self, col: int, x_hat: float, low: float, high: float) -> tuple[int, int]:
        """Columns a⁺, a⁻ with a⁺ − a⁻ = x − x̂ and at most one of them non-zero."""
        up, down = max(high - x_hat, 0.0), max(x_hat - low, 0.0)
        plus = self.hm.add_col(0.0, 0.0, up)
        minus = self.hm.add_col(0.0, 0.0, down)
        z = self.hm.add_col(0.0, 0.0, 1.0, integer=True)
        self.hm.add_row([col, plus, minus], [1.0, -1.0, 1.0], x_hat, x_hat)
        self.hm.add_row([plus, z], [1.0, -up], -INF, 0.0)
        self.hm.add_row([minus, z], [1.0, down], -INF, down)
        return plus, minus

    def add_linear_cut(self, cols: list[int], coefs: list[float], rhs: float, kind: str) -> None:
        """Add a generic ``Σ coefs·x[cols] ≤ rhs`` (used by AC feasibility cuts)."""
        self.hm.add_row(cols, coefs, -INF, rhs)
        self.cut_counts[kind] += 1

    # ------------------------------------------------------------------ solve
    def _leaf(self, mg: str, x: list[float]) -> int:
        node = 0
        while (mg, node) in self._children:
            c0, c1 = self._children[(mg, node)]
            node = c0 if x[self._selector[(mg, c0)]] > 0.5 else c1
        return node

    def solve(self) -> MasterSolution:
        """Solve the master; proposals are empty unless a solution was found."""
        out = self.hm.solve(time_limit_s=self.time_limit_s)
        if not out.has_solution or out.status not in ("optimal", "time_limit"):
            return MasterSolution(out.status, float("nan"), float("nan"), {}, out)
        x = out.x
        proposals = {mg: ExchangeProposal(
            mg=mg, leaf=self._leaf(mg, x),
            p_kw=tuple(float(x[c]) for c in self.p_cols[mg]),
            q_kvar=tuple(float(x[c]) for c in self.q_cols[mg]),
            eta_usd=float(x[self.eta_col[mg]])) for mg in self.p_cols}
        return MasterSolution(out.status, float(out.bound), float(out.objective), proposals, out)

    @property
    def branch_nodes(self) -> int:
        """Number of selector binaries added so far."""
        return len(self._selector)
