"""A simplex basis carried from one window to the next, and its checkpoint text.

A rolling horizon's next window shares all but K of its slots with the last one, so the
last window's final basis, moved K slots earlier (:class:`SlotShift`: the status of slot
``t + K`` goes to slot ``t``, the last slot repeated), is a near-optimal start for it.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np
import pyomo.environ as pyo

#: HiGHS basis statuses by code (kLower, kBasic, kUpper, kZero, kNonbasic).
_STATUS = [highspy.HighsBasisStatus(k) for k in range(5)]
_STATUS_OBJECTS = np.array(_STATUS, dtype=object)
LOWER, BASIC, UPPER, ZERO = 0, 1, 2, 3


@dataclass(frozen=True, eq=False)
class WarmBasis:
    """A simplex basis kept from one window to the next (column and row statuses).

    It is part of a run's checkpoint (:meth:`to_text`), so a resumed run starts each
    compiled LP from exactly the basis the uninterrupted run used. ``slot`` is the first
    slot of the window the basis was taken in (``None``: not recorded), so that the next
    window knows how far to move it (:class:`SlotShift`).
    """

    col_status: np.ndarray
    row_status: np.ndarray
    slot: int | None = None

    def fits(self, rows: int, cols: int) -> bool:
        """Whether the basis has these dimensions."""
        return (len(self.row_status), len(self.col_status)) == (rows, cols)

    @classmethod
    def from_highs(cls, basis: Any, slot: int | None = None) -> WarmBasis:
        """From a ``highspy.HighsBasis``."""
        # ``.value`` per status: about twice as fast as numpy converting the enums itself
        return cls(np.array([s.value for s in basis.col_status], dtype=np.int8),
                   np.array([s.value for s in basis.row_status], dtype=np.int8), slot)

    def to_highs(self) -> Any:
        """As a ``highspy.HighsBasis``."""
        out = highspy.HighsBasis()
        out.col_status = _STATUS_OBJECTS[self.col_status].tolist()
        out.row_status = _STATUS_OBJECTS[self.row_status].tolist()
        out.valid = True
        return out

    def to_text(self) -> str:
        """Compressed, JSON-safe form (:meth:`from_text` reads it)."""
        head = np.array([_TAGGED, -1 if self.slot is None else self.slot,
                         len(self.col_status)], dtype=np.int64)
        raw = np.concatenate([head.view(np.int8), self.col_status, self.row_status])
        return base64.b64encode(zlib.compress(raw.tobytes(), 6)).decode("ascii")

    @classmethod
    def from_text(cls, text: str) -> WarmBasis:
        """Read :meth:`to_text` (also the untagged form of earlier versions, no slot)."""
        raw = np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=np.int8)
        first = int(raw[:8].view(np.int64)[0])
        if first != _TAGGED:
            return cls(raw[8:8 + first].copy(), raw[8 + first:].copy())
        slot, n = (int(v) for v in raw[8:24].view(np.int64))
        return cls(raw[24:24 + n].copy(), raw[24 + n:].copy(), None if slot < 0 else slot)


#: First word of a basis text that records its slot (earlier texts start with a count).
_TAGGED = -1


def statuses_at_optimum(basic: np.ndarray, value: np.ndarray, dual: np.ndarray,
                        lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """The statuses HiGHS reports for the columns (or rows) of an optimal LP basis.

    Read this way, from the basic indices, the solution and the bounds (all numpy), a
    basis costs a fraction of ``Highs.getBasis``, whose status lists come back one Python
    enum per entry (about 5 ms for the 20,000 of the week's network LP). The rule is
    HiGHS's own (``HEkk::getHighsBasis``): a nonbasic variable has the status of the
    bound it sits on; a fixed one ``kLower`` if its dual, in the simplex's sign, is
    non-negative, else ``kUpper``; a free one ``kZero``.

    Args:
        basic: Indices of the basic ones.
        value: Column values (row activities).
        dual: Reduced costs of a minimisation (for rows: minus the row duals HiGHS
            reports, which it gives with the opposite sign).
        lower: Lower bounds.
        upper: Upper bounds.

    """
    status = np.where(np.abs(value - lower) <= np.abs(value - upper), LOWER, UPPER
                      ).astype(np.int8)
    fixed = lower == upper
    status[fixed] = np.where(dual[fixed] >= 0, LOWER, UPPER)
    status[np.isneginf(lower) & np.isposinf(upper)] = ZERO
    status[basic] = BASIC
    return status


@dataclass(frozen=True, eq=False)
class SlotShift:
    """Where each compiled column and row of a window takes its status from, K slots on.

    Column ``j`` of the next window takes the status column ``col[j]`` had in the last one
    (likewise rows). A variable or constraint indexed by ``(..., t)`` over a slot set
    ``T`` moves to slot ``min(t + K, |T| - 1)``; everything else keeps its own status.
    The moved basis may not count one basic variable per row: HiGHS then refuses it and
    the model starts cold (:meth:`HighsModel.reset
    <gridcosim.simulator.highs_model.HighsModel.reset>`).
    """

    col: np.ndarray
    row: np.ndarray

    @classmethod
    def of(cls, model: pyo.Block, cols: dict[int, int], rows: dict[int, int], slots: int,
           shift: int) -> SlotShift:
        """The shift of a compiled model (its column and row maps by Pyomo object id)."""
        return cls(
            _permutation(model.component_data_objects(pyo.Var, descend_into=True), cols,
                         slots, shift),
            _permutation(model.component_data_objects(pyo.Constraint, descend_into=True),
                         rows, slots, shift))

    def basis(self, basis: WarmBasis, slot: int | None = None) -> WarmBasis | None:
        """``basis`` moved on, now of the window at ``slot`` (``None``: it does not fit)."""
        if not basis.fits(len(self.row), len(self.col)):
            return None
        return WarmBasis(basis.col_status[self.col], basis.row_status[self.row], slot)


def _permutation(objs: Iterable[Any], index: dict[int, int], slots: int, shift: int
                 ) -> np.ndarray:
    """Source index of every compiled column (or row) for a shift of ``shift`` slots."""
    groups: dict[tuple[int, tuple[Any, ...]], dict[int, int]] = {}
    for obj in objs:
        j = index.get(id(obj))
        comp = obj.parent_component()
        if j is None or not comp.is_indexed() or not _slot_indexed(comp, slots):
            continue
        key = obj.index() if isinstance(obj.index(), tuple) else (obj.index(),)
        groups.setdefault((id(comp), key[:-1]), {})[key[-1]] = j
    out = np.arange(max(index.values(), default=-1) + 1)
    for by_slot in groups.values():
        for t, j in by_slot.items():
            out[j] = by_slot.get(min(t + shift, slots - 1), j)
    return out


def _slot_indexed(comp: Any, slots: int) -> bool:
    """Whether a component's last index is a window's slot set ``T`` of ``slots`` slots."""
    sets = list(comp.index_set().subsets())
    return bool(sets) and sets[-1].local_name == "T" and len(sets[-1]) == slots
