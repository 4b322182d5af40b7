"""The DSO's iteration (seed 000, Appendix B, Steps 1-7; FORMULATION §4).

Each iteration: solve the master (lower bound), send each microgrid controller its
proposal (with an in-out separation point), add the cuts and branch notices that come
back. Whenever every controller returned a restored (MILP-feasible) exchange, the network
LP at those exchanges plus their true costs is an upper bound. Stop when every controller
accepts (and the optional network validator adds no cut), when the gap closes, or at the
iteration / time cap (status ``not_converged`` with the best feasible schedule). The
schedule reported is always one every microgrid has restored, i.e. can actually run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import pandas as pd

from gridcosim.simulator.decomposition.controller_pool import Reply, ResponderPool
from gridcosim.simulator.decomposition.iteration_records import (
    IterationRecord,
    McReply,
    records_frame,
)
from gridcosim.simulator.decomposition.master_problem import MasterProblem, MasterSolution
from gridcosim.simulator.decomposition.network_evaluator import NetworkEvaluator
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.simulator.messages import (
    Accept,
    BranchNotice,
    ExchangeProposal,
    Infeasible,
    PriceSignal,
    RestorationCut,
    RestoredExchange,
    ScheduleAward,
    UnifiedCut,
)
from gridcosim.simulator.models.lindistflow_model import NetworkWindow, same_shape
from gridcosim.simulator.schedule import NetworkSchedule, Solution
from gridcosim.simulator.warm_basis import WarmBasis


class NetworkCut(Protocol):
    """A cut on one slot's network variables (an AC feasibility cut, FORMULATION §6)."""

    slot: int

    def row(self) -> tuple[list, list[float], float]:
        """``(keys, coefficients, rhs)`` of ``Σ coefficients·x[keys] ≤ rhs``."""


class CheckReport(Protocol):
    """What a network check says of a schedule."""

    @property
    def feasible(self) -> bool:
        """Whether the schedule passes."""


class Validator(Protocol):
    """A network validator (the AC power flow) of tentative schedules (seed Step 7).

    The loop asks it to ``check`` every new incumbent (only schedules that pass become
    incumbents, so the gap test never stops the loop on a schedule it rejects) and to
    ``validate`` the schedule every microgrid accepted (its cuts go to the master and to
    the network LP, which would otherwise re-optimise straight back to the schedule the
    cut removed).
    """

    def check(self, schedule: NetworkSchedule,
              exchanges: dict[str, RestoredExchange]) -> CheckReport:
        """Check a schedule without cutting."""

    def validate(self, schedule: NetworkSchedule, exchanges: dict[str, RestoredExchange]
                 ) -> tuple[CheckReport, tuple[NetworkCut, ...]]:
        """Check a schedule; return the report and the cuts of its violations."""


@dataclass
class _Incumbent:
    """Best feasible combination: each microgrid's restored exchange and its iteration."""

    upper_bound: float = float("inf")
    tags: dict[str, int] = field(default_factory=dict)
    exchanges: dict[str, RestoredExchange] = field(default_factory=dict)
    outcome: Any = None
    network: NetworkSchedule | None = None
    report: Any = None


@dataclass
class _Core:
    """In-out core point per microgrid (x_core starts at (0, 0, eta_ub))."""

    points: dict[str, tuple[tuple[float, ...], tuple[float, ...], float]]

    def separation(self, p: ExchangeProposal, alpha: float, step: float) -> ExchangeProposal:
        """Attach ``alpha·x̂ + (1−alpha)·x_core`` to ``p``; move the core by ``step`` to x̂."""
        cp, cq, ce = self.points[p.mg]
        sep = ExchangeProposal(p.mg, p.tag, p.leaf, p.p_kw, p.q_kvar, p.eta_usd,
                               _mix(p.p_kw, cp, alpha), _mix(p.q_kvar, cq, alpha),
                               alpha * p.eta_usd + (1 - alpha) * ce)
        self.points[p.mg] = (_mix(p.p_kw, cp, step), _mix(p.q_kvar, cq, step),
                             step * p.eta_usd + (1 - step) * ce)
        return sep


def _mix(a: tuple[float, ...], b: tuple[float, ...], alpha: float) -> tuple[float, ...]:
    return tuple(alpha * x + (1 - alpha) * y for x, y in zip(a, b, strict=True))


def _apply(master: MasterProblem, reply: Reply) -> tuple[McReply, RestoredExchange | None, bool]:
    """Add what a controller returned to the master; return (record, restored, new cut?)."""
    response, stats = reply
    if isinstance(response, UnifiedCut):
        master.add_unified_cut(response)
        return McReply("unified", stats.f_d, stats.f_f), response.restored, True
    if isinstance(response, BranchNotice):
        master.add_branch(response)
        return McReply("branch", stats.f_d, stats.f_f), response.restored, True
    if isinstance(response, RestorationCut):
        master.add_restoration_cut(response)
        return McReply("restoration", stats.f_d, stats.f_f), response.restored, True
    if isinstance(response, Infeasible):
        return McReply("infeasible", stats.f_d, stats.f_f), None, False
    assert isinstance(response, Accept)
    return McReply("accept", stats.f_d, stats.f_f), response.restored, False


@dataclass
class NetworkModels:
    """The DSO's compiled master and network LP, kept from one window to the next."""

    master: MasterProblem
    evaluator: NetworkEvaluator

    @classmethod
    def for_window(cls, window: NetworkWindow, settings: DecompositionSettings,
                   previous: NetworkModels | None = None,
                   basis: WarmBasis | None = None) -> NetworkModels:
        """Re-load ``previous`` with the window's data if it has its shape, else build.

        Both LPs then start from ``basis`` (the previous window's final network-LP basis,
        :meth:`final_basis`), or cold without one: what they solve depends only on the
        window's data and that basis, never on the solver's history, so a resumed run that
        restores the basis from its checkpoint continues exactly.
        """
        if previous is not None and same_shape(previous.master.window, window):
            previous.evaluator.reload(previous.master.window, window)
            previous.master.reload(window)
            models = previous
        else:
            master = MasterProblem(window, time_limit_s=settings.master_time_limit_s,
                                   mip_rel_gap=settings.rel_gap / 10)
            models = cls(master, NetworkEvaluator(master.model, master.hm))
        models.master.hm.reset(basis)
        models.evaluator.hm.reset(basis)
        return models

    def final_basis(self) -> WarmBasis | None:
        """The network LP's basis at the end of a window (the next window's warm start).

        The network LP and the master share their compiled rows and columns; with AC cuts
        appended the LP's basis is taken without them when it stays consistent.
        """
        hm = self.evaluator.hm
        basis = hm.basis()
        if basis is None:
            return None
        rows, cols, _ = hm.compiled_shape
        cut = WarmBasis(basis.col_status[:cols], basis.row_status[:rows])
        basic = int((cut.col_status == 1).sum() + (cut.row_status == 1).sum())
        return cut if basic == rows else None


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
        self.records: list[IterationRecord] = []
        self.best = _Incumbent()
        self.latest: dict[str, tuple[int, RestoredExchange]] = {}
        self.phase = "lp"
        self.core = self._initial_core()
        self.validator_cuts = 0
        self.validation_reports: dict[int, Any] = {}
        self.infeasible: set[str] = set()
        self._price_tag = 0

    def _initial_core(self) -> _Core:
        """In-out core point: the incumbent's exchanges and costs, else ``(0, 0, eta_ub)``.

        The incumbent is a point every microgrid can run (a feasible core point, as the
        in-out method asks); the published bounds' corner is the fallback.
        """
        slots = self.window.slots
        if self.best.exchanges:
            return _Core({mg: (ex.p_kw, ex.q_kvar, ex.cost_usd)
                          for mg, ex in self.best.exchanges.items()})
        return _Core({e.mg: ((0.0,) * slots, (0.0,) * slots, e.eta_ub_usd)
                      for e in self.window.exchanges})

    def _upper_bound(self, restored: dict[str, tuple[int, RestoredExchange]]) -> Any:
        """Combine each microgrid's latest restored exchange; keep the best network-feasible.

        Every restored exchange is one its microgrid can run, whatever proposal it came
        from, so any combination the network LP accepts is a valid upper bound. Returns
        the network LP at the combination (``None`` without one, or if it is infeasible).
        """
        if not restored:
            return None
        self.latest.update(restored)
        if len(self.latest) != len(self.window.exchanges):
            return None
        exchanges = {mg: ex for mg, (_, ex) in self.latest.items()}
        out = self.evaluator.evaluate(exchanges)
        if out.status != "optimal":
            return None
        exchanges = self.evaluator.with_reactive(exchanges, out)
        ub = float(out.objective) + sum(r.cost_usd for r in exchanges.values())
        if ub >= self.best.upper_bound:
            return out
        network, report = None, None
        if self.validator is not None:
            network = self.evaluator.schedule(out)
            report = self.validator.check(network, exchanges)
            if not report.feasible:
                return out
        self.best = _Incumbent(ub, {mg: tag for mg, (tag, _) in self.latest.items()},
                               exchanges, out, network, report)
        return out

    def _proposals(self, sol: MasterSolution) -> list[ExchangeProposal]:
        props = sol.proposals
        if self.settings.stabilisation == "none":
            return props
        st = self.settings
        return [self.core.separation(p, st.in_out_alpha, st.in_out_core_step) for p in props]

    def _iterate(self, iteration: int) -> tuple[str | None, float]:
        """One iteration; returns (stop status or None, lower bound).

        Phase ``lp`` solves the master with its branch selectors relaxed (fast warm
        re-solves; a microgrid spread over several leaves gets one proposal per leaf);
        once it yields no cut, phase ``mip`` branches on the selectors until the
        microgrids accept an integral selection.
        """
        t0 = time.perf_counter()
        sol = self.master.solve(relaxed=self.phase == "lp")
        t1 = time.perf_counter()
        if not sol.proposals:
            return ("infeasible" if "infeasible" in sol.status else "master_" + sol.status,
                    float("nan"))
        eps = self.settings.eps_rel * (1.0 + abs(sol.objective))
        proposals = self._proposals(sol)
        if self.settings.restore_every and iteration % self.settings.restore_every == 0:
            proposals = [replace(p, restore=True) for p in proposals]
        replies = self.pool.respond(proposals, eps)
        t2 = time.perf_counter()
        record, restored, new_cut = {}, {}, False
        for proposal, reply in zip(proposals, replies, strict=True):
            if isinstance(reply[0], Infeasible):
                self.infeasible.add(reply[0].mg)
            rec, rest, cut = _apply(self.master, reply)
            record[proposal.mg] = rec
            new_cut |= cut
            if rest is not None:
                restored[proposal.mg] = (proposal.tag, rest)
        self._upper_bound(restored)
        every = self.settings.price_every
        if new_cut and self.settings.price_signals and every and iteration % every == 0:
            out = self.evaluator.evaluate(self.master.exchanges(sol))
            if out.status == "optimal":
                self._price_round(self._price_signals(out))
        status = "infeasible" if self.infeasible else None
        if status is None and not new_cut and sol.integral and self._validate(restored) == 0:
            status = "optimal"
        elif not new_cut and self.phase == "lp":
            self.phase = "mip"
        lb = sol.lower_bound
        ub = self.best.upper_bound
        gap = (ub - lb) / max(1.0, abs(ub)) if ub < float("inf") else float("inf")
        if status is None and gap <= self.settings.rel_gap:
            status = "optimal"
        self.records.append(IterationRecord(
            iteration, lb, ub, gap, record, dict(self.master.cut_counts), t1 - t0, t2 - t1,
            time.perf_counter() - t2))
        return status, lb

    def _validate(self, restored: dict[str, tuple[int, RestoredExchange]]) -> int:
        """Seed Step 7: validate the accepted schedule; return the number of cuts added.

        If the network LP finds no schedule at the accepted exchanges under the cuts
        added so far (the master found one at its proposals: a tolerance artefact), the
        schedule is not accepted (1 is returned without a cut) and the loop goes on.
        """
        if self.validator is None:
            return 0
        exchanges = {mg: ex for mg, (_, ex) in restored.items()}
        out = self.evaluator.evaluate(exchanges)
        if out.status != "optimal":
            return 1 if self.validator_cuts else 0
        exchanges = self.evaluator.with_reactive(exchanges, out)
        report, cuts = self.validator.validate(self.evaluator.schedule(out), exchanges)
        self.validation_reports[len(self.records) + 1] = report
        for cut in cuts:
            self.master.add_ac_cut(cut)
            self.evaluator.add_cut(cut.slot, *cut.row())
        self.validator_cuts += len(cuts)
        return len(cuts)

    def _price_signals(self, at: Any = None) -> list[PriceSignal]:
        """Nodal prices of the network LP at an evaluated point.

        The default point is the incumbent; without one (or without valid duals), the utility price.
        """
        at = at if at is not None else self.best.outcome
        values = self.evaluator.marginal_values(at) if at is not None else None
        if values is None:
            dt = self.window.slot_hours
            p = tuple(float(lam) * dt for lam in self.window.price_usd_per_kwh)
            values = {e.mg: (p, (0.0,) * len(p)) for e in self.window.exchanges}
        signals = []
        for mg, (p, q) in values.items():
            self._price_tag -= 1
            signals.append(PriceSignal(mg, self._price_tag, p, q))
        return signals

    def _zero_exchange(self) -> Any:
        """The network LP with every exchange at zero (for the first nodal prices)."""
        zero = (0.0,) * self.window.slots
        out = self.evaluator.evaluate({e.mg: RestoredExchange(zero, zero, 0.0)
                                       for e in self.window.exchanges})
        return out if out.status == "optimal" else None

    def _starting_points(self, warm_start: bool) -> None:
        """Each controller's schedule nearest zero exchange (and probe cuts around it)."""
        starts = {}
        for message in self.pool.initial_cuts(warm_start):
            if isinstance(message, Infeasible):
                self.infeasible.add(message.mg)
            elif isinstance(message, Accept):
                starts[message.mg] = (0, message.restored)
            else:
                self.master.add_unified_cut(message)
        self._upper_bound(starts)

    def _price_round(self, signals: list[PriceSignal]) -> Any:
        """Send price signals; add the Lagrangian cuts; try the answers as an incumbent.

        Returns the network LP at the answers' exchanges (``None`` if a controller did not
        answer or the network cannot take them).
        """
        restored = {}
        for response in self.pool.price_responses(signals):
            if isinstance(response, Infeasible):
                self.infeasible.add(response.mg)
            else:
                self.master.add_lagrangian_cut(response)
                restored[response.mg] = (response.tag, response.restored)
        out = self._upper_bound(restored)  # every answer in: the combination is theirs
        return out if len(restored) == len(self.window.exchanges) else None

    def _initial_prices(self) -> None:
        """Price rounds before the first master: λ ← nodal prices at the last answers.

        The first round sends the nodal prices at zero exchange; each further round (up
        to ``price_rounds``) the nodal prices of the network LP at the previous round's
        answers, until they no longer change or the network cannot take the answers.
        """
        at = self._zero_exchange()
        last = None
        for _ in range(self.settings.price_rounds):
            signals = self._price_signals(at)
            prices = [(s.p_usd_per_kw, s.q_usd_per_kvar) for s in signals]
            if last is not None and np.allclose(prices, last, rtol=1e-9, atol=1e-12):
                return
            at, last = self._price_round(signals), prices
            if at is None or self.infeasible:
                return

    def run(self) -> Solution:
        """Iterate to convergence or a limit; return the schedule and its statistics."""
        tick = time.perf_counter()
        st = self.settings
        if st.price_signals:
            self._initial_prices()
            self.core = self._initial_core()
        if not self.infeasible and (not st.price_signals or not self.best.tags):
            self._starting_points(st.warm_start_cuts and not st.price_signals)
        status, lb = "not_converged", float("nan")
        if self.infeasible:
            return self._solution("infeasible", lb, time.perf_counter() - tick)
        for iteration in range(1, self.settings.max_iterations + 1):
            stop, lb = self._iterate(iteration)
            if stop is not None:
                status = stop
                break
            if iteration == 1 and st.warm_start_cuts and st.price_signals:
                for cut in self.pool.warm_start_cuts():  # prices alone did not settle it
                    self.master.add_unified_cut(cut)
                self.core = self._initial_core()
            if time.perf_counter() - tick > self.settings.time_limit_s:
                break
        return self._solution(status, lb, time.perf_counter() - tick)

    def _solution(self, status: str, lb: float, wall_s: float) -> Solution:
        """The window's outcome: the network schedule and one award per microgrid.

        The DSO keeps only the exchanges it settled on and the awards; each microgrid's
        unit schedule stays with its controller (:meth:`ResponderPool.schedule`).
        """
        info = {"iterations": len(self.records), "lower_bound_usd": lb,
                "cuts": {k: int(self.master.cut_counts.get(k, 0))
                         for k in ("unified", "lagrangian", "restoration", "branch", "ac")},
                "integer_method": self.settings.integer_method,
                "stabilisation": self.settings.stabilisation}
        if self.infeasible:
            info["infeasible_microgrids"] = sorted(self.infeasible)
        if not self.best.tags or self.infeasible:
            info["gap"] = float("inf")
            status = status if status != "optimal" else "not_converged"
            return Solution("decomposition", status, float("nan"), wall_s, None, (), info)
        network = self.best.network or self.evaluator.schedule(self.best.outcome)
        objective = network.cost_usd + sum(ex.cost_usd for ex in self.best.exchanges.values())
        info["gap"] = _gap(objective, lb)
        info["integer_gap_closed_by"] = _closed_by(self.master.cut_counts)
        awards = {mg: ScheduleAward(mg, tag, self.best.exchanges[mg].q_kvar)
                  for mg, tag in self.best.tags.items()}
        return Solution("decomposition", status, objective, wall_s, network, (), info,
                        exchanges=dict(self.best.exchanges), awards=awards)

    def records_frame(self) -> pd.DataFrame:
        """The iteration records as a DataFrame."""
        return records_frame(self.records)


def _gap(upper: float, lower: float) -> float:
    """Relative gap ``(UB − LB) / max(1, |UB|)``; infinite without a finite lower bound."""
    if not np.isfinite(lower) or not np.isfinite(upper):
        return float("inf")
    return max(0.0, (upper - lower) / max(1.0, abs(upper)))


def _closed_by(counts: dict[str, int]) -> str:
    if counts.get("branch", 0):
        return "branch"
    if counts.get("restoration", 0):
        return "restoration"
    return "lp"
