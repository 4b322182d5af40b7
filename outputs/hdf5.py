"""HDF5 trajectory writer: one file per co-simulation run, appended window by window.

The layout is documented in ``docs/hdf5_layout.md``; the reader is :mod:`gridcosim.outputs.reader`.

Crash safety. The file is written in HDF5's single-writer/multiple-reader (SWMR) mode
(``libver="latest"``): every dataset is created up front, the writer only appends, and
HDF5 orders its writes so that the file on disk is a consistent state at every moment,
even while a flush is running. A run killed at any point leaves a file that opens with
``h5py.File(path, "r", swmr=True)`` (what :func:`~gridcosim.outputs.reader.read` does)
and holds exactly the flushed windows. Appended slots, convergence rows (with their
iteration rows) and checkpoints are held in memory until :meth:`TrajectoryWriter.flush`,
which a Ctrl-C or SIGTERM does not cut (:mod:`.deferred_signals`).

A write error (disk full, file size limit) during a flush raises
:class:`~gridcosim.scenarios.errors.OutputError`; the file keeps the windows of the last
successful flush. HDF5 would retry the failed writes at every later call (and crash the
process at exit), so the writer points the file's descriptor at ``/dev/null`` first: the
file on disk is left exactly as the last good flush and the error made it.

At :meth:`TrajectoryWriter.close` the SWMR file is closed and re-opened once to write the
run's final root attributes (``status``, ``complete``, ...); ``status`` is ``running``
until then, so a file whose writer died says so.
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

from gridcosim.outputs.convergence import ColumnKind, ConvergenceTable
from gridcosim.outputs.deferred_signals import signals_deferred
from gridcosim.outputs.file_layout import (
    CheckpointDatasets,
    checked_initial,
    checked_kind_attrs,
    close_detached,
    create_kind,
    time_scale,
    write_root_attrs,
)
from gridcosim.outputs.layout import (
    CONVERGENCE,
    ITERATIONS,
    ROW,
    WINDOW,
    AttrValue,
    append_rows,
    checked_attrs,
    declared_kinds,
    is_write_failure,
    short_error,
    time_attributes,
)
from gridcosim.scenarios.errors import OutputError


class TrajectoryWriter:
    """Append-only writer of one run's trajectory (see ``docs/hdf5_layout.md``).

    Usage::

        with TrajectoryWriter(path, scenario=..., scenario_json=..., seed=1,
                              entities={"storage": ["ess1", "ess2"]},
                              variables={"storage": ["p_kw", "e_kwh"]},
                              convergence={"start_slot": "int", "status": "str"},
                              time_units="hours since 2016-01-04T00:00:00",
                              version="0.1.0") as w:
            for window in run:
                w.append_slots(times_h, {"storage": {"p_kw": p, "e_kwh": e}})
                w.append_convergence({"start_slot": 0, "status": "optimal"})
                w.flush()          # after each committed window
        # leaving the block normally closes with status "finished", on an exception
        # with status "failed"; call close(status=...) for anything else

    Args:
        path: The file to create (an existing file is replaced: callers decide).
        scenario: Scenario name (root attribute ``scenario``).
        scenario_json: The full validated scenario config as a JSON string.
        seed: Random seed of the run, or None (stored as an empty attribute).
        entities: Entity ids per kind (``"storage" -> ["ess1", ...]``); defines the groups.
        variables: Variable names per kind; every kind must also be in ``entities``.
        time_units: ``"hours since <ISO timestamp>"`` or ``"hours"``; times are float hours.
            A reference that is not a date (``"hours since start of run"``) is stored as
            ``units = "hours"`` plus a ``time_origin`` attribute, so CF tools still decode.
        version: gridcosim version string.
        convergence: Convergence columns (name -> ``int``/``float``/``str``/``bool``), in
            order; every row must hold exactly these (nested mappings flattened one level).
        buffer_slots: Initial capacity of the in-memory buffer in slots. It grows when more
            slots are appended between two flushes; the file is only written by ``flush``.
        run_attrs: Further root attributes describing the run (numbers, strings or
            booleans; e.g. the horizon, the commit length and the noise level).
        initial: Per kind and variable, the values before the first slot
            (``<kind>/initial/<var>``).
        kind_attrs: Per kind, attributes of its group (``entity``, ``cost_included_in``).
        iterations: Columns of the ``/iterations`` table (one row per master solve; its
            ``window`` column, the convergence row, is added); ``None``: no such table.
        time_zone: IANA zone of the times (``time_zone`` attribute of the time scales).

    """

    def __init__(self, path: str | Path, *, scenario: str, scenario_json: str, seed: int | None,
                 entities: Mapping[str, Sequence[str]], variables: Mapping[str, Sequence[str]],
                 time_units: str, version: str,
                 convergence: Mapping[str, ColumnKind] | None = None, buffer_slots: int = 64,
                 run_attrs: Mapping[str, AttrValue] | None = None,
                 initial: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
                 kind_attrs: Mapping[str, Mapping[str, AttrValue]] | None = None,
                 iterations: Mapping[str, ColumnKind] | None = None,
                 time_zone: str | None = None) -> None:
        self._time_units, self._time_attrs = time_attributes(time_units, time_zone)
        if buffer_slots < 1:
            raise ValueError("buffer_slots must be at least 1")
        json.loads(scenario_json)  # fail early on a malformed config string
        self._kinds = declared_kinds(entities, variables)
        self.path = Path(path)
        self._cap = buffer_slots
        self._len = 0  # buffered slots
        self._written = 0  # slots in the file
        self._time_buf = np.empty(buffer_slots)
        self._last_time = -math.inf
        self._convergence = ConvergenceTable(convergence or {})
        self._iterations = ConvergenceTable({WINDOW: "int", **(iterations or {})}, index=ROW)
        self._has_iterations = iterations is not None
        self._checkpoints: list[tuple[int, str]] = []
        self._checkpoints_written = 0
        self._checkpoint_bytes = 0
        self._closed = False
        self._broken: OutputError | None = None
        self._visible = (0, 0, 0)  # what /checkpoint/committed says (last complete flush)
        self._run_attrs = checked_attrs(run_attrs or {})
        self._initial = checked_initial(initial or {}, self._kinds)
        self._kind_attrs = checked_kind_attrs(kind_attrs or {}, self._kinds)
        try:
            self._file = h5py.File(self.path, "w", libver="latest")
        except OSError as err:
            raise OutputError(f"{self.path}: cannot create the trajectory file: {err}") from None
        try:
            self._create_layout(scenario, scenario_json, seed, version)
            self._file.swmr_mode = True
        except BaseException:
            self._file.close()
            raise

    # ---- layout -------------------------------------------------------------------------

    def _create_layout(self, scenario: str, scenario_json: str, seed: int | None,
                       version: str) -> None:
        f = self._file
        write_root_attrs(f, scenario=scenario, scenario_json=scenario_json, seed=seed,
                         version=version, kinds=list(self._kinds), run_attrs=self._run_attrs)
        self._root_time = time_scale(f, self._time_units, self._time_attrs)
        for kind in self._kinds.values():
            create_kind(f, kind, self._time_units, self._time_attrs,
                        self._initial.get(kind.name, {}))
            f[kind.name].attrs.update(self._kind_attrs.get(kind.name, {}))
            kind.buffers = [np.empty((self._cap, kind.n)) for _ in kind.variables]
        self._convergence.create(f.create_group(CONVERGENCE))
        if self._has_iterations:
            self._iterations.create(f.create_group(ITERATIONS))
        self._checkpoint = CheckpointDatasets.create(f)
        f.flush()

    # ---- appending ----------------------------------------------------------------------

    def _grow(self, need: int) -> None:
        cap = max(2 * self._cap, need)
        time_buf = np.empty(cap)
        time_buf[: self._len] = self._time_buf[: self._len]
        self._time_buf = time_buf
        for kind in self._kinds.values():
            kind.grow(cap, self._len)
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
        staged = [(kind, arrays) for kind in self._kinds.values()
                  if (arrays := kind.stage(values.get(kind.name), n)) is not None]

        start, stop = self._len, self._len + n
        if stop > self._cap:
            self._grow(stop)
        self._time_buf[start:stop] = t
        for kind, arrays in staged:
            for buf, arr in zip(kind.buffers, arrays, strict=True):
                buf[start:stop] = arr
        self._len = stop
        self._last_time = float(t[-1])

    def append_convergence(self, row: Mapping[str, object],
                           iterations: Sequence[Mapping[str, object]] = ()) -> None:
        """Buffer one convergence row (one per window) with exactly the declared columns.

        Values are int, float (None -> NaN), str or bool; one level of nested mappings is
        flattened (``{"cuts": {"ac": 2}}`` becomes column ``cuts_ac``). ``iterations``: the
        window's ``/iterations`` rows (their ``window`` column is this row's index).

        Raises:
            ValueError: If the keys differ from the declared columns, a value does not
                convert, or there is no iterations table (nothing is buffered then).

        """
        self._check_open()
        if iterations and not self._has_iterations:
            raise ValueError("iteration rows given, but the file has no iterations table")
        window = self._convergence.written + self._convergence.buffered
        cells = [self._iterations.cells({WINDOW: window, **r}) for r in iterations]
        self._convergence.append(row)
        self._iterations.extend(cells)

    def append_checkpoint(self, state_json: str, slots: int | None = None) -> None:
        """Buffer the run state after ``slots`` slots (default: all appended so far).

        It is written with the next flush, so a checkpoint in the file always describes
        slots flushed with it (``checkpoint/time`` holds the slot count, ``--resume``
        continues from the last one).
        """
        self._check_open()
        json.loads(state_json)
        count = self._written + self._len if slots is None else int(slots)
        if not 0 <= count <= self._written + self._len:
            raise ValueError(f"checkpoint after {count} slots, but only "
                             f"{self._written + self._len} were appended")
        self._checkpoints.append((count, state_json))

    def discard(self) -> None:
        """Drop everything appended since the last flush (a window that did not finish)."""
        self._len = 0
        self._last_time = float(self._root_time[self._written - 1]) if self._written else -math.inf
        self._convergence.discard()
        self._iterations.discard()
        self._checkpoints.clear()

    # ---- writing ------------------------------------------------------------------------

    def flush(self) -> None:
        """Write the buffered slots, convergence rows and checkpoints, then flush the file.

        Call after each committed window. The data is flushed first, then the counts in
        ``/committed`` that readers stop at, so a flush cut short is never half visible.

        Raises:
            OutputError: On a write error (disk full, file size limit); the file then
                holds the windows of the last successful flush and the writer is closed.

        """
        self._check_open()
        try:
            with signals_deferred():  # a Ctrl-C lands after the window
                self._write_buffers()
                self._file.flush()  # the data first, then the counts that make it visible
                counts = (self._written, self._convergence.written, self._checkpoints_written)
                self._checkpoint.committed[:] = np.array(counts, dtype=np.int64)
                self._file.flush()
                self._visible = counts
        except (OSError, RuntimeError) as err:
            if not is_write_failure(err):
                raise
            raise self._fail(err) from None

    def _write_buffers(self) -> None:
        n = self._len
        if n:
            old = self._written
            times = self._time_buf[:n]
            for kind in self._kinds.values():
                for ds, buf in zip(kind.datasets, kind.buffers, strict=True):
                    append_rows(ds, old, buf[:n])
                assert kind.time_ds is not None
                append_rows(kind.time_ds, old, times)
            append_rows(self._root_time, old, times)
            self._written = old + n
            self._len = 0
        self._convergence.flush()
        self._iterations.flush()
        if self._checkpoints:
            self._checkpoint_bytes = self._checkpoint.append(
                self._checkpoints_written, self._checkpoint_bytes, self._checkpoints)
            self._checkpoints_written += len(self._checkpoints)
            self._checkpoints.clear()

    def _fail(self, err: BaseException) -> OutputError:
        """Close the file after a write error without letting HDF5 write again."""
        slots, windows, _ = self._visible
        self._broken = OutputError(f"{self.path}: write error ({short_error(err)}); the file "
                                   f"keeps the {windows} window(s), {slots} slot(s) flushed "
                                   f"before it")
        close_detached(self._file)
        self._closed = True
        return self._broken

    def close(self, status: str = "finished", attrs: Mapping[str, AttrValue] | None = None
              ) -> None:
        """Flush, close, and record the run's final status in the root attributes.

        ``complete`` becomes 1 only for status ``finished``. Nothing buffered is lost for
        ``finished``; for another status call :meth:`discard` first to drop a window that
        did not finish.

        Raises:
            OutputError: If the last flush or the status cannot be written (the file then
                keeps every window flushed before).

        """
        if self._closed:
            if self._broken is not None:
                raise self._broken
            return
        self.flush()
        self._file.close()
        self._closed = True
        final = {"status": str(status), "complete": status == "finished",
                 "closed_utc": datetime.now(UTC).isoformat(timespec="seconds"),
                 **checked_attrs(attrs or {}, reserved=frozenset())}
        try:
            with h5py.File(self.path, "r+") as f:
                for key, value in final.items():
                    f.attrs[key] = np.int8(value) if isinstance(value, bool) else value
        except (OSError, RuntimeError) as err:
            raise OutputError(f"{self.path}: cannot record the run status "
                              f"{status!r} ({short_error(err)})") from None

    def _check_open(self) -> None:
        if self._broken is not None:
            raise self._broken
        if self._closed:
            raise ValueError(f"trajectory writer for {self.path} is closed")

    @property
    def slots_written(self) -> int:
        """Slots already in the file (excluding buffered ones)."""
        return self._written

    @property
    def slots_committed(self) -> int:
        """Slots a reader sees (the last complete flush; see ``/checkpoint/committed``)."""
        return self._visible[0]

    @property
    def slots_buffered(self) -> int:
        """Slots appended since the last flush."""
        return self._len

    def __enter__(self) -> TrajectoryWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None:
            self.close()
            return
        if not self._closed:
            self.discard()
            self.close("failed", {"status_reason": short_error(exc)})


def read(path: str | Path, **kwargs: Any) -> Any:
    """Read a trajectory file; see :func:`gridcosim.outputs.reader.read` (re-exported here)."""
    from gridcosim.outputs.reader import read as _read

    return _read(path, **kwargs)


def summary(path: str | Path) -> str:
    """Text summary of a trajectory file; see :func:`gridcosim.outputs.reader.summary`."""
    from gridcosim.outputs.reader import summary as _summary

    return _summary(path)

