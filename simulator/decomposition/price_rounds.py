"""Price rounds: the DSO's nodal prices, answered by Lagrangian cuts and price responses.

Before the first master (and, with ``price_every``, during the iterations) the DSO sends
each controller the marginal value of its exchange, per slot: a nodal price times the
slot length. The controller minimises its cost minus the value of its exchange at those
prices over everything it can run; the MILP's dual bound is ``L(λ)``, so
``eta ≥ L(λ) + λ·x`` is valid for every exchange it can run (a Lagrangian cut, on the
master's root), and the schedule attaining it is a runnable upper-bound candidate.

The first round is at the network LP's nodal prices at zero exchange. Each next one is at
the duals of the inner master (:mod:`.inner_master`, the network LP over convex
combinations of the schedules received so far: Dantzig–Wolfe prices), until the inner
master's value meets the master's bound, the prices repeat or ``price_rounds`` is
reached. With ``inner_master=False`` each next round is at the network LP's nodal prices
at the previous round's answers instead. Where the network does not bind, the first
master then closes the gap (``docs/formulation.md`` §7).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from gridcosim.simulator.decomposition.controller_pool import ResponderPool
from gridcosim.simulator.decomposition.incumbent import IncumbentTracker, Restored
from gridcosim.simulator.decomposition.inner_master import InnerMaster, InnerSolution, Prices
from gridcosim.simulator.decomposition.master_problem import MasterProblem
from gridcosim.simulator.decomposition.network_evaluator import NetworkEvaluator
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.simulator.highs_instance import SolveOutcome
from gridcosim.simulator.messages import (
    Infeasible,
    KeySource,
    PriceSignal,
    RestoredExchange,
    ScheduleKey,
)
from gridcosim.simulator.models.lindistflow_model import NetworkWindow

if TYPE_CHECKING:
    from gridcosim.simulator.validation.cut import ACFeasibilityCut


#: Rounds at the inner master's prices without progress after which the rounds stop.
STALLS = 2


@dataclass
class _Progress:
    """Where the rounds before the first master stand.

    ``at_answers``: the rounds are still at the network LP's prices at the answers;
    ``bound`` and ``value``: the master's bound and the inner master's value after the
    last round; ``stalls``: consecutive rounds at the inner master's prices that moved
    neither.
    """

    at_answers: bool = True
    bound: float = -math.inf
    value: float = math.inf
    stalls: int = 0


@dataclass
class PriceRounds:
    """Sends price signals; adds the answers to the master, inner master and incumbent.

    ``inner`` is ``None`` when the inner master is off; ``settle_gap`` is the relative
    distance between the inner master's value and the master's bound at which the rounds
    stop (a tenth of the loop's final gap tolerance).
    """

    window: NetworkWindow
    master: MasterProblem
    evaluator: NetworkEvaluator
    pool: ResponderPool
    incumbent: IncumbentTracker
    rounds: int
    inner: InnerMaster | None = None
    settle_gap: float = 1e-7
    time_limit_s: float = math.inf
    infeasible: set[str] = field(default_factory=set)
    sent: int = 0  # rounds sent (before and during the iterations)
    _sent: int = 0
    _proposed: int = -1  # the inner master's column count when it was last proposed
    #: The bound that the incumbent met before iterating (``None``: it did not).
    proved_bound: float | None = None
    _round_bound_usd: float | None = None  # Σ L_i(λ) of the last round (all answered)

    @classmethod
    def for_window(cls, window: NetworkWindow, master: MasterProblem,
                   evaluator: NetworkEvaluator, pool: ResponderPool,
                   incumbent: IncumbentTracker, settings: DecompositionSettings) -> PriceRounds:
        """The rounds the settings ask for, with the inner master if they keep one."""
        inner = None
        if settings.price_signals and settings.inner_master:
            inner = InnerMaster(evaluator.hm, master.p_cols, master.q_cols,
                                list(window.exchanges))
        return cls(window, master, evaluator, pool, incumbent, settings.price_rounds, inner,
                   settle_gap=settings.rel_gap / 10, time_limit_s=settings.time_limit_s)

    def before_iterating(self) -> None:
        """The round at zero exchange, then rounds while they can still raise the bound.

        Each next round is at the network LP's nodal prices at the previous round's
        answers while that raises the master's bound, then at the inner master's prices
        (Dantzig–Wolfe), until the inner master's value meets the bound, the prices repeat
        or ``price_rounds`` is reached; no round starts after the loop's time limit.
        Without the inner master every round after the first is at the answers' prices.
        """
        deadline = time.perf_counter() + self.time_limit_s
        zero = self._zero_exchange()
        signals: list[PriceSignal] | None = self.signals(zero)
        last, out, progress = None, None, _Progress()
        for k in range(self.rounds):
            if k and time.perf_counter() > deadline:
                return
            if k:
                signals = self._next_signals(out, last, progress)
            if signals is None or (last is not None and _repeats(signals, last)):
                return
            out, last = self.round(signals), signals
            if self.infeasible or (self.inner is None and out is None):
                return
            if k == 0 and self._settled_at_zero(zero):
                return

    def _settled_at_zero(self, zero: SolveOutcome | None) -> bool:
        """Whether the first round's Lagrangian bound already meets the incumbent.

        The network LP's value ``V`` is convex in the exchanges, and its marginal values
        ``λ`` at zero exchange (the first round's prices, from an optimal dual) give
        ``V(x) ≥ V(0) − λ·x`` for every exchange ``x``. With each microgrid's proven bound
        ``L_i(λ)`` on ``min C_i − λ·x_i``, ``V(0) + Σ L_i(λ)`` bounds the window from below
        (Lagrangian duality) without a master solve (docs/formulation.md §7).
        """
        if zero is None or zero.col_dual is None or self._round_bound_usd is None:
            return False
        lower = float(zero.objective) + self._round_bound_usd
        if not self._closed(lower):
            return False
        self.proved_bound = lower
        return True

    def _next_signals(self, out: SolveOutcome | None, last: list[PriceSignal] | None,
                      progress: _Progress) -> list[PriceSignal] | None:
        """The next round's prices before iterating; ``None``: no round can gain more.

        That is when the inner master's value meets the master's bound, or after
        :data:`STALLS` rounds at its prices in a row that neither raised the bound nor
        lowered its value (an integer gap the prices cannot close: the branching does).
        """
        if self.inner is None:
            return self.signals(out)
        lower = self._bound()
        if self._closed(lower):
            self.proved_bound = lower
            return None
        solution = self.inner.solve()
        if solution is None or self.settled(solution, lower):
            return None
        rose = lower > progress.bound + self._tol(lower)
        fell = solution.value_usd < progress.value - self._tol(lower)
        if not progress.at_answers:
            progress.stalls = 0 if rose or fell else progress.stalls + 1
            if progress.stalls >= STALLS:
                return None
        progress.at_answers = progress.at_answers and out is not None and rose
        progress.bound, progress.value = lower, solution.value_usd
        if progress.at_answers:
            signals = self.signals(out)
            if last is None or not _repeats(signals, last):
                return signals
            progress.at_answers = False
        return self._signals(solution.prices)

    def _bound(self) -> float:
        """The master's bound now (its LP; minus infinity if it has no solution)."""
        sol = self.master.solve(relaxed=True)
        return sol.lower_bound if sol.proposals else -math.inf

    def _closed(self, lower_bound: float) -> bool:
        """Whether the incumbent already meets the bound (``V`` lies between the two)."""
        upper = self.incumbent.best.upper_bound
        return math.isfinite(upper) and upper - lower_bound <= self._tol(upper)

    def _tol(self, value: float) -> float:
        return self.settle_gap * max(1.0, abs(value))

    def inner_signals(self, lower_bound: float | None = None) -> list[PriceSignal] | None:
        """The inner master's prices; ``None`` when another round cannot raise the bound.

        That is when the inner master's value meets the master's bound, or it has no
        solution.
        """
        solution = self.inner.solve() if self.inner is not None else None
        if solution is None or self.settled(solution, lower_bound):
            return None
        return self._signals(solution.prices)

    def settled(self, solution: InnerSolution, lower_bound: float | None = None) -> bool:
        """Whether the inner master's value is within ``settle_gap`` of the master's bound.

        ``lower_bound`` is the master's objective if the caller has just solved it (the
        master's LP is solved here otherwise).
        """
        lower = self._bound() if lower_bound is None else lower_bound
        return solution.value_usd - lower <= self._tol(solution.value_usd)

    def inner_proposal(self, lower_bound: float) -> dict[str, RestoredExchange] | None:
        """The inner master's combination, when it is one of the master's optimal solutions.

        That is when its value meets the master's ``lower_bound``; each combination is
        proposed once (the inner master must have changed since the last proposal).
        """
        if self.inner is None or self.inner.added == self._proposed or self._closed(lower_bound):
            return None
        found = self.inner.solve()
        if found is None or not self.settled(found, lower_bound):
            return None
        self._proposed = self.inner.added
        return found.exchanges

    def add_network_cut(self, cut: ACFeasibilityCut) -> None:
        """Give the inner master a network cut the master got (an AC cut)."""
        if self.inner is not None:
            keys, coefs, rhs = cut.row()
            cols = self.master.slot_columns(cut.slot)
            self.inner.add_cut([cols[k] for k in keys], coefs, rhs)

    def at_proposal(self, exchanges: dict[str, RestoredExchange], lower_bound: float) -> None:
        """A round during the iterations.

        At the inner master's prices (unless its value meets the master's
        ``lower_bound``), or, without the inner master, at the network LP's nodal prices
        at the master's proposal ``exchanges``.
        """
        if self.inner is not None:
            signals = self.inner_signals(lower_bound)
            if signals is not None:
                self.round(signals)
            return
        out = self.evaluator.evaluate(exchanges)
        if out.status == "optimal":
            self.round(self.signals(out))

    def signals(self, at: SolveOutcome | None = None) -> list[PriceSignal]:
        """Nodal prices of the network LP at an evaluated point.

        The default point is the incumbent's; without one (or without valid duals) the
        utility price.
        """
        at = at if at is not None else self.incumbent.best.outcome
        values = self.evaluator.marginal_values(at) if at is not None else None
        if values is None:
            p = tuple(float(lam) * self.window.slot_hours for lam in self.window.price_usd_per_kwh)
            values = {e.mg: (p, (0.0,) * len(p)) for e in self.window.exchanges}
        return self._signals(values)

    def _signals(self, values: dict[str, Prices]) -> list[PriceSignal]:
        signals = []
        for mg, (p, q) in values.items():
            self._sent += 1
            signals.append(PriceSignal(mg, ScheduleKey(KeySource.PRICE, self._sent), p, q))
        return signals

    def round(self, signals: list[PriceSignal]) -> SolveOutcome | None:
        """Send the signals; add the Lagrangian cuts; offer the answers as an incumbent.

        Returns the network LP at the answers' exchanges (``None`` if a controller did
        not answer or the network cannot take them).
        """
        restored: dict[str, Restored] = {}
        self.sent += 1
        bound_usd = 0.0
        for response in self.pool.price_responses(signals):
            if isinstance(response, Infeasible):
                self.infeasible.add(response.mg)
            else:
                self.master.add_lagrangian_cut(response)
                restored[response.mg] = (response.key, response.restored)
                bound_usd += response.bound_usd
        every = len(restored) == len(self.window.exchanges)
        self._round_bound_usd = bound_usd if every else None
        self.add_schedules(restored)
        out = self.incumbent.offer(restored)  # every answer in: the combination is theirs
        return out if len(restored) == len(self.window.exchanges) else None

    def add_schedules(self, restored: dict[str, Restored]) -> None:
        """Give the inner master the runnable schedules the controllers sent."""
        if self.inner is not None:
            for mg, (_, exchange) in restored.items():
                self.inner.add(mg, exchange)

    def _zero_exchange(self) -> SolveOutcome | None:
        """The network LP with every exchange at zero (for the first nodal prices)."""
        zero = (0.0,) * self.window.slots
        out = self.evaluator.evaluate({e.mg: RestoredExchange(zero, zero, 0.0)
                                       for e in self.window.exchanges})
        return out if out.status == "optimal" else None


def _repeats(signals: list[PriceSignal], last: list[PriceSignal]) -> bool:
    """Whether a round's prices are those of the round before."""
    return bool(np.allclose([(s.p_usd_per_kw, s.q_usd_per_kvar) for s in signals],
                            [(s.p_usd_per_kw, s.q_usd_per_kvar) for s in last],
                            rtol=1e-9, atol=1e-12))
