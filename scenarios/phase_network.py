r"""Three-phase radial network data (docs/formulation.md §6a).

Buses and lines with their phases, phase impedance matrices, loads on their phases.

No power-flow dependency: the readers in :mod:`scenarios.phase_sources` fill these tables
from OpenDSS files or pandapower nets, the engines in :mod:`simulator.validation.phase_engines`
solve them, and :mod:`simulator.models.lindist3flow` linearises them.

Conventions: phases are the letters ``a``, ``b``, ``c``, a bus's or line's phases a sorted
string such as ``"abc"``, ``"ac"`` or ``"b"``. Impedances are in ohm, as full complex
matrices over the line's phases (in that order). A ``wye`` load on ``"abc"`` takes a third
of its power on each phase; a ``delta`` load names the two phases it is connected between
(``"ab"``, ``"bc"``, ``"ac"``). Per-unit quantities use the per-phase base
:math:`S_b/3` and :math:`V_b/\\sqrt{3}`, so that the impedance base is :math:`V_b^2/S_b`
as in the balanced model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import pandas as pd

from gridcosim.scenarios.radial_tree import breadth_first, path_to_root

PHASES = "abc"
CONNECTIONS = ("wye", "delta")


def phase_positions(phases: str) -> list[int]:
    """Positions (0, 1, 2) of the letters of ``phases`` in ``"abc"``."""
    return [PHASES.index(p) for p in phases]


@dataclass(frozen=True, eq=False)
class PhaseNetwork:
    """A radial three-phase network.

    Attributes:
        name: Data set name.
        base_kva: Three-phase power base in kVA.
        base_kv: Line-to-line voltage base in kV.
        root_bus: The slack bus.
        buses: ``name`` (the source's own name), ``phases``, ``x``, ``y``, indexed by ``bus``.
        lines: ``from_bus`` (parent), ``to_bus`` (child), ``phases``, ``kind``
            (line|switch), ``s_max_kva`` (per-phase rating, NaN where none), indexed by
            ``line``.
        z_ohm: Complex phase impedance matrix of every line (over its phases), in ohm.
        loads: ``bus``, ``phases``, ``conn`` (wye|delta), ``p_kw``, ``q_kvar`` (totals
            over the load's phases at nominal), indexed by ``load``.
        shunts: ``bus``, ``phases``, ``q_kvar`` (capacitor, total at nominal voltage),
            indexed by ``shunt``.
        load_shapes: Each load's own daily profile, multipliers of its nominal power per
            minute of the day (1440 rows, a column per load), or ``None``: then every
            load follows its customer class's profile alone.
        source_format: Where the data came from: ``"opendss"`` files or a
            ``"pandapower"`` net (the engine that reads it is the default engine).

    """

    name: str
    base_kva: float
    base_kv: float
    root_bus: int
    buses: pd.DataFrame
    lines: pd.DataFrame
    z_ohm: Mapping[str, np.ndarray]
    loads: pd.DataFrame
    shunts: pd.DataFrame
    load_shapes: pd.DataFrame | None = None
    source_format: str = "opendss"

    @property
    def z_base_ohm(self) -> float:
        """Impedance base in ohm (:math:`V_b^2 / S_b`)."""
        return self.base_kv**2 * 1000.0 / self.base_kva

    @property
    def phase_base_kva(self) -> float:
        """Per-phase power base :math:`S_b / 3` in kVA."""
        return self.base_kva / 3.0

    def z_pu(self, line: str) -> np.ndarray:
        """Phase impedance matrix of ``line`` in p.u., padded to 3×3 with zeros."""
        z = np.zeros((3, 3), dtype=complex)
        pos = phase_positions(str(self.lines.at[line, "phases"]))
        z[np.ix_(pos, pos)] = np.asarray(self.z_ohm[line]) / self.z_base_ohm
        return z

    def with_base(self, base_kva: float, base_kv: float | None) -> PhaseNetwork:
        """The same network on another base (impedances stay in ohm; ``base_kv=None``: own).

        Returns ``self`` when the base is unchanged, so models built for it are reused.
        """
        base_kv = self.base_kv if base_kv is None else base_kv
        if (float(base_kva), float(base_kv)) == (self.base_kva, self.base_kv):
            return self
        return replace(self, base_kva=float(base_kva), base_kv=float(base_kv))

    def _per_bus(self, column: str) -> pd.Series:
        values = self.loads.groupby("bus")[column].sum()
        return values.reindex(self.buses.index, fill_value=0.0).astype(float).rename(column)

    @cached_property
    def load_p_kw(self) -> pd.Series:
        """Nominal active load per bus in kW (all phases; 0 where none)."""
        return self._per_bus("p_kw")

    @cached_property
    def load_q_kvar(self) -> pd.Series:
        """Nominal reactive load per bus in kvar (all phases; 0 where none)."""
        return self._per_bus("q_kvar")

    @cached_property
    def load_shares(self) -> pd.DataFrame:
        """Each (bus, phase)'s share of its bus's nominal load: ``p``, ``q`` (§6a split).

        A bus's loads scale together, so its phase loads are these shares of the bus
        totals; a delta load's rotation moves part of Q into phase P, so ``p`` is the
        phase's kW over the bus's kW and ``q`` the phase's kvar over the bus's kvar.
        """
        phase = self.phase_loads()
        buses = phase.index.get_level_values("bus")
        p_bus = self.load_p_kw.reindex(buses).to_numpy()
        q_bus = self.load_q_kvar.reindex(buses).to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            return pd.DataFrame({"p": np.where(p_bus != 0, phase["p_kw"] / p_bus, 0.0),
                                 "q": np.where(q_bus != 0, phase["q_kvar"] / q_bus, 0.0)},
                                index=phase.index)

    def node_loads(self, load_kw: np.ndarray, load_kvar: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Node loads (:attr:`nodes` × slots) from bus loads (:attr:`bus_ids` × slots)."""
        bus_row = {bus: i for i, bus in enumerate(self.bus_ids)}
        rows = [bus_row[bus] for bus, _ in self.nodes]
        shares = self.load_shares.reindex(list(self.nodes))
        return (load_kw[rows] * shares["p"].to_numpy()[:, None],
                load_kvar[rows] * shares["q"].to_numpy()[:, None])

    def bus_shape_multipliers(self, slot_hours: float, slots: int) -> pd.DataFrame | None:
        """Each load bus's measured-shape multiplier per slot (bus × slot), or ``None``.

        Slot 0 starts at midnight of the shapes' day and the day repeats; a slot's value
        is the mean over its minutes, and a bus's multiplier the nominal-kW-weighted mean
        of its loads' shapes (a bus then draws ``nominal × multiplier``).
        """
        if self.load_shapes is None:
            return None
        minutes = np.arange(int(round(slots * slot_hours * 60))) % 1440
        per_slot = self.load_shapes.to_numpy()[minutes].reshape(slots, -1, len(self.loads))
        mean = per_slot.mean(axis=1)  # slots × loads
        weights = self.loads["p_kw"].to_numpy(float)
        out = {}
        for bus, rows in self.loads.groupby("bus").indices.items():
            total = weights[rows].sum()
            out[int(bus)] = (mean[:, rows] @ weights[rows] / total) if total > 0 else \
                mean[:, rows].mean(axis=1)
        return pd.DataFrame(out).T.sort_index()

    def is_radial_and_connected(self) -> bool:
        """Whether the lines form a spanning tree rooted at :attr:`root_bus`."""
        return not any("tree" in p for p in self.phase_problems())

    @cached_property
    def parent(self) -> dict[int, int]:
        """Parent bus of every non-root bus."""
        return {int(r.to_bus): int(r.from_bus) for r in self.lines.itertuples()}

    @cached_property
    def line_of(self) -> dict[int, str]:
        """Line feeding each non-root bus."""
        return {int(r.to_bus): str(label) for label, r in self.lines.iterrows()}

    @cached_property
    def children(self) -> dict[int, tuple[int, ...]]:
        """Child buses of every bus, sorted."""
        kids: dict[int, list[int]] = {int(b): [] for b in self.buses.index}
        for child, parent in self.parent.items():
            kids[parent].append(child)
        return {bus: tuple(sorted(c)) for bus, c in kids.items()}

    @cached_property
    def bus_ids(self) -> tuple[int, ...]:
        """Bus ids in breadth-first order from the root (parents before children)."""
        return breadth_first(self.root_bus, self.children)

    @cached_property
    def nodes(self) -> tuple[tuple[int, str], ...]:
        """Every (bus, phase) of the network, buses in :attr:`bus_ids` order."""
        return tuple((bus, p) for bus in self.bus_ids
                     for p in str(self.buses.at[bus, "phases"]))

    def path_to_root(self, bus: int) -> tuple[int, ...]:
        """``(bus, parent(bus), ..., root_bus)``."""
        return path_to_root(bus, self.root_bus, self.parent, len(self.buses))

    def phase_problems(self) -> list[str]:
        """What is inconsistent: a tree, phases nested along it, loads on existing phases."""
        problems = []
        if set(self.bus_ids) != {int(b) for b in self.buses.index} or not (
                self.lines["to_bus"].is_unique and len(self.lines) == len(self.buses) - 1):
            problems.append("the lines do not form a tree spanning every bus from the root")
        for label, line in self.lines.iterrows():
            phases = set(str(line.phases))
            if not phases <= set(str(self.buses.at[int(line.from_bus), "phases"])):
                problems.append(f"line {label}: phases {line.phases} not at its parent bus")
            if phases != set(str(self.buses.at[int(line.to_bus), "phases"])):
                problems.append(f"line {label}: phases {line.phases} differ from its bus")
            if np.shape(self.z_ohm[label]) != (len(phases), len(phases)):
                problems.append(f"line {label}: impedance matrix not {len(phases)}x{len(phases)}")
        for label, load in self.loads.iterrows():
            if not set(str(load.phases)) <= set(str(self.buses.at[int(load.bus), "phases"])):
                problems.append(f"load {label}: phases {load.phases} not at bus {load.bus}")
            if load.conn not in CONNECTIONS or (load.conn == "delta"
                                                 and len(str(load.phases)) not in (2, 3)):
                problems.append(f"load {label}: connection {load.conn} on {load.phases}")
        return problems

    def phase_loads(self, p_kw: np.ndarray | None = None,
                    q_kvar: np.ndarray | None = None) -> pd.DataFrame:
        """Per (bus, phase) wye-equivalent load, kW and kvar (§6a's delta split).

        Args:
            p_kw: Active power of every load (``loads`` order); nominal if omitted.
            q_kvar: Reactive power of every load; nominal if omitted.

        Returns:
            ``p_kw``, ``q_kvar`` indexed by :attr:`nodes` (0 where no load).

        """
        p = self.loads["p_kw"].to_numpy(float) if p_kw is None else np.asarray(p_kw, float)
        q = self.loads["q_kvar"].to_numpy(float) if q_kvar is None else np.asarray(q_kvar, float)
        out = pd.DataFrame(0.0, index=pd.MultiIndex.from_tuples(self.nodes, names=["bus", "phase"]),
                           columns=["p_kw", "q_kvar"])
        for (bus, phases, conn), pk, qk in zip(
                self.loads[["bus", "phases", "conn"]].itertuples(index=False), p, q, strict=True):
            for phase, (pp_, qq) in delta_split(str(phases), conn, pk, qk).items():
                out.loc[(int(bus), phase)] += (pp_, qq)
        return out

    @cached_property
    def phase_shunts_kvar(self) -> pd.Series:
        """Capacitor kvar at nominal voltage per (bus, phase), split evenly over its phases."""
        out = pd.Series(0.0, index=pd.MultiIndex.from_tuples(self.nodes, names=["bus", "phase"]))
        for shunt in self.shunts.itertuples():
            for phase in str(shunt.phases):
                out.loc[(int(shunt.bus), phase)] += float(shunt.q_kvar) / len(str(shunt.phases))
        return out


#: Share of a delta load S_xy taken on phase x and on phase y under balanced voltages:
#: S_x = S_xy / (1 - alpha), S_y = -alpha S_xy / (1 - alpha) with alpha = exp(-j 2pi/3)
#: for the phase pairs ab, bc, ca (phase x leads y).
_DELTA_LEAD = complex(0.5, -1.0 / (2.0 * np.sqrt(3.0)))
_DELTA_LAG = complex(0.5, 1.0 / (2.0 * np.sqrt(3.0)))


def delta_split(phases: str, conn: str, p_kw: float, q_kvar: float
                ) -> dict[str, tuple[float, float]]:
    """The per-phase powers a load draws (wye: equal shares; delta: §6a's rotation).

    Args:
        phases: The load's phases (delta: the two phases it connects, or ``"abc"``).
        conn: ``"wye"`` or ``"delta"``.
        p_kw: Total active power.
        q_kvar: Total reactive power.

    Returns:
        Phase letter -> (kW, kvar); the shares add up to the load's totals.

    """
    if conn == "wye" or len(phases) == 1:
        return {p: (p_kw / len(phases), q_kvar / len(phases)) for p in phases}
    if len(phases) == 3:  # a balanced three-phase delta load draws a third per phase
        return {p: (p_kw / 3.0, q_kvar / 3.0) for p in phases}
    lead, lag = ("c", "a") if phases == "ac" else (phases[0], phases[1])
    s = complex(p_kw, q_kvar)
    s_lead, s_lag = s * _DELTA_LEAD, s * _DELTA_LAG
    return {lead: (s_lead.real, s_lead.imag), lag: (s_lag.real, s_lag.imag)}
