"""A user's OpenDSS feeder, read as a three-phase network.

The master file is compiled by OpenDSS and read below its root (the bus of
``Vsource.source`` unless ``[network] root_bus`` names another) by
:func:`scenarios.phase_sources.opendss_source.read_opendss`. Bus ids: an OpenDSS bus whose
name is an integer keeps it as its id; the other buses (``sourcebus``, ``rg60``, ...) are
numbered after the largest integer name, in sorted name order, and a scenario may
reference any bus by its name (a string). Transformers that a ``RegControl`` drives are
regulators at neutral tap (their buses merged); any other transformer ends the feeder
(the three-phase layer has no transformer model): loads behind one are an error that
names it, so that the user can give a ``root_bus`` below it.
"""

from __future__ import annotations

from pathlib import Path

import opendssdirect as dss

from gridcosim.scenarios.errors import ScenarioError
from gridcosim.scenarios.phase_network import PhaseNetwork
from gridcosim.scenarios.phase_sources.opendss_source import compile_feeder, read_opendss


def opendss_bus_ids(names: list[str]) -> dict[str, int]:
    """Integer names keep their value; the others follow the largest, in sorted order."""
    ids = {n: int(n) for n in names if n.isdigit()}
    nxt = max(ids.values(), default=0) + 1
    for n in sorted(set(names) - set(ids)):
        ids[n] = nxt
        nxt += 1
    return ids


def read_user_opendss(master: Path, *, base_kva: float, base_kv: float | None,
                      root: str | None) -> PhaseNetwork:
    """A user's OpenDSS feeder as a :class:`PhaseNetwork` (see the module doc).

    Raises:
        ScenarioError: Missing file, compile error, unknown root, a transformer below the
            root, loads no line reaches, or a feeder that is not radial.

    """
    if not master.is_file():
        raise ScenarioError([f"network.source: no such file {master}"])
    compile_feeder(master)
    names = [b.lower() for b in dss.Circuit.AllBusNames()]
    root_name = (root or _source_bus()).lower()
    if root_name not in names:
        raise ScenarioError([f"network.root_bus: no bus {root_name!r} in {master.name}"])
    kv = base_kv if base_kv is not None else _kv_ll(root_name)
    ids = opendss_bus_ids(names)
    network = read_opendss(master, name=master.stem, root=root_name, base_kva=base_kva,
                           base_kv=kv, bus_id=ids.__getitem__)
    problems = _unread_elements(set(network.buses["name"]), root_name)
    if problems:
        raise ScenarioError([f"{master.name}: {p}" for p in problems])
    return network


def _source_bus() -> str:
    dss.Circuit.SetActiveElement("Vsource.source")
    return dss.CktElement.BusNames()[0].split(".")[0]


def _kv_ll(bus: str) -> float:
    """Line-to-line nominal voltage of ``bus`` (OpenDSS's kVBase is line to neutral)."""
    dss.Circuit.SetActiveBus(bus)
    kv = float(dss.Bus.kVBase()) * 3**0.5
    if kv <= 0:
        raise ScenarioError([f"network.base_kv: bus {bus} has no voltage base in the OpenDSS "
                             "file (set voltagebases and calcvoltagebases, or give base_kv)"])
    return kv


def _unread_elements(reached: set[str], root: str) -> list[str]:
    """Loads that no line connects to the root (naming the transformers in the way).

    A transformer that is not a regulator ends the feeder that is read: what lies behind it
    is not part of the network. That is harmless where it feeds no load (IEEE 123's XFM1
    to the unloaded bus 610) and refused where it does.
    """
    regulated = set()
    i = dss.RegControls.First()
    while i:
        regulated.add(dss.RegControls.Transformer().lower())
        i = dss.RegControls.Next()
    cut = []
    i = dss.Transformers.First()
    while i:
        name = dss.Transformers.Name().lower()
        buses = sorted({b.split(".")[0].lower() for b in dss.CktElement.BusNames()})
        if name not in regulated and set(buses) & reached:
            cut.append(f"{name} ({'-'.join(buses)})")
        i = dss.Transformers.Next()
    unreached = []
    i = dss.Loads.First()
    while i:
        bus = dss.CktElement.BusNames()[0].split(".")[0].lower()
        if bus not in reached:
            unreached.append(f"{dss.Loads.Name()} at bus {bus}")
        i = dss.Loads.Next()
    if not unreached:
        return []
    hint = (f"; transformers are not modelled in three-phase networks and end the feeder "
            f"({', '.join(cut)}): give [network] root_bus below them" if cut else "")
    return [f"{len(unreached)} loads are not connected to the root {root} by lines "
            f"({', '.join(unreached[:5])}{', ...' if len(unreached) > 5 else ''}){hint}"]
