"""Regenerate the profile data shipped in ``scenarios/data/profiles`` from SimBench.

Usage (needs the optional dependency: ``pip install gridcosim[simbench]``)::

    python -m scenarios.tools.extract_simbench_profiles --out scenarios/data/profiles
    python -m scenarios.tools.extract_simbench_profiles --list-windows   # how the dates were chosen

Writes ``simbench_2weeks.csv``: 14 days (336 hours) from Monday 2016-08-01 00:00 local time,
columns ``hour``, ``residential``, ``commercial``, ``industrial``, ``agricultural``, ``pv``,
``wind`` (per unit of each profile's annual peak hourly mean) and ``price`` (daily-mean-1
multiplier), rounded to :data:`DECIMALS` decimals. The profiles and dates are the constants
``SIMBENCH_2WEEKS_*`` of :mod:`scenarios.tools.simbench_source`; the work is done
by :func:`scenarios.tools.simbench_source.from_simbench`, the code a user calls for
other profiles.
``scenarios/data/profiles/README.md`` explains the choices.

Window choice (``--list-windows``): every Monday-started fortnight of 2016 is screened and
kept only if it

* has no daylight-saving switch and no weekday public holiday (:data:`HOLIDAYS`, the days
  SimBench's commercial profile G0-A treats as holidays),
* has no SimBench gap-filled day, i.e. no day whose values occur verbatim elsewhere in the
  year (:func:`repeated_days`: e.g. the H0 household profiles repeat 2016-04-04 on
  2016-04-11, every wind profile repeats 1 Feb-1 Mar on 4 Mar-2 Apr; a repeat inside the
  window would fake periodicity, one outside means one of the two days is filler),
* has no day on which a profile is constant (:func:`constant_days`: e.g. PV5 is 0 all day on
  2016-09-07 and 2016-10-22, missing data rather than weather),
* has a representative first day for PV and wind (first-day mean within a factor
  :data:`FIRST_DAY_TOLERANCE` of the fortnight mean), because
  :func:`scenarios.profiles.scaled_to_nominal` scales on the first day.

Of the windows kept, the one with the most renewable energy (mean ``pv`` + mean ``wind``) is
recommended. No spring fortnight qualifies: March/April/May have Easter, May holidays, copied
days or a calm first day.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from gridcosim.scenarios.profiles import COLUMNS, HOURS_PER_DAY, PRICE, ProfileSet
from gridcosim.scenarios.tools.simbench_source import (
    SIMBENCH_2WEEKS_DAYS,
    SIMBENCH_2WEEKS_PROFILES,
    SIMBENCH_2WEEKS_START,
    SIMBENCH_STEPS_PER_HOUR,
    SIMBENCH_YEAR,
    from_simbench,
)

NAME = "simbench_2weeks"
DECIMALS = 4
ROWS_PER_DAY = HOURS_PER_DAY * SIMBENCH_STEPS_PER_HOUR
#: Weekdays of 2016 on which SimBench's G0-A commercial profile drops to its Sunday level.
HOLIDAYS = pd.to_datetime(
    [
        "2016-01-01", "2016-03-25", "2016-03-28", "2016-05-05", "2016-05-16", "2016-05-26",
        "2016-10-03", "2016-11-01", "2016-12-26",
    ]
)  # fmt: skip
#: First-day mean of pv and wind must lie in [mean / 2, mean * 2] of the window.
FIRST_DAY_TOLERANCE = 2.0


def repeated_days(
    profiles: Mapping[str, pd.DataFrame],
    names: Mapping[str, str | Sequence[str]],
    start: str,
    days: int,
) -> tuple[list[str], list[str]]:
    """Find window days whose quarter-hour values occur verbatim elsewhere in the source year.

    Args:
        profiles: ``simbench.get_all_simbench_profiles(...)`` result.
        names: Output column -> SimBench profile name(s), as for ``from_simbench``.
        start: First day of the window (a SimBench time stamp).
        days: Window length in days.

    Returns:
        ``(inside, outside)``: one message per repeated (profile, day) whose copy lies inside
        the window (fakes periodicity: an error) or only outside it (harmless: a note).
        Constant days are ignored.

    """
    stamps = pd.to_datetime(profiles["load"]["time"], format="%d.%m.%Y %H:%M")
    first = int(np.flatnonzero((stamps == pd.Timestamp(start)).to_numpy())[0])
    last = first + days * ROWS_PER_DAY
    inside: list[str] = []
    outside: list[str] = []
    for member in _members(names):
        values = _column(profiles, member)
        windows = np.lib.stride_tricks.sliding_window_view(values, ROWS_PER_DAY)
        for day in range(days):
            row = first + day * ROWS_PER_DAY
            block = values[row : row + ROWS_PER_DAY]
            if np.ptp(block) == 0:
                continue
            others = [int(i) for i in np.flatnonzero((windows == block).all(axis=1)) if i != row]
            if others:
                when = stamps.iloc[row].strftime("%Y-%m-%d")
                where = ", ".join(stamps.iloc[i].strftime("%Y-%m-%d %H:%M") for i in others)
                target = inside if any(first <= i < last for i in others) else outside
                target.append(f"{member}: {when} also appears from {where}")
    return inside, outside


def constant_days(
    profiles: Mapping[str, pd.DataFrame],
    names: Mapping[str, str | Sequence[str]],
    start: str,
    days: int,
) -> list[str]:
    """Find window days on which a profile is constant (e.g. PV 0 all day: missing data).

    Returns:
        One message per (profile, day).

    """
    stamps = pd.to_datetime(profiles["load"]["time"], format="%d.%m.%Y %H:%M")
    first = int(np.flatnonzero((stamps == pd.Timestamp(start)).to_numpy())[0])
    messages = []
    for member in _members(names):
        values = _column(profiles, member)
        for day in range(days):
            row = first + day * ROWS_PER_DAY
            block = values[row : row + ROWS_PER_DAY]
            if np.ptp(block) == 0:
                when = stamps.iloc[row].strftime("%Y-%m-%d")
                messages.append(f"{member}: {block[0]:g} all day on {when}")
    return messages


def _members(names: Mapping[str, str | Sequence[str]]) -> list[str]:
    return sorted({m for v in names.values() for m in ((v,) if isinstance(v, str) else v)})


def _column(profiles: Mapping[str, pd.DataFrame], member: str) -> np.ndarray:
    if f"{member}_pload" in profiles["load"]:
        return profiles["load"][f"{member}_pload"].to_numpy(float)
    for table in ("renewables", "powerplants", "storage"):
        if member in profiles.get(table, ()):
            return profiles[table][member].to_numpy(float)
    raise ValueError(f"unknown SimBench profile {member!r}")


def candidate_windows(
    profiles: Mapping[str, pd.DataFrame],
    names: Mapping[str, str | Sequence[str]] = SIMBENCH_2WEEKS_PROFILES,
    days: int = SIMBENCH_2WEEKS_DAYS,
) -> pd.DataFrame:
    """Screen every Monday-started window of 2016 (see the module docstring).

    Returns:
        One row per Monday, indexed by the date: ``holidays``, ``dst``, ``repeats`` (days
        repeated inside the window), ``copies`` (window days that occur anywhere else in the
        year), ``constant`` (profile-days without any variation),
        ``pv_day1``/``pv_mean``/``wind_day1``/``wind_mean`` and ``ok`` (no holiday, no
        switch, no copy, no constant day, representative first day).

    """
    rows = []
    mondays = pd.date_range(f"{SIMBENCH_YEAR}-01-04", f"{SIMBENCH_YEAR}-12-31", freq="7D")
    for monday in mondays:
        end = monday + pd.Timedelta(days=days)
        if end > pd.Timestamp(f"{SIMBENCH_YEAR + 1}-01-01"):
            break
        start = f"{monday:%Y-%m-%d}"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            data = from_simbench(names, start, days, profiles=profiles, price=False).data
        repeated = repeated_days(profiles, names, start, days)
        daily = data[["pv", "wind"]].to_numpy().reshape(days, HOURS_PER_DAY, 2).mean(axis=1)
        day1, mean = daily[0], daily.mean(axis=0)
        rows.append(
            {
                "start": start,
                "holidays": int(((HOLIDAYS >= monday) & (HOLIDAYS < end)).sum()),
                "dst": bool(caught),
                "repeats": len(repeated[0]),
                "copies": len(repeated[0]) + len(repeated[1]),
                "constant": len(constant_days(profiles, names, start, days)),
                "pv_day1": day1[0],
                "pv_mean": mean[0],
                "wind_day1": day1[1],
                "wind_mean": mean[1],
            }
        )
    table = pd.DataFrame(rows).set_index("start")
    ratio = table[["pv_day1", "wind_day1"]].to_numpy() / table[["pv_mean", "wind_mean"]].to_numpy()
    representative = ((ratio >= 1 / FIRST_DAY_TOLERANCE) & (ratio <= FIRST_DAY_TOLERANCE)).all(1)
    table["ok"] = (
        (table["holidays"] == 0)
        & ~table["dst"]
        & (table["copies"] == 0)
        & (table["constant"] == 0)
        & representative
    )
    return table


def recommended_start(table: pd.DataFrame) -> str | None:
    """The qualifying window with the highest mean ``pv`` + mean ``wind`` (None if none)."""
    ok = table[table["ok"]]
    if ok.empty:
        return None
    return str((ok["pv_mean"] + ok["wind_mean"]).idxmax())


def summary(profile_set: ProfileSet) -> str:
    """Human-readable statistics of a profile set (printed by :func:`main`)."""
    data = profile_set.data
    daily = data.to_numpy().reshape(-1, HOURS_PER_DAY, data.shape[1])
    lines = [f"{profile_set.name}: {profile_set.hours} hours; {profile_set.description}"]
    lines.append(f"{'column':<13}{'min':>8}{'mean':>8}{'max':>8}  day-1/day-2 correlation")
    for k, column in enumerate(data.columns):
        corr = np.corrcoef(daily[0, :, k], daily[1, :, k])[0, 1]
        col = data[column]
        lines.append(f"{column:<13}{col.min():8.4f}{col.mean():8.4f}{col.max():8.4f}  {corr:.3f}")
    price = daily[:, :, list(data.columns).index(PRICE)]
    ratios = price.max(axis=1) / price.min(axis=1)
    lines.append(
        f"price: daily max/min ratio mean {ratios.mean():.3f} "
        f"(range {ratios.min():.3f}..{ratios.max():.3f}), "
        f"overall range {price.min():.3f}..{price.max():.3f}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("scenarios/data/profiles"))
    parser.add_argument("--scenario", type=int, default=0, help="SimBench scenario 0, 1 or 2")
    parser.add_argument(
        "--list-windows", action="store_true", help="screen all Monday-started windows and exit"
    )
    parser.add_argument(
        "--force", action="store_true", help="write even if the window has copied/constant days"
    )
    args = parser.parse_args(argv)

    try:
        import simbench
    except ImportError:
        print("this script needs simbench: pip install gridcosim[simbench]", file=sys.stderr)
        return 2
    profiles = simbench.get_all_simbench_profiles(args.scenario)
    print(f"simbench {getattr(simbench, '__version__', '?')}, scenario {args.scenario}")

    if args.list_windows:
        table = candidate_windows(profiles)
        with pd.option_context("display.width", 120, "display.max_rows", 100):
            print(table.round(3).to_string())
        print(f"recommended start: {recommended_start(table)}; shipped: {SIMBENCH_2WEEKS_START}")
        return 0

    inside, outside = repeated_days(
        profiles, SIMBENCH_2WEEKS_PROFILES, SIMBENCH_2WEEKS_START, SIMBENCH_2WEEKS_DAYS
    )
    for message in outside:
        print(f"note, day copied outside the window: {message}")
    for message in inside:
        print(f"repeated day inside the window: {message}", file=sys.stderr)
    constant = constant_days(
        profiles, SIMBENCH_2WEEKS_PROFILES, SIMBENCH_2WEEKS_START, SIMBENCH_2WEEKS_DAYS
    )
    for message in constant:
        print(f"constant day inside the window: {message}", file=sys.stderr)
    if (inside or constant) and not args.force:
        print("window contains copied or constant days; choose another start", file=sys.stderr)
        return 1

    profile_set = from_simbench(
        SIMBENCH_2WEEKS_PROFILES,
        SIMBENCH_2WEEKS_START,
        SIMBENCH_2WEEKS_DAYS,
        name=NAME,
        scenario=args.scenario,
        profiles=profiles,
    )
    assert profile_set.columns == COLUMNS, profile_set.columns
    print(summary(profile_set))

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{NAME}.csv"
    # + 0.0 turns the -0.0 of SimBench's tiny negative wind values (~-1e-5) into 0.0
    (profile_set.data.round(DECIMALS) + 0.0).to_csv(
        path, float_format=f"%.{DECIMALS}f", lineterminator="\n"
    )
    print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
