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
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from gridcosim.outputs.convergence import ConvergenceTable
from gridcosim.outputs.layout import (
    COLUMNS_ATTR,
    CONVERGENCE,
    CONVERGENCE_CHUNK,
    IDS,
    KINDS_ATTR,
    LAYOUT,
    LAYOUT_VERSION,
    ORIGIN_ATTR,
    RESERVED_GROUPS,
    RESERVED_VARIABLES,
    TIME,
    VARIABLES_ATTR,
    WINDOW,
    append_rows,
    cf_time_units,
    check_name,
    time_chunk,
    units_of,
)

_ROOT_ATTRS = frozenset({"gridcosim_version", "scenario", "scenario_json", "seed",
                         "created_utc", "layout", "layout_version", "complete", KINDS_ATTR})


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
        self._time_units, self._time_origin = cf_time_units(time_units)
        if buffer_slots < 1:
            raise ValueError("buffer_slots must be at least 1")
        json.loads(scenario_json)  # fail early on a malformed config string
        unknown = set(variables) - set(entities)
        if unknown:
            raise ValueError(f"variables given for kinds without entities: {sorted(unknown)}")
        self._kinds: dict[str, _Kind] = {}
        for kind, ids in entities.items():
            check_name(kind, "entity kind")
            if kind in RESERVED_GROUPS:
                raise ValueError(f"entity kind {kind!r} is reserved")
            ids = [str(i) for i in ids]
            if len(set(ids)) != len(ids):
                raise ValueError(f"duplicate ids in kind {kind!r}")
            names = list(variables.get(kind, ()))
            for var in names:
                check_name(var, f"variable of {kind!r}")
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
        self._convergence = ConvergenceTable()
        self._closed = False

        self._run_attrs = dict(run_attrs or {})
        for key, value in self._run_attrs.items():
            check_name(key, "run attribute")
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
                                     chunks=(CONVERGENCE_CHUNK,), dtype=np.int64)
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
        self._convergence.append(row)

    # ---- writing ------------------------------------------------------------------------

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
                    append_rows(ds, old, buf[:n])
                assert kind.time_ds is not None
                append_rows(kind.time_ds, old, times)
            append_rows(self._root_time, old, times)
            self._written = new
            self._len = 0
        self._convergence.flush(self._file[CONVERGENCE])
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
    from gridcosim.outputs.reader import read as _read

    return _read(path, **kwargs)


def summary(path: str | Path) -> str:
    """Text summary of a trajectory file; see :func:`outputs.reader.summary`."""
    from gridcosim.outputs.reader import summary as _summary

    return _summary(path)
