"""Multi-day hourly profiles: customer-class load shapes, PV, wind and the utility price.

A :class:`ProfileSet` is an hourly table (one row per hour, index ``0..H-1`` named
``hour``) with one column per profile. The shipped set ``simbench_2weeks`` (see
``scenarios/data/profiles/README.md``) has 14 days = 336 hours and the columns

* ``residential``, ``commercial``, ``industrial``, ``agricultural`` (:data:`LOAD_CLASSES`),
  ``pv`` and ``wind``: per unit of the profile's **annual peak hourly mean**, so the maximum
  over the whole source year is 1 (the two weeks themselves may peak lower);
* ``price``: a utility price *multiplier* with a mean of exactly 1.0 over every day (see
  :func:`~gridcosim.scenarios.tools.simbench_source.price_multiplier`), to be multiplied
  by a base price in $/kWh.

Typical use::

    from gridcosim.scenarios.profiles import load_profile_set, scaled_to_nominal, window
    profiles = load_profile_set()                    # shipped data, no simbench needed
    day3 = window(profiles, start_slot=48, slots=24)  # hours 48..71
    load_kw = scaled_to_nominal(day3["residential"], nominal=120.0)

:func:`gridcosim.scenarios.tools.simbench_source.from_simbench` builds a set from any
SimBench profiles (the optional dependency ``pip install gridcosim[simbench]``);
``scenarios/tools/extract_simbench_profiles.py`` regenerates the shipped data with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Literal, TypeVar

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

#: Local start (hour 0) and IANA time zone of each shipped set, for a run's time coordinate.
#: ``simbench_2weeks``: the README gives Monday 2016-08-01 00:00 local time, CEST (UTC+2,
#: no clock change in the fortnight); SimBench is a German data set whose source year has
#: its clock changes on the EU dates (2016-03-27, 2016-10-30), so the zone is
#: Europe/Berlin.
SET_CLOCKS: dict[str, tuple[str, str]] = {"simbench_2weeks": ("2016-08-01T00:00:00",
                                                              "Europe/Berlin")}

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


def profile_set_start(name: str, start_day: int = 0) -> tuple[pd.Timestamp, str] | None:
    """Start of day ``start_day`` of a shipped set, time-zone aware, and its zone name.

    Args:
        name: A shipped set's name.
        start_day: Days after the set's first hour (calendar days, local midnight).

    Returns:
        ``(start, zone)``, or ``None`` for a set whose dates are not known
        (:data:`SET_CLOCKS`).

    """
    if name not in SET_CLOCKS:
        return None
    first, zone = SET_CLOCKS[name]
    local = pd.Timestamp(first) + pd.Timedelta(days=start_day)
    return local.tz_localize(zone, ambiguous="raise", nonexistent="raise"), zone


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


def window(profile_set: ProfileSet, start_slot: int, slots: int, slot_hours: float = 1.0, *,
           method: Literal["hold", "linear"] = "hold") -> pd.DataFrame:
    """Cut ``slots`` consecutive slots of ``slot_hours`` each out of a profile set.

    Slot ``k`` covers hours ``[k * slot_hours, (k + 1) * slot_hours)``, so ``start_slot``
    counts in the requested resolution (``slot_hours=0.25``: slot 96 starts day 2). Hourly
    rows are kept as they are; ``m`` whole hours are averaged in blocks aligned with hour
    0; for ``1/k`` of an hour, ``method="hold"`` repeats each hour's mean in its ``k``
    sub-slots (energy preserving) and ``"linear"`` interpolates between the hour centres
    (smoother; the sub-slot mean then only approximates the hourly mean).

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
    problem = resampling_problem(slot_hours)
    if problem is not None:
        raise ValueError(f"slot_hours {problem} (got {slot_hours})")
    _check_fits(profile_set, start_slot, slots, slots_available(profile_set, slot_hours),
                slot_hours)
    hourly = profile_set.data
    if slot_hours >= 1.0:
        values = _block_means(hourly, round(slot_hours), start_slot, slots)
    else:
        values = _sub_hourly(hourly, round(1.0 / slot_hours), start_slot, slots, method)
    return pd.DataFrame(values, columns=hourly.columns, index=pd.RangeIndex(slots, name="slot"))


def _block_means(hourly: pd.DataFrame, per: int, start: int, slots: int) -> np.ndarray:
    """Means of blocks of ``per`` hours, aligned with hour 0 (energy preserving)."""
    available = len(hourly) // per
    block = hourly.to_numpy(dtype=float)[: available * per]
    return block.reshape(available, per, -1).mean(axis=1)[start : start + slots]


def _sub_hourly(hourly: pd.DataFrame, per_hour: int, start: int, slots: int,
                method: str) -> np.ndarray:
    """``per_hour`` sub-slots per hour: each hour's mean held, or linear between centres."""
    sub = np.arange(start, start + slots)
    if method == "hold":
        return hourly.to_numpy(dtype=float)[sub // per_hour]
    centres = (sub + 0.5) / per_hour
    hour_centres = np.arange(len(hourly)) + 0.5
    return np.column_stack(
        [np.interp(centres, hour_centres, hourly[c].to_numpy(float)) for c in hourly])


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
