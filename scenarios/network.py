"""Radial distribution network data (buses, branches, loads, shunts) read from package CSVs.

The tables are produced by :mod:`scenarios.tools.convert_ieee123`; see
``scenarios/data/<name>/README.md`` for provenance and modelling decisions. This module has
no power-flow dependency: :mod:`scenarios.pandapower_net` turns the data into a pandapower net.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING

import pandas as pd

from gridcosim.scenarios.radial_tree import breadth_first, path_to_root

if TYPE_CHECKING:
    from gridcosim.scenarios.phase_network import PhaseNetwork
    from gridcosim.scenarios.schema import Scenario

#: Default power base (kVA) and line-to-line voltage base (kV): those of the IEEE 123-bus
#: data (a scenario's ``[network]`` base_kva / base_kv override them, see :func:`network_for`).
BASE_KVA = 1000.0
BASE_KV = 4.16
#: File name of a built-in data set stored as a pandapower net (``pandapower.to_json``).
PANDAPOWER_FILE = "net.json"


@dataclass(frozen=True, eq=False)
class NetworkData:
    """A radial network: tables indexed by bus id (branches by branch name).

    Attributes:
        name: Data set name (folder under ``scenarios/data``).
        base_kva: Power base in kVA.
        base_kv: Line-to-line voltage base in kV.
        root_bus: Bus id of the slack / substation bus.
        buses: ``name_ieee``, ``x``, ``y`` indexed by ``bus``.
        branches: ``from_bus`` (parent), ``to_bus`` (child), ``kind`` (line|switch),
            ``linecode``, ``length_kft``, ``r_ohm``, ``x_ohm``, ``c_nf``, ``r_pu``, ``x_pu``
            indexed by ``branch``; ``r_pu`` and ``x_pu`` are the ohms over
            :attr:`z_base_ohm`, i.e. on this network's own base.
        loads: ``p_kw``, ``q_kvar``, ``model`` (PQ/Z/I, informational) indexed by ``bus``.
        shunts: ``q_kvar`` (capacitor injection at nominal voltage) indexed by ``bus``.
        ac_net_json: The source pandapower net (``pandapower.to_json``) of a network read
            from pandapower, on which the AC validation runs; ``None`` for the shipped
            tables, whose AC net :mod:`scenarios.pandapower_net` builds.

    Networks read from pandapower carry more columns: ``buses.vn_kv`` (each bus's own
    voltage base), ``branches.z_base_kv`` (the voltage level a branch's ohms refer to),
    ``branches.s_max_kva`` (rating) and ``branches.v_ratio`` (a transformer's squared
    off-nominal ratio, 1 elsewhere).

    """

    name: str
    base_kva: float
    base_kv: float
    root_bus: int
    buses: pd.DataFrame
    branches: pd.DataFrame
    loads: pd.DataFrame
    shunts: pd.DataFrame
    ac_net_json: str | None = None

    @property
    def z_base_ohm(self) -> float:
        """Impedance base in ohm."""
        return self.base_kv**2 * 1000.0 / self.base_kva

    def with_base(self, base_kva: float, base_kv: float | None) -> NetworkData:
        """The same network on another base (``r_pu``, ``x_pu`` recomputed from the ohms).

        Args:
            base_kva: Power base in kVA.
            base_kv: Line-to-line voltage base (the feeder's nominal voltage) in kV;
                ``None`` keeps the network's own.

        Returns:
            ``self`` if the base is unchanged, otherwise a new network, the same object for
            repeated calls with the same base (models built for it can be reused).

        """
        key = (float(base_kva), self.base_kv if base_kv is None else float(base_kv))
        if key == (self.base_kva, self.base_kv):
            return self
        if key not in self._rebased:
            branches = per_unit_branches(self.branches, *key)
            self._rebased[key] = replace(self, base_kva=key[0], base_kv=key[1],
                                         branches=branches)
        return self._rebased[key]

    @cached_property
    def _rebased(self) -> dict[tuple[float, float], NetworkData]:
        return {}

    @cached_property
    def parent(self) -> dict[int, int]:
        """Parent bus of every non-root bus."""
        return {int(b.to_bus): int(b.from_bus) for b in self.branches.itertuples()}

    @cached_property
    def children(self) -> dict[int, tuple[int, ...]]:
        """Child buses of every bus (empty tuple for leaves), sorted by id."""
        kids: dict[int, list[int]] = {int(bus): [] for bus in self.buses.index}
        for child, parent in self.parent.items():
            kids.setdefault(parent, []).append(child)
        return {bus: tuple(sorted(c)) for bus, c in kids.items()}

    @cached_property
    def branch_of(self) -> dict[int, str]:
        """Branch label (index of :attr:`branches`) feeding each non-root bus."""
        return {int(row.to_bus): str(label) for label, row in self.branches.iterrows()}

    @cached_property
    def bus_ids(self) -> tuple[int, ...]:
        """Bus ids in breadth-first order from the root (parents before children)."""
        return breadth_first(self.root_bus, self.children)

    def path_to_root(self, bus: int) -> tuple[int, ...]:
        """``(bus, parent(bus), ..., root_bus)``."""
        return path_to_root(bus, self.root_bus, self.parent, len(self.buses))

    def is_radial_and_connected(self) -> bool:
        """Whether the branches form a spanning tree rooted at :attr:`root_bus`."""
        bus_set = {int(b) for b in self.buses.index}
        ends = set(self.branches["from_bus"]) | set(self.branches["to_bus"])
        return (
            len(self.branches) == len(bus_set) - 1
            and self.branches["to_bus"].is_unique
            and self.root_bus not in set(self.branches["to_bus"])
            and ends <= bus_set
            and set(self.bus_ids) == bus_set
        )

    def _per_bus(self, frame: pd.DataFrame, column: str) -> pd.Series:
        values = frame[column].groupby(level=0).sum()
        return values.reindex(self.buses.index, fill_value=0.0).astype(float).rename(column)

    @cached_property
    def load_p_kw(self) -> pd.Series:
        """Nominal active load per bus in kW (0 where there is no load)."""
        return self._per_bus(self.loads, "p_kw")

    @cached_property
    def load_q_kvar(self) -> pd.Series:
        """Nominal reactive load per bus in kvar (0 where there is no load)."""
        return self._per_bus(self.loads, "q_kvar")

    @cached_property
    def shunt_q_kvar(self) -> pd.Series:
        """Capacitor injection per bus in kvar at nominal voltage (0 where none)."""
        return self._per_bus(self.shunts, "q_kvar")


def _read(folder: Traversable, stem: str, index: str) -> pd.DataFrame:
    with (folder / f"{stem}.csv").open("r", encoding="utf-8") as handle:
        frame = pd.read_csv(handle, dtype={"name_ieee": str, "branch": str, "linecode": str})
    return frame.set_index(index)


def per_unit_branches(branches: pd.DataFrame, base_kva: float, base_kv: float) -> pd.DataFrame:
    """Branches with ``r_pu``, ``x_pu`` computed from ``r_ohm``, ``x_ohm`` on a base.

    Args:
        branches: Branch table with ``r_ohm`` and ``x_ohm`` columns.
        base_kva: Power base in kVA.
        base_kv: Line-to-line voltage base in kV.

    Returns:
        A copy with ``r_pu = r_ohm / z_base`` and ``x_pu = x_ohm / z_base``, where
        ``z_base = kv**2 * 1000 / base_kva`` ohm and ``kv`` is the branch's own voltage
        level (column ``z_base_kv``, networks of several levels) or ``base_kv``.

    """
    kv = branches["z_base_kv"].astype(float) if "z_base_kv" in branches else base_kv
    z_base_ohm = kv**2 * 1000.0 / base_kva
    out = branches.copy()
    out["r_pu"] = out["r_ohm"].astype(float) / z_base_ohm
    out["x_pu"] = out["x_ohm"].astype(float) / z_base_ohm
    return out


def available_networks() -> list[str]:
    """Names of the network data sets shipped: balanced tables, pandapower nets, three-phase."""
    from gridcosim.scenarios.phase_sources.builtin import PHASE_NETWORKS

    folder = files("gridcosim.scenarios") / "data"
    return sorted([e.name for e in folder.iterdir()
                   if (e / "buses.csv").is_file() or (e / PANDAPOWER_FILE).is_file()]
                  + list(PHASE_NETWORKS))


def load_network(name: str = "ieee123", *, base_kva: float = BASE_KVA,
                 base_kv: float | None = None) -> NetworkData | PhaseNetwork:
    """Load a built-in network data set from the ``scenarios`` package data.

    Args:
        name: Data set name: a folder under ``scenarios/data`` holding tables
            (``buses.csv``, ...) or a pandapower net (``net.json``), or a three-phase feeder.
        base_kva: Power base in kVA.
        base_kv: Line-to-line voltage base in kV (the feeder's nominal voltage); ``None``
            takes the data set's own (4.16 kV for ``ieee123``).

    Returns:
        The network data on the given base; bus 1 is the root for ``ieee123``.

    Raises:
        FileNotFoundError: If the data set does not exist.

    """
    from gridcosim.scenarios.phase_sources.builtin import is_phase_network, load_phase_network

    if is_phase_network(name):  # three-phase feeders are read from their OpenDSS files
        phase = load_phase_network(name)
        return phase.with_base(base_kva, phase.base_kv if base_kv is None else base_kv)
    folder = files("gridcosim.scenarios") / "data" / name
    if (folder / PANDAPOWER_FILE).is_file():
        from gridcosim.scenarios.network_sources.readers import builtin_pandapower

        return builtin_pandapower(folder, name, base_kva, base_kv)
    if not (folder / "buses.csv").is_file():
        known = ", ".join(available_networks()) or "none"
        raise FileNotFoundError(f"no network data set {name!r} in scenarios/data ({known})")
    base_kv = BASE_KV if base_kv is None else float(base_kv)
    branches = per_unit_branches(_read(folder, "branches", "branch"), base_kva, base_kv)
    root = set(branches["from_bus"]) - set(branches["to_bus"])
    if len(root) != 1:
        raise ValueError(f"network {name!r}: expected one root bus, found {sorted(root)}")
    return NetworkData(
        name=name,
        base_kva=float(base_kva),
        base_kv=float(base_kv),
        root_bus=int(root.pop()),
        buses=_read(folder, "buses", "bus"),
        branches=branches,
        loads=_read(folder, "loads", "bus"),
        shunts=_read(folder, "shunts", "bus"),
    )


def network_for(scenario: Scenario) -> NetworkData | PhaseNetwork:
    """The network of a scenario: its ``[network] source`` read on its base.

    Args:
        scenario: A validated scenario (file paths in ``source`` are absolute).

    Returns:
        The network (cached per source, base and file modification time:
        :func:`scenarios.network_sources.read_cached`).

    Raises:
        ScenarioError: If the source cannot be read or is not a radial feeder.

    """
    from gridcosim.scenarios.network_sources import modification_time, parse_source, read_cached

    spec = scenario.network
    source = parse_source(spec.source)
    return read_cached(source, modification_time(source), float(spec.base_kva),
                       None if spec.base_kv is None else float(spec.base_kv), spec.phases,
                       spec.root_bus)


def network_from_source(source: str) -> NetworkData | PhaseNetwork:
    """The network a ``[network] source`` string names, on its own base (e.g. for a viewer).

    Raises:
        ScenarioError, OSError, ValueError: If the source cannot be read.

    """
    from gridcosim.scenarios.network_sources import (
        PhaseModel,
        modification_time,
        parse_source,
        read_cached,
    )

    parsed = parse_source(source)
    return read_cached(parsed, modification_time(parsed), BASE_KVA, None, PhaseModel.BALANCED,
                       None)
