"""Read a pandapower three-phase net into a :class:`~scenarios.phase_network.PhaseNetwork`.

What is read, below the chosen root bus (everything upstream of it is cut, the root is
the slack): buses, in-service lines, ``load`` (balanced: a third per phase),
``asymmetric_load`` (one PhaseNetwork load per phase, or per delta branch, that carries
power) and ``shunt`` (three-phase capacitors). A pandapower line is always three-phase;
its phase matrix comes from its sequence impedances (:func:`phase_matrix`).

What cannot be represented is rejected with a :class:`ScenarioError` that lists every
problem, never left out silently: transformers or other sources below the root,
switches, storage, generators of any kind (a PhaseNetwork has none: injections belong to
the operating point), loads whose ``type`` is not ``wye``/``delta`` or that are voltage
dependent, lines without ``r0``/``x0`` or with shunt capacitance/conductance, loops.

:func:`eulv_pandapower` is pandapower's copy of the IEEE European LV feeder, corrected to
the OpenDSS data (power factor 0.95 on every phase, pandapower issue #2218) and numbered
like :func:`~scenarios.phase_sources.opendss_source.read_opendss` numbers the OpenDSS
files, so that the two readings can be compared bus by bus. Its line data and loads are
stored as float32 in pandapower's json; they are restored to the published decimals
(:func:`restore_float32_decimals`), which makes its line impedances equal to the OpenDSS
reading's to 1e-15 instead of 6e-8.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Callable

import numpy as np
import pandapower.networks as pn
import pandas as pd
from pandapower import pandapowerNet

from gridcosim.scenarios.errors import ScenarioError
from gridcosim.scenarios.phase_network import CONNECTIONS, PHASES, PhaseNetwork

#: Element tables read (lines and buses are read separately); any other table with an
#: in-service row at a bus below the root is rejected.
READ_ELEMENTS = frozenset({"load", "asymmetric_load", "shunt"})
BUS_COLUMNS = ("bus", "from_bus", "to_bus", "hv_bus", "mv_bus", "lv_bus")
WHY_NOT = {
    "trafo": "a transformer below the root",
    "trafo3w": "a transformer below the root",
    "storage": "storage (runpp_3ph ignores it; a PhaseNetwork has no storage)",
    "sgen": "a generator: injections belong to the operating point",
    "asymmetric_sgen": "a generator: injections belong to the operating point",
    "gen": "a voltage-controlled generator",
    "ext_grid": "a second source below the root",
    "switch": "a switch (fuse or remove it first)",
}
#: Delta branch of an asymmetric delta load's phase columns (pandapower: a = ab, b = bc,
#: c = ca, checked against runpp_3ph's currents).
DELTA_BRANCH = {"a": "ab", "b": "bc", "c": "ac"}
P_COLS = [f"p_{p}_mw" for p in PHASES]
Q_COLS = [f"q_{p}_mvar" for p in PHASES]
EULV_PF = 0.95
SQRT3 = math.sqrt(3.0)


def phase_matrix(z1: complex, z0: complex) -> np.ndarray:
    """The 3x3 phase impedance matrix of a transposed line: Zs on the diagonal, Zm off it.

    Args:
        z1: Positive-sequence impedance (ohm).
        z0: Zero-sequence impedance (ohm).

    Returns:
        ``Zs = (2 z1 + z0) / 3``, ``Zm = (z0 - z1) / 3`` laid out as a complex 3x3 matrix.

    """
    zs, zm = (2.0 * z1 + z0) / 3.0, (z0 - z1) / 3.0
    return np.full((3, 3), zm, dtype=complex) + np.eye(3) * (zs - zm)


def read_pandapower_3ph(net: pandapowerNet, *, name: str, root_bus: int, base_kva: float,
                        base_kv: float | None = None,
                        bus_id: Callable[[int], int] | None = None) -> PhaseNetwork:
    """Read the part of ``net`` below ``root_bus`` as a :class:`PhaseNetwork`.

    Labels: a line is labelled by its ``name`` when every read line has a distinct
    non-empty name, else ``line<index>``; loads the same way (``load<index>``,
    ``asymmetric_load<index>``), with ``.<phases>`` appended when one asymmetric load
    gives several PhaseNetwork loads. A phase that carries neither P nor Q gives no load.

    Args:
        net: The pandapower net (not modified).
        name: Data set name.
        root_bus: pandapower index of the slack bus.
        base_kva: Three-phase power base in kVA.
        base_kv: Line-to-line voltage base; the root's ``vn_kv`` if omitted.
        bus_id: The project's id of a pandapower bus index; the index itself if omitted.

    Returns:
        The network; raises :class:`ScenarioError` listing what cannot be represented.

    """
    ids = bus_id or int
    tree = _tree(net, root_bus)
    below = {root_bus, *(child for _, _, child in tree)}
    kv = float(net.bus.at[root_bus, "vn_kv"]) if base_kv is None else float(base_kv)
    problems = [*_foreign_elements(net, below, root_bus), *_bus_problems(net, below, root_bus),
                *_line_problems(net.line.loc[[idx for idx, _, _ in tree]]),
                *_load_problems(net, below)]
    if problems:
        raise ScenarioError([f"{name}: {p}" for p in problems])
    lines, z_ohm = _lines(net, tree, ids)
    network = PhaseNetwork(
        name=name, base_kva=float(base_kva), base_kv=kv, root_bus=ids(root_bus),
        buses=_buses(net, [root_bus, *(c for _, _, c in tree)], ids), lines=lines,
        z_ohm=z_ohm, loads=_loads(net, below, ids), shunts=_shunts(net, below, ids, kv),
        source_format="pandapower")
    problems = network.phase_problems()
    if problems:
        raise ScenarioError([f"{name}: {p}" for p in problems])
    return network


def _tree(net: pandapowerNet, root: int) -> list[tuple[int, int, int]]:
    """(line, parent bus, child bus) of every in-service line reachable from ``root``."""
    lines = net.line[net.line["in_service"].astype(bool)]
    adjacent: dict[int, list[tuple[int, int]]] = {}
    for idx, f, t in zip(lines.index, lines["from_bus"], lines["to_bus"], strict=True):
        adjacent.setdefault(int(f), []).append((int(idx), int(t)))
        adjacent.setdefault(int(t), []).append((int(idx), int(f)))
    seen, used, out, queue = {root}, set(), [], deque([root])
    while queue:
        bus = queue.popleft()
        for idx, other in adjacent.get(bus, []):
            if idx in used:
                continue
            used.add(idx)
            if other in seen:
                raise ScenarioError([f"line {idx} closes a loop: the net is not radial"])
            seen.add(other)
            out.append((idx, bus, other))
            queue.append(other)
    return out


def _active(frame: pd.DataFrame) -> pd.Series:
    """In-service rows (every row where the table has no ``in_service`` column)."""
    if "in_service" in frame:
        return frame["in_service"].fillna(False).astype(bool)
    return pd.Series(True, index=frame.index)


def _at(frame: pd.DataFrame, below: set[int]) -> pd.Series:
    """In-service rows with a bus column naming a bus below the root."""
    touches = pd.Series(False, index=frame.index)
    for column in BUS_COLUMNS:
        if column in frame:
            touches |= frame[column].isin(below)
    return touches & _active(frame)


def _foreign_elements(net: pandapowerNet, below: set[int], root: int) -> list[str]:
    """Elements below the root that a PhaseNetwork cannot hold."""
    problems = []
    for table in sorted(k for k in net.keys() if _is_element_table(net, k)):
        frame = net[table]
        for idx in frame.index[_at(frame, below)]:
            upstream = (table == "trafo" and int(frame.at[idx, "lv_bus"]) == root
                        or table == "ext_grid" and int(frame.at[idx, "bus"]) == root)
            if not upstream:
                why = WHY_NOT.get(table, "an element a PhaseNetwork cannot hold")
                problems.append(f"{table} {idx}: {why}")
    return problems


def _is_element_table(net: pandapowerNet, key: str) -> bool:
    frame = net[key]
    return (isinstance(frame, pd.DataFrame) and not key.startswith(("_", "res_"))
            and key not in READ_ELEMENTS | {"bus", "line"}
            and any(c in frame for c in BUS_COLUMNS) and len(frame) > 0)


def _bus_problems(net: pandapowerNet, below: set[int], root: int) -> list[str]:
    buses = net.bus.loc[sorted(below)]
    problems = [f"bus {b}: out of service" for b in buses.index[~_active(buses)]]
    kv = float(net.bus.at[root, "vn_kv"])
    problems += [f"bus {b}: vn_kv {v} differs from the root's {kv}"
                 for b, v in buses["vn_kv"].items() if not math.isclose(v, kv, rel_tol=1e-9)]
    return problems


def _line_problems(lines: pd.DataFrame) -> list[str]:
    """Lines without a zero-sequence impedance or with shunt elements."""
    problems = []
    for column in ("r0_ohm_per_km", "x0_ohm_per_km"):
        if column not in lines:
            problems.append(f"line table: no {column} (zero-sequence data)")
        elif lines[column].isna().any():
            problems.append(f"line {lines.index[lines[column].isna()][0]}: {column} missing")
    for column in ("c_nf_per_km", "c0_nf_per_km", "g_us_per_km", "g0_us_per_km"):
        if column in lines and (lines[column].fillna(0.0) != 0.0).any():
            first = lines.index[lines[column].fillna(0.0) != 0.0][0]
            problems.append(f"line {first}: {column} != 0 (no line shunts in a PhaseNetwork)")
    return problems


def _load_problems(net: pandapowerNet, below: set[int]) -> list[str]:
    """Loads of a type other than wye/delta, voltage-dependent loads, shunts with P."""
    problems = []
    for table in ("load", "asymmetric_load"):
        frame = net[table][_at(net[table], below)]
        for idx, typ in frame["type"].items():
            if typ not in CONNECTIONS:
                problems.append(f"{table} {idx}: type {typ!r} is neither wye nor delta")
        for column in ("const_z_p_percent", "const_i_p_percent", "const_z_q_percent",
                       "const_i_q_percent"):
            if column in frame and (frame[column].fillna(0.0) != 0.0).any():
                problems.append(f"{table}: {column} != 0 (PhaseNetwork loads are constant power)")
    shunts = net.shunt[_at(net.shunt, below)]
    problems += [f"shunt {idx}: p_mw != 0 (only capacitors are read)"
                 for idx in shunts.index[shunts["p_mw"].fillna(0.0) != 0.0]]
    return problems


def _labels(frame: pd.DataFrame, prefix: str) -> list[str]:
    """``name`` of every row if all are distinct non-empty strings, else ``prefix<index>``."""
    names = [n for n in frame["name"] if isinstance(n, str) and n]
    if len(names) == len(frame) and len(set(names)) == len(names):
        return names
    return [f"{prefix}{idx}" for idx in frame.index]


def _lines(net: pandapowerNet, tree: list[tuple[int, int, int]],
           ids: Callable[[int], int]) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    frame = net.line.loc[[idx for idx, _, _ in tree]]
    labels = _labels(frame, "line")
    scale = (frame["length_km"] / frame["parallel"]).to_numpy(float)
    z1 = (frame["r_ohm_per_km"] + 1j * frame["x_ohm_per_km"]).to_numpy() * scale
    z0 = (frame["r0_ohm_per_km"] + 1j * frame["x0_ohm_per_km"]).to_numpy() * scale
    kv = net.bus.loc[frame["from_bus"], "vn_kv"].to_numpy(float)
    amps = (frame["max_i_ka"] * frame["df"] * frame["parallel"]).to_numpy(float) * 1000.0
    lines = pd.DataFrame({
        "from_bus": [ids(parent) for _, parent, _ in tree],
        "to_bus": [ids(child) for _, _, child in tree],
        "phases": PHASES, "kind": "line", "s_max_kva": amps * kv / SQRT3,
    }, index=pd.Index(labels, name="line"))
    return lines, {lab: phase_matrix(a, b) for lab, a, b in zip(labels, z1, z0, strict=True)}


def _xy(geo: object) -> tuple[float, float]:
    """Coordinates of a GeoJSON point (string or dict); NaN otherwise."""
    if isinstance(geo, str):
        geo = json.loads(geo)
    if isinstance(geo, dict) and geo.get("type") == "Point":
        x, y = geo["coordinates"][:2]
        return float(x), float(y)
    return float("nan"), float("nan")


def _buses(net: pandapowerNet, order: list[int], ids: Callable[[int], int]) -> pd.DataFrame:
    frame = net.bus.loc[order]
    geo = frame["geo"] if "geo" in frame else pd.Series(None, index=frame.index)
    xy = np.array([_xy(g) for g in geo], dtype=float).reshape(-1, 2)
    names = [str(n) if isinstance(n, str) and n else str(b) for b, n in frame["name"].items()]
    return pd.DataFrame({"name": names, "phases": PHASES, "x": xy[:, 0], "y": xy[:, 1]},
                        index=pd.Index([ids(b) for b in order], name="bus"))


def _asymmetric_rows(net: pandapowerNet, below: set[int]) -> list[dict]:
    frame = net.asymmetric_load[_at(net.asymmetric_load, below)]
    rows = []
    for label, (_, load) in zip(_labels(frame, "asymmetric_load"), frame.iterrows(),
                                  strict=True):
        scale = float(load["scaling"]) * 1000.0
        parts = [(ph, load[f"p_{ph}_mw"] * scale, load[f"q_{ph}_mvar"] * scale)
                 for ph in PHASES if load[f"p_{ph}_mw"] or load[f"q_{ph}_mvar"]]
        for ph, p, q in parts:
            phases = ph if load["type"] == "wye" else DELTA_BRANCH[ph]
            rows.append({"load": label if len(parts) == 1 else f"{label}.{phases}",
                         "bus": int(load["bus"]), "phases": phases, "conn": load["type"],
                         "p_kw": float(p), "q_kvar": float(q)})
    return rows


def _loads(net: pandapowerNet, below: set[int], ids: Callable[[int], int]) -> pd.DataFrame:
    frame = net.load[_at(net.load, below)]
    rows = [{"load": label, "bus": int(load["bus"]), "phases": PHASES, "conn": load["type"],
             "p_kw": float(load["p_mw"] * load["scaling"] * 1000.0),
             "q_kvar": float(load["q_mvar"] * load["scaling"] * 1000.0)}
            for label, (_, load) in zip(_labels(frame, "load"), frame.iterrows(), strict=True)]
    rows += _asymmetric_rows(net, below)
    out = pd.DataFrame(rows, columns=["load", "bus", "phases", "conn", "p_kw", "q_kvar"])
    if not out["load"].is_unique:
        repeated = sorted(out["load"][out["load"].duplicated()])
        raise ScenarioError([f"load labels repeat: {repeated}"])
    out["bus"] = [ids(b) for b in out["bus"]]
    return out.set_index("load")


def _shunts(net: pandapowerNet, below: set[int], ids: Callable[[int], int],
            kv: float) -> pd.DataFrame:
    """Capacitors, kvar at the network's base voltage (pandapower: ``q_mvar`` < 0)."""
    frame = net.shunt[_at(net.shunt, below)]
    step = frame["step"].to_numpy(float) if "step" in frame else 1.0
    vn = frame["vn_kv"].fillna(net.bus.loc[frame["bus"], "vn_kv"].set_axis(frame.index))
    q_kvar = -frame["q_mvar"].to_numpy(float) * step * 1000.0 * (kv / vn.to_numpy(float)) ** 2
    return pd.DataFrame({"bus": [ids(int(b)) for b in frame["bus"]], "phases": PHASES,
                         "q_kvar": q_kvar},
                        index=pd.Index(_labels(frame, "shunt"), name="shunt"))


def restore_float32_decimals(frame: pd.DataFrame, columns: list[str]) -> None:
    """Replace values that are float32 roundings by the short decimal they round from.

    pandapower's European LV json stores float32 values (``r_ohm_per_km`` 1.149999976...
    for the published 1.15; lengths the same), 6e-8 off the OpenDSS data. A value within
    1e-9 (the json prints 11 to 16 digits) of its float32 rounding becomes that
    float32's shortest decimal (``1.15``);
    other values are left alone.
    """
    for column in columns:
        values = frame[column].to_numpy(float)
        single = values.astype(np.float32)
        is_single = np.isclose(values, single.astype(float), rtol=1e-9, atol=0.0)
        decimals = np.array([float(str(v)) for v in single])
        frame[column] = np.where(is_single, decimals, values)


def correct_eulv_power_factor(net: pandapowerNet, pf: float = EULV_PF) -> None:
    """Give every asymmetric load's phases ``q = p tan(acos pf)`` (pandapower issue #2218).

    pandapower's European LV nets give the phase-b and phase-c loads power factor 1.0;
    the OpenDSS data has 0.95 for every load. Raises :class:`ScenarioError` if the
    correction changes no phase-b or phase-c load, so that a pandapower fix is noticed.
    """
    loads = net.asymmetric_load
    p = loads[P_COLS].to_numpy(float)
    q_old = loads[Q_COLS].to_numpy(float)
    q = p * math.tan(math.acos(pf))
    if not (np.abs(q - q_old) > 1e-3 * np.abs(q))[:, 1:].any():
        raise ScenarioError(["pandapower's European LV loads on phases b/c already have "
                             f"PF {pf} (issue #2218 fixed?): drop correct_eulv_power_factor"])
    loads[Q_COLS] = q


def eulv_pandapower(scenario: str = "on_peak_566") -> PhaseNetwork:
    """The IEEE European LV feeder of pandapower, slack at the LV busbar, PF 0.95.

    The transformer and the 11 kV source are left out (the root is the transformer's LV
    bus, OpenDSS bus ``1``). Bus ids are the pandapower bus names, which are the OpenDSS
    bus numbers ``1``..``906``; line and load labels are lower-cased like OpenDSS's
    (``line1``, ``load1``). Loads are the scenario's own values, not the OpenDSS 1 kW
    nominal: pandapower's ``on_peak_566`` is minute 566 of each load's OpenDSS profile
    (1 kW times ``load_profile_N``), ``off_peak_1`` minute 1, ``off_peak_1440`` minute 1440.

    Args:
        scenario: ``"on_peak_566"``, ``"off_peak_1"`` or ``"off_peak_1440"``.

    Returns:
        906 buses, 905 three-phase lines, 55 single-phase wye loads.

    """
    net = pn.ieee_european_lv_asymmetric(scenario)
    restore_float32_decimals(net.line, ["length_km", "r_ohm_per_km", "x_ohm_per_km",
                                        "r0_ohm_per_km", "x0_ohm_per_km"])
    restore_float32_decimals(net.asymmetric_load, P_COLS)
    correct_eulv_power_factor(net)
    for table in ("line", "asymmetric_load"):
        net[table]["name"] = net[table]["name"].str.lower()
    names = net.bus["name"]
    return read_pandapower_3ph(net, name="eulv", root_bus=int(net.trafo["lv_bus"].iloc[0]),
                               base_kva=1000.0, base_kv=0.416,
                               bus_id=lambda b: int(names.at[b]))
