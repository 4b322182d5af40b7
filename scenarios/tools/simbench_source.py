"""SimBench profiles turned into a :class:`~gridcosim.scenarios.profiles.ProfileSet`.

A data conversion tool: :func:`from_simbench` cuts whole days out of SimBench's
quarter-hourly profiles (optional dependency ``simbench``, imported only inside the
call), averages hours, scales each profile to its annual peak and derives a utility price
shape from the aggregate load (:func:`price_multiplier`). ``extract_simbench_profiles``
uses it to regenerate the shipped ``simbench_2weeks`` set.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from gridcosim.scenarios.profiles import (
    HOURS_PER_DAY,
    LOAD_CLASSES,
    PRICE,
    ProfileSet,
)

#: SimBench profiles are quarter-hourly: four rows per hour.
SIMBENCH_STEPS_PER_HOUR = 4
#: The calendar year of every SimBench profile (2016, a leap year: 35136 quarter-hours).
SIMBENCH_YEAR = 2016

#: Target of :func:`price_multiplier`: mean over the days of each day's highest / lowest
#: price. 1.69 = 1.30 / 0.77, the peak / off-peak ratio of the seed scenario's price profile.
PRICE_PEAK_RATIO = 1.30 / 0.77

#: The SimBench profiles behind ``simbench_2weeks``; a tuple is averaged (see
#: :func:`from_simbench`). The choice is explained in ``scenarios/data/profiles/README.md``.
SIMBENCH_2WEEKS_PROFILES: Mapping[str, str | tuple[str, ...]] = {
    "residential": ("H0-A", "H0-B", "H0-C", "H0-G", "H0-L"),
    "commercial": "G0-A",
    "industrial": "WB-H",
    "agricultural": "L0-A",
    "pv": "PV5",
    "wind": "WP4",
}
#: First day (a Monday, 00:00 local time) and length of ``simbench_2weeks``; how it was
#: chosen: ``python -m scenarios.tools.extract_simbench_profiles --list-windows``.
SIMBENCH_2WEEKS_START = "2016-08-01"
SIMBENCH_2WEEKS_DAYS = 14

SIMBENCH_MISSING = (
    "from_simbench needs the optional dependency 'simbench' (about 90 MB): "
    "pip install gridcosim[simbench]"
)


def price_multiplier(
    loads: pd.DataFrame, ratio: float = PRICE_PEAK_RATIO, hours_per_day: int = HOURS_PER_DAY
) -> tuple[pd.Series, float]:
    """Build the utility price multiplier from the aggregate load (SimBench has no prices).

    Construction, deterministic:

    1. each load column is divided by its mean over the whole table, so every class
       contributes the same energy, and the aggregate ``a(h)`` is the mean over the columns;
    2. on each day ``d``, ``r(h) = a(h) / mean_d(a)`` and ``p(h) = r(h)**gamma /
       mean_d(r**gamma)``: every day has a mean price of exactly 1, the price rises with the
       load and the exponent ``gamma`` sets the spread;
    3. ``gamma`` is found by bisection so that the mean over the days of ``max_d(p) /
       min_d(p)`` (which is ``(max_d(r) / min_d(r))**gamma``) equals ``ratio``: 1.69 by default,
       the seed price profile's 1.30 / 0.77. Days with a flatter load (weekends) get a smaller
       spread than that, days with a pronounced peak a larger one.

    Args:
        loads: Hourly load shapes (only relative values matter), length a whole number of days.
        ratio: Target mean daily peak / off-peak price ratio, > 1.
        hours_per_day: Rows per day.

    Returns:
        ``(price, gamma)``: the multiplier (same index as ``loads``, named ``price``) and the
        exponent used.

    Raises:
        ValueError: On an empty table, a partial day, a non-positive aggregate or a ratio not
            reachable (a day with a perfectly flat aggregate load and ``ratio > 1``...).

    """
    if loads.shape[1] == 0 or len(loads) == 0 or len(loads) % hours_per_day:
        raise ValueError(
            f"need load columns over whole days of {hours_per_day} rows (got {loads.shape})"
        )
    if ratio <= 1.0:
        raise ValueError(f"ratio must be > 1 (got {ratio})")
    values = loads.to_numpy(dtype=float)
    aggregate = (values / values.mean(axis=0)).mean(axis=1).reshape(-1, hours_per_day)
    if (aggregate <= 0).any():
        raise ValueError("the aggregate load must be positive in every hour to build a price")
    relative = aggregate / aggregate.mean(axis=1, keepdims=True)
    log_spread = np.log(relative.max(axis=1) / relative.min(axis=1))
    if log_spread.max() <= 0:
        raise ValueError("the aggregate load is flat on every day; no price spread possible")

    def mean_ratio(gamma: float) -> float:
        return float(np.exp(gamma * log_spread).mean())

    low, high = 0.0, 1.0
    while mean_ratio(high) < ratio:
        high *= 2.0
        if high > 1e6:
            raise ValueError(f"cannot reach a mean daily price ratio of {ratio}")
    for _ in range(200):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if mean_ratio(mid) < ratio else (low, mid)
    gamma = 0.5 * (low + high)
    shaped = relative**gamma
    price = (shaped / shaped.mean(axis=1, keepdims=True)).ravel()
    return pd.Series(price, index=loads.index, name=PRICE), gamma


# --------------------------------------------------------------------------- simbench


def from_simbench(
    profile_names: Mapping[str, str | Sequence[str]],
    start: str,
    days: int,
    *,
    name: str | None = None,
    scenario: int = 0,
    price: bool = True,
    price_ratio: float = PRICE_PEAK_RATIO,
    profiles: Mapping[str, pd.DataFrame] | None = None,
) -> ProfileSet:
    """Build a profile set from SimBench profiles (needs ``pip install gridcosim[simbench]``).

    Each output column is one SimBench profile, or the mean of several (a sequence of names,
    taken on their per-unit values), averaged to hours and divided by the annual maximum of
    its hourly means, so it is per unit of its annual peak (exactly 1 somewhere in 2016).
    Names are looked up as ``<name>_pload`` in the load table (e.g. ``"H0-A"``, ``"G1-A"``,
    ``"L0-A"``), then as columns of the renewables (``"PV3"``, ``"WP4"``), power plant and
    storage tables; a full load column name such as ``"H0-A_qload"`` also works.

    SimBench time stamps are local time with daylight saving (2016-03-27 has 23 hours,
    2016-10-30 has 25). Rows are taken as consecutive quarter-hours from ``start``, so hours
    count elapsed time; a window spanning a switch is shifted by one hour against the local
    clock after it (a warning says so).

    If ``price`` is true and no output column is called ``price``, a ``price`` column is
    added by :func:`price_multiplier` from the load-class columns present
    (:data:`LOAD_CLASSES`).

    Args:
        profile_names: Output column -> SimBench profile name(s).
        start: First hour, local time in 2016, e.g. ``"2016-08-01"`` or ``"2016-06-01 06:00"``.
        days: Number of days, >= 1.
        name: Label of the set (default ``simbench_<start>_<days>d``).
        scenario: SimBench scenario 0, 1 or 2 passed to
            ``simbench.get_all_simbench_profiles`` (the load, PV and wind profiles are the
            same in all three in simbench 1.6).
        price: Whether to add the price column.
        price_ratio: Target mean daily peak / off-peak price ratio.
        profiles: Pre-loaded ``simbench.get_all_simbench_profiles(scenario)`` result, to
            build several sets without reading the CSVs again.

    Returns:
        The hourly set, columns in the order of ``profile_names`` (then ``price``).

    Raises:
        ImportError: If simbench is not installed (and ``profiles`` is not given).
        ValueError: On an unknown profile name, a start that is not a 2016 time stamp on the
            hour, or a window running past the end of 2016.

    """
    if days < 1:
        raise ValueError(f"days must be >= 1 (got {days})")
    if not profile_names:
        raise ValueError("profile_names is empty")
    if profiles is None:
        profiles = _simbench_profiles(scenario)
    tables = {k: v for k, v in profiles.items() if isinstance(v, pd.DataFrame) and "time" in v}
    if "load" not in tables:
        raise ValueError("the SimBench profiles have no 'load' table with a 'time' column")
    stamps = pd.to_datetime(tables["load"]["time"], format="%d.%m.%Y %H:%M")
    first = _start_row(stamps, start)
    rows = days * HOURS_PER_DAY * SIMBENCH_STEPS_PER_HOUR
    if first + rows > len(stamps):
        raise ValueError(
            f"{days} days from {start} run past the end of the SimBench year "
            f"({stamps.iloc[-1]:%Y-%m-%d %H:%M})"
        )
    span = stamps.iloc[first : first + rows]
    if (span.diff().dropna() != pd.Timedelta(minutes=15)).any():
        warnings.warn(
            f"the window from {start} spans a daylight-saving switch: hours count elapsed time "
            "and drift by one hour against the local clock after the switch",
            stacklevel=2,
        )

    if first % SIMBENCH_STEPS_PER_HOUR:  # hours are blocks of 4 rows counted from row 0
        raise ValueError(f"start {start!r} is not aligned with the SimBench hours")
    hour0, n_hours = first // SIMBENCH_STEPS_PER_HOUR, rows // SIMBENCH_STEPS_PER_HOUR
    columns: dict[str, np.ndarray] = {}
    for column, names in profile_names.items():
        members = (names,) if isinstance(names, str) else tuple(names)
        if not members:
            raise ValueError(f"no SimBench profile given for column {column!r}")
        quarter_hours = np.mean([_lookup(tables, member) for member in members], axis=0)
        hourly = quarter_hours.reshape(-1, SIMBENCH_STEPS_PER_HOUR).mean(axis=1)
        peak = hourly.max()
        if not peak > 0:
            raise ValueError(f"column {column!r}: profile {members} never exceeds 0")
        columns[str(column)] = hourly[hour0 : hour0 + n_hours] / peak

    frame = pd.DataFrame(columns, index=pd.RangeIndex(days * HOURS_PER_DAY, name="hour"))
    description = f"SimBench {dict(profile_names)} from {start}, {days} days"
    classes = [c for c in LOAD_CLASSES if c in frame]
    if price and PRICE not in frame and classes:
        frame[PRICE], gamma = price_multiplier(frame[classes], ratio=price_ratio)
        description += f"; price from {classes} with gamma={gamma:.4f}"
    label = name or f"simbench_{pd.Timestamp(start):%Y%m%d}_{days}d"
    return ProfileSet(name=label, data=frame, description=description)


def _simbench_profiles(scenario: int) -> Mapping[str, Any]:
    try:
        import simbench
    except ImportError as exc:
        raise ImportError(SIMBENCH_MISSING) from exc
    return simbench.get_all_simbench_profiles(scenario)


def _start_row(stamps: pd.Series, start: str) -> int:
    try:
        when = pd.Timestamp(start)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"start is not a date/time (got {start!r})") from exc
    if when.year != SIMBENCH_YEAR:
        raise ValueError(f"SimBench profiles cover {SIMBENCH_YEAR} only (got start {start!r})")
    if when != when.floor("h"):
        raise ValueError(f"start must be on the hour (got {start!r})")
    hits = np.flatnonzero((stamps == when).to_numpy())
    if len(hits) == 0:
        raise ValueError(f"start {start!r} is not a SimBench time stamp (skipped by DST?)")
    return int(hits[0])


def _lookup(tables: Mapping[str, pd.DataFrame], profile: str) -> np.ndarray:
    load = tables["load"]
    for table, column in (
        ("load", f"{profile}_pload"),
        ("load", profile),
        ("renewables", profile),
        ("powerplants", profile),
        ("storage", profile),
    ):
        frame = load if table == "load" else tables.get(table)
        if frame is not None and column != "time" and column in frame:
            if len(frame) != len(load):  # simbench 1.6's storage table is empty
                raise ValueError(f"SimBench profile {profile!r} has {len(frame)} rows")
            return frame[column].to_numpy(dtype=float)
    raise ValueError(
        f"unknown SimBench profile {profile!r}: not a load profile (<name>_pload) nor a "
        "renewables, powerplants or storage column"
    )
