"""The ``/convergence`` table of a trajectory file: one row per coordinated window.

Rows are buffered as they come and written at the writer's flush. The first row fixes
the columns and their types (bool, int, float, str); an integer column that later gets
``None`` or a non-integral number is promoted to float and rewritten.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import h5py
import numpy as np

from gridcosim.outputs.layout import (
    BOOL_ATTR,
    COLUMNS_ATTR,
    CONVERGENCE_CHUNK,
    WINDOW,
    append_rows,
    check_name,
    units_of,
)


class _NeedsFloat(Exception):
    """An integer column received None or a non-integral number."""


class _Column:
    """One convergence column: its stored dtype and the conversion of a cell value.

    An integer column that receives None or a non-integral number becomes a float column
    (``promoted``; its dataset, if already written, is rewritten as float64 at the next flush).
    """

    __slots__ = ("name", "kind", "promoted")

    def __init__(self, name: str, value: object) -> None:
        self.name = name
        self.promoted = False
        if isinstance(value, bool | np.bool_):
            self.kind = "bool"
        elif isinstance(value, int | np.integer):
            self.kind = "int"
        elif value is None or isinstance(value, float | np.floating):
            self.kind = "float"
        elif isinstance(value, str):
            self.kind = "str"
        else:
            raise ValueError(f"convergence column {name!r}: unsupported value {value!r}")

    def convert(self, value: object) -> object:
        if self.kind == "float":
            if value is None:
                return math.nan
            if isinstance(value, str | bytes) or not np.isscalar(value):
                raise ValueError(f"convergence column {self.name!r}: {value!r} is not a number")
            return float(value)  # type: ignore[arg-type]
        if self.kind == "str":
            return "" if value is None else str(value)
        if self.kind == "bool":
            if not isinstance(value, bool | np.bool_ | int | np.integer) or value not in (0, 1):
                raise ValueError(f"convergence column {self.name!r}: {value!r} is not a bool")
            return int(bool(value))
        if isinstance(value, bool | np.bool_ | int | np.integer):
            return int(value)
        if value is None or isinstance(value, float | np.floating):
            if value is not None and float(value).is_integer():
                return int(value)
            raise _NeedsFloat
        raise ValueError(f"convergence column {self.name!r}: {value!r} is not a number")

    def dtype(self) -> Any:
        return {"bool": np.int8, "int": np.int64, "float": np.float64,
                "str": h5py.string_dtype()}[self.kind]


def flatten(row: Mapping[str, object]) -> dict[str, object]:
    """Flatten one level of nested mappings: ``{"cuts": {"ac": 2}}`` -> ``{"cuts_ac": 2}``."""
    flat: dict[str, object] = {}
    for key, value in row.items():
        items = ([(f"{key}_{sub}", inner) for sub, inner in value.items()]
                 if isinstance(value, Mapping) else [(str(key), value)])
        for name, inner in items:
            if name in flat:
                raise ValueError(f"convergence column {name!r} given twice")
            flat[name] = inner
    return flat


class ConvergenceTable:
    """Buffered convergence rows and their datasets in the file's ``/convergence`` group."""

    def __init__(self) -> None:
        self._columns: list[_Column] | None = None
        self._rows: list[list[object]] = []
        self._written = 0
        self._created = False
        self._datasets: dict[str, h5py.Dataset] = {}

    def append(self, row: Mapping[str, object]) -> None:
        """Buffer one convergence row (one per window); the first row fixes the columns.

        Values are int, float (None -> NaN), str or bool; one level of nested mappings is
        flattened (``{"cuts": {"ac": 2}}`` becomes column ``cuts_ac``).

        Raises:
            ValueError: If the keys differ from the first row's or a value does not convert.

        """
        flat = flatten(row)
        if self._columns is None:
            for name in flat:
                check_name(name, "convergence column")
                if name == WINDOW:
                    raise ValueError(f"convergence column name {WINDOW!r} is reserved")
            columns = [_Column(name, value) for name, value in flat.items()]
        else:
            columns = self._columns
            if flat.keys() != {c.name for c in columns}:
                names = [c.name for c in columns]
                raise ValueError(f"convergence row keys {sorted(flat)} differ from the first "
                                 f"row's {names}")
        cells = []
        for j, col in enumerate(columns):
            try:
                cells.append(col.convert(flat[col.name]))
            except _NeedsFloat:
                col.kind, col.promoted = "float", True
                for r in self._rows:
                    r[j] = float(r[j])  # type: ignore[arg-type]
                cells.append(col.convert(flat[col.name]))
        self._columns = columns
        self._rows.append(cells)

    @staticmethod
    def _create_column(conv: h5py.Group, col: _Column, data: np.ndarray | None = None) -> None:
        window = conv[WINDOW]
        ds = conv.create_dataset(col.name, shape=(0,), maxshape=(None,),
                                 chunks=(CONVERGENCE_CHUNK,), dtype=col.dtype())
        if data is not None:
            append_rows(ds, 0, data)
        if col.kind == "bool":
            ds.attrs[BOOL_ATTR] = "bool"
        units = units_of(col.name)
        if units is not None and col.kind in ("int", "float"):
            ds.attrs["units"] = units
        ds.dims[0].attach_scale(window)
        ds.dims[0].label = WINDOW

    def flush(self, conv: h5py.Group) -> None:
        """Write the buffered rows into ``conv`` (the file's ``/convergence`` group)."""
        if not self._rows or self._columns is None:
            return
        if not self._created:
            for col in self._columns:
                self._create_column(conv, col)
            conv.attrs[COLUMNS_ATTR] = np.array([c.name for c in self._columns],
                                                dtype=h5py.string_dtype())
            self._created = True
        for col in self._columns:
            if col.promoted:  # int column turned float: rewrite it
                ds = conv[col.name]
                if ds.dtype != np.float64:
                    data = ds[()].astype(np.float64)
                    ds.dims[0].detach_scale(conv[WINDOW])
                    del conv[col.name]
                    self._datasets.pop(col.name, None)
                    self._create_column(conv, col, data)
                col.promoted = False
        old, k = self._written, len(self._rows)
        new = old + k
        for j, col in enumerate(self._columns):
            ds = self._datasets.get(col.name)
            if ds is None:  # looked up once (h5py's group lookup costs ~0.1 ms a call)
                ds = self._datasets[col.name] = conv[col.name]
            cells = [r[j] for r in self._rows]
            if col.kind == "str":
                ds.resize((new,))
                ds[old:new] = np.array(cells, dtype=object)
            else:
                append_rows(ds, old, np.asarray(cells, dtype=col.dtype()))
        window = self._datasets.get(WINDOW)
        if window is None:
            window = self._datasets[WINDOW] = conv[WINDOW]
        append_rows(window, old, np.arange(old, new, dtype=np.int64))
        self._written = new
        self._rows.clear()
