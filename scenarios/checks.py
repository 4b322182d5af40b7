"""Cross-field checks of a field-valid :class:`~scenarios.schema.Scenario`.

The pydantic models check each field (and each model's own fields against each other);
the checks here relate different parts of a scenario to one another and to the network
data set: profile lengths against the horizon, buses against the network, name and bus
uniqueness, and generator start-up feasibility. Every check returns messages instead of
raising, so that all problems of a scenario can be reported at once. Each message reads
``<field.path>: <what is wrong> (got <value>)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from gridcosim.scenarios.schema import Scenario

PROFILE_FIELDS = ("price", "load", "renewables")
UNIT_KINDS = ("generators", "renewables", "storage")


def check_scenario(scenario: Scenario) -> list[str]:
    """Run every cross-field check on a scenario that passed field validation.

    Args:
        scenario: A scenario built by ``Scenario.model_validate``.

    Returns:
        One message per problem, in a stable order; empty if the scenario is consistent.

    """
    return [
        *check_profiles(scenario),
        *check_network_buses(scenario),
        *check_unique_names(scenario),
        *check_unique_buses(scenario),
        *check_generators(scenario),
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


@lru_cache(maxsize=8)
def _network_buses(source: str) -> tuple[frozenset[int], int]:
    """Bus ids and root bus of a built-in network data set (read once per process)."""
    from gridcosim.scenarios.network import load_network  # lazy: pulls in pandas

    network = load_network(source)
    return frozenset(int(bus) for bus in network.bus_ids), int(network.root_bus)


def check_network_buses(scenario: Scenario) -> list[str]:
    """Check that microgrid and SVC buses exist and that no microgrid sits at the root.

    Args:
        scenario: The scenario to check.

    Returns:
        One message per unknown bus or root-bus microgrid, or a single message naming
        ``network.source`` if the network data set cannot be loaded.

    """
    source = scenario.network.source
    try:
        buses, root = _network_buses(source)
    except (OSError, ValueError, KeyError) as exc:
        return [f"network.source: cannot load network data set: {exc} (got {source!r})"]
    located = [(f"microgrids[{i}].bus", mg.bus) for i, mg in enumerate(scenario.microgrids)]
    located += [(f"svcs[{i}].bus", svc.bus) for i, svc in enumerate(scenario.svcs)]
    problems = [
        f"{path}: no such bus in network {source!r} (got {bus})"
        for path, bus in located
        if bus not in buses
    ]
    problems += [
        f"microgrids[{i}].bus: a microgrid cannot sit at the root bus {root} (got {mg.bus})"
        for i, mg in enumerate(scenario.microgrids)
        if mg.bus == root
    ]
    return problems


def _units(scenario: Scenario) -> Iterator[tuple[str, str]]:
    """Yield ``(field path, name)`` of every unit of every microgrid."""
    for i, mg in enumerate(scenario.microgrids):
        for kind in UNIT_KINDS:
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
