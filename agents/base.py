"""What every gridcosim agent shares: one lifecycle, declared outputs, a checkpointable state.

**Lifecycle.** Each slot the co-simulation drives its agents through the same phases
(:meth:`GridAgent.observe` → :meth:`GridAgent.decide` → :meth:`GridAgent.commit`): an
agent observes the slot's realised conditions (drawing its noise from the model's one
random generator), decides what to do (at a re-planning point: take part in the window's
coordination) and commits the slot (updates its state and money). Every phase is a no-op
unless a kind needs it.

**Outputs.** Each agent class declares what the recorder writes of it
(:attr:`GridAgent.RECORDS`): per entity kind the variables, each with its unit, meaning,
sign convention and timing (a value over the slot, or the state at the end of the slot;
some also have their value before the first slot recorded). The HDF5 writer and
``docs/hdf5_layout.md`` are derived from these declarations.

**State.** :attr:`GridAgent.STATE` names the attributes an agent carries from one window
to the next; ``gridcosim run --resume`` restores them from the file's checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

import mesa

StateValue = bool | int | float | str


class Timing(StrEnum):
    """When a recorded value holds."""

    SLOT = "slot"  # over the slot (a power, a cost, a set-point)
    END = "end"  # at the end of the slot (a state such as stored energy)


@dataclass(frozen=True)
class Output:
    """One recorded variable.

    Attributes:
        name: Dataset name; its suffix carries the unit (``p_kw``, ``e_kwh``, ``on``).
        unit: The unit as written in the file (CF style: ``kW``, ``kWh``, ``USD``, ``1``).
        meaning: What it is.
        sign: Its sign convention (empty when it has none).
        timing: Over the slot, or at its end.
        initial: Whether the value before the first slot is recorded too
            (``<kind>/initial/<name>``).

    """

    name: str
    unit: str
    meaning: str
    sign: str = ""
    timing: Timing = Timing.SLOT
    initial: bool = False


@dataclass(frozen=True)
class Record:
    """An entity kind an agent class writes: a group of the HDF5 file.

    Attributes:
        kind: Group name (``generator``, ``bus``, ...).
        entity: What one entity of the kind is (for the docs).
        outputs: Its variables.
        cost_in: The kind whose ``cost_usd`` already includes this kind's (a DER's cost is
            part of its microgrid's), so that totals count it once; empty if none.

    """

    kind: str
    entity: str
    outputs: tuple[Output, ...]
    cost_in: str = ""


class GridAgent(mesa.Agent):
    """A Mesa agent with the lifecycle, declared outputs and a named, checkpointable state.

    Attributes:
        STATE: Names of the attributes that make up the agent's state between windows
            (plain numbers, booleans or strings).
        RECORDS: The entity kinds this class writes. By default each agent is one entity
            of each kind (id :attr:`entity_id`) and the values are its attributes of the
            outputs' names; an agent standing for several entities overrides
            :meth:`record_ids` and :meth:`record_values`.

    """

    STATE: ClassVar[tuple[str, ...]] = ()
    RECORDS: ClassVar[tuple[Record, ...]] = ()

    # ---------------------------------------------------------------- lifecycle
    def observe(self, slot: int) -> None:
        """See slot ``slot``'s realised conditions (noise from ``model.rng``)."""
        return None

    def decide(self, *args: Any) -> None:
        """Decide what to do (for most agents: at a re-planning point)."""
        return None

    def commit(self, slot: int) -> None:
        """Carry out slot ``slot``: update the state and the money."""
        return None

    # ---------------------------------------------------------------- outputs
    @property
    def entity_id(self) -> str:
        """The agent's id in the file (its entity of each of :attr:`RECORDS`)."""
        return self.state_key

    def record_ids(self, record: Record) -> list[str]:
        """Ids of the agent's entities of ``record``'s kind."""
        return [self.entity_id]

    def record_values(self, record: Record, *, initial: bool = False) -> dict[str, list[float]]:
        """The agent's values of ``record``'s outputs, one per entity.

        With ``initial`` only the outputs recorded before the first slot (the agent's
        state then; called before the first step).
        """
        return {o.name: [float(getattr(self, o.name))] for o in record.outputs
                if o.initial or not initial}

    # ---------------------------------------------------------------- state
    @property
    def state_key(self) -> str:
        """A name of this agent that is the same in every run of the scenario.

        By default the class and the Mesa id (agents are created in the same order in
        every run of a scenario); agents with a name of their own override it.
        """
        return f"{type(self).__name__}:{self.unique_id}"

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
