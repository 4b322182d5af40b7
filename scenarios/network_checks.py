"""Cross-field checks of a scenario against its network (see :mod:`scenarios.checks`).

The network is read once per source (:func:`scenarios.network.network_for` caches it);
a source that cannot be read is reported as the ``network.source`` problem. Messages
read ``<field.path>: <what is wrong> (got <value>)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from gridcosim.scenarios.errors import ScenarioError
from gridcosim.scenarios.schema import Scenario


@dataclass(frozen=True)
class NetworkFacts:
    """What the checks need to know about a network data set."""

    buses: frozenset[int]
    root: int
    load_buses: frozenset[int]


def check_ac_engine(scenario: Scenario) -> list[str]:
    """OpenDSS runs three-phase feeders only; a balanced one runs on pandapower."""
    from gridcosim.scenarios.network_sources import PhaseModel, SourceKind, parse_source
    from gridcosim.scenarios.phase_sources.builtin import PHASE_NETWORKS

    spec = scenario.network
    three_phase = (spec.source in PHASE_NETWORKS or spec.phases is PhaseModel.THREE_PHASE
                   or parse_source(spec.source).kind is SourceKind.OPENDSS)
    if str(spec.ac_engine) != "opendss" or three_phase:
        return []
    return [f"network.ac_engine: 'opendss' needs a three-phase network source "
            f"({', '.join(PHASE_NETWORKS)}); the balanced {spec.source!r} runs on pandapower "
            f"(got 'opendss')"]


def network_facts(scenario: Scenario) -> NetworkFacts:
    """Buses, root bus and load buses of the scenario's network (read once: cached)."""
    from gridcosim.scenarios.network import network_for  # lazy: pulls in pandas

    network = network_for(scenario)
    loads = network.load_p_kw
    return NetworkFacts(buses=frozenset(int(bus) for bus in network.bus_ids),
                        root=int(network.root_bus),
                        load_buses=frozenset(int(bus) for bus in loads.index[loads > 0]))


def check_network_buses(scenario: Scenario) -> list[str]:
    """Check microgrid, SVC and customer-class buses against the network.

    Microgrid and SVC buses must exist and not be the root bus (where the substation
    absorbs every injection); buses listed in ``timeseries.customer_classes`` must exist,
    carry a load and be listed once.

    Args:
        scenario: The scenario to check.

    Returns:
        One message per unknown or misplaced bus, or a single message naming
        ``network.source`` if the network data set cannot be loaded.

    """
    source = scenario.network.source
    try:
        facts = network_facts(scenario)
    except ScenarioError as exc:
        return exc.problems
    except (OSError, ValueError, KeyError) as exc:
        return [f"network.source: cannot load network data set: {exc} (got {source!r})"]
    located = [(f"microgrids[{i}].bus", mg.bus) for i, mg in enumerate(scenario.microgrids)]
    located += [(f"svcs[{i}].bus", svc.bus) for i, svc in enumerate(scenario.svcs)]
    problems = [
        f"{path}: no such bus in network {source!r} (got {bus})"
        for path, bus in located
        if bus not in facts.buses
    ]
    problems += [
        f"{path}: {'a microgrid' if path[0] == 'm' else 'an SVC'} cannot sit at the root bus"
        f" {facts.root}, where the substation balances everything (got {bus})"
        for path, bus in located
        if bus == facts.root
    ]
    return problems + check_customer_classes(scenario, facts)


def check_customer_classes(scenario: Scenario, facts: NetworkFacts) -> list[str]:
    """Check that every bus of ``timeseries.customer_classes`` is a load bus, listed once.

    Args:
        scenario: The scenario to check.
        facts: Its network's buses.

    Returns:
        One message per unknown bus, bus without load, or bus listed again.

    """
    if scenario.timeseries is None:
        return []
    source, first, problems = scenario.network.source, {}, []
    for cls, buses in scenario.timeseries.customer_classes.items():
        for j, bus in enumerate(buses):
            path = f"timeseries.customer_classes.{cls}[{j}]"
            if bus not in facts.buses:
                problems.append(f"{path}: no such bus in network {source!r} (got {bus})")
            elif bus not in facts.load_buses:
                problems.append(f"{path}: bus has no load in network {source!r}, so a"
                                f" customer class has no effect (got {bus})")
            elif bus in first:
                problems.append(f"{path}: a bus belongs to one class, already listed at"
                                f" {first[bus]} (got {bus})")
            else:
                first[bus] = path
    return problems
