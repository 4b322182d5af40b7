"""Read a scenario's time-series file (CSV or Parquet) and resample it to the run's slots.

The rules (also in ``docs/timeseries.md``):

* **Timestamps.** ISO 8601 text (CSV, Parquet strings) or a Parquet timestamp column.
  Naive timestamps are local times in ``timeseries.time_zone`` (``tz_localize`` with
  ``ambiguous="infer"``: a repeated hour at a daylight-saving fall-back is read in file
  order; a single ambiguous time cannot be placed and is an error; a time that does not
  exist, in a spring-forward gap, is an error). Aware timestamps (with a UTC offset) are
  converted to the zone. A column mixing naive and aware timestamps is an error.
* **Sampling interval.** The difference of the first two timestamps (in absolute time).
  Every later difference must equal it: a duplicate or decreasing timestamp, a gap (a
  multiple of the interval: missing rows) or any other step is an error.
* **Values.** Every row of a mapped column must be a finite number, at least 0 and at
  most the field limits (:data:`~gridcosim.scenarios.fields.MAX_MULTIPLIER`, ...); an
  empty cell or NaN is an error naming the column and the timestamp. Columns no mapping
  names are not read.
* **Slots.** Each sample holds over its interval ``[t, t + interval)`` (a step function).
  A slot's value is the time-weighted mean of that step function over the slot: for slots
  ``m`` times the interval, the mean of the ``m`` samples in the slot; for slots
  ``1/k`` of it, the sample's value in each of its ``k`` slots. Slots are labelled by
  their start (interval beginning) and have a fixed length in absolute time. The slot
  length must be a whole multiple or a whole fraction of the interval; the run's
  ``start`` must be one of the file's timestamps; the run must end at or before the last
  timestamp plus one interval. Forecast slots after the run (a rolling horizon's last
  windows) are taken where the file has them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from gridcosim.scenarios.errors import ScenarioError
from gridcosim.scenarios.fields import MAX_COST_USD_PER_KWH, MAX_MULTIPLIER, MAX_POWER_KW
from gridcosim.scenarios.schema import Timeseries
from gridcosim.scenarios.timeseries_schema import CSV_SUFFIXES, SeriesColumn, SeriesQuantity

try:  # pandas 2 raises pytz's errors for ambiguous / non-existent local times
    from pytz.exceptions import InvalidTimeError as _TzError
except ImportError:  # pragma: no cover - pandas 3 raises ValueError
    _TzError = ValueError  # type: ignore[assignment,misc]

#: Largest value of each quantity.
LIMITS = {SeriesQuantity.MULTIPLIER: MAX_MULTIPLIER, SeriesQuantity.KW: MAX_POWER_KW,
          SeriesQuantity.USD_PER_KWH: MAX_COST_USD_PER_KWH}
_OFFSET = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d*)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$")
_NS_PER_MS = 1_000_000


@dataclass(frozen=True, eq=False)
class FileSeries:
    """A time-series file resampled to a run's slots.

    Attributes:
        start: Start of the run's first slot (time-zone aware, in ``timeseries.time_zone``).
        interval: The file's sampling interval.
        slot: The slot length.
        values: One row per slot (index ``slot`` from 0; the run's slots, then the forecast
            slots after it that the file covers), one float column per mapped column.

    """

    start: pd.Timestamp
    interval: pd.Timedelta
    slot: pd.Timedelta
    values: pd.DataFrame


@dataclass(frozen=True, eq=False)
class _Table:
    """The file's timestamps (aware, in the zone) and its mapped columns, as read."""

    index: pd.DatetimeIndex
    data: pd.DataFrame


def _fail(field: str, message: str) -> ScenarioError:
    return ScenarioError([f"timeseries.{field}: {message}"])


# ------------------------------------------------------------------------ reading
def _read_frame(path: Path, columns: list[str]) -> pd.DataFrame:
    """The named columns of a CSV or Parquet file (missing ones: ScenarioError)."""
    if not path.is_file():
        raise _fail("file", f"no such file (got {str(path)!r})")
    csv = path.suffix.lower() in CSV_SUFFIXES
    try:
        if csv:
            found = list(pd.read_csv(path, nrows=0).columns)
        else:
            import pyarrow.parquet as pq

            found = list(pq.read_schema(path).names)
        _check_present(columns, found, path)
        if csv:
            return pd.read_csv(path, usecols=columns, dtype={columns[0]: str},
                               float_precision="round_trip")  # values exactly as written
        return pd.read_parquet(path, columns=columns)
    except (OSError, ValueError, ImportError) as exc:  # parser, encoding, arrow errors
        raise _fail("file", f"cannot read the file: {exc} (got {str(path)!r})") from None


def _check_present(columns: list[str], found: list[str], path: Path) -> None:
    missing = [c for c in dict.fromkeys(columns) if c not in found]
    if not missing:
        return
    where = "time_column" if missing[0] == columns[0] else "columns"
    raise _fail(where, f"no column {missing[0]!r} in {path.name}; it has "
                       f"{', '.join(map(repr, found[:20]))} (got {missing[0]!r})")


def _aware_in(raw: pd.Series, zone: str, column: str) -> pd.DatetimeIndex:
    """The timestamp column as aware timestamps in ``zone`` (naive ones localised)."""
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        return pd.DatetimeIndex(raw).tz_convert(zone)
    if pd.api.types.is_datetime64_dtype(raw.dtype):
        return _localised(pd.DatetimeIndex(raw), zone, column)
    if raw.isna().any():
        row = int(np.flatnonzero(raw.isna().to_numpy())[0])
        raise _fail("time_column", f"column {column!r} has no timestamp in data row {row + 1}"
                                   f" (got {raw.iloc[row]!r})")
    text = raw.astype(str).str.strip()
    aware = text.str.contains(_OFFSET).to_numpy()
    if aware.any() and not aware.all():
        row = int(np.flatnonzero(aware != aware[0])[0])
        raise _fail("time_column", f"column {column!r} mixes timestamps with and without a"
                                   f" UTC offset; data row {row + 1} differs from row 1"
                                   f" (got {text.iloc[row]!r})")
    try:
        if aware.all():
            return pd.DatetimeIndex(pd.to_datetime(text, format="ISO8601", utc=True)
                                    ).tz_convert(zone)
        return _localised(pd.DatetimeIndex(pd.to_datetime(text, format="ISO8601")), zone,
                          column)
    except (ValueError, OverflowError) as exc:
        raise _fail("time_column", f"column {column!r} holds a value that is not an ISO 8601"
                                   f" timestamp: {exc} (got {column!r})") from None


def _localised(naive: pd.DatetimeIndex, zone: str, column: str) -> pd.DatetimeIndex:
    """Naive local times placed in ``zone``; DST problems named."""
    if naive.hasnans:
        raise _fail("time_column", f"column {column!r} has a missing timestamp (got NaT)")
    steps = np.diff(naive.asi8)
    if (steps < 0).any():
        row = int(np.flatnonzero(steps < 0)[0]) + 1
        raise _fail("time_column", f"timestamps of column {column!r} must increase; data row"
                                   f" {row + 1} goes back in time (got {naive[row]})")
    try:
        return naive.tz_localize(zone, ambiguous="infer", nonexistent="raise")
    except (ValueError, _TzError) as exc:
        raise _fail("time_zone", f"naive timestamps of column {column!r} cannot be placed in"
                                 f" {zone}: {exc} (ambiguous times at a daylight-saving"
                                 f" fall-back need both repeated hours, or a UTC offset;"
                                 f" times in a spring-forward gap do not exist) (got"
                                 f" {zone!r})") from None


def _check_grid(index: pd.DatetimeIndex, column: str) -> pd.Timedelta:
    """The sampling interval; ScenarioError on duplicates, disorder, gaps, irregularity."""
    if len(index) < 2:
        raise _fail("time_column", f"column {column!r} needs at least two timestamps to give"
                                   f" the sampling interval (got {len(index)})")
    steps = np.diff(index.asi8)
    interval = int(steps[0])
    bad = np.flatnonzero(steps != interval)
    if steps[0] <= 0 or bad.size:
        row = 0 if steps[0] <= 0 else int(bad[0])
        raise _fail("time_column", _grid_problem(index, row, int(steps[row]), interval, column))
    return pd.Timedelta(interval)


def _grid_problem(index: pd.DatetimeIndex, row: int, step: int, interval: int,
                  column: str) -> str:
    pair = f"{index[row].isoformat()} and {index[row + 1].isoformat()}"
    if step == 0:
        what = f"duplicate timestamp {index[row].isoformat()}"
    elif step < 0:
        what = f"timestamps go back in time between {pair}"
    elif interval > 0 and step % interval == 0:
        what = (f"gap of {step // interval - 1} missing row(s) between {pair}; the sampling"
                f" interval (first two timestamps) is {pd.Timedelta(interval)}")
    else:
        what = (f"irregular sampling between {pair} ({pd.Timedelta(step)}); the interval"
                f" from the first two timestamps is {pd.Timedelta(interval)}")
    return f"column {column!r}: {what} (got {index[row + 1].isoformat()})"


@lru_cache(maxsize=4)
def _cached_table(path: Path, stamp: tuple[int, int], time_column: str, zone: str,
                  columns: tuple[str, ...]) -> _Table:
    del stamp  # part of the cache key only: a changed file is read again
    frame = _read_frame(path, [time_column, *columns])
    index = _aware_in(frame[time_column], zone, time_column)
    _check_grid(index, time_column)
    data = frame[list(dict.fromkeys(columns))].reset_index(drop=True)
    return _Table(index=index, data=data)


def _table(ts: Timeseries) -> _Table:
    """The file's timestamps and mapped columns (read once per file version)."""
    path = Path(ts.file)
    for i, col in enumerate(ts.columns):
        if col.column == ts.time_column:
            raise _fail(f"columns[{i}].column", f"is the time column (got {col.column!r})")
    try:
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        stamp = (0, 0)
    return _cached_table(path, stamp, ts.time_column, ts.time_zone,
                         tuple(c.column for c in ts.columns))


# ------------------------------------------------------------------------ values
def _checked_values(table: _Table, col: SeriesColumn, i: int) -> np.ndarray:
    """A mapped column as floats; ScenarioError on text, missing, negative, too large."""
    raw = table.data[col.column]
    numbers = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    field, limit = f"columns[{i}].column", LIMITS[col.quantity]
    problems = [(np.isnan(numbers) & raw.notna().to_numpy(), "is not a number"),
                (np.isnan(numbers), "is missing (empty or NaN)"),
                (~np.isfinite(numbers) & ~np.isnan(numbers), "is not finite"),
                (numbers < 0, "is negative"),
                (numbers > limit, f"exceeds the limit {limit:g} for {col.quantity.value}")]
    for mask, what in problems:
        if mask.any():
            row = int(np.flatnonzero(mask)[0])
            raise _fail(field, f"column {col.column!r}: the value at"
                               f" {table.index[row].isoformat()} {what}"
                               f" (got {_cell(raw.iloc[row])})")
    return numbers


def _cell(value: object) -> str:
    """A cell for a message: ``'abc'``, ``-3.0``, ``nan`` (numpy scalars as plain values)."""
    item = getattr(value, "item", None)
    return repr(item() if callable(item) else value)


def slot_delta(slot_hours: float) -> pd.Timedelta:
    """A slot length as a Timedelta (rounded to the millisecond)."""
    return pd.Timedelta(round(slot_hours * 3_600_000) * _NS_PER_MS)


def _first_slot(ts: Timeseries, table: _Table, interval: pd.Timedelta) -> pd.Timestamp:
    """The run's start: ``timeseries.start`` (placed in the zone) or the first timestamp."""
    first, last = table.index[0], table.index[-1]
    if ts.start is None:
        return first
    given = pd.Timestamp(ts.start)
    try:
        start = (given.tz_convert(ts.time_zone) if given.tzinfo is not None else
                 given.tz_localize(ts.time_zone, ambiguous="raise", nonexistent="raise"))
    except (ValueError, _TzError) as exc:
        raise _fail("start", f"cannot be placed in {ts.time_zone}: {exc}; give a UTC offset"
                             f" (got {given.isoformat()})") from None
    if start < first or start > last or (start - first) % interval != pd.Timedelta(0):
        raise _fail("start", f"must be one of the file's timestamps, {first.isoformat()} to"
                             f" {last.isoformat()} every {interval} (got {start.isoformat()})")
    return start


def run_start(ts: Timeseries) -> pd.Timestamp:
    """Start of a file-based run's first slot (aware, in ``ts.time_zone``).

    Raises:
        ScenarioError: If the file cannot be read or ``start`` is not one of its timestamps.

    """
    table = _table(ts)
    return _first_slot(ts, table, pd.Timedelta(int(np.diff(table.index.asi8[:2])[0])))


def _slot_ratio(interval: pd.Timedelta, slot: pd.Timedelta, slot_hours: float) -> None:
    longer, shorter = max(interval, slot), min(interval, slot)
    if longer % shorter != pd.Timedelta(0):
        raise ScenarioError([f"horizon.slot_hours: must be a whole multiple or a whole fraction"
                             f" of the time-series file's sampling interval {interval}"
                             f" (got {slot_hours})"])


def _slots_covered(ts: Timeseries, table: _Table, start: pd.Timestamp, slot: pd.Timedelta,
                   run_slots: int, interval: pd.Timedelta) -> int:
    """Whole slots from ``start`` the file covers; ScenarioError if fewer than the run's."""
    data_end = table.index[-1] + interval
    covered = int((data_end - start) // slot)
    if covered < run_slots:
        run_end = start + run_slots * slot
        raise _fail("days", f"the run of {ts.days} day(s) from {start.isoformat()} ends at"
                            f" {run_end.isoformat()}, after the file's data end at"
                            f" {data_end.isoformat()} (last timestamp plus one interval)"
                            f" (got {ts.days})")
    return covered


def file_series(ts: Timeseries, slot_hours: float, run_slots: int,
                lookahead_slots: int = 0) -> FileSeries:
    """The mapped columns of ``ts.file`` over the run's slots (see the module docstring).

    Args:
        ts: A ``[timeseries]`` table with a ``file``.
        slot_hours: The slot length.
        run_slots: Slots of the run.
        lookahead_slots: Forecast slots wanted after the run (given where the file has them).

    Returns:
        The resampled series, ``run_slots`` rows plus up to ``lookahead_slots``.

    Raises:
        ScenarioError: On any problem of the file, naming the field and the column.

    """
    table = _table(ts)
    interval = pd.Timedelta(int(np.diff(table.index.asi8[:2])[0]))
    values = {col.column: _checked_values(table, col, i) for i, col in enumerate(ts.columns)}
    slot = slot_delta(slot_hours)
    _slot_ratio(interval, slot, slot_hours)
    start = _first_slot(ts, table, interval)
    covered = _slots_covered(ts, table, start, slot, run_slots, interval)
    slots = run_slots + max(0, min(lookahead_slots, covered - run_slots))
    frame = pd.DataFrame(values, index=table.index.tz_convert("UTC"))
    resampled = _resampled(frame, start.tz_convert("UTC"), slot, interval, slots)
    return FileSeries(start=start, interval=interval, slot=slot, values=resampled)


def _resampled(frame: pd.DataFrame, start: pd.Timestamp, slot: pd.Timedelta,
               interval: pd.Timedelta, slots: int) -> pd.DataFrame:
    """``slots`` slots from ``start``: means of whole intervals, or each sample held."""
    used = frame[(frame.index >= start) & (frame.index < start + slots * slot)]
    if slot >= interval:
        out = used.resample(slot, origin=start, closed="left", label="left").mean()
    else:
        grid = pd.date_range(start, periods=slots, freq=slot)
        out = used.reindex(grid, method="ffill")
    if len(out) != slots or out.isna().to_numpy().any():  # defensive: the checks cover it
        raise ScenarioError([f"timeseries.file: resampling gave {len(out)} slots with"
                             f" missing values, expected {slots} (got {len(used)} rows)"])
    return out.reset_index(drop=True).rename_axis("slot")
