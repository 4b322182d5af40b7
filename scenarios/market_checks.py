"""Cross-field checks of a scenario's ``[market]`` table (see :mod:`scenarios.checks`).

A market runs on a three-phase feeder with one day per market window: hourly slots, 24 of
them, and the multi-day ``[timeseries]`` profiles (the aggregator's daily price cap and the
day's LMP profile are daily). Customers are the feeder's loads, named as the feeder names
them; DERs sit on buses and phases the feeder has. Messages read
``<field.path>: <what is wrong> (got <value>)``.
"""

from __future__ import annotations

from gridcosim.scenarios.schema import Scenario


def check_market(scenario: Scenario) -> list[str]:
    """Every problem of the ``[market]`` table (empty without one)."""
    if scenario.market is None:
        return []
    problems = _time_problems(scenario)
    facts = _feeder_facts(scenario)
    if facts is None:
        return [*problems, f"network.source: a market needs a three-phase feeder (eulv, "
                           f"ieee123-3ph, an OpenDSS file, a pandapower net read with phases "
                           f"= 'three-phase') (got {scenario.network.source!r})"]
    loads, bus_phases = facts
    return problems + _customer_problems(scenario, loads) + _der_problems(scenario, bus_phases)


def check_microgrids_or_market(scenario: Scenario) -> list[str]:
    """Microgrids for the DSO–microgrid coordination, or a market, not both, not neither."""
    if scenario.market is None and not scenario.microgrids:
        return ["microgrids: at least one microgrid is needed for the DSO-microgrid "
                "coordination, or a [market] table (got [])"]
    if scenario.market is not None and scenario.microgrids:
        return [f"microgrids: a [market] scenario has no [[microgrids]] (its upstream "
                f"microgrid is [market.upstream]) (got {len(scenario.microgrids)} microgrids)"]
    return []


def _time_problems(scenario: Scenario) -> list[str]:
    problems = []
    if scenario.timeseries is None:
        problems.append("timeseries: a market needs the [timeseries] profile set (its PV, "
                        "wind, class and price shapes) (got [profiles])")
    if scenario.horizon.slot_hours != 1.0:
        problems.append(f"horizon.slot_hours: a market runs hourly slots (the daily price "
                        f"cap counts 24 hourly prices) (got {scenario.horizon.slot_hours})")
    if scenario.horizon.slots != 24:
        problems.append(f"horizon.slots: a market window is one day of 24 slots "
                        f"(got {scenario.horizon.slots})")
    return problems


def _feeder_facts(scenario: Scenario) -> tuple[frozenset[str], dict[int, str]] | None:
    """Load names and each bus's phases of a three-phase feeder (``None``: not one)."""
    from gridcosim.scenarios.errors import ScenarioError
    from gridcosim.scenarios.network import network_for
    from gridcosim.scenarios.phase_network import PhaseNetwork

    try:
        network = network_for(scenario)
    except (ScenarioError, OSError, ValueError, KeyError):
        return None  # the network checks report why it cannot be read
    if not isinstance(network, PhaseNetwork):
        return None
    phases = {int(bus): str(p) for bus, p in network.buses["phases"].items()}
    return frozenset(str(n) for n in network.loads.index), phases


def _customer_problems(scenario: Scenario, loads: frozenset[str]) -> list[str]:
    customers = scenario.market.customers  # type: ignore[union-attr]
    problems, first = [], {}
    for cls, names in customers.classes.items():
        for j, name in enumerate(names):
            path = f"market.customers.classes.{cls}[{j}]"
            if name not in loads:
                problems.append(f"{path}: no such load in the feeder (got {name!r})")
            elif name in first:
                problems.append(f"{path}: a customer belongs to one class, already listed at"
                                f" {first[name]} (got {name!r})")
            else:
                first[name] = path
        if cls != "residential" and names and cls not in customers.nominal_kw:
            problems.append(f"market.customers.nominal_kw: no size for the {cls} customers "
                            f"(got {sorted(customers.nominal_kw)})")
    return problems


def _der_problems(scenario: Scenario, bus_phases: dict[int, str]) -> list[str]:
    problems, names = [], set()
    for i, der in enumerate(scenario.market.ders):  # type: ignore[union-attr]
        path = f"market.ders[{i}]"
        if der.name in names or der.name == "upstream":
            problems.append(f"{path}.name: duplicate DER name, or the upstream microgrid's "
                            f"name 'upstream' (got {der.name!r})")
        names.add(der.name)
        have = bus_phases.get(der.bus)
        if have is None:
            problems.append(f"{path}.bus: no such bus in the feeder (got {der.bus})")
        elif not set(der.phases) <= set(have):
            problems.append(f"{path}.phases: bus {der.bus} has phases {have!r} "
                            f"(got {der.phases!r})")
    return problems
