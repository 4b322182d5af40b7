"""What every gridcosim agent shares: a Mesa agent with a state that can be checkpointed.

A run records, after every committed window, the state each agent carries into the next
window (commitments, stored energy, cumulative costs, ...) so that ``gridcosim run
--resume`` continues a stopped run exactly where it was. Each agent class lists those
attributes in :attr:`GridAgent.STATE`; everything else an agent holds is either fixed data
or recomputed at the next window.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import mesa

StateValue = bool | int | float | str


class GridAgent(mesa.Agent):
    """A Mesa agent with a named, checkpointable state.

    Attributes:
        STATE: Names of the attributes that make up the agent's state between windows
            (plain numbers, booleans or strings).

    """

    STATE: ClassVar[tuple[str, ...]] = ()

    @property
    def state_key(self) -> str:
        """A name of this agent that is the same in every run of the scenario."""
        raise NotImplementedError(f"{type(self).__name__} has no state key")

    def snapshot(self) -> dict[str, StateValue]:
        """The agent's state (JSON-serialisable)."""
        return {name: getattr(self, name) for name in self.STATE}

    def restore(self, state: Mapping[str, StateValue]) -> None:
        """Set the state saved by :meth:`snapshot`.

        Raises:
            KeyError: If ``state`` lacks one of :attr:`STATE`.

        """
        for name in self.STATE:
            setattr(self, name, state[name])
