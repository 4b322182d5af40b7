"""The tables of a trajectory file: ``/convergence`` and ``/iterations``.

``/convergence`` has one row per coordinated window, ``/iterations`` one row per master
solve of a window (its ``window`` column is the convergence row). The columns and their
kinds (``int``, ``float``, ``str``, ``bool``) are declared when the file is created: the
file is written in HDF5's single-writer/multiple-reader mode, where no dataset can be
added later. Rows are buffered as they come and written at the writer's flush.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

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

ColumnKind = Literal["int", "float", "str", "bool"]
#: Bytes of a ``str`` cell (UTF-8, fixed length: a variable-length string would live in a
#: global heap that later flushes rewrite, which a write error could corrupt).
STR_BYTES = 256
_DTYPES: dict[str, Any] = {"bool": np.int8, "int": np.int64, "float": np.float64,
                           "str": h5py.string_dtype("utf-8", STR_BYTES)}


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


def convert(name: str, kind: ColumnKind, value: object) -> object:
    """A cell value in the stored type of its column (``None``: NaN or ``""``)."""
    if kind == "str":
        return _fit("" if value is None else str(value))
    if kind == "float":
        if value is None:
            return math.nan
        if isinstance(value, str | bytes) or not np.isscalar(value):
            raise ValueError(f"convergence column {name!r}: {value!r} is not a number")
        return float(value)  # type: ignore[arg-type]
    if kind == "bool":
        if not isinstance(value, bool | np.bool_ | int | np.integer) or value not in (0, 1):
            raise ValueError(f"convergence column {name!r}: {value!r} is not a bool")
        return int(bool(value))
    if isinstance(value, bool | np.bool_ | int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return int(value)
    raise ValueError(f"convergence column {name!r}: {value!r} is not an integer")


def _fit(text: str) -> bytes:
    """UTF-8 bytes of ``text`` cut to :data:`STR_BYTES` (``...`` marks a cut)."""
    raw = text.encode("utf-8")
    if len(raw) <= STR_BYTES:
        return raw
    return raw[: STR_BYTES - 3].decode("utf-8", "ignore").encode("utf-8") + b"..."


class ConvergenceTable:
    """Declared columns, buffered rows and their datasets in one table's group.

    Args:
        columns: Column name -> kind, in column order (the index name is reserved).
        index: The name of the row index, a dimension scale (``window`` in
            ``/convergence``, ``row`` in ``/iterations``).

    """

    def __init__(self, columns: Mapping[str, ColumnKind], index: str = WINDOW) -> None:
        for name, kind in columns.items():
            check_name(name, "convergence column")
            if name == index:
                raise ValueError(f"convergence column name {index!r} is reserved")
            if kind not in _DTYPES:
                raise ValueError(f"convergence column {name!r}: unknown kind {kind!r}")
        self.columns = dict(columns)
        self.index = index
        self._rows: list[list[object]] = []
        self._datasets: list[h5py.Dataset] = []
        self._window: h5py.Dataset | None = None
        self.written = 0

    def create(self, conv: h5py.Group) -> None:
        """Create the index scale and one dataset per column in ``conv``."""
        window = conv.create_dataset(self.index, shape=(0,), maxshape=(None,),
                                     chunks=(CONVERGENCE_CHUNK,), dtype=np.int64)
        window.attrs["long_name"] = f"{self.index} index"
        window.make_scale(self.index)
        conv.attrs[COLUMNS_ATTR] = np.array(list(self.columns), dtype=h5py.string_dtype())
        for name, kind in self.columns.items():
            ds = conv.create_dataset(name, shape=(0,), maxshape=(None,),
                                     chunks=(CONVERGENCE_CHUNK,), dtype=_DTYPES[kind])
            if kind == "bool":
                ds.attrs[BOOL_ATTR] = "bool"
            if kind == "str":
                ds.attrs["_Encoding"] = "utf-8"  # CF: xarray decodes the bytes to str
            units = units_of(name)
            if units is not None and kind in ("int", "float"):
                ds.attrs["units"] = units
            ds.dims[0].attach_scale(window)
            ds.dims[0].label = self.index
            self._datasets.append(ds)
        self._window = window

    def append(self, row: Mapping[str, object]) -> None:
        """Buffer one row; its (flattened) keys must be exactly the declared columns.

        Raises:
            ValueError: On a missing or unknown column or a value that does not convert.

        """
        self._rows.append(self.cells(row))

    def cells(self, row: Mapping[str, object]) -> list[object]:
        """One row's stored cells, checked (see :meth:`append`); nothing is buffered."""
        flat = flatten(row)
        if flat.keys() != self.columns.keys():
            missing = sorted(self.columns.keys() - flat.keys())
            unknown = sorted(flat.keys() - self.columns.keys())
            raise ValueError(f"{self.index} row: missing columns {missing}, "
                             f"unknown {unknown}")
        return [convert(n, k, flat[n]) for n, k in self.columns.items()]

    def extend(self, rows: list[list[object]]) -> None:
        """Buffer rows already checked by :meth:`cells`."""
        self._rows.extend(rows)

    @property
    def buffered(self) -> int:
        """Rows appended since the last flush."""
        return len(self._rows)

    def discard(self) -> None:
        """Drop the buffered rows."""
        self._rows.clear()

    def flush(self) -> None:
        """Write the buffered rows (the index scale last)."""
        if not self._rows:
            return
        old, new = self.written, self.written + len(self._rows)
        for j, (ds, kind) in enumerate(zip(self._datasets, self.columns.values(),
                                           strict=True)):
            cells = [r[j] for r in self._rows]
            if kind == "str":  # the high-level write knows the UTF-8 file type
                ds.resize((new,))
                ds[old:new] = np.array(cells, dtype=ds.dtype)
            else:
                append_rows(ds, old, np.asarray(cells, dtype=_DTYPES[kind]))
        assert self._window is not None
        append_rows(self._window, old, np.arange(old, new, dtype=np.int64))
        self.written = new
        self._rows.clear()
