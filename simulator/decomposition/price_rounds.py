"""Price rounds: the DSO's nodal prices, answered by Lagrangian cuts and price responses.

Before the first master (and, with ``price_every``, during the iterations) the DSO sends
each controller the network LP's marginal value of its exchange, per slot: the nodal
price at its bus times the slot length. The controller minimises its cost minus the value
of its exchange at those prices over everything it can run; the MILP's dual bound is
``L(λ)``, so ``eta ≥ L(λ) + λ·x`` is valid for every exchange it can run (a Lagrangian
cut, on the master's root), and the schedule attaining it is a runnable upper-bound
candidate. Rounds repeat at the prices of the previous round's answers until the prices
no longer change or ``price_rounds`` is reached. Where the network does not bind, the
first master then closes the gap (``docs/formulation.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gridcosim.simulator.decomposition.controller_pool import ResponderPool
from gridcosim.simulator.decomposition.incumbent import IncumbentTracker, Restored
from gridcosim.simulator.decomposition.master_problem import MasterProblem
from gridcosim.simulator.decomposition.network_evaluator import NetworkEvaluator
from gridcosim.simulator.highs_instance import SolveOutcome
from gridcosim.simulator.messages import (
    Infeasible,
    KeySource,
    PriceSignal,
    RestoredExchange,
    ScheduleKey,
)
from gridcosim.simulator.models.lindistflow_model import NetworkWindow


@dataclass
class PriceRounds:
    """Sends price signals and adds what comes back to the master and the incumbent."""

    window: NetworkWindow
    master: MasterProblem
    evaluator: NetworkEvaluator
    pool: ResponderPool
    incumbent: IncumbentTracker
    rounds: int
    infeasible: set[str] = field(default_factory=set)
    _sent: int = 0

    def before_iterating(self) -> None:
        """Rounds at the prices of zero exchange, then of each round's answers."""
        at = self._zero_exchange()
        last = None
        for _ in range(self.rounds):
            signals = self.signals(at)
            prices = [(s.p_usd_per_kw, s.q_usd_per_kvar) for s in signals]
            if last is not None and np.allclose(prices, last, rtol=1e-9, atol=1e-12):
                return
            at, last = self.round(signals), prices
            if at is None or self.infeasible:
                return

    def at_proposal(self, exchanges: dict[str, RestoredExchange]) -> None:
        """A round at the nodal prices of the master's proposal (during the iterations)."""
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
        for response in self.pool.price_responses(signals):
            if isinstance(response, Infeasible):
                self.infeasible.add(response.mg)
            else:
                self.master.add_lagrangian_cut(response)
                restored[response.mg] = (response.key, response.restored)
        out = self.incumbent.offer(restored)  # every answer in: the combination is theirs
        return out if len(restored) == len(self.window.exchanges) else None

    def _zero_exchange(self) -> SolveOutcome | None:
        """The network LP with every exchange at zero (for the first nodal prices)."""
        zero = (0.0,) * self.window.slots
        out = self.evaluator.evaluate({e.mg: RestoredExchange(zero, zero, 0.0)
                                       for e in self.window.exchanges})
        return out if out.status == "optimal" else None
