"""Checkpoints of a simulation model at a window boundary (``gridcosim run --resume``).

A checkpoint is the next slot, both random generators (Mesa's ``random`` and the model's
numpy ``rng``) and every agent's :attr:`~gridcosim.agents.base.GridAgent.STATE`, as
JSON-serialisable data. Restoring it into a fresh model of the same scenario and settings
continues the run exactly. The DSO–microgrid co-simulation and the market simulation
share this.
"""

from __future__ import annotations

from typing import Any

import mesa

from gridcosim.agents.base import GridAgent
from gridcosim.simulator.status import RunStatus

#: Version of the checkpoint format.
CHECKPOINT_VERSION = 1


class CheckpointedModel(mesa.Model):
    """A Mesa model on a slot clock whose state at a window boundary can be saved.

    Subclasses set :attr:`total_slots` and :attr:`status`.
    """

    total_slots: int
    status: RunStatus

    @property
    def slot(self) -> int:
        """Slots executed so far (Mesa's step counter): the next slot to run."""
        return self.steps

    @property
    def started_slot(self) -> int:
        """The slot of the step that ran last (or runs now): where a stop happened."""
        return max(self.steps - 1, 0)

    def _stateful_agents(self) -> list[GridAgent]:
        return [a for a in self.agents if isinstance(a, GridAgent) and a.STATE]

    def snapshot(self) -> dict[str, Any]:
        """The state at a window boundary, JSON-serialisable."""
        return {"version": CHECKPOINT_VERSION, "slot": self.steps,
                "rng": self.rng.bit_generator.state, "random": _random_state(self.random),
                "agents": {a.state_key: a.snapshot() for a in self._stateful_agents()}}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`snapshot` (before the first step of a fresh model).

        Raises:
            ValueError: If the snapshot does not fit this model's agents or version.

        """
        if state.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"checkpoint version {state.get('version')!r}, expected "
                             f"{CHECKPOINT_VERSION}")
        agents = {a.state_key: a for a in self._stateful_agents()}
        if set(agents) != set(state["agents"]):
            raise ValueError("the checkpoint's agents differ from this scenario's agents")
        for key, agent in agents.items():
            agent.restore(state["agents"][key])
        self.steps = int(state["slot"])
        self.rng.bit_generator.state = state["rng"]
        self.random.setstate(_random_tuple(state["random"]))
        self.running = self.steps < self.total_slots
        if not self.running:
            self.status = RunStatus.FINISHED


def _random_state(rng: Any) -> list[Any]:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def _random_tuple(state: list[Any]) -> tuple[Any, ...]:
    version, internal, gauss = state
    return (version, tuple(internal), gauss)
