"""Buses referenced by name: a scenario's string bus references resolved to the network's ids.

A network numbers its buses by the source's own ids (pandapower bus indices, OpenDSS
integer bus names); a bus can also be referenced by the name the source gives it, as a
string (``bus = "rg60"``). After the fields are validated, :func:`resolve_bus_names`
replaces every such name by the bus's id, so that everything downstream sees ids only.
"""

from __future__ import annotations

from gridcosim.scenarios.errors import ScenarioError
from gridcosim.scenarios.schema import Scenario


def bus_names(network: object) -> dict[str, int]:
    """Bus name -> id of a network (``name`` of three-phase, ``name_ieee`` of balanced data).

    Names that several buses share are left out (they cannot name one bus).
    """
    buses = network.buses  # type: ignore[attr-defined]
    column = "name" if "name" in buses else "name_ieee"
    names: dict[str, int] = {}
    shared: set[str] = set()
    for bus, name in buses[column].items():
        key = str(name).lower()
        if key in names:
            shared.add(key)
        names[key] = int(bus)
    return {k: v for k, v in names.items() if k not in shared}


def _named(scenario: Scenario) -> list[tuple[str, str]]:
    refs = [(f"microgrids[{i}].bus", mg.bus) for i, mg in enumerate(scenario.microgrids)]
    refs += [(f"svcs[{i}].bus", svc.bus) for i, svc in enumerate(scenario.svcs)]
    columns = scenario.timeseries.columns if scenario.timeseries is not None else ()
    refs += [(f"timeseries.columns[{i}].bus", col.bus) for i, col in enumerate(columns)]
    return [(path, bus) for path, bus in refs if isinstance(bus, str)]


def resolve_bus_names(scenario: Scenario) -> Scenario:
    """The scenario with every bus given by name replaced by its id.

    Raises:
        ScenarioError: Naming each reference whose name is not a bus of the network, or a
            network that cannot be read.

    """
    named = _named(scenario)
    if not named:
        return scenario
    from gridcosim.scenarios.network import network_for

    ids = bus_names(network_for(scenario))
    problems = [f"{path}: no bus named {name!r} in the network (got {name!r})"
                for path, name in named if name.lower() not in ids]
    if problems:
        raise ScenarioError(problems)

    def bus_id(bus: int | str | None) -> int | None:
        return ids[bus.lower()] if isinstance(bus, str) else bus

    update = {"microgrids": tuple(mg.model_copy(update={"bus": bus_id(mg.bus)})
                                  for mg in scenario.microgrids),
              "svcs": tuple(s.model_copy(update={"bus": bus_id(s.bus)}) for s in scenario.svcs)}
    if scenario.timeseries is not None:
        update["timeseries"] = scenario.timeseries.model_copy(update={"columns": tuple(
            c.model_copy(update={"bus": bus_id(c.bus)}) for c in scenario.timeseries.columns)})
    return scenario.model_copy(update=update)
