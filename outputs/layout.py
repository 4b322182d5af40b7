"""Names, units and low-level helpers of the HDF5 trajectory layout (``docs/hdf5_layout.md``).

Shared by the writer (:mod:`outputs.hdf5`, :mod:`outputs.convergence`) and the reader
(:mod:`outputs.reader`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np

LAYOUT = "gridcosim-trajectory"
LAYOUT_VERSION = 2
TIME = "time"
IDS = "ids"
CONVERGENCE = "convergence"
#: The per-iteration table (one row per master solve of a decomposition window).
ITERATIONS = "iterations"
#: Its row index (dimension scale); its ``window`` column is the convergence row.
ROW = "row"
CHECKPOINT = "checkpoint"
STATE = "state"
STATE_END = "state_end"
COMMITTED = "committed"
INITIAL = "initial"
WINDOW = "window"
COLUMNS_ATTR = "columns"
KINDS_ATTR = "kinds"
VARIABLES_ATTR = "variables"
BOOL_ATTR = "gridcosim_dtype"
ORIGIN_ATTR = "time_origin"
#: Attribute of the time scales: IANA zone of the run's timestamps (with dated units).
TIME_ZONE_ATTR = "time_zone"
#: Group attribute: the kind whose ``cost_usd`` already includes this kind's.
COST_IN_ATTR = "cost_included_in"
RESERVED_GROUPS = frozenset({TIME, CONVERGENCE, ITERATIONS, CHECKPOINT})
ROOT_ATTRS = frozenset({"gridcosim_version", "scenario", "scenario_json", "seed", "created_utc",
                        "layout", "layout_version", "complete", "status", KINDS_ATTR})
AttrValue = int | float | str | bool
RESERVED_VARIABLES = frozenset({TIME, IDS})

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TIME_UNITS_RE = re.compile(r"^hours(?: since (?P<origin>\S.*))?$")

# Name suffix -> CF-style ``units`` attribute written on each variable (first match wins).
UNIT_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("_usd_per_kwh", "USD/kWh"),
    ("_usd_per_kw", "USD/kW"),
    ("_usd_per_kvarh", "USD/kvarh"),
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

CHUNK_BYTES = 32 * 1024
CONVERGENCE_CHUNK = 256


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
    target = CHUNK_BYTES // (8 * max(n_entities, 1))
    return 1 << min(10, max(4, target.bit_length() - 1))


def append_rows(ds: h5py.Dataset, old: int, data: np.ndarray) -> None:
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


def cf_time_units(time_units: str) -> tuple[str, str | None]:
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


def time_attributes(time_units: str, time_zone: str | None = None
                    ) -> tuple[str, dict[str, str]]:
    """CF ``units`` of the time scales and their other attributes.

    ``time_origin`` for a reference that is not a date (:func:`cf_time_units`),
    ``time_zone`` for a zone name (:func:`checked_time_zone`).

    Raises:
        ValueError: If the units are not hours, or the zone is not usable with them.

    """
    units, origin = cf_time_units(time_units)
    zone = checked_time_zone(time_zone, units)
    attrs = {ORIGIN_ATTR: origin} if origin is not None else {}
    return units, attrs | ({TIME_ZONE_ATTR: zone} if zone is not None else {})


def checked_time_zone(time_zone: str | None, units: str) -> str | None:
    """An IANA zone name for the time scales, only with dated ``hours since <ISO>`` units.

    Raises:
        ValueError: If the name is not an IANA zone, or the units have no date.

    """
    if time_zone is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"time_zone must be an IANA zone name, got {time_zone!r}") from None
    if not units.startswith("hours since "):
        raise ValueError(f"time_zone needs units 'hours since <ISO time>', got {units!r}")
    return time_zone


def check_name(name: str, what: str) -> None:
    """Raise ValueError unless ``name`` is letters, digits and underscores."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError(f"{what} {name!r} is not a valid name (letters, digits, underscore)")


class EntityKind:
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

    def grow(self, cap: int, length: int) -> None:
        """Enlarge the buffers to ``cap`` rows, keeping the first ``length``."""
        for i, buf in enumerate(self.buffers):
            new = np.empty((cap, self.n))
            new[:length] = buf[:length]
            self.buffers[i] = new

    def stage(self, given: Mapping[str, object] | None, n: int) -> list[np.ndarray] | None:
        """The kind's ``n`` new rows as arrays, one per variable (``None``: nothing to add).

        Raises:
            ValueError: On a missing, unknown or misshapen variable.

        """
        if not self.variables:
            return None
        if given is None:
            if self.n == 0:
                return None
            raise ValueError(f"missing values for kind {self.name!r}")
        unknown = sorted(set(given) - set(self.variables))
        if unknown:
            raise ValueError(f"unknown variables for kind {self.name!r}: {unknown}")
        return [self._rows(var, given, n) for var in self.variables]

    def _rows(self, var: str, given: Mapping[str, object], n: int) -> np.ndarray:
        try:
            arr = np.asarray(given[var], dtype=np.float64)
        except KeyError:
            raise ValueError(f"missing variable {self.name}/{var}") from None
        if arr.shape == (n, self.n):
            return arr
        if n == 1 and arr.shape == (self.n,):
            return arr.reshape(1, self.n)
        raise ValueError(f"{self.name}/{var}: shape {arr.shape}, expected {(n, self.n)}")


def declared_kinds(entities: Mapping[str, Sequence[str]],
                    variables: Mapping[str, Sequence[str]]) -> dict[str, EntityKind]:
    """Check the kinds, ids and variable names; return the kinds in order."""
    unknown = set(variables) - set(entities)
    if unknown:
        raise ValueError(f"variables given for kinds without entities: {sorted(unknown)}")
    kinds: dict[str, EntityKind] = {}
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
        kinds[kind] = EntityKind(kind, ids, names)
    return kinds


def checked_attrs(attrs: Mapping[str, AttrValue],
                  reserved: frozenset[str] = ROOT_ATTRS) -> dict[str, AttrValue]:
    """Check run attribute names and values (numbers, strings, booleans; not reserved)."""
    for key, value in attrs.items():
        check_name(key, "run attribute")
        if key in reserved:
            raise ValueError(f"run attribute {key!r} is reserved")
        if not isinstance(value, int | float | str | bool):
            raise ValueError(f"run attribute {key!r} must be a number, string or bool")
    # plain types: a str subclass (an enum) has no HDF5 conversion
    return {k: str(v) if isinstance(v, str) else v for k, v in attrs.items()}


def short_error(err: BaseException) -> str:
    """The first line of an error message, at most 160 characters."""
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def open_trajectory(path: str | Path) -> h5py.File:
    """Open a trajectory read-only, also while (or after) a writer has it open.

    Files are written in SWMR mode: a run that is still writing, or whose writer was
    killed, opens with ``swmr=True`` (a plain open refuses it: "file is already open for
    write"); a closed file or one of layout version 1 opens the same way.

    Raises:
        OSError: If the file is missing or not an HDF5 file.

    """
    return h5py.File(path, "r", swmr=True)


def committed_counts(f: h5py.File) -> tuple[int, int, int]:
    """Slots, convergence rows and checkpoints of the file's last complete flush.

    A flush writes the data first and then, once that is on disk, these three counts
    (``/checkpoint/committed``): a reader that stops at them never sees the half-written
    rows of a flush that failed (write error) or was cut short (``kill -9``). Files
    without them (layout version 1) count their datasets.
    """
    if CHECKPOINT in f and COMMITTED in f[CHECKPOINT]:
        slots, windows, checkpoints = (int(v) for v in f[CHECKPOINT][COMMITTED][()])
        return slots, windows, checkpoints
    windows = f[CONVERGENCE][WINDOW].shape[0] if WINDOW in f.get(CONVERGENCE, {}) else 0
    return int(f[TIME].shape[0]), int(windows), 0


def attr_value(value: Any) -> Any:
    """An HDF5 attribute (or cell) as a plain Python value (``h5py.Empty`` -> ``None``)."""
    if isinstance(value, h5py.Empty):
        return None
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return [attr_value(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def checkpoint_states(f: h5py.File, count: int) -> list[str]:
    """The first ``count`` checkpoint states of a file (JSON texts)."""
    if not count:
        return []
    ends = f[CHECKPOINT][STATE_END][:count]
    data = f[CHECKPOINT][STATE][: int(ends[-1])].tobytes()
    starts = [0, *ends[:-1].tolist()]
    return [data[a:b].decode("utf-8") for a, b in zip(starts, ends.tolist(), strict=True)]


def is_write_failure(err: BaseException) -> bool:
    """Whether an h5py error is the file system refusing a write (full, too large, I/O).

    Anything else (a wrong type, a bug) is not an output error and is raised as it is.
    """
    text = str(err).lower()
    return any(mark in text for mark in ("write failed", "file too large", "no space",
                                         "errno", "i/o error", "disk quota"))
