"""A controller's warm start: the bases its last window's LPs ended in, for the next one.

The responder keeps them itself from one window to the next; the co-simulation also
stores them in each checkpoint, so that a resumed run starts every controller's LPs
exactly where the uninterrupted run did (docs/decisions.md, co-simulation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gridcosim.simulator.highs_model import HighsModel
from gridcosim.simulator.warm_basis import SlotShift, WarmBasis


@dataclass(frozen=True, eq=False)
class ControllerWarmStart:
    """Where a controller's next window starts its LPs: the bases its last window ended in.

    Part of a run's checkpoint (:meth:`to_json`), so that a resumed run starts every
    controller's LP exactly where the uninterrupted run did (docs/decisions.md).

    Attributes:
        mg: The microgrid.
        start: First slot of the window the bases come from.
        lp: The unified LP's final basis.
        relaxed: The MILP relaxation's basis at the window's last root solve.

    """

    mg: str
    start: int
    lp: WarmBasis | None = None
    relaxed: WarmBasis | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable form (:meth:`from_json` reads it)."""
        return {"mg": self.mg, "start": self.start,
                "lp": self.lp.to_text() if self.lp is not None else "",
                "relaxed": self.relaxed.to_text() if self.relaxed is not None else ""}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ControllerWarmStart:
        """Read :meth:`to_json`."""
        return cls(str(data["mg"]), int(data["start"]),
                   WarmBasis.from_text(data["lp"]) if data.get("lp") else None,
                   WarmBasis.from_text(data["relaxed"]) if data.get("relaxed") else None)


class WindowStarts:
    """Moves a controller's bases on to its next window (the slot shifts kept per K).

    Args:
        compiled: The controller's compiled MILP (its LP and relaxation are copies of it,
            so one shift serves the three).

    """

    def __init__(self, compiled: HighsModel):
        self.compiled = compiled
        self._shifts: dict[int, SlotShift] = {}

    def moved(self, carried: ControllerWarmStart, window: Any
              ) -> tuple[WarmBasis | None, WarmBasis | None]:
        """The unified LP's and the relaxation's bases for ``window`` (``None``: cold).

        Only a window that starts after the bases' window and overlaps it gets them.
        """
        shift = window.start - carried.start
        if not 0 < shift < window.slots:
            return None, None
        if shift not in self._shifts:
            self._shifts[shift] = self.compiled.slot_shift(window.slots, shift)
        moves = self._shifts[shift]
        return tuple(None if b is None else moves.basis(b, window.start)  # type: ignore[return-value]
                     for b in (carried.lp, carried.relaxed))
