"""Multi-day hourly profiles: customer-class load shapes, PV, wind and the utility price.

A :class:`ProfileSet` is an hourly table (one row per hour, index ``0..H-1`` named
``hour``) with one column per profile. The shipped set ``simbench_2weeks`` (see
``scenarios/data/profiles/README.md``) has 14 days = 336 hours and the columns

* ``residential``, ``commercial``, ``industrial``, ``agricultural`` (:data:`LOAD_CLASSES`),
  ``pv`` and ``wind``: per unit of the profile's **annual peak hourly mean**, so the maximum
  over the whole source year is 1 (the two weeks themselves may peak lower);
* ``price``: a utility price *multiplier* with a mean of exactly 1.0 over every day (see
  :func:`price_multiplier`), to be multiplied by a base price in $/kWh.

Typical use::

    from gridcosim.scenarios.profiles import load_profile_set, scaled_to_nominal, window
    profiles = load_profile_set()                    # shipped data, no simbench needed
    day3 = window(profiles, start_slot=48, slots=24)  # hours 48..71
    load_kw = scaled_to_nominal(day3["residential"], nominal=120.0)

:func:`from_simbench` builds a set from any SimBench profiles; it needs the optional
dependency (``pip install gridcosim[simbench]``), which is imported only inside the call.
``scenarios/tools/extract_simbench_profiles.py`` regenerates the shipped data with it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any, Literal, TypeVar

import numpy as np
import pandas as pd

#: Customer classes with a load profile, in column order.
LOAD_CLASSES = ("residential", "commercial", "industrial", "agricultural")
#: Renewable generation profiles, in column order.
RENEWABLES = ("pv", "wind")
#: Column of the utility price multiplier.
PRICE = "price"
#: Columns of the shipped profile sets, in order (the CSV adds ``hour`` first).
COLUMNS = (*LOAD_CLASSES, *RENEWABLES, PRICE)

HOURS_PER_DAY = 24
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
    "from_simbench needs the optional dependency 'simbench' (a ~380 MB wheel): "
    "pip install gridcosim[simbench]"
)

_Shape = TypeVar("_Shape", pd.Series, pd.DataFrame)


@dataclass(frozen=True, eq=False)
class ProfileSet:
    """Hourly profiles of several days.

    Attributes:
        name: Label of the set, e.g. ``"simbench_2weeks"``.
        data: One row per hour, index ``0..H-1`` named ``hour``, float columns (see the
            module docstring for their units).
        description: Free-text provenance.

    The frame is not copied; treat it as read-only.

    """

    name: str
    data: pd.DataFrame
    description: str = field(default="")

    def __post_init__(self) -> None:
        data = self.data
        if len(data) == 0:
            raise ValueError(f"profile set {self.name!r} has no rows")
        if not data.index.equals(pd.RangeIndex(len(data))):
            raise ValueError(f"profile set {self.name!r}: the index must be 0..{len(data) - 1}")
        bad = [c for c in data.columns if not pd.api.types.is_numeric_dtype(data[c])]
        if bad:
            raise ValueError(f"profile set {self.name!r}: non-numeric columns {bad}")
        if not np.isfinite(data.to_numpy(dtype=float)).all():
            raise ValueError(f"profile set {self.name!r}: NaN or infinite values")

    @property
    def hours(self) -> int:
        """Number of hourly rows."""
        return len(self.data)

    @property
    def days(self) -> float:
        """Number of days covered (``hours / 24``)."""
        return self.hours / HOURS_PER_DAY

    @property
    def columns(self) -> tuple[str, ...]:
        """Profile names, in column order."""
        return tuple(str(c) for c in self.data.columns)


# --------------------------------------------------------------------------- shipped data


def available_profile_sets() -> list[str]:
    """Names of the profile sets shipped in ``scenarios/data/profiles``."""
    folder = files("gridcosim.scenarios") / "data" / "profiles"
    if not folder.is_dir():
        return []
    return sorted(e.name.removesuffix(".csv") for e in folder.iterdir() if e.name.endswith(".csv"))


def load_profile_set(name: str = "simbench_2weeks") -> ProfileSet:
    """Load a profile set shipped with the package (works from an installed wheel).

    Args:
        name: File stem in ``scenarios/data/profiles``; see :func:`available_profile_sets`.

    Returns:
        The set, indexed by ``hour``.

    Raises:
        FileNotFoundError: If there is no such set.

    """
    resource = files("gridcosim.scenarios") / "data" / "profiles" / f"{name}.csv"
    if not resource.is_file():
        known = ", ".join(available_profile_sets()) or "none"
        raise FileNotFoundError(f"no profile set {name!r} in scenarios/data/profiles ({known})")
    with resource.open("r", encoding="utf-8") as handle:
        frame = pd.read_csv(handle, index_col="hour")
    frame.index = pd.RangeIndex(len(frame), name="hour")
    return ProfileSet(name=name, data=frame.astype(float), description=f"package data {name}")


# --------------------------------------------------------------------------- slicing


def resampling_problem(slot_hours: float) -> str | None:
    """Why the hourly profiles cannot be resampled to ``slot_hours``, if they cannot.

    :func:`window` supports a whole number of hours, or 1/k of an hour for a whole k >= 2.

    Args:
        slot_hours: Slot length in hours.

    Returns:
        ``None`` if supported, else what is wrong (to follow the field name).

    """
    if not math.isfinite(slot_hours) or slot_hours <= 0:
        return "must be a positive number of hours"
    if slot_hours >= 1.0:
        if not math.isclose(slot_hours, round(slot_hours), rel_tol=1e-9):
            return ">= 1 must be a whole number of hours to resample the hourly profiles"
        return None
    per_hour = round(1.0 / slot_hours)
    if per_hour < 2 or not math.isclose(per_hour * slot_hours, 1.0, rel_tol=1e-9):
        return ("< 1 must be 1/k of an hour for a whole number k, e.g. 0.5 or 0.25, to"
                " resample the hourly profiles")
    return None


def slots_available(profile_set: ProfileSet, slot_hours: float = 1.0) -> int:
    """Number of whole slots of ``slot_hours`` the set covers (see :func:`window`)."""
    hours = len(profile_set.data)
    if slot_hours >= 1.0:
        return hours // round(slot_hours)
    return hours * round(1.0 / slot_hours)


def window(
    profile_set: ProfileSet,
    start_slot: int,
    slots: int,
    slot_hours: float = 1.0,
    *,
    method: Literal["hold", "linear"] = "hold",
) -> pd.DataFrame:
    """Cut ``slots`` consecutive slots of ``slot_hours`` each out of a profile set.

    Slot ``k`` covers hours ``[k * slot_hours, (k + 1) * slot_hours)`` from the start of the
    set, so ``start_slot`` counts in the requested resolution: with ``slot_hours=0.25``,
    ``start_slot=96`` is the start of day 2.

    Resolution:
        * ``slot_hours == 1``: the hourly rows as they are.
        * ``slot_hours`` an integer ``m > 1`` (2, 3, 4, ...): the mean of each block of ``m``
          hours, blocks aligned with hour 0 (energy preserving).
        * ``slot_hours = 1 / k`` for an integer ``k`` (0.5, 0.25, ...): the stored values are
          hourly *means*, so ``method="hold"`` (default) repeats each hour's mean in its
          ``k`` sub-slots (energy preserving, steps at the hour). ``method="linear"`` instead
          interpolates linearly between the hour centres (values held flat before the first
          and after the last centre): smoother, but the sub-slot mean over an hour then only
          approximates the stored hourly mean.

    Args:
        profile_set: The hourly profiles.
        start_slot: First slot, >= 0, in units of ``slot_hours``.
        slots: Number of slots, >= 1.
        slot_hours: Slot length in hours (see above).
        method: Sub-hourly upsampling, ``"hold"`` or ``"linear"``; ignored for
            ``slot_hours >= 1``.

    Returns:
        A new frame indexed ``0..slots-1`` (named ``slot``) with the set's columns.

    Raises:
        ValueError: For an unsupported ``slot_hours`` or ``method``, or a window that does not
            fit in the set.

    """
    if start_slot < 0 or slots < 1:
        raise ValueError(f"need start_slot >= 0 and slots >= 1 (got {start_slot}, {slots})")
    if method not in ("hold", "linear"):
        raise ValueError(f"method must be 'hold' or 'linear' (got {method!r})")
    hourly = profile_set.data
    n_hours = len(hourly)
    problem = resampling_problem(slot_hours)
    if problem is not None:
        raise ValueError(f"slot_hours {problem} (got {slot_hours})")
    if slot_hours >= 1.0:
        per = round(slot_hours)
        available = n_hours // per
        _check_fits(profile_set, start_slot, slots, available, slot_hours)
        block = hourly.to_numpy(dtype=float)[: available * per]
        values = block.reshape(available, per, -1).mean(axis=1)[start_slot : start_slot + slots]
    else:
        per_hour = round(1.0 / slot_hours)
        available = n_hours * per_hour
        _check_fits(profile_set, start_slot, slots, available, slot_hours)
        sub = np.arange(start_slot, start_slot + slots)
        if method == "hold":
            values = hourly.to_numpy(dtype=float)[sub // per_hour]
        else:
            centres = (sub + 0.5) / per_hour
            hour_centres = np.arange(n_hours) + 0.5
            values = np.column_stack(
                [np.interp(centres, hour_centres, hourly[c].to_numpy(float)) for c in hourly]
            )
    return pd.DataFrame(values, columns=hourly.columns, index=pd.RangeIndex(slots, name="slot"))


def _check_fits(
    profile_set: ProfileSet, start_slot: int, slots: int, available: int, slot_hours: float
) -> None:
    if start_slot + slots > available:
        raise ValueError(
            f"window of {slots} slots from slot {start_slot} does not fit in profile set "
            f"{profile_set.name!r}: it has {available} slots of {slot_hours} h "
            f"({profile_set.hours} hours)"
        )


def scaled_to_nominal(
    shape: _Shape, slots_per_day: int = HOURS_PER_DAY, nominal: float = 1.0
) -> _Shape:
    """Rescale a shape so that its mean over the first day is 1 (times ``nominal``).

    The shipped shapes are per unit of an annual peak, which is not what a scenario's nominal
    values mean. A scenario gives nominal loads (the seed's bus loads, a renewable forecast in
    kW); multiplying them by the rescaled shape keeps the nominal value as the *average of
    the first day* while the shape adds the hour-to-hour and day-to-day variation. Later days
    keep their level relative to day 1 (a weekend day of a commercial class stays lower). The
    price column is already a daily-mean-1 multiplier, so this leaves its first day unchanged.

    Args:
        shape: A profile column (Series) or several (DataFrame, scaled column by column), e.g.
            from :func:`window`.
        slots_per_day: Slots making up the first day: 24 for hourly slots, 96 for 0.25 h.
        nominal: Value the first-day mean is scaled to.

    Returns:
        ``nominal * shape / mean(shape[:slots_per_day])``, same type and index as ``shape``.

    Raises:
        ValueError: If the shape is shorter than ``slots_per_day`` or a first-day mean is not
            positive (e.g. PV over a night-only window); a first day of near-calm wind gives a
            huge factor, so check ``wind`` windows before relying on this.

    """
    if slots_per_day < 1 or len(shape) < slots_per_day:
        raise ValueError(
            f"need at least slots_per_day={slots_per_day} slots to scale (got {len(shape)})"
        )
    reference = shape.iloc[:slots_per_day].mean()
    means = reference if isinstance(reference, pd.Series) else pd.Series({shape.name: reference})
    bad = [str(key) for key, value in means.items() if not value > 0.0]
    if bad:
        raise ValueError(f"first-day mean is not positive for {bad}; cannot scale")
    return shape / reference * nominal


# --------------------------------------------------------------------------- price


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
