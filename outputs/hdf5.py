"""HDF5 trajectory writer: one file per co-simulation run, appended window by window.

The layout is documented in ``docs/hdf5_layout.md``; the reader is :mod:`outputs.reader`.

Crash safety: appended slots and convergence rows are only held in memory until
:meth:`TrajectoryWriter.flush`, which writes them and flushes the HDF5 file. The file is not
touched between flushes, so a run killed at any point outside a flush leaves a readable file
holding exactly the flushed windows. A flush takes a few milliseconds; only a kill inside one
can damage the file.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

LAYOUT = "gridcosim-trajectory"
LAYOUT_VERSION = 1
TIME = "time"
IDS = "ids"
CONVERGENCE = "convergence"
WINDOW = "window"
COLUMNS_ATTR = "columns"
KINDS_ATTR = "kinds"
VARIABLES_ATTR = "variables"
BOOL_ATTR = "gridcosim_dtype"
ORIGIN_ATTR = "time_origin"
RESERVED_GROUPS = frozenset({TIME, CONVERGENCE})
RESERVED_VARIABLES = frozenset({TIME, IDS})

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TIME_UNITS_RE = re.compile(r"^hours(?: since (?P<origin>\S.*))?$")

# Name suffix -> CF-style ``units`` attribute written on each variable (first match wins).
UNIT_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("_usd_per_kwh", "USD/kWh"),
    ("_usd_per_kw", "USD/kW"),
    ("_kwh", "kWh"),
    ("_kvarh", "kvarh"),
    ("_kvar", "kvar"),
    ("_kva", "kVA"),
    ("_kw", "kW"),
    ("_usd", "USD"),
    ("_pu", "1"),
    ("_deg", "degree"),
    ("_pct", "percent"),
    ("_h", "h"),
    ("_s", "s"),
)
_DIMENSIONLESS = frozenset({"on", "soc", "status"})

_CHUNK_BYTES = 32 * 1024
_CONVERGENCE_CHUNK = 256


def units_of(name: str) -> str | None:
    """CF-style units implied by a variable name (``p_kw`` -> ``kW``), or None if unknown."""
    if name in _DIMENSIONLESS:
        return "1"
    for suffix, units in UNIT_SUFFIXES:
        if name.endswith(suffix):
            return units
    return None


def time_chunk(n_entities: int) -> int:
    """Slots per chunk: a power of two in [16, 1024], about 32 KiB of float64 per chunk.

    Small chunks keep a flush cheap: HDF5 writes every touched chunk whole.
    """
    target = _CHUNK_BYTES // (8 * max(n_entities, 1))
    return 1 << min(10, max(4, target.bit_length() - 1))


def _append_rows(ds: h5py.Dataset, old: int, data: np.ndarray) -> None:
    """Grow ``ds`` along axis 0 and write C-contiguous ``data`` at row ``old``.

    Uses the low-level API: ``Dataset.resize`` and slice assignment cost ~10x more in Python.
    """
    dsid = ds.id
    dsid.set_extent((old + data.shape[0],) + data.shape[1:])
    if data.size == 0:
        return
    fspace = dsid.get_space()
    fspace.select_hyperslab((old,) + (0,) * (data.ndim - 1), data.shape)
    dsid.write(h5py.h5s.create_simple(data.shape), fspace, data)


def _cf_time_units(time_units: str) -> tuple[str, str | None]:
    """CF ``units`` for ``time_units`` and, if its reference is not a date, that reference.

    ``"hours since 2016-01-04T00:00:00"`` is kept. ``"hours since start of run"`` is not
    decodable by CF tools (xarray raises), so it is stored as ``"hours"`` with the reference
    text in the ``time_origin`` attribute.

    Raises:
        ValueError: If the units are not hours.

    """
    match = _TIME_UNITS_RE.match(time_units)
    if not match:
        raise ValueError(f"time_units must be 'hours since <ISO time>' or 'hours', "
                         f"got {time_units!r}")
    origin = match["origin"]
    if origin is None:
        return time_units, None
    try:
        datetime.fromisoformat(origin.strip().replace("Z", "+00:00"))
    except ValueError:
        return "hours", origin
    return time_units, None


_ROOT_ATTRS = frozenset({"gridcosim_version", "scenario", "scenario_json", "seed",
                         "created_utc", "layout", "layout_version", "complete", KINDS_ATTR})


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"{what} {name!r} is not a valid name (letters, digits, underscore)")


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


def _flatten(row: Mapping[str, object]) -> dict[str, object]:
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


class _Kind:
    """Buffers and datasets of one entity kind."""

    __slots__ = ("name", "ids", "n", "variables", "buffers", "datasets", "time_ds")

    def __init__(self, name: str, ids: list[str], variables: list[str]) -> None:
        self.name = name
        self.ids = ids
        self.n = len(ids)
        self.variables = variables
        self.buffers: list[np.ndarray] = []
        self.datasets: list[h5py.Dataset] = []
        self.time_ds: h5py.Dataset | None = None


class TrajectoryWriter:
    """Append-only writer of one run's trajectory (see ``docs/hdf5_layout.md``).

    Usage::

        with TrajectoryWriter(path, scenario=..., scenario_json=..., seed=1,
                              entities={"storage": ["ess1", "ess2"]},
                              variables={"storage": ["p_kw", "e_kwh"]},
                              time_units="hours since 2016-01-04T00:00:00",
                              version="0.1.0") as w:
            for window in run:
                w.append_slots(times_h, {"storage": {"p_kw": p, "e_kwh": e}})
                w.append_convergence({"start_slot": 0, "iterations": 7, "status": "optimal"})
                w.flush()          # after each committed window

    Args:
        path: The file to create (overwritten if it exists).
        scenario: Scenario name (root attribute ``scenario``).
        scenario_json: The full validated scenario config as a JSON string.
        seed: Random seed of the run, or None (stored as an empty attribute).
        entities: Entity ids per kind (``"storage" -> ["ess1", ...]``); defines the groups.
        variables: Variable names per kind; every kind must also be in ``entities``.
        time_units: ``"hours since <ISO timestamp>"`` or ``"hours"``; times are float hours.
            A reference that is not a date (``"hours since start of run"``) is stored as
            ``units = "hours"`` plus a ``time_origin`` attribute, so CF tools still decode.
        version: gridcosim version string.
        buffer_slots: Initial capacity of the in-memory buffer in slots. It grows when more
            slots are appended between two flushes; the file is only written by ``flush``.
        run_attrs: Further root attributes describing the run (numbers, strings or
            booleans; e.g. the horizon, the commit length and the noise level).

    """

    def __init__(self, path: str | Path, *, scenario: str, scenario_json: str, seed: int | None,
                 entities: Mapping[str, Sequence[str]], variables: Mapping[str, Sequence[str]],
                 time_units: str, version: str, buffer_slots: int = 64,
                 run_attrs: Mapping[str, int | float | str | bool] | None = None) -> None:
        self._time_units, self._time_origin = _cf_time_units(time_units)
        if buffer_slots < 1:
            raise ValueError("buffer_slots must be at least 1")
        json.loads(scenario_json)  # fail early on a malformed config string
        unknown = set(variables) - set(entities)
        if unknown:
            raise ValueError(f"variables given for kinds without entities: {sorted(unknown)}")
        self._kinds: dict[str, _Kind] = {}
        for kind, ids in entities.items():
            _check_name(kind, "entity kind")
            if kind in RESERVED_GROUPS:
                raise ValueError(f"entity kind {kind!r} is reserved")
            ids = [str(i) for i in ids]
            if len(set(ids)) != len(ids):
                raise ValueError(f"duplicate ids in kind {kind!r}")
            names = list(variables.get(kind, ()))
            for var in names:
                _check_name(var, f"variable of {kind!r}")
                if var in RESERVED_VARIABLES:
                    raise ValueError(f"variable name {var!r} of {kind!r} is reserved")
            if len(set(names)) != len(names):
                raise ValueError(f"duplicate variable names in kind {kind!r}")
            self._kinds[kind] = _Kind(kind, ids, names)

        self.path = Path(path)
        self._cap = buffer_slots
        self._len = 0  # buffered slots
        self._written = 0  # slots in the file
        self._time_buf = np.empty(buffer_slots)
        self._last_time = -math.inf
        self._columns: list[_Column] | None = None
        self._rows: list[list[object]] = []
        self._windows_written = 0
        self._columns_created = False
        self._conv_datasets: dict[str, h5py.Dataset] = {}
        self._closed = False

        self._run_attrs = dict(run_attrs or {})
        for key, value in self._run_attrs.items():
            _check_name(key, "run attribute")
            if key in _ROOT_ATTRS:
                raise ValueError(f"run attribute {key!r} is reserved")
            if not isinstance(value, int | float | str | bool):
                raise ValueError(f"run attribute {key!r} must be a number, string or bool")
        self._file = h5py.File(self.path, "w")
        try:
            self._create_layout(scenario, scenario_json, seed, version)
        except BaseException:
            self._file.close()
            raise

    # ---- layout -------------------------------------------------------------------------

    def _time_scale(self, group: h5py.Group) -> h5py.Dataset:
        ds = group.create_dataset(TIME, shape=(0,), maxshape=(None,), chunks=(1024,),
                                  dtype=np.float64)
        ds.attrs["units"] = self._time_units
        ds.attrs["long_name"] = "slot start time"
        if self._time_origin is not None:
            ds.attrs[ORIGIN_ATTR] = self._time_origin
        ds.make_scale(TIME)
        return ds

    def _create_layout(self, scenario: str, scenario_json: str, seed: int | None,
                       version: str) -> None:
        f = self._file
        f.attrs["gridcosim_version"] = str(version)
        f.attrs["scenario"] = str(scenario)
        f.attrs["scenario_json"] = scenario_json
        f.attrs["seed"] = h5py.Empty(np.int64) if seed is None else np.int64(seed)
        f.attrs["created_utc"] = datetime.now(UTC).isoformat(timespec="seconds")
        f.attrs["layout"] = LAYOUT
        f.attrs["layout_version"] = np.int64(LAYOUT_VERSION)
        f.attrs["complete"] = np.int8(0)
        f.attrs[KINDS_ATTR] = np.array(list(self._kinds), dtype=h5py.string_dtype())
        for key, value in self._run_attrs.items():
            f.attrs[key] = np.int8(value) if isinstance(value, bool) else value
        self._root_time = self._time_scale(f)
        for kind in self._kinds.values():
            group = f.create_group(kind.name)
            group.attrs[VARIABLES_ATTR] = np.array(kind.variables, dtype=h5py.string_dtype())
            kind.time_ds = self._time_scale(group)
            ids = group.create_dataset(IDS, data=np.array(kind.ids, dtype=object),
                                       dtype=h5py.string_dtype())
            ids.attrs["long_name"] = f"{kind.name} ids"
            ids.make_scale(IDS)
            chunks = (time_chunk(kind.n), max(kind.n, 1))
            maxshape = (None, kind.n if kind.n else None)
            for var in kind.variables:
                ds = group.create_dataset(var, shape=(0, kind.n), maxshape=maxshape,
                                          chunks=chunks, dtype=np.float64, fillvalue=np.nan)
                units = units_of(var)
                if units is not None:
                    ds.attrs["units"] = units
                ds.dims[0].attach_scale(kind.time_ds)
                ds.dims[1].attach_scale(ids)
                ds.dims[0].label, ds.dims[1].label = TIME, IDS
                kind.datasets.append(ds)
                kind.buffers.append(np.empty((self._cap, kind.n)))
        conv = f.create_group(CONVERGENCE)
        window = conv.create_dataset(WINDOW, shape=(0,), maxshape=(None,),
                                     chunks=(_CONVERGENCE_CHUNK,), dtype=np.int64)
        window.attrs["long_name"] = "window index"
        window.make_scale(WINDOW)
        conv.attrs[COLUMNS_ATTR] = np.array([], dtype=h5py.string_dtype())
        f.flush()

    # ---- appending ----------------------------------------------------------------------

    def _grow(self, need: int) -> None:
        cap = max(2 * self._cap, need)
        time_buf = np.empty(cap)
        time_buf[: self._len] = self._time_buf[: self._len]
        self._time_buf = time_buf
        for kind in self._kinds.values():
            for i, buf in enumerate(kind.buffers):
                new = np.empty((cap, kind.n))
                new[: self._len] = buf[: self._len]
                kind.buffers[i] = new
        self._cap = cap

    def append_slots(self, time_h: Sequence[float],
                     values: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        """Buffer slots: ``values[kind][var]`` has shape ``(len(time_h), n_entities)``.

        Every variable of every kind declared at construction must be present (NaN marks a
        value that was not computed); a kind without entities may be omitted. Times are
        float hours and must increase. Nothing is buffered if validation fails.

        Raises:
            ValueError: On a missing, unknown or misshapen kind/variable, or bad times.

        """
        self._check_open()
        t = np.asarray(time_h, dtype=np.float64)
        if t.ndim != 1:
            raise ValueError(f"time_h must be 1-D, got shape {t.shape}")
        n = t.shape[0]
        if n == 0:
            return
        if not np.all(np.isfinite(t)):
            raise ValueError("time_h must be finite")
        if t[0] <= self._last_time or (n > 1 and not np.all(np.diff(t) > 0)):
            raise ValueError("time_h must be strictly increasing across appends")
        extra = set(values) - self._kinds.keys()
        if extra:
            raise ValueError(f"unknown entity kinds {sorted(extra)}")
        staged: list[tuple[_Kind, list[np.ndarray]]] = []
        for kind in self._kinds.values():
            if not kind.variables:
                continue
            given = values.get(kind.name)
            if given is None:
                if kind.n == 0:
                    continue
                raise ValueError(f"missing values for kind {kind.name!r}")
            arrays = []
            for var in kind.variables:
                try:
                    raw = given[var]
                except KeyError:
                    raise ValueError(f"missing variable {kind.name}/{var}") from None
                arr = np.asarray(raw, dtype=np.float64)
                if arr.shape != (n, kind.n):
                    if n == 1 and arr.shape == (kind.n,):
                        arr = arr.reshape(1, kind.n)
                    else:
                        raise ValueError(f"{kind.name}/{var}: shape {arr.shape}, "
                                         f"expected {(n, kind.n)}")
                arrays.append(arr)
            if len(given) != len(kind.variables):
                unknown = sorted(set(given) - set(kind.variables))
                raise ValueError(f"unknown variables for kind {kind.name!r}: {unknown}")
            staged.append((kind, arrays))

        start, stop = self._len, self._len + n
        if stop > self._cap:
            self._grow(stop)
        self._time_buf[start:stop] = t
        for kind, arrays in staged:
            for buf, arr in zip(kind.buffers, arrays, strict=True):
                buf[start:stop] = arr
        self._len = stop
        self._last_time = float(t[-1])

    def append_convergence(self, row: Mapping[str, object]) -> None:
        """Buffer one convergence row (one per window); the first row fixes the columns.

        Values are int, float (None -> NaN), str or bool; one level of nested mappings is
        flattened (``{"cuts": {"ac": 2}}`` becomes column ``cuts_ac``).

        Raises:
            ValueError: If the keys differ from the first row's or a value does not convert.

        """
        self._check_open()
        flat = _flatten(row)
        if self._columns is None:
            for name in flat:
                _check_name(name, "convergence column")
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

    # ---- writing ------------------------------------------------------------------------

    def _create_column(self, conv: h5py.Group, col: _Column,
                       data: np.ndarray | None = None) -> None:
        window = conv[WINDOW]
        ds = conv.create_dataset(col.name, shape=(0,), maxshape=(None,),
                                 chunks=(_CONVERGENCE_CHUNK,), dtype=col.dtype())
        if data is not None:
            _append_rows(ds, 0, data)
        if col.kind == "bool":
            ds.attrs[BOOL_ATTR] = "bool"
        units = units_of(col.name)
        if units is not None and col.kind in ("int", "float"):
            ds.attrs["units"] = units
        ds.dims[0].attach_scale(window)
        ds.dims[0].label = WINDOW

    def _flush_convergence(self) -> None:
        if not self._rows or self._columns is None:
            return
        conv = self._file[CONVERGENCE]
        if not self._columns_created:
            for col in self._columns:
                self._create_column(conv, col)
            conv.attrs[COLUMNS_ATTR] = np.array([c.name for c in self._columns],
                                                dtype=h5py.string_dtype())
            self._columns_created = True
        for col in self._columns:
            if col.promoted:  # int column turned float: rewrite it
                ds = conv[col.name]
                if ds.dtype != np.float64:
                    data = ds[()].astype(np.float64)
                    ds.dims[0].detach_scale(conv[WINDOW])
                    del conv[col.name]
                    self._conv_datasets.pop(col.name, None)
                    self._create_column(conv, col, data)
                col.promoted = False
        old, k = self._windows_written, len(self._rows)
        new = old + k
        for j, col in enumerate(self._columns):
            ds = self._conv_datasets.get(col.name)
            if ds is None:  # looked up once (h5py's group lookup costs ~0.1 ms a call)
                ds = self._conv_datasets[col.name] = conv[col.name]
            cells = [r[j] for r in self._rows]
            if col.kind == "str":
                ds.resize((new,))
                ds[old:new] = np.array(cells, dtype=object)
            else:
                _append_rows(ds, old, np.asarray(cells, dtype=col.dtype()))
        window = self._conv_datasets.get(WINDOW)
        if window is None:
            window = self._conv_datasets[WINDOW] = conv[WINDOW]
        _append_rows(window, old, np.arange(old, new, dtype=np.int64))
        self._windows_written = new
        self._rows.clear()

    def flush(self) -> None:
        """Write the buffered slots and convergence rows and flush the file to disk.

        Call after each committed window. The slot count (``/time``) is written last, and the
        in-memory buffers are only cleared once everything is written.
        """
        self._check_open()
        n = self._len
        if n:
            old, new = self._written, self._written + n
            times = self._time_buf[:n]
            for kind in self._kinds.values():
                for ds, buf in zip(kind.datasets, kind.buffers, strict=True):
                    _append_rows(ds, old, buf[:n])
                assert kind.time_ds is not None
                _append_rows(kind.time_ds, old, times)
            _append_rows(self._root_time, old, times)
            self._written = new
            self._len = 0
        self._flush_convergence()
        self._file.flush()

    def close(self) -> None:
        """Flush, mark the file complete (root attribute ``complete = 1``) and close it."""
        if self._closed:
            return
        try:
            self.flush()
            self._file.attrs["complete"] = np.int8(1)
        finally:
            self._closed = True
            self._file.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"trajectory writer for {self.path} is closed")

    @property
    def slots_written(self) -> int:
        """Slots already in the file (excluding buffered ones)."""
        return self._written

    @property
    def slots_buffered(self) -> int:
        """Slots appended since the last flush."""
        return self._len

    def __enter__(self) -> TrajectoryWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def read(path: str | Path, **kwargs: Any) -> Any:
    """Read a trajectory file; see :func:`outputs.reader.read` (re-exported here)."""
    from outputs.reader import read as _read

    return _read(path, **kwargs)


def summary(path: str | Path) -> str:
    """Text summary of a trajectory file; see :func:`outputs.reader.summary`."""
    from outputs.reader import summary as _summary

    return _summary(path)
