"""Microgrid controller i's side of the decomposition (seed 000, Steps 3-6).

The responder holds microgrid i's private window and two persistent models compiled once:
the unified LP (§3a) and the restoration MILP (§3b). For each proposal it answers with a
unified cut, a restoration cut, a branch notice (§3c) or an acceptance — messages that
carry only exchanges, eta, coefficients and anonymous branch-node ids. A microgrid that can
run no schedule at all in the window (its own constraints conflict) answers
:class:`~gridcosim.simulator.messages.Infeasible`; any other solver trouble raises
:class:`~gridcosim.scenarios.errors.SolverError` naming the microgrid.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from gridcosim.scenarios.errors import SolverError
from gridcosim.simulator.decomposition.controller_branching import BranchTree
from gridcosim.simulator.decomposition.controller_subproblems import (
    CompiledElastic,
    Point,
    WindowBoundReader,
    cut_value,
    probes,
)
from gridcosim.simulator.decomposition.controller_warm_start import (
    ControllerWarmStart,
    WindowStarts,
)
from gridcosim.simulator.decomposition.settings import DecompositionSettings, IntegerMethod
from gridcosim.simulator.highs_instance import SolveOutcome
from gridcosim.simulator.messages import (
    START_KEY,
    Accept,
    BranchNotice,
    ExchangeBounds,
    ExchangeProposal,
    Infeasible,
    KeySource,
    PriceResponse,
    PriceSignal,
    Reply,
    ReplyStats,
    RestorationCut,
    RestoredExchange,
    ScheduleKey,
    UnifiedCut,
)
from gridcosim.simulator.models.elastic_model import build_elastic
from gridcosim.simulator.models.microgrid_model import (
    MicrogridWindow,
    load_microgrid_data,
    same_shape,
)
from gridcosim.simulator.schedule import MicrogridSchedule
from gridcosim.simulator.windows import published_bounds

#: The bookkeeping of an answer that says the microgrid can run nothing.
INFEASIBLE_STATS = ReplyStats(float("inf"), None, 0, 0)


class MicrogridResponder:
    """Answers the master's proposals for one microgrid, keeping its data private.

    Args:
        window: The microgrid's private window data.
        settings: Decomposition settings (weights, integer method).

    """

    def __init__(self, window: MicrogridWindow, settings: DecompositionSettings):
        self.window = window
        self.settings = settings
        self.name = window.spec.name
        model = build_elastic(window, settings.weights, relax=False)
        self.milp = CompiledElastic(model, window, relax=False)
        self.lp = CompiledElastic(model, window, relax=True, compiled=self.milp.hm)
        self._starts = WindowStarts(self.milp.hm)
        self._window_bounds = WindowBoundReader(self.milp.hm, model.mg, window.spec)
        self._begin()

    def _begin(self) -> None:
        self.tree = BranchTree()
        self._restored: dict[ScheduleKey, SolveOutcome] = {}
        self._last_accept: tuple[SolveOutcome, RestoredExchange] | None = None

    def reload(self, window: MicrogridWindow, warm: ControllerWarmStart | None = None) -> bool:
        """Move to the next window if it has this one's shape (nothing is rebuilt).

        The LPs start from the bases the last window ended in (``warm``, else this
        responder's own :meth:`warm_start`) moved on to the new window's first slot, if
        the two windows overlap; else cold. Returns False (and changes nothing) when the
        models do not fit the new window.
        """
        if not same_shape(self.window, window):
            return False
        carried = warm if warm is not None else self.warm_start()
        load_microgrid_data(self.lp.model.mg, window)
        bounds = self._window_bounds.read()  # read once for both models
        self.lp.reload(window, bounds)
        self.milp.reload(window, bounds)
        lp, relaxed = self._starts.moved(carried, window)
        if lp is not None or relaxed is not None:
            self.lp.start_from(lp)
            self.milp.start_from(None, relaxed)
        self.window = window
        self._begin()
        return True

    def warm_start(self) -> ControllerWarmStart:
        """The bases the current window's LPs are in now (the next window's warm start)."""
        return ControllerWarmStart(self.name, self.window.start, self.lp.hm.basis(),
                                   self.milp.relaxed_basis())

    def bounds(self) -> ExchangeBounds:
        """The PCC bounds and cost bound this controller publishes."""
        return published_bounds(self.window)

    def _infeasible(self, out: SolveOutcome, what: str) -> Infeasible:
        """The :class:`Infeasible` answer for an infeasible solve, else a SolverError."""
        if out.status == "infeasible":
            return Infeasible(mg=self.name)
        raise SolverError(f"{self.name}: {what} ended with HiGHS status {out.status}")

    def initial_cuts(self, warm_start: bool = True) -> list[UnifiedCut | Accept | Infeasible]:
        """A runnable schedule near zero exchange, then unified cuts at probes around it.

        The schedule (an :class:`Accept` stored under :data:`START_KEY`) gives a first upper
        bound. Probes: each slot's P and Q pushed to the published rating (up and down)
        with eta at its bound, and the point itself with eta = 0. Every unified cut is
        valid anywhere (Theorem 1), so these only spare the master from discovering the
        microgrid's capability one iteration at a time.
        """
        b = self.bounds()
        zero = (0.0,) * self.window.slots
        base = self.milp.solve_at(Point(zero, zero, b.eta_ub_usd))
        if not base.has_solution:
            return [self._infeasible(base, "the starting-point MILP")]
        self._restored[START_KEY] = base
        restored = self.milp.exchange(base)
        return [Accept(mg=self.name, restored=restored),
                *(self.warm_start_cuts() if warm_start else [])]

    def warm_start_cuts(self) -> list[UnifiedCut]:
        """Unified cuts at the probes around a starting schedule and at price responses.

        The starting schedule is the one nearest zero exchange if it was asked for, else
        the first price response.
        """
        start = self._restored.get(START_KEY)
        priced = [k for k in self._restored if k.source is KeySource.PRICE]
        if start is None and priced:
            start = self._restored[min(priced)]  # the first price response
        if start is None:
            return []
        return [*self._probe_cuts(0, self.milp.exchange(start)), *self._price_cuts()]

    def _price_cuts(self, levels: tuple[float, ...] = (0.7, 1.0, 1.4)) -> list[UnifiedCut]:
        """Optimality cuts at the microgrid's LP price response to the public price signal.

        For each level m the LP maximises ``m·λ·P_ex·Δt − C`` (exchange free); the unified
        cut at (P*, Q*, eta = 0) then supports the microgrid's cost function where the
        master's first proposals are likely to land.
        """
        price = self.window.price_usd_per_kwh
        if price is None:
            return []
        cuts = []
        for m in levels:
            point = self._price_response(m * np.asarray(price))
            if point is not None:
                out = self._lp_at_leaf(0, point)
                if out.has_solution and out.objective > 1e-9:
                    cuts.append(self._unified_cut(0, point, out))
        return cuts

    def _price_response(self, price: np.ndarray) -> Point | None:
        """The LP relaxation's answer to a utility price (exchange free), as a point.

        Kept on the elastic objective (``w_eta·C`` through ``s_eta`` with eta_hat = 0)
        rather than :meth:`CompiledElastic.price_response`: the argmin is the same, but the
        LP lands on another vertex and the Benders path measured 49 → 72 iterations on the
        seed with the probe cuts at that vertex.
        """
        hm, m, w_eta = self.lp.hm, self.lp.model, self.settings.weights.eta
        slack_cols = [hm.col(v) for name in ("sp_plus", "sp_minus", "sq_plus", "sq_minus")
                      for v in getattr(m, name).values()]
        p_cols = [hm.col(m.mg.p_ex[t]) for t in m.mg.T]
        cols = np.array([*slack_cols, *p_cols], dtype=np.int32)
        costs = np.concatenate([np.zeros(len(slack_cols)),
                                -w_eta * np.asarray(price, dtype=float) * self.window.slot_hours])
        zero = (0.0,) * self.window.slots
        with hm.temporary_costs((cols, costs)):
            out = self._lp_at_leaf(0, Point(zero, zero, 0.0))
        if not out.has_solution:
            return None
        ex = self.lp.exchange(out)
        return Point(ex.p_kw, ex.q_kvar, 0.0)

    def _probe_cuts(self, leaf: int, around: RestoredExchange) -> list[UnifiedCut]:
        """Unified cuts of ``leaf``'s LP at the probe points around an exchange."""
        cuts = []
        for point in probes(around, self.bounds()):
            out = self._lp_at_leaf(leaf, point)
            if out.has_solution and out.objective > 1e-9:
                cuts.append(self._unified_cut(leaf, point, out))
        return cuts

    def respond_to_price(self, signal: PriceSignal) -> PriceResponse | Infeasible:
        """Answer a price signal with a Lagrangian cut and the schedule that attains it.

        The restoration MILP is solved with the exchange free and the microgrid's cost
        minus the exchange's value at the signal's prices; its dual bound is ``L(λ)`` and
        its incumbent a runnable schedule, stored under the signal's key.
        """
        out = self.milp.price_response(signal)
        if out.status != "optimal" or not out.has_solution:
            return self._infeasible(out, "the price-response MILP")
        bound = float(out.bound)
        self._restored[signal.key] = out
        return PriceResponse(mg=self.name, key=signal.key, bound_usd=bound,
                             p_usd_per_kw=signal.p_usd_per_kw,
                             q_usd_per_kvar=signal.q_usd_per_kvar,
                             restored=self.milp.exchange(out))

    # ------------------------------------------------------------------ LP side
    def _select_leaf(self, leaf: int) -> None:
        """Bound the LP's binaries to the branch leaf's fixings (the root frees them all)."""
        fix = self.tree.fixings(leaf)
        for k, col in enumerate(self.lp.binary_cols):
            value = fix.get(k)
            lo, hi = (0.0, 1.0) if value is None else (value, value)
            self.lp.hm.set_col_bounds(col, lo, hi)

    def _lp_at_leaf(self, leaf: int, x: Point) -> SolveOutcome:
        self._select_leaf(leaf)
        return self.lp.solve_at(x)

    def _unified_cut(self, leaf: int, x: Point, out: SolveOutcome) -> UnifiedCut:
        d = out.row_dual
        hm, m = self.lp.hm, self.lp.model
        return UnifiedCut(
            mg=self.name, leaf=leaf, f=float(out.objective),
            pi_p=tuple(float(d[hm.row(r)]) for r in self.lp.rows_p),
            pi_q=tuple(float(d[hm.row(r)]) for r in self.lp.rows_q),
            pi_eta=float(d[hm.row(m.couple_eta)]),
            p_hat_kw=x.p_kw, q_hat_kvar=x.q_kvar, eta_hat_usd=x.eta_usd)

    # ------------------------------------------------------------------ respond
    def respond(self, proposal: ExchangeProposal, eps: float) -> Reply:
        """Seed Steps 4-6 for one proposal (with its optional in-out separation point)."""
        reply = self._respond(proposal, eps)
        if proposal.restore and isinstance(reply.response, UnifiedCut):
            return Reply(self._with_restored(reply.response, proposal), reply.stats)
        return reply

    def _respond(self, proposal: ExchangeProposal, eps: float) -> Reply:
        x_hat = Point(proposal.p_kw, proposal.q_kvar, proposal.eta_usd)
        separation = (Point(proposal.sep_p_kw, proposal.sep_q_kvar, proposal.sep_eta_usd)
                      if proposal.sep_p_kw else None)
        lp_solves = 0
        if separation is not None:
            out = self._lp_at_leaf(proposal.leaf, separation)
            lp_solves += 1
            if out.has_solution and out.objective > eps:
                cut = self._unified_cut(proposal.leaf, separation, out)
                if cut_value(cut, x_hat) > eps:
                    return Reply(cut, ReplyStats(out.objective, None, lp_solves, 0))
        out = self._lp_at_leaf(proposal.leaf, x_hat)
        lp_solves += 1
        if not out.has_solution:  # the slacks keep it feasible unless the microgrid is not
            answer = self._infeasible(out, f"the unified LP at leaf {proposal.leaf}")
            return Reply(answer, INFEASIBLE_STATS)
        if out.objective > eps:
            return Reply(self._unified_cut(proposal.leaf, x_hat, out),
                         ReplyStats(out.objective, None, lp_solves, 0))
        return self._integer_check(proposal, x_hat, out, eps, lp_solves)

    def _with_restored(self, cut: UnifiedCut, proposal: ExchangeProposal) -> UnifiedCut:
        """Attach a runnable exchange near x̂ to a cut, for the DSO's upper bound.

        The restoration MILP is solved with economic weights: a kW away from P̂ costs the
        public utility price, a dollar over eta costs a dollar. The schedule is then the
        cheapest runnable one valued at the price signal, which makes a far better upper
        bound than the nearest one (up to 36 % better on a 24-slot window).
        """
        mip = self._economic_restore(Point(proposal.p_kw, proposal.q_kvar, proposal.eta_usd))
        if mip is None or not mip.has_solution:
            return cut
        self._restored[proposal.key] = mip
        return replace(cut, restored=self.milp.exchange(mip))

    def _economic_restore(self, x: Point) -> SolveOutcome | None:
        price = self.window.price_usd_per_kwh
        if price is None:
            return self.milp.solve_at(x)
        hm, m = self.milp.hm, self.milp.model
        costs = {hm.col(m.s_eta): 1.0}
        for t, lam in zip(m.mg.T, price, strict=True):
            for var in (m.sp_plus[t], m.sp_minus[t]):
                costs[hm.col(var)] = float(lam) * self.window.slot_hours
        with hm.temporary_costs(costs):
            return self.milp.solve_at(x)

    def _integer_check(self, proposal: ExchangeProposal, x_hat: Point, lp_out: SolveOutcome,
                       eps: float, lp_solves: int) -> Reply:
        """Seed Step 5: check that x̂ is runnable with integral commitments and modes.

        If the LP's own answer is already integral it is a runnable schedule within
        F_D ≤ ε of x̂, so F_F ≤ F_D and the MILP is skipped (the LP and the MILP are
        compiled from one Pyomo model, so the LP's columns are the MILP's).
        """
        if all(abs(lp_out.x[c] - round(lp_out.x[c])) <= 1e-9 for c in self.lp.binary_cols):
            f_d = float(lp_out.objective)
            return self._accept(proposal.key, lp_out, f_d, f_d, lp_solves)
        if self._last_accept is not None:
            outcome, restored = self._last_accept
            f_f = self._distance(restored, x_hat)
            if f_f <= eps:  # the last runnable schedule is still within ε of x̂
                return self._accept(proposal.key, outcome, float(lp_out.objective), f_f,
                                    lp_solves)
        mip = self.milp.solve_at(x_hat, start=self.lp.hm)  # the LP's vertex at x̂ first
        if not mip.has_solution:
            return Reply(self._infeasible(mip, "the restoration MILP"), INFEASIBLE_STATS)
        self._restored[proposal.key] = mip
        restored = self.milp.exchange(mip)
        f_f = max(float(mip.bound), 0.0)
        stats = ReplyStats(float(lp_out.objective), f_f, lp_solves, 1)
        if mip.objective <= eps:
            self._last_accept = (mip, restored)
            return Reply(Accept(mg=self.name, restored=restored), stats)
        if self.settings.integer_method is IntegerMethod.RESTORATION:
            w = self.settings.weights
            return Reply(RestorationCut(
                mg=self.name, f=f_f, w_p=w.p, w_q=w.q, w_eta=w.eta, p_hat_kw=x_hat.p_kw,
                q_hat_kvar=x_hat.q_kvar, eta_hat_usd=x_hat.eta_usd, restored=restored), stats)
        return Reply(self._branch(proposal.leaf, x_hat, lp_out, mip, restored, eps), stats)

    def _accept(self, key: ScheduleKey, outcome: SolveOutcome, f_d: float, f_f: float,
                lp_solves: int) -> Reply:
        """Accept with a runnable schedule found without a MILP solve."""
        self._restored[key] = outcome
        restored = self.milp.exchange(outcome)
        self._last_accept = (outcome, restored)
        return Reply(Accept(mg=self.name, restored=restored), ReplyStats(f_d, f_f, lp_solves, 0))

    def _distance(self, ex: RestoredExchange, x: Point) -> float:
        """Weighted distance Δ(ex, x̂) of docs/formulation.md §3b (an upper bound on F_F)."""
        w = self.settings.weights
        return (w.p * sum(abs(a - b) for a, b in zip(ex.p_kw, x.p_kw, strict=True))
                + w.q * sum(abs(a - b) for a, b in zip(ex.q_kvar, x.q_kvar, strict=True))
                + w.eta * max(ex.cost_usd - x.eta_usd, 0.0))

    def _branch(self, leaf: int, x_hat: Point, lp_out: SolveOutcome, mip: SolveOutcome,
                restored: RestoredExchange, eps: float) -> BranchNotice:
        """Split the leaf on the fractional binary farthest from the restored MILP point.

        One child then holds the MILP's nearest runnable schedule, the other cuts away
        the LP's fractional answer; ties go to the most fractional binary.
        """
        values = np.array([lp_out.x[c] for c in self.lp.binary_cols])
        target = np.array([mip.x[c] for c in self.milp.binary_cols])
        frac = np.abs(values - np.round(values))
        score = np.where(frac > 1e-6, np.abs(values - target) + 1e-3 * frac, -1.0)
        k = int(np.argmax(score))
        if score[k] < 0:
            raise SolverError(f"{self.name}: the restoration MILP rejects an LP-integral point")
        children = self.tree.split(leaf, k)
        cuts, infeasible = [], []
        for child in children:
            out = self._lp_at_leaf(child, x_hat)
            if not out.has_solution or out.status == "infeasible":
                infeasible.append(child)
            elif out.objective > eps:
                cuts.append(self._unified_cut(child, x_hat, out))
        return BranchNotice(mg=self.name, parent=leaf, children=children, cuts=tuple(cuts),
                            infeasible=tuple(infeasible), restored=restored)

    # ------------------------------------------------------------------ schedule
    def schedule(self, key: ScheduleKey, q_kvar: tuple[float, ...] | None = None
                 ) -> MicrogridSchedule:
        """The schedule restored under ``key`` (the one the microgrid will run).

        With ``q_kvar`` (chosen by the DSO within the schedule's reactive band) the
        reactive outputs are re-dispatched to give that reactive exchange; the active
        schedule and the cost do not change.
        """
        out = self._restored[key]
        # the units' reactive outputs are always placed by the re-dispatch rule, so they
        # do not depend on the vertex HiGHS returned
        q_kvar = self.milp.exchange(out).q_kvar if q_kvar is None else q_kvar
        moved = self.milp.redispatch_reactive(out, q_kvar)
        if moved is None:
            raise SolverError(f"{self.name}: reactive exchange outside the band "
                              f"of schedule {key}")
        out = self._restored[key] = moved
        return self.milp.schedule(out)

