"""Read an OpenDSS feeder into a :class:`~scenarios.phase_network.PhaseNetwork`.

The files are compiled by the OpenDSS engine itself (OpenDSSDirect.py, the DSS-Extensions
engine shipped in its wheel), and the network is read back from the compiled circuit:
line phase impedance matrices (``RMatrix``/``XMatrix`` times length, in the line's own
units), bus phases from the line terminals, loads with their connection, capacitors and
bus coordinates. No hand-written parser: what OpenDSS solves is what is read.

Modelling choices, applied while reading (the same as the balanced ``ieee123`` data):

* everything upstream of the chosen root bus is cut: the elements in ``drop`` are left out
  and only buses reachable from the root remain (the root is the slack);
* transformers controlled by a ``RegControl`` are regulators at neutral tap: their two
  buses are merged (their small impedance is neglected);
* open switches are left out; closed switches are zero-impedance lines of kind ``switch``;
* loads are read as constant power at their nominal kW/kvar, with their load shapes
  (daily or yearly ``LoadShape``, sampled per minute of the day) where they have one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import opendssdirect as dss
import pandas as pd

from gridcosim.scenarios.errors import ScenarioError
from gridcosim.scenarios.phase_network import PHASES, PhaseNetwork

LENGTH_UNITS_M = {0: 1.0, 1: 1609.344, 2: 304.8, 3: 1000.0, 4: 1.0, 5: 0.3048, 6: 0.0254,
                  7: 0.01, 8: 0.001}  # DSS LineUnits (0 = none: the value as given)


@dataclass(frozen=True)
class DssTerminal:
    """A terminal ``bus.node.node``: bus name and its phase letters in node order."""

    bus: str
    phases: str

    @classmethod
    def parse(cls, spec: str, n_phases: int) -> DssTerminal:
        """Read ``name.1.3``; no node list means the first ``n_phases`` phases."""
        name, *nodes = spec.lower().split(".")
        picked = [int(n) for n in nodes if n != "0"] or list(range(1, n_phases + 1))
        return cls(name, "".join(PHASES[n - 1] for n in picked[:n_phases]))


def compile_feeder(master: Path) -> None:
    """Compile an OpenDSS master file; the process's working directory is kept.

    OpenDSS's ``compile`` changes the working directory to the file's folder; it is
    restored here so that relative paths elsewhere keep their meaning.
    """
    cwd = os.getcwd()
    dss.Text.Command("clear")
    try:
        dss.Text.Command(f'compile "{Path(master).resolve()}"')
    except Exception as exc:  # DSSException carries OpenDSS's own message
        raise ScenarioError([f"OpenDSS could not compile {master}: {exc}"]) from exc
    finally:
        os.chdir(cwd)


def _elements(collection: object) -> Iterable[str]:
    """Names of every element of a DSS collection (``dss.Lines``, ``dss.Loads``...)."""
    i = collection.First()  # type: ignore[attr-defined]
    while i:
        yield collection.Name()  # type: ignore[attr-defined]
        i = collection.Next()  # type: ignore[attr-defined]


def _regulator_merges() -> dict[str, str]:
    """Secondary bus -> primary bus of every regulated transformer (neutral tap)."""
    regulated = set()
    for _ in _elements(dss.RegControls):
        regulated.add(dss.RegControls.Transformer().lower())
    merges = {}
    for name in _elements(dss.Transformers):
        if name.lower() in regulated:
            buses = [b.split(".")[0].lower() for b in dss.CktElement.BusNames()]
            merges[buses[1]] = buses[0]
    return merges


def _line_rows(drop: set[str], merge: dict[str, str]) -> tuple[list[dict], dict[str, np.ndarray]]:
    rows, z = [], {}
    for name in _elements(dss.Lines):
        if f"line.{name}" in drop or dss.CktElement.IsOpen(1, 0) or dss.CktElement.IsOpen(2, 0):
            continue
        n = dss.Lines.Phases()
        ends = [DssTerminal.parse(dss.Lines.Bus1(), n), DssTerminal.parse(dss.Lines.Bus2(), n)]
        if set(ends[0].phases) != set(ends[1].phases):
            raise ScenarioError([f"line {name}: phases {ends[0].phases} to {ends[1].phases}"])
        order = np.argsort([PHASES.index(p) for p in ends[0].phases])
        length = dss.Lines.Length()
        switch = bool(dss.Lines.IsSwitch())
        zm = (np.reshape(dss.Lines.RMatrix(), (n, n))
              + 1j * np.reshape(dss.Lines.XMatrix(), (n, n)))
        z[name] = np.zeros((n, n), complex) if switch else (zm * length)[np.ix_(order, order)]
        rows.append({"line": name, "a": merge.get(ends[0].bus, ends[0].bus),
                     "b": merge.get(ends[1].bus, ends[1].bus),
                     "phases": "".join(sorted(ends[0].phases)),
                     "kind": "switch" if switch else "line",
                     "s_max_kva": _rating_kva(n)})
    return rows, z


def _rating_kva(n_phases: int) -> float:
    """Per-phase rating from the active line's ``NormAmps`` (NaN where OpenDSS's default)."""
    amps = dss.Lines.NormAmps()
    kv_ln = dss.Bus.kVBase() if dss.Circuit.SetActiveBus(dss.Lines.Bus1()) >= 0 else 0.0
    return float(amps * kv_ln) if amps > 0 and kv_ln > 0 and amps != 400.0 else float("nan")


def _orient(rows: list[dict], root: str) -> list[dict]:
    """Keep the lines reachable from the root, oriented parent -> child."""
    adjacent: dict[str, list[dict]] = {}
    for row in rows:
        adjacent.setdefault(row["a"], []).append(row)
        adjacent.setdefault(row["b"], []).append(row)
    seen, used, out, stack = {root}, set(), [], [root]
    while stack:
        bus = stack.pop()
        for row in adjacent.get(bus, []):
            if row["line"] in used:
                continue
            used.add(row["line"])
            child = row["b"] if row["a"] == bus else row["a"]
            if child in seen:
                if row["a"] != row["b"]:
                    raise ScenarioError(
                        [f"the feeder is not radial: line {row['line']} closes a loop"])
                continue
            seen.add(child)
            out.append({**row, "from": bus, "to": child})
            stack.append(child)
    return out


def _load_rows(merge: dict[str, str]) -> list[dict]:
    rows = []
    for name in _elements(dss.Loads):
        n = dss.Loads.Phases()
        delta = bool(dss.Loads.IsDelta())
        spec = dss.CktElement.BusNames()[0]
        term = DssTerminal.parse(spec, n + 1 if delta and n == 1 else n)
        phases = term.phases if not (delta and n == 3) else "abc"
        if delta and n == 1 and len(phases) != 2:
            raise ScenarioError(
                [f"load {name}: a single-phase delta load needs two nodes ({spec})"])
        rows.append({"load": name, "bus": merge.get(term.bus, term.bus),
                     "phases": "".join(sorted(phases)), "conn": "delta" if delta else "wye",
                     "p_kw": dss.Loads.kW(), "q_kvar": dss.Loads.kvar()})
    return rows


def _load_shapes(names: list[str]) -> pd.DataFrame | None:
    """Each load's daily or yearly shape as minute-of-day multipliers (1440 × loads).

    Read from the compiled circuit (``LoadShape.PMult``); a shape with a uniform interval
    that covers at least one day is sampled at every minute of its first day. ``None``
    when no load has a shape; a load without one gets 1.0.
    """
    columns: dict[str, np.ndarray] = {}
    for name in names:
        dss.Loads.Name(name)
        shape = dss.Loads.Daily() or dss.Loads.Yearly()
        if not shape:
            continue
        dss.LoadShape.Name(shape)
        step_min = dss.LoadShape.HrInterval() * 60.0
        values = np.asarray(dss.LoadShape.PMult(), dtype=float)
        if step_min <= 0 or len(values) * step_min < 1440:
            raise ScenarioError([f"load {name}: shape {shape} is not a uniform daily shape"])
        columns[name] = values[(np.arange(1440) // step_min).astype(int)]
    if not columns:
        return None
    return pd.DataFrame({n: columns.get(n, np.ones(1440)) for n in names})


def _shunt_rows(merge: dict[str, str]) -> list[dict]:
    rows = []
    for name in _elements(dss.Capacitors):
        term = DssTerminal.parse(dss.CktElement.BusNames()[0], dss.CktElement.NumPhases())
        rows.append({"shunt": name, "bus": merge.get(term.bus, term.bus),
                     "phases": "".join(sorted(term.phases)), "q_kvar": dss.Capacitors.kvar()})
    return rows


def _bus_frame(lines: list[dict], root: str, bus_id: Callable[[str], int]) -> pd.DataFrame:
    phases = {root: "abc", **{r["to"]: r["phases"] for r in lines}}
    rows = []
    for name, ph in phases.items():
        dss.Circuit.SetActiveBus(name)
        has_xy = bool(dss.Bus.Coorddefined())
        rows.append({"bus": bus_id(name), "name": name, "phases": ph,
                     "x": dss.Bus.X() if has_xy else np.nan,
                     "y": dss.Bus.Y() if has_xy else np.nan})
    return pd.DataFrame(rows).set_index("bus")


def read_opendss(master: Path, *, name: str, root: str, base_kva: float, base_kv: float,
                 drop: Iterable[str] = (), bus_id: Callable[[str], int] = int) -> PhaseNetwork:
    """Compile ``master`` and read the feeder below ``root`` as a :class:`PhaseNetwork`.

    Args:
        master: The OpenDSS master file.
        name: Data set name.
        root: OpenDSS bus name of the slack (upstream elements are cut).
        base_kva: Three-phase power base in kVA.
        base_kv: Line-to-line voltage base of the feeder below the root, kV.
        drop: Elements to leave out, ``"Line.L115"`` style (case-insensitive).
        bus_id: The project's integer id of an OpenDSS bus name.

    Returns:
        The network; raises :class:`ScenarioError` if it is not a radial feeder.

    """
    compile_feeder(master)
    dropped = {d.lower() for d in drop}
    merge = _regulator_merges()
    line_rows, z_all = _line_rows(dropped, merge)
    lines = _orient(line_rows, root.lower())
    buses = _bus_frame(lines, root.lower(), bus_id)
    known = set(buses["name"])
    names = {r["to"] for r in lines} | {root.lower()}
    line_frame = pd.DataFrame([{
        "line": r["line"], "from_bus": bus_id(r["from"]), "to_bus": bus_id(r["to"]),
        "phases": r["phases"], "kind": r["kind"], "s_max_kva": r["s_max_kva"]}
        for r in lines], columns=["line", "from_bus", "to_bus", "phases", "kind",
                                  "s_max_kva"]).set_index("line")
    loads = [r for r in _load_rows(merge) if r["bus"] in names]
    shunts = [r for r in _shunt_rows(merge) if r["bus"] in names and r["bus"] in known]
    network = PhaseNetwork(
        name=name, base_kva=base_kva, base_kv=base_kv, root_bus=bus_id(root.lower()),
        buses=buses, lines=line_frame, z_ohm={r["line"]: z_all[r["line"]] for r in lines},
        loads=_frame(loads, "load", bus_id), shunts=_frame(shunts, "shunt", bus_id),
        load_shapes=_load_shapes([r["load"] for r in loads]))
    problems = network.phase_problems()
    if problems:
        raise ScenarioError([f"{master}: {p}" for p in problems])
    return network


def _frame(rows: list[dict], index: str, bus_id: Callable[[str], int]) -> pd.DataFrame:
    columns = {"load": ["bus", "phases", "conn", "p_kw", "q_kvar"],
               "shunt": ["bus", "phases", "q_kvar"]}[index]
    frame = pd.DataFrame([{**r, "bus": bus_id(r["bus"])} for r in rows],
                         columns=[index, *columns])
    return frame.set_index(index)
