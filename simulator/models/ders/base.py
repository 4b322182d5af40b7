"""What one kind of distributed energy resource (DER) adds to a microgrid's model.

A microgrid holds units of several kinds (dispatchable generators, renewables, storage,
...). Each kind is one module of :mod:`gridcosim.simulator.models.ders` defining a
:class:`DerModel`: its variables and constraints on a block of its own, what it injects
into the microgrid's PCC balance, what it costs, its binaries, the window data it reads
(forecasts, initial state), its reactive capability at a fixed active schedule (the
reactive band) and how its unit schedules are read back. The microgrid model, the
compiled subproblems and the schedule extraction only talk to this interface, so a new
kind needs no edit outside its module, its agent and its schema entry.

Conventions: the block's units are indexed ``k = 0..K-1`` in the order of the
microgrid's schema field, slots ``t = 0..T-1``; per-unit variables are indexed ``(k, t)``;
powers in kW (injection into the microgrid positive), energies in kWh, costs in $.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyomo.environ as pyo

if TYPE_CHECKING:
    from gridcosim.simulator.models.microgrid_model import MicrogridWindow

#: Values of a block component, shape (units, slots).
Values = Callable[[str], np.ndarray]
#: Per-slot series of a unit schedule, by name (e.g. ``on``, ``e_kwh``).
Series = dict[str, tuple[float, ...]]


class DerModel(ABC):
    """One DER kind's part of the microgrid model (subclass it; see the module docstring).

    Attributes:
        kind: Entity kind (``generator``); also the name of its block on the microgrid.
        field: The :class:`~gridcosim.scenarios.schema.Microgrid` field listing the units.
        order: Position among the kinds (balance, outputs, binaries).
        binaries: Names of the block's binary variables (indexed ``(k, t)``).
        reactive: Name of the block's reactive-output variable, or ``None`` if the kind
            gives no reactive power.

    """

    kind: str = ""
    field: str = ""
    order: int = 100
    binaries: tuple[str, ...] = ()
    reactive: str | None = None

    def units(self, mg: Any) -> Sequence[Any]:
        """The microgrid's units of this kind."""
        return getattr(mg, self.field)

    # ---------------------------------------------------------------- window data
    def initial_state(self, unit: Any) -> dict[str, float]:
        """The state a unit starts the first window in (from its schema entry)."""
        return {}

    def forecast_kw(self, unit: Any, series: Any, span: slice) -> np.ndarray | None:
        """A unit's forecast over ``span`` (``None``: the kind has none)."""
        return None

    # ---------------------------------------------------------------- model
    @abstractmethod
    def build(self, b: pyo.Block, units: Sequence[Any], w: MicrogridWindow, relax: bool
              ) -> None:
        """Add variables, constraints and window parameters to the kind's block ``b``."""

    def p_injection(self, b: pyo.Block, t: int) -> Any:
        """Active power the kind's units inject into the PCC balance in slot ``t``."""
        return 0.0

    def q_injection(self, b: pyo.Block, t: int) -> Any:
        """Reactive power the kind's units inject in slot ``t``."""
        if self.reactive is None:
            return 0.0
        q = getattr(b, self.reactive)
        return sum(q[k, t] for k in b.K)

    def cost(self, b: pyo.Block, w: MicrogridWindow) -> Any:
        """The kind's operating cost over the window ($)."""
        return 0.0

    def cost_bound(self, units: Sequence[Any], w: MicrogridWindow) -> float:
        """An upper bound on :meth:`cost` (for the published cost bound)."""
        return 0.0

    # ---------------------------------------------------------------- next window
    def load_window(self, b: pyo.Block, units: Sequence[Any], w: MicrogridWindow) -> None:
        """Move a built block to window ``w`` of the same shape (parameters, bounds).

        The default has nothing to move (a kind whose model reads no window data).
        """
        return None

    def window_rows(self, b: pyo.Block) -> list[Any]:
        """Constraints whose bounds read window parameters (refreshed on re-load)."""
        return []

    def window_vars(self, b: pyo.Block) -> list[Any]:
        """Variables whose bounds follow the window's data (refreshed on re-load)."""
        return []

    # ---------------------------------------------------------------- results
    def reactive_range(self, units: Sequence[Any], values: Values
                       ) -> tuple[np.ndarray, np.ndarray] | None:
        """Each unit's reactive range per slot at a fixed active schedule (units x slots)."""
        return None

    @abstractmethod
    def schedules(self, units: Sequence[Any], values: Values) -> list[tuple[str, Series]]:
        """Each unit's name and per-slot series (``p_kw``, ``q_kvar`` and the kind's own)."""


def unit_index(b: pyo.Block, units: Sequence[Any], T: Any) -> None:
    """The block's unit set ``K`` and slot set ``T`` (a kind without units has ``K`` empty)."""
    b.K = pyo.RangeSet(0, len(units) - 1) if units else pyo.Set(initialize=[])
    b.T = pyo.RangeSet(0, len(T) - 1)


def rounded(values: np.ndarray) -> tuple[float, ...]:
    """A series as stored in a schedule (rounded to 1e-9)."""
    return tuple(np.round(np.asarray(values, dtype=float), 9).tolist())
