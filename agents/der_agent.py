"""The DER agents inside a microgrid: one module per kind, all on this base.

A DER agent owns one unit's data and state. Its microgrid controller drives it through a
slot: :meth:`DerAgent.observe` (the realised conditions), :meth:`DerAgent.dispatch` (the
plan's set-point, or less when conditions fall short: the shortfall is returned),
:meth:`DerAgent.absorb` (a flexible unit covers others' shortfall) and
:meth:`DerAgent.settle` (state, cost and energy). Between windows it gives the state the
next window starts from (:meth:`DerAgent.window_state`) and its forecast
(:meth:`DerAgent.forecast`); both come from its kind's model
(:mod:`gridcosim.simulator.models.ders`).

:func:`der_agent_class` finds the agent class of a kind among the modules of
:mod:`gridcosim.agents`, so a new kind needs no edit here or in the controller.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

import mesa
import numpy as np

from gridcosim.agents.base import GridAgent
from gridcosim.simulator.models.ders import DerModel, der_model
from gridcosim.simulator.schedule import UnitSchedule


@dataclass(frozen=True)
class Shortfall:
    """How much less active power a unit injects than planned in a slot (kW; positive: less).

    The reactive side needs no report: the controller meters every unit's realised
    ``q_kvar`` after the covers.
    """

    p_kw: float = 0.0


class DerAgent(GridAgent):
    """One unit of a microgrid (subclass per kind; set :attr:`KIND`).

    Args:
        model: The co-simulation.
        spec: The unit's schema entry.

    """

    KIND: ClassVar[str] = ""

    def __init__(self, model: mesa.Model, spec: Any):
        super().__init__(model)
        self.spec = spec
        self.p_kw = 0.0
        self.q_kvar = 0.0

    @property
    def der_model(self) -> DerModel:
        """The kind's model."""
        return der_model(self.KIND)

    @property
    def state_key(self) -> str:
        """``<kind>:<unit name>``."""
        return f"{self.KIND}:{self.spec.name}"

    @property
    def entity_id(self) -> str:
        """The unit's name."""
        return self.spec.name

    # ---------------------------------------------------------------- windows
    def window_state(self) -> dict[str, float]:
        """The state the next window starts from (see the kind's ``initial_state``)."""
        return {}

    def forecast(self, series: Any, start: int, slots: int) -> np.ndarray | None:
        """The unit's forecast for slots ``start .. start + slots - 1`` (if it has one)."""
        return self.der_model.forecast_kw(self.spec, series, slice(start, start + slots))

    # ---------------------------------------------------------------- a slot
    def dispatch(self, plan: UnitSchedule, k: int) -> Shortfall:
        """Take slot ``k`` of the plan as set-point; say what the unit cannot give."""
        self.p_kw, self.q_kvar = plan.p_kw[k], (plan.q_kvar[k] if plan.q_kvar else 0.0)
        return Shortfall()

    def absorb(self, shortfall_kw: float, slot_hours: float) -> float:
        """Inject more to cover ``shortfall_kw`` of others; return what is left."""
        return shortfall_kw

    def settle(self, slot_hours: float) -> float:
        """Apply the slot's set-point to the state; return the slot's cost ($)."""
        return 0.0


@cache
def der_agent_classes() -> dict[str, type[DerAgent]]:
    """The agent class of every DER kind, found in the modules of :mod:`gridcosim.agents`."""
    package = importlib.import_module("gridcosim.agents")
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
    found: dict[str, type[DerAgent]] = {}
    stack = list(DerAgent.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.KIND:
            found[cls.KIND] = cls
    return found


def der_agent_class(kind: str) -> type[DerAgent]:
    """The agent class of one DER kind.

    Raises:
        KeyError: If no agent module defines the kind.

    """
    classes = der_agent_classes()
    if kind not in classes:
        raise KeyError(f"no agent for DER kind {kind!r}; kinds: {sorted(classes)}")
    return classes[kind]
