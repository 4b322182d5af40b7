"""Cross-field checks of a field-valid :class:`~scenarios.schema.Scenario`.

The pydantic models check each field (and each model's own fields against each other);
the checks here relate different parts of a scenario to one another and to the data sets:
profile lengths against the horizon, fields that only apply to one time source, the
profile set's days and resolution, buses against the network, name and bus uniqueness,
and generator start-up feasibility (a market's checks: :mod:`scenarios.market_checks`).
Every check returns messages instead of raising, so that all problems of a scenario are
reported at once; each reads ``<field.path>: <what is wrong> (got <value>)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache

from pydantic import BaseModel

from gridcosim.scenarios.fields import TIMESERIES_ONLY
from gridcosim.scenarios.market_checks import check_market, check_microgrids_or_market
from gridcosim.scenarios.network_checks import check_ac_engine, check_network_buses
from gridcosim.scenarios.schema import Scenario

PROFILE_FIELDS = ("price", "load", "renewables")
HOURS_PER_DAY = 24


def check_scenario(scenario: Scenario) -> list[str]:
    """Run every cross-field check on a scenario that passed field validation.

    Args:
        scenario: A scenario built by ``Scenario.model_validate``.

    Returns:
        One message per problem, in a stable order; empty if the scenario is consistent.

    """
    return [
        *check_microgrids_or_market(scenario),
        *check_profiles(scenario),
        *check_profile_mode_fields(scenario),
        *check_timeseries(scenario),
        *check_network_buses(scenario),
        *check_ac_engine(scenario),
        *check_unique_names(scenario),
        *check_unique_buses(scenario),
        *check_generators(scenario),
        *check_market(scenario),
    ]


def check_profiles(scenario: Scenario) -> list[str]:
    """Check that every per-slot profile has exactly ``horizon.slots`` entries.

    Args:
        scenario: The scenario to check.

    Returns:
        One message per profile of the wrong length.

    """
    slots = scenario.horizon.slots
    problems: list[str] = []
    if scenario.profiles is None:
        return problems
    for field in PROFILE_FIELDS:
        found = len(getattr(scenario.profiles, field))
        if found != slots:
            problems.append(
                f"profiles.{field}: must have one entry per slot, horizon.slots = {slots}"
                f" (got {found} entries)"
            )
    return problems


def check_profile_mode_fields(scenario: Scenario) -> list[str]:
    """Reject fields that only apply with ``[timeseries]`` when the scenario uses ``[profiles]``.

    With per-slot multipliers every renewable follows ``profiles.renewables`` and every
    load ``profiles.load``; only ``[timeseries]`` has per-kind and per-class shapes. The
    fields are those the schema marks :data:`~gridcosim.scenarios.fields.TIMESERIES_ONLY`
    (a renewable's ``kind``, a load class), on microgrids and on every unit.

    Args:
        scenario: The scenario to check.

    Returns:
        One message per such field set to other than its default, if the scenario uses
        ``[profiles]``.

    """
    if scenario.profiles is None:
        return []
    problems = []
    for i, mg in enumerate(scenario.microgrids):
        problems += _timeseries_only_set(mg, f"microgrids[{i}]")
        for field in mg.unit_fields():
            for j, unit in enumerate(getattr(mg, field)):
                problems += _timeseries_only_set(unit, f"microgrids[{i}].{field}[{j}]")
    return problems


def _timeseries_only_set(table: BaseModel, path: str) -> list[str]:
    out = []
    for name, info in type(table).model_fields.items():
        extra = info.json_schema_extra
        value = getattr(table, name)
        if isinstance(extra, dict) and extra.get(TIMESERIES_ONLY) and value != info.default:
            out.append(f"{path}.{name}: only applies with [timeseries]; with [profiles] every"
                       f" load and renewable follows its profiles multipliers, so leave it"
                       f" out or use {info.default!r} (got {value!r})")
    return out


def slot_hours_problem(slot_hours: float) -> str | None:
    """Why a ``[timeseries]`` scenario cannot use slots of ``slot_hours``, if it cannot.

    The slots must divide a day (whole days of data, days starting on a slot) and be a
    length :func:`scenarios.profiles.window` resamples the hourly profiles to.

    Args:
        slot_hours: Slot length in hours.

    Returns:
        ``None`` if usable, else what is wrong.

    """
    from gridcosim.scenarios.profiles import resampling_problem

    problem = resampling_problem(slot_hours)
    per_day = HOURS_PER_DAY / slot_hours
    if problem is None and math.isclose(per_day, round(per_day), rel_tol=1e-9):
        return None
    return ("with [timeseries] must divide a day into whole slots the hourly profiles can be"
            " resampled to: 1, 2, 3, 4, 6, 8, 12 or 24 hours, or 1/k of an hour")


@lru_cache(maxsize=8)
def _profile_set_days(name: str) -> int:
    """Whole days of a shipped profile set (read once per process)."""
    from gridcosim.scenarios.profiles import load_profile_set

    return load_profile_set(name).hours // HOURS_PER_DAY


def check_timeseries(scenario: Scenario) -> list[str]:
    """Check a ``[timeseries]`` scenario against its profile set, at load time.

    The profile set must exist, the slot length suit it, ``start_day + days`` fit in its
    days and ``horizon.slots`` not exceed the run's slots. If all of that holds, the
    series are built once to check that they are finite. A time-series file has its own
    checks (:mod:`gridcosim.scenarios.timeseries_checks`).

    Args:
        scenario: The scenario to check.

    Returns:
        One message per problem; empty without ``[timeseries]``.

    """
    ts = scenario.timeseries
    if ts is None:
        return []
    if ts.file is not None:
        from gridcosim.scenarios.timeseries_checks import check_timeseries_file

        return check_timeseries_file(scenario)
    from gridcosim.scenarios.profiles import available_profile_sets

    problems = []
    slot_hours = scenario.horizon.slot_hours
    if (problem := slot_hours_problem(slot_hours)) is not None:
        problems.append(f"horizon.slot_hours: {problem} (got {slot_hours})")
    known = available_profile_sets()
    if ts.profile_set not in known:
        problems.append(f"timeseries.profile_set: unknown profile set; known:"
                        f" {', '.join(known) or 'none'} (got {ts.profile_set!r})")
    else:
        problems += _days_problems(scenario, _profile_set_days(ts.profile_set))
    if not problems:
        problems += _horizon_problems(scenario) or _series_problems(scenario)
    return problems


def _days_problems(scenario: Scenario, available_days: int) -> list[str]:
    ts = scenario.timeseries
    data = f"the {available_days} days of profile set {ts.profile_set!r}"
    if ts.start_day >= available_days:
        return [f"timeseries.start_day: must be below {data} (got {ts.start_day})"]
    if ts.start_day + ts.days > available_days:
        return [f"timeseries.days: start_day + days must be at most {data}; start_day ="
                f" {ts.start_day} leaves {available_days - ts.start_day} (got {ts.days})"]
    return []


def _horizon_problems(scenario: Scenario) -> list[str]:
    run = scenario.total_slots
    if scenario.horizon.slots > run:
        return [f"horizon.slots: must not exceed the run's timeseries.days * 24 /"
                f" horizon.slot_hours = {run} slots (got {scenario.horizon.slots})"]
    return []


def _series_problems(scenario: Scenario) -> list[str]:
    import numpy as np

    from gridcosim.scenarios.series import scenario_series

    try:
        series = scenario_series(scenario)
    except (ValueError, KeyError) as exc:
        return [f"timeseries: the profile set cannot give this run's series: {exc}"
                f" (got {scenario.timeseries.profile_set!r})"]
    frames = (series.price_usd_per_kwh, series.load, series.renewables)
    if not all(np.isfinite(frame.to_numpy(dtype=float)).all() for frame in frames):
        return ["timeseries: the profile set gives non-finite values over this run (a"
                f" profile that is zero over all its days?) (got {scenario.timeseries!r})"]
    return []


def _units(scenario: Scenario) -> Iterator[tuple[str, str]]:
    """Yield ``(field path, name)`` of every unit of every microgrid."""
    for i, mg in enumerate(scenario.microgrids):
        for kind in mg.unit_fields():
            for j, unit in enumerate(getattr(mg, kind)):
                yield f"microgrids[{i}].{kind}[{j}].name", unit.name


def _duplicates(items: list[tuple[str, object]], what: str) -> list[str]:
    """Report every item whose value was already used by an earlier item."""
    first: dict[object, str] = {}
    problems = []
    for path, value in items:
        if value in first:
            problems.append(f"{path}: {what}, already used by {first[value]} (got {value!r})")
        else:
            first[value] = path.rsplit(".", 1)[0]
    return problems


def check_unique_names(scenario: Scenario) -> list[str]:
    """Check that microgrid names are unique, and unit names unique within the scenario.

    Args:
        scenario: The scenario to check.

    Returns:
        One message per repeated name (the first use is not reported).

    """
    names = [(f"microgrids[{i}].name", mg.name) for i, mg in enumerate(scenario.microgrids)]
    return [
        *_duplicates(names, "duplicate microgrid name"),
        *_duplicates(list(_units(scenario)), "duplicate unit name"),
    ]


def check_unique_buses(scenario: Scenario) -> list[str]:
    """Check that no two microgrids, and no two SVCs, share a bus.

    Args:
        scenario: The scenario to check.

    Returns:
        One message per repeated bus (the first use is not reported).

    """
    mg_buses = [(f"microgrids[{i}].bus", mg.bus) for i, mg in enumerate(scenario.microgrids)]
    svc_buses = [(f"svcs[{i}].bus", svc.bus) for i, svc in enumerate(scenario.svcs)]
    return [
        *_duplicates(mg_buses, "at most one microgrid per bus"),
        *_duplicates(svc_buses, "at most one SVC per bus"),
    ]


def check_generators(scenario: Scenario) -> list[str]:
    """Check that every generator's ramp limit lets it start up from off.

    A unit that is off and turns on must reach at least ``p_min_kw`` within one slot,
    so ``ramp_kw_per_slot < p_min_kw`` makes it impossible to ever start.

    Args:
        scenario: The scenario to check.

    Returns:
        One message per generator that can never start.

    """
    problems = []
    for i, mg in enumerate(scenario.microgrids):
        for j, gen in enumerate(mg.generators):
            if gen.ramp_kw_per_slot < gen.p_min_kw:
                problems.append(
                    f"microgrids[{i}].generators[{j}].ramp_kw_per_slot: must be at least"
                    f" p_min_kw = {gen.p_min_kw} or the unit can never start from off"
                    f" (got {gen.ramp_kw_per_slot})"
                )
    return problems
