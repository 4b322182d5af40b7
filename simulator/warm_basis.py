"""A simplex basis carried from one window to the next, and its checkpoint text."""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np

#: HiGHS basis statuses by code (kLower, kBasic, kUpper, kZero, kNonbasic).
_STATUS = [highspy.HighsBasisStatus(k) for k in range(5)]


@dataclass(frozen=True, eq=False)
class WarmBasis:
    """A simplex basis kept from one window to the next (column and row statuses).

    It is part of a run's checkpoint (:meth:`to_text`), so a resumed run starts each
    compiled LP from exactly the basis the uninterrupted run used.
    """

    col_status: np.ndarray
    row_status: np.ndarray

    def fits(self, rows: int, cols: int) -> bool:
        """Whether the basis has these dimensions."""
        return (len(self.row_status), len(self.col_status)) == (rows, cols)

    @classmethod
    def from_highs(cls, basis: Any) -> WarmBasis:
        """From a ``highspy.HighsBasis``."""
        return cls(np.fromiter(map(int, basis.col_status), dtype=np.int8),
                   np.fromiter(map(int, basis.row_status), dtype=np.int8))

    def to_highs(self) -> Any:
        """As a ``highspy.HighsBasis``."""
        out = highspy.HighsBasis()
        out.col_status = [_STATUS[k] for k in self.col_status.tolist()]
        out.row_status = [_STATUS[k] for k in self.row_status.tolist()]
        out.valid = True
        return out

    def to_text(self) -> str:
        """Compressed, JSON-safe form (:meth:`from_text` reads it)."""
        raw = np.concatenate([np.array([len(self.col_status)], dtype=np.int64).view(np.int8),
                              self.col_status, self.row_status])
        return base64.b64encode(zlib.compress(raw.tobytes(), 6)).decode("ascii")

    @classmethod
    def from_text(cls, text: str) -> WarmBasis:
        """Read :meth:`to_text`."""
        raw = np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=np.int8)
        n = int(raw[:8].view(np.int64)[0])
        return cls(raw[8:8 + n].copy(), raw[8 + n:].copy())
