"""The decomposition's upper bound: the best combination of schedules every microgrid runs.

Every restored exchange a controller returns is one its microgrid can actually run (a
MILP-feasible schedule with its true cost), whatever proposal it answered. The tracker
keeps each microgrid's latest one; once every microgrid has one, the network LP prices
the combination (the reactive exchanges free within the schedules' reactive bands) and
a combination cheaper than the incumbent that the network validator (if any) accepts
becomes the incumbent. The reported schedule is always an incumbent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from gridcosim.simulator.decomposition.network_evaluator import NetworkEvaluator
from gridcosim.simulator.highs_instance import SolveOutcome
from gridcosim.simulator.messages import RestoredExchange, ScheduleKey
from gridcosim.simulator.schedule import NetworkSchedule

#: A microgrid's restored exchange and the key of the schedule it belongs to.
Restored = tuple[ScheduleKey, RestoredExchange]


class IncumbentCheck(Protocol):
    """The network validator's check of a schedule (no cuts)."""

    def check(self, schedule: NetworkSchedule, exchanges: dict[str, RestoredExchange]) -> Any:
        """A report with ``feasible``."""


@dataclass
class Incumbent:
    """The best combination so far: its cost, each microgrid's key and exchange."""

    upper_bound: float = float("inf")
    keys: dict[str, ScheduleKey] = field(default_factory=dict)
    exchanges: dict[str, RestoredExchange] = field(default_factory=dict)
    outcome: SolveOutcome | None = None
    network: NetworkSchedule | None = None
    report: Any = None


class IncumbentTracker:
    """Combines the latest restored exchanges into upper bounds.

    Args:
        evaluator: The network LP.
        microgrids: How many microgrids there are.
        check: The network validator, if schedules must pass it to become incumbents.

    """

    def __init__(self, evaluator: NetworkEvaluator, microgrids: int,
                 check: IncumbentCheck | None = None):
        self.evaluator, self.microgrids, self.check = evaluator, microgrids, check
        self.best = Incumbent()
        self.latest: dict[str, Restored] = {}

    def offer(self, restored: Mapping[str, Restored]) -> SolveOutcome | None:
        """Take the new restored exchanges; return the network LP of the combination.

        ``None`` when some microgrid has none yet or the network cannot take them.
        """
        if not restored:
            return None
        self.latest.update(restored)
        if len(self.latest) != self.microgrids:
            return None
        exchanges = {mg: ex for mg, (_, ex) in self.latest.items()}
        out = self.evaluator.evaluate(exchanges)
        if out.status != "optimal":
            return None
        exchanges = self.evaluator.with_reactive(exchanges, out)
        ub = float(out.objective) + sum(r.cost_usd for r in exchanges.values())
        if ub < self.best.upper_bound:
            self._consider(ub, exchanges, out)
        return out

    def _consider(self, ub: float, exchanges: dict[str, RestoredExchange],
                  out: SolveOutcome) -> None:
        network, report = None, None
        if self.check is not None:
            network = self.evaluator.schedule(out)
            report = self.check.check(network, exchanges)
            if not report.feasible:
                return
        self.best = Incumbent(ub, {mg: key for mg, (key, _) in self.latest.items()},
                              exchanges, out, network, report)
