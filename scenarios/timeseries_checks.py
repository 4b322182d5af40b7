"""Cross-field checks of a scenario whose ``[timeseries]`` reads a time-series file.

Called by :func:`gridcosim.scenarios.checks.check_timeseries`. Like every check there, each
returns messages ``<field.path>: <what is wrong> (got <value>)`` instead of raising. The
file itself is read (once, cached) only when the scenario's own fields are consistent.
"""

from __future__ import annotations

import math

from gridcosim.scenarios.errors import ScenarioError
from gridcosim.scenarios.schema import Scenario
from gridcosim.scenarios.timeseries_schema import SeriesColumn, SeriesTarget, duplicate_columns

HOURS_PER_DAY = 24
#: Unit fields whose units have a forecast a file can give.
FORECAST_FIELDS = ("renewables", "curtailable_loads")


def check_timeseries_file(scenario: Scenario) -> list[str]:
    """Check a file-based ``[timeseries]``: slots, column targets, then the file itself.

    Args:
        scenario: A scenario with ``timeseries.file``.

    Returns:
        One message per problem.

    """
    problems = [*_market_problems(scenario), *_slot_problems(scenario),
                *duplicate_columns(scenario.timeseries.columns),
                *_target_problems(scenario)]
    if problems:
        return problems
    from gridcosim.scenarios.series import scenario_series

    try:
        scenario_series(scenario)
    except ScenarioError as exc:
        return exc.problems
    return []


def _market_problems(scenario: Scenario) -> list[str]:
    if scenario.market is None:
        return []
    return [f"timeseries.file: a market scenario runs on the shipped profile set, not a"
            f" time-series file (got {str(scenario.timeseries.file)!r})"]


def _slot_problems(scenario: Scenario) -> list[str]:
    slot_hours = scenario.horizon.slot_hours
    per_day = HOURS_PER_DAY / slot_hours
    if not math.isclose(per_day, round(per_day), rel_tol=1e-9):
        return [f"horizon.slot_hours: with a time-series file must divide a day into whole"
                f" slots (got {slot_hours})"]
    if scenario.horizon.slots > scenario.total_slots:
        return [f"horizon.slots: must not exceed the run's timeseries.days * 24 /"
                f" horizon.slot_hours = {scenario.total_slots} slots"
                f" (got {scenario.horizon.slots})"]
    return []


def _target_problems(scenario: Scenario) -> list[str]:
    problems = []
    facts = _facts(scenario)
    for i, col in enumerate(scenario.timeseries.columns):
        if col.target is SeriesTarget.BUS and facts is not None:
            problems += _bus_problem(scenario, col, i, facts)
        elif col.target is SeriesTarget.UNIT:
            problems += _unit_problem(scenario, col, i)
        elif col.target is SeriesTarget.LOCAL_LOAD:
            if col.microgrid not in {mg.name for mg in scenario.microgrids}:
                problems.append(f"timeseries.columns[{i}].microgrid: no such microgrid in the"
                                f" scenario (got {col.microgrid!r})")
    return problems


def _facts(scenario: Scenario) -> object | None:
    """The network's buses (``None`` if it cannot be read: reported by the bus checks)."""
    from gridcosim.scenarios.network_checks import network_facts

    try:
        return network_facts(scenario)
    except (ScenarioError, OSError, ValueError, KeyError):
        return None


def _bus_problem(scenario: Scenario, col: SeriesColumn, i: int, facts: object) -> list[str]:
    path, source = f"timeseries.columns[{i}].bus", scenario.network.source
    if col.bus not in facts.buses:
        return [f"{path}: no such bus in network {source!r} (got {col.bus})"]
    if col.bus not in facts.load_buses:
        return [f"{path}: bus has no load in network {source!r}; a file column gives the"
                f" load of a load bus (got {col.bus})"]
    return []


def _unit_problem(scenario: Scenario, col: SeriesColumn, i: int) -> list[str]:
    path = f"timeseries.columns[{i}].unit"
    mg_name, unit_name = col.unit.split("/", 1)
    mg = next((m for m in scenario.microgrids if m.name == mg_name), None)
    if mg is None:
        return [f"{path}: no such microgrid {mg_name!r} in the scenario (got {col.unit!r})"]
    if any(u.name == unit_name for f in FORECAST_FIELDS for u in getattr(mg, f)):
        return []
    other = any(u.name == unit_name for u in mg.units())
    what = ("is neither a renewable nor a curtailable load, the units with a forecast" if other
            else f"no such unit in microgrid {mg_name!r}")
    return [f"{path}: {what} (got {col.unit!r})"]
