"""The DSO's iteration (seed 000, Appendix B, Steps 1-7; docs/formulation.md §4).

:meth:`Decomposition.run` starts the window (Step 1: price rounds or starting points) and
iterates :meth:`Decomposition.iterate`, whose lines are the seed's steps:

* Step 2, :meth:`solve_master`: the master's bound and its proposals;
* Steps 3-6, :meth:`collect_replies`: every controller answers its proposal (with an in-out
  separation point) by a cut, a branch, an acceptance or "infeasible";
* :meth:`absorb`: each reply goes into the master by its kind; every restored (runnable)
  exchange is offered to the incumbent (the upper bound);
* Step 7, :meth:`check`: when every controller accepted an integral selection, the
  network validator (the AC power flow, if any) checks the schedule; then convergence
  (no new cut, or a closed gap).

Strategies around these steps: price rounds and the inner master's proposals
(:mod:`.price_rounds`, :mod:`.inner_master`), stabilisation (:mod:`.stabilisation`),
the master's cut pool (:mod:`.cut_pool`) and the LP → MIP phase switch (the master first
solves with its branch selectors relaxed; once the relaxation yields no cut, it branches
on them). The schedule reported is always an incumbent: one every microgrid can run.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Protocol

import numpy as np
import pandas as pd

from gridcosim.simulator.decomposition.controller_pool import ResponderPool
from gridcosim.simulator.decomposition.cut_families import CUT_FAMILIES, zero_counts
from gridcosim.simulator.decomposition.incumbent import IncumbentTracker, Restored
from gridcosim.simulator.decomposition.iteration_records import (
    IterationRecord,
    McReply,
    ReplyKind,
    records_frame,
)
from gridcosim.simulator.decomposition.master_problem import MasterSolution
from gridcosim.simulator.decomposition.network_models import NetworkModels
from gridcosim.simulator.decomposition.price_rounds import PriceRounds
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.simulator.decomposition.stabilisation import stabiliser
from gridcosim.simulator.messages import (
    START_KEY,
    Accept,
    BranchNotice,
    ExchangeProposal,
    Infeasible,
    Reply,
    RestorationCut,
    RestoredExchange,
    ScheduleAward,
    UnifiedCut,
)
from gridcosim.simulator.models.lindistflow_model import NetworkWindow
from gridcosim.simulator.schedule import NetworkSchedule, Solution
from gridcosim.simulator.status import WindowStatus
from gridcosim.simulator.warm_basis import WarmBasis


class NetworkCut(Protocol):
    """A cut on one slot's network variables (an AC feasibility cut)."""

    slot: int

    def row(self) -> tuple[list, list[float], float]:
        """``(keys, coefficients, rhs)`` of ``Σ coefficients·x[keys] ≤ rhs``."""


class Validator(Protocol):
    """A network validator (the AC power flow) of tentative schedules (seed Step 7).

    The loop asks it to ``check`` every new incumbent (only schedules that pass become
    incumbents, so the gap test never stops the loop on a schedule it rejects) and to
    ``validate`` the schedule every microgrid accepted (its cuts go to the master and to
    the network LP, which would otherwise re-optimise straight back to what they cut).
    """

    def check(self, schedule: NetworkSchedule, exchanges: dict[str, RestoredExchange]) -> Any:
        """Check a schedule without cutting (the report has ``feasible``)."""

    def validate(self, schedule: NetworkSchedule, exchanges: dict[str, RestoredExchange]
                 ) -> tuple[Any, tuple[NetworkCut, ...]]:
        """Check a schedule; return the report and the cuts of its violations."""


class Phase(StrEnum):
    """How the master treats its branch selectors."""

    LP = "lp"  # relaxed: fast warm re-solves
    MIP = "mip"  # branched on until the controllers accept an integral selection


class Validation(StrEnum):
    """What Step 7 said of the schedule every controller accepted."""

    PASSED = "passed"  # no validator, or the schedule passes it
    CUT = "cut"  # it violates: cuts were added to the master and the network LP
    NOT_EVALUABLE = "not_evaluable"  # the network LP cannot take the accepted exchanges


@dataclass(frozen=True)
class Absorbed:
    """What the master got from one iteration's replies."""

    new_cut: bool
    restored: dict[str, Restored]
    record: dict[str, McReply]


@dataclass(frozen=True)
class IterationOutcome:
    """One iteration: the stop status (``None``: go on) and the bound it proved."""

    stop: WindowStatus | None
    lower_bound: float


class Decomposition:
    """One window's DSO–microgrid iteration.

    Args:
        window: The DSO's window data (its ``exchanges`` are the controllers' bounds).
        pool: The microgrid controllers.
        settings: Tolerances, limits, stabilisation and integer method.
        validator: Optional network validator (AC power flow) run when all accept.
        models: The previous window's compiled models, re-loaded when the shapes match.
        basis: The network LPs' starting basis (:meth:`NetworkModels.final_basis` of the
            previous window); ``None``: cold.

    """

    def __init__(self, window: NetworkWindow, pool: ResponderPool,
                 settings: DecompositionSettings, validator: Validator | None = None,
                 models: NetworkModels | None = None, basis: WarmBasis | None = None):
        self.window, self.pool, self.settings, self.validator = window, pool, settings, validator
        self.models = NetworkModels.for_window(window, settings, models, basis)
        self.master, self.evaluator = self.models.master, self.models.evaluator
        self.incumbent = IncumbentTracker(self.evaluator, len(window.exchanges), validator)
        self.prices = PriceRounds.for_window(window, self.master, self.evaluator, pool,
                                             self.incumbent, settings)
        self.infeasible = self.prices.infeasible  # microgrids that can run nothing
        self.records: list[IterationRecord] = []
        self.phase = Phase.LP
        self.stabiliser = self._stabiliser()
        self.validator_cuts = 0
        self.validation_reports: dict[int, Any] = {}

    @property
    def best(self) -> Any:
        """The incumbent (:class:`~gridcosim.simulator.decomposition.incumbent.Incumbent`)."""
        return self.incumbent.best

    def _stabiliser(self) -> Any:
        return stabiliser(self.settings, self.window.exchanges, self.window.slots,
                          self.best.exchanges)

    # ------------------------------------------------------------------ the window
    def run(self) -> Solution:
        """Iterate to convergence or a limit (none if the rounds settled the window, §7)."""
        tick = time.perf_counter()
        self.start_window()
        status, lb = WindowStatus.NOT_CONVERGED, math.nan
        if self.infeasible:
            return self.solution(WindowStatus.INFEASIBLE, lb, time.perf_counter() - tick)
        if (proved := self.prices.proved_bound) is not None:  # incumbent meets the bound
            return self.solution(WindowStatus.OPTIMAL, proved, time.perf_counter() - tick)
        for k in range(1, self.settings.max_iterations + 1):
            outcome = self.iterate(k)
            lb = outcome.lower_bound
            if outcome.stop is not None:
                status = outcome.stop
                break
            if k == 1:
                self.after_first_iteration()
            if time.perf_counter() - tick > self.settings.time_limit_s:
                break
        return self.solution(status, lb, time.perf_counter() - tick)

    def start_window(self) -> None:
        """Step 1: price rounds (and the core point at their answers) or starting points."""
        st = self.settings
        if st.price_signals:
            self.prices.before_iterating()
            self.stabiliser = self._stabiliser()
        if not self.infeasible and (not st.price_signals or not self.best.keys):
            self.starting_points(st.warm_start_cuts and not st.price_signals)

    def starting_points(self, warm_start: bool) -> None:
        """Each controller's schedule nearest zero exchange (and probe cuts around it)."""
        starts: dict[str, Restored] = {}
        for message in self.pool.initial_cuts(warm_start):
            match message:
                case Infeasible(mg=mg):
                    self.infeasible.add(mg)
                case Accept(mg=mg, restored=restored):
                    starts[mg] = (START_KEY, restored)
                case UnifiedCut():
                    self.master.add_unified_cut(message)
        self.prices.add_schedules(starts)
        self.incumbent.offer(starts)

    def after_first_iteration(self) -> None:
        """With price signals, probe cuts only when prices alone did not settle the window."""
        if self.settings.warm_start_cuts and self.settings.price_signals:
            for cut in self.pool.warm_start_cuts():
                self.master.add_unified_cut(cut)
            self.stabiliser = self._stabiliser()

    # ------------------------------------------------------------------ one iteration
    def iterate(self, k: int) -> IterationOutcome:
        """Steps 2-7 once; the outcome says whether to stop."""
        t0 = time.perf_counter()
        master = self.solve_master()
        t1 = time.perf_counter()
        if not master.proposals:
            return IterationOutcome(_master_failure(master.status), math.nan)
        eps = self.settings.eps_rel * (1.0 + abs(master.objective))
        proposals = self.proposals(master, k)
        absorbed = self.absorb(proposals, self.collect_replies(proposals, eps))
        t2 = time.perf_counter()
        self.prices.add_schedules(absorbed.restored)
        self.incumbent.offer(absorbed.restored)
        if self._price_round_due(k, absorbed.new_cut):
            self.prices.at_proposal(self.master.exchanges(master), master.lower_bound)
        stop = self.check(master, absorbed)
        gap = _gap(self.best.upper_bound, master.lower_bound)
        if stop is None and gap <= self.settings.rel_gap:
            stop = WindowStatus.OPTIMAL
        self.records.append(IterationRecord(
            k, master.lower_bound, self.best.upper_bound, gap, absorbed.record,
            {**zero_counts(), **self.master.cut_counts}, t1 - t0, t2 - t1,
            time.perf_counter() - t2))
        return IterationOutcome(stop, master.lower_bound)

    def solve_master(self) -> MasterSolution:
        """Step 2: the master, its selectors relaxed in the LP phase.

        When the inner master's value meets the master's bound, its combination of the
        controllers' schedules is one of the master's optimal solutions: it is proposed
        instead (docs/formulation.md §7), once per change of the inner master.
        """
        sol = self.master.solve(relaxed=self.phase is Phase.LP)
        found = (self.prices.inner_proposal(sol.lower_bound)
                 if sol.proposals and not self.master.has_binaries else None)
        if found is None:
            return sol
        return replace(sol, proposals=self.master.proposals_at(found), integral=True,
                       inner=True)

    def proposals(self, master: MasterSolution, k: int) -> list[ExchangeProposal]:
        """The master's proposals, stabilised; every ``restore_every`` asking a schedule.

        A proposal of the inner master is a combination of runnable schedules: it goes
        out as it is.
        """
        proposals = (list(master.proposals) if master.inner
                     else self.stabiliser.separate(master.proposals))
        every = self.settings.restore_every
        if every and k % every == 0:
            proposals = [replace(p, restore=True) for p in proposals]
        return proposals

    def collect_replies(self, proposals: list[ExchangeProposal], eps: float) -> list[Reply]:
        """Steps 3-6: every controller answers its proposal (in parallel with workers)."""
        return self.pool.respond(proposals, eps)

    def absorb(self, proposals: list[ExchangeProposal], replies: list[Reply]) -> Absorbed:
        """Each reply into the master by its kind; the restored exchanges collected."""
        new_cut, restored, record = False, {}, {}
        for proposal, reply in zip(proposals, replies, strict=True):
            kind, exchange = self._absorb_one(reply)
            record[proposal.mg] = McReply(kind, reply.stats.f_d, reply.stats.f_f)
            new_cut |= kind in (ReplyKind.UNIFIED, ReplyKind.BRANCH, ReplyKind.RESTORATION)
            if exchange is not None:
                restored[proposal.mg] = (proposal.key, exchange)
        return Absorbed(new_cut, restored, record)

    def _absorb_one(self, reply: Reply) -> tuple[ReplyKind, RestoredExchange | None]:
        match reply.response:
            case UnifiedCut() as cut:
                self.master.add_unified_cut(cut)
                return ReplyKind.UNIFIED, cut.restored
            case BranchNotice() as notice:
                self.master.add_branch(notice)
                return ReplyKind.BRANCH, notice.restored
            case RestorationCut() as cut:
                self.master.add_restoration_cut(cut)
                return ReplyKind.RESTORATION, cut.restored
            case Infeasible(mg=mg):
                self.infeasible.add(mg)
                return ReplyKind.INFEASIBLE, None
            case Accept(restored=restored):
                return ReplyKind.ACCEPT, restored
        raise TypeError(f"unknown reply {type(reply.response).__name__}")

    def _price_round_due(self, k: int, new_cut: bool) -> bool:
        every = self.settings.price_every
        return bool(new_cut and self.settings.price_signals and every and k % every == 0)

    def check(self, master: MasterSolution, absorbed: Absorbed) -> WindowStatus | None:
        """Step 7: validate what every controller accepted; say whether to stop.

        Once the relaxed master yields no cut, the MIP phase starts. An accepted inner
        proposal (a combination within the rounds' tolerance of the bound) stops the loop
        through the gap test.
        """
        if self.infeasible:
            return WindowStatus.INFEASIBLE
        accepted = not absorbed.new_cut
        if accepted and master.integral and self.validate(absorbed.restored) is Validation.PASSED:
            # an inner proposal is optimal within the rounds' tolerance: the gap decides
            return None if master.inner else WindowStatus.OPTIMAL
        if accepted and self.phase is Phase.LP and not master.inner:
            self.phase = Phase.MIP
        return None

    def validate(self, restored: dict[str, Restored]) -> Validation:
        """Seed Step 7: the network validator's verdict on the accepted schedule.

        If the network LP finds no schedule at the accepted exchanges under the AC cuts
        added so far (the master found one at its proposals: a tolerance artefact), the
        schedule cannot be accepted and the loop goes on.
        """
        if self.validator is None:
            return Validation.PASSED
        exchanges = {mg: ex for mg, (_, ex) in restored.items()}
        out = self.evaluator.evaluate(exchanges)
        if out.status != "optimal":
            return Validation.NOT_EVALUABLE if self.validator_cuts else Validation.PASSED
        exchanges = self.evaluator.with_reactive(exchanges, out)
        report, cuts = self.validator.validate(self.evaluator.schedule(out), exchanges)
        self.validation_reports[len(self.records) + 1] = report
        for cut in cuts:
            self.master.add_ac_cut(cut)
            self.evaluator.add_cut(cut.slot, *cut.row())
            self.prices.add_network_cut(cut)
        self.validator_cuts += len(cuts)
        return Validation.CUT if cuts else Validation.PASSED

    # ------------------------------------------------------------------ the result
    def solution(self, status: WindowStatus, lb: float, wall_s: float) -> Solution:
        """The window's outcome: the network schedule and one award per microgrid.

        The DSO keeps only the exchanges it settled on and the awards; each microgrid's
        unit schedule stays with its controller (:meth:`ResponderPool.schedules`).
        """
        info = self._info(lb)
        if not self.best.keys or self.infeasible:
            info["gap"] = math.inf
            status = status if status is not WindowStatus.OPTIMAL else WindowStatus.NOT_CONVERGED
            return Solution("decomposition", status, math.nan, wall_s, None, (), info)
        network = self.best.network or self.evaluator.schedule(self.best.outcome)
        objective = network.cost_usd + sum(ex.cost_usd for ex in self.best.exchanges.values())
        info["gap"] = _gap(objective, lb)
        info["integer_gap_closed_by"] = _closed_by(self.master.cut_counts)
        awards = {mg: ScheduleAward(mg, key, self.best.exchanges[mg].q_kvar)
                  for mg, key in self.best.keys.items()}
        return Solution("decomposition", status, objective, wall_s, network, (), info,
                        exchanges=dict(self.best.exchanges), awards=awards)

    def _info(self, lb: float) -> dict[str, Any]:
        info: dict[str, Any] = {
            "iterations": len(self.records), "lower_bound_usd": lb,
            "cuts": {str(f): int(self.master.cut_counts.get(f, 0)) for f in CUT_FAMILIES},
            "integer_method": str(self.settings.integer_method),
            "stabilisation": str(self.settings.stabilisation)}
        if self.infeasible:
            info["infeasible_microgrids"] = sorted(self.infeasible)
        return info

    def records_frame(self) -> pd.DataFrame:
        """The iteration records as a DataFrame."""
        return records_frame(self.records)


def _master_failure(status: str) -> WindowStatus:
    """The window status when the master gave no proposal."""
    return (WindowStatus.INFEASIBLE if "infeasible" in status
            else WindowStatus.MASTER_FAILED)


def _gap(upper: float, lower: float) -> float:
    """Relative gap ``(UB − LB) / max(1, |UB|)``; infinite without a finite bound."""
    if not np.isfinite(lower) or not np.isfinite(upper):
        return math.inf
    return max(0.0, (upper - lower) / max(1.0, abs(upper)))


def _closed_by(counts: dict[str, int]) -> str:
    if counts.get("branch", 0):
        return "branch"
    if counts.get("restoration", 0):
        return "restoration"
    return "lp"
