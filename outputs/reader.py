"""Read HDF5 trajectories written by :class:`outputs.hdf5.TrajectoryWriter` into pandas.

Files are opened read-only in SWMR mode (:func:`~gridcosim.outputs.layout.open_trajectory`),
so a run's file can be read while the run is still writing it, or after its writer was
killed: the reader then sees the state at the last flush.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from gridcosim.outputs.layout import (
    BOOL_ATTR,
    COLUMNS_ATTR,
    CONVERGENCE,
    IDS,
    INITIAL,
    ITERATIONS,
    KINDS_ATTR,
    ROW,
    TIME,
    TIME_ZONE_ATTR,
    VARIABLES_ATTR,
    WINDOW,
    attr_value,
    committed_counts,
    open_trajectory,
)

_SINCE_RE = re.compile(r"^hours since (?P<ref>\S.*)$")

# Kinds whose cost_usd is already part of another kind's cost_usd, for files written before
# the groups carried it (attribute cost_included_in): a microgrid's cost includes its
# generators', renewables' and storage units'.
COST_PARENT = {"generator": "microgrid", "renewable": "microgrid", "storage": "microgrid"}


@dataclass(frozen=True)
class Trajectory:
    """A run's trajectory as pandas objects.

    Attributes:
        attrs: Root attributes (``gridcosim_version``, ``scenario``, ``scenario_json``,
            ``seed`` (None if unset), ``created_utc``, ``complete``, ...).
        time: Slot start times: a DatetimeIndex named ``time`` when the units carry a
            reference date (and ``read(..., timestamps=True)``), else float hours. With a
            ``time_zone`` attribute the index is time-zone aware, in that zone; with a
            reference carrying a UTC offset but no zone, at that fixed offset.
        groups: ``kind -> variable -> DataFrame`` (index ``time``, one column per entity id).
        convergence: One row per window, index ``window``, columns as written.
        time_h: Slot start times in float hours, as stored.
        time_units: The ``units`` attribute of ``/time``.
        entity_ids: ``kind -> ids`` (also for kinds without variables).
        initial: ``kind -> variable -> Series`` (by entity id): the values before the
            first slot, for the variables that record them (stored energy, commitment).
        iterations: One row per master solve of the committed windows, index ``row``,
            columns ``window`` (the convergence row), ``start_slot``, ``iteration``,
            bounds, gap, cuts and times (empty: a file without the table, a market run).
        units: ``kind -> variable -> units`` (the datasets' ``units`` attributes).
        time_zone: The ``time_zone`` attribute of ``/time`` (IANA name), or None.

    """

    attrs: dict[str, Any]
    time: pd.Index
    groups: dict[str, dict[str, pd.DataFrame]]
    convergence: pd.DataFrame
    time_h: np.ndarray
    time_units: str
    entity_ids: dict[str, list[str]]
    initial: dict[str, dict[str, pd.Series]] = field(default_factory=dict)
    iterations: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(index=pd.RangeIndex(0, name=ROW)))
    units: dict[str, dict[str, str]] = field(default_factory=dict)
    time_zone: str | None = None

    def frame(self, kind: str, var: str) -> pd.DataFrame:
        """The ``(time, entity)`` DataFrame of one variable of one kind.

        Raises:
            KeyError: If the kind or variable is not in the file (message lists what is).

        """
        try:
            variables = self.groups[kind]
        except KeyError:
            raise KeyError(f"no kind {kind!r}; kinds: {sorted(self.groups)}") from None
        try:
            return variables[var]
        except KeyError:
            raise KeyError(f"no variable {kind}/{var}; variables: {list(variables)}") from None

    @property
    def slots(self) -> int:
        """Number of slots in the file."""
        return len(self.time_h)


def _time_index(time_h: np.ndarray, units: str, timestamps: bool,
                time_zone: str | None = None) -> pd.Index:
    """Slot starts: timestamps for dated units (in ``time_zone`` if given), else hours.

    A reference with a UTC offset fixes the instants; the zone then only relabels them (a
    daylight-saving switch inside the run shows as a change of offset). A naive reference
    is a local time in the zone.
    """
    match = _SINCE_RE.match(units)
    if timestamps and match:
        try:
            ref = pd.Timestamp(match["ref"])
        except ValueError:
            ref = None
        if ref is not None:
            ms = np.rint(time_h * 3.6e6).astype(np.int64)
            index = pd.DatetimeIndex(ref + pd.to_timedelta(ms, unit="ms"), name=TIME)
            return _in_zone(index, time_zone)
    return pd.Index(time_h, dtype=np.float64, name=TIME)


def _in_zone(index: pd.DatetimeIndex, time_zone: str | None) -> pd.DatetimeIndex:
    if time_zone is None:
        return index
    try:
        if index.tz is None:
            return index.tz_localize(time_zone, ambiguous="NaT", nonexistent="NaT")
        return index.tz_convert(time_zone)
    except (ValueError, KeyError):  # an unknown zone name: keep the stored offsets
        return index


def _strings(ds: h5py.Dataset, n: int | None = None) -> list[str]:
    data = ds.asstr()[: n if n is not None else ds.shape[0]]
    return [str(s) for s in data]


def _variables(group: h5py.Group) -> list[str]:
    if VARIABLES_ATTR in group.attrs:
        return [str(v) for v in _as_list(group.attrs[VARIABLES_ATTR])]
    return sorted(k for k, v in group.items()
                  if isinstance(v, h5py.Dataset) and k not in (TIME, IDS) and v.ndim == 2)


def _as_list(value: Any) -> list[Any]:
    value = attr_value(value)
    return value if isinstance(value, list) else [value]


def _kinds(f: h5py.File) -> list[str]:
    """Entity kinds in writer order (root attribute ``kinds``), else groups holding ``ids``."""
    found = [k for k, v in f.items() if isinstance(v, h5py.Group) and IDS in v]
    if KINDS_ATTR in f.attrs:
        order = [str(k) for k in _as_list(f.attrs[KINDS_ATTR])]
        return [k for k in order if k in found] + [k for k in found if k not in order]
    return found


def _convergence(f: h5py.File) -> pd.DataFrame:
    """The convergence table up to the last complete flush."""
    return _table(f, CONVERGENCE, WINDOW, committed_counts(f)[1])


def _iterations(f: h5py.File) -> pd.DataFrame:
    """The iteration rows of the committed windows (those below the committed count).

    A flush writes a window's iteration rows with its convergence row, before the counts
    in ``/checkpoint/committed``: rows of a window beyond them are not visible yet.
    """
    if ITERATIONS not in f or WINDOW not in f[ITERATIONS]:
        return _table(f, ITERATIONS, ROW, 0)
    group = f[ITERATIONS]
    rows = min(ds.shape[0] for ds in group.values() if isinstance(ds, h5py.Dataset))
    windows = np.asarray(group[WINDOW][:rows])
    visible = int(np.searchsorted(windows, committed_counts(f)[1], side="left"))
    return _table(f, ITERATIONS, ROW, visible)


def _table(f: h5py.File, name: str, index: str, n: int) -> pd.DataFrame:
    """The first ``n`` rows of the table ``name`` (its declared columns), index ``index``."""
    if name not in f:
        return pd.DataFrame(index=pd.RangeIndex(0, name=index))
    conv = f[name]
    columns = [str(c) for c in _as_list(conv.attrs.get(COLUMNS_ATTR, []))]
    data: dict[str, Any] = {}
    for name in columns:
        if name not in conv:
            continue
        ds = conv[name]
        if h5py.check_string_dtype(ds.dtype) is not None:
            data[name] = pd.Series(_strings(ds, n), dtype=object)
        else:
            values = ds[:n]
            if ds.attrs.get(BOOL_ATTR) == "bool":
                values = values.astype(bool)
            data[name] = values
    return pd.DataFrame(data, index=pd.RangeIndex(n, name=index), columns=list(data))


def read(path: str | Path, *, timestamps: bool = True,
         kinds: list[str] | None = None) -> Trajectory:
    """Read a trajectory file into a :class:`Trajectory` of DataFrames.

    Args:
        path: The ``.h5`` file.
        timestamps: Index by timestamps when ``/time`` units are ``hours since <date>``
            (time-zone aware in the file's ``time_zone``, if it has one); False (or units
            without a date) indexes by float hours.
        kinds: Read only these entity kinds (default: all).

    Returns:
        The trajectory up to the file's last flush.

    """
    with open_trajectory(path) as f:
        attrs = {k: attr_value(v) for k, v in f.attrs.items()}
        if "seed" not in attrs:
            attrs["seed"] = None
        time_ds = f[TIME]
        time_h = np.asarray(time_ds[: committed_counts(f)[0]], dtype=np.float64)
        time_units = str(attr_value(time_ds.attrs.get("units", "hours")))
        zone = attr_value(time_ds.attrs.get(TIME_ZONE_ATTR))
        zone = None if zone is None else str(zone)
        index = _time_index(time_h, time_units, timestamps, zone)
        groups: dict[str, dict[str, pd.DataFrame]] = {}
        initial: dict[str, dict[str, pd.Series]] = {}
        ids_by_kind: dict[str, list[str]] = {}
        units: dict[str, dict[str, str]] = {}
        for kind in _kinds(f):
            if kinds is not None and kind not in kinds:
                continue
            group = f[kind]
            columns = pd.Index(_strings(group[IDS]), dtype=object, name=kind)
            ids_by_kind[kind], units[kind] = list(columns), _units(group)
            groups[kind] = _frames(group, index, columns, f"{path}: {kind}")
            if INITIAL in group:
                initial[kind] = {var: pd.Series(ds[()], index=columns, name=var)
                                 for var, ds in group[INITIAL].items()}
        convergence, iterations = _convergence(f), _iterations(f)
    return Trajectory(attrs=attrs, time=index, groups=groups, convergence=convergence,
                      time_h=time_h, time_units=time_units, entity_ids=ids_by_kind,
                      initial=initial, iterations=iterations, units=units, time_zone=zone)


def _frames(group: h5py.Group, index: pd.Index, columns: pd.Index,
            where: str) -> dict[str, pd.DataFrame]:
    """A kind's variables as ``(time, entity)`` DataFrames, cut at the committed slots."""
    n = len(index)
    frames: dict[str, pd.DataFrame] = {}
    for var in _variables(group):
        values = group[var][:n]
        if values.shape[0] != n:
            raise ValueError(f"{where}/{var} has {values.shape[0]} slots, /time has {n}")
        frames[var] = pd.DataFrame(values, index=index, columns=columns, copy=False)
    return frames


def _units(group: h5py.Group) -> dict[str, str]:
    """The ``units`` attribute of each of a kind's variables (where it has one)."""
    return {var: str(attr_value(group[var].attrs["units"])) for var in _variables(group)
            if "units" in group[var].attrs}


def summary(path: str | Path) -> str:
    """Text summary of a trajectory file; see :func:`gridcosim.outputs.overview.summary`."""
    from gridcosim.outputs.overview import summary as _summary

    return _summary(path)


def summary_dict(path: str | Path) -> dict[str, Any]:
    """Summary as a dict; see :func:`gridcosim.outputs.overview.summary_dict`."""
    from gridcosim.outputs.overview import summary_dict as _summary_dict

    return _summary_dict(path)
