"""Read a balanced pandapower net (a user's feeder) into :class:`~scenarios.network.NetworkData`.

What is read, in the net's own numbering (bus ids are the pandapower bus indices):

* the root: the bus of the one in-service ``ext_grid`` (the slack, the substation);
* in-service ``line`` rows not opened by an open line switch: ``r_ohm = r_ohm_per_km ×
  length_km / parallel`` (likewise x), rating ``s_max_kva = √3 · vn_kv · max_i_ka · df ·
  parallel`` (pandapower's 100 % loading), at the voltage level of their buses;
* in-service two-winding ``trafo`` rows not opened by a switch: a branch of kind
  ``transformer`` from its HV to its LV bus with pandapower's short-circuit impedance
  (``vk_percent``, ``vkr_percent`` on ``sn_mva × parallel``) referred to the LV bus, rating
  ``sn_mva × parallel``, and the squared off-nominal ratio ``v_ratio`` (rated ratio and
  tap position against the two buses' ``vn_kv``) that LinDistFlow multiplies the parent's
  squared voltage by; magnetising losses and phase shifts are left to the AC power flow;
* closed bus-bus switches: zero-impedance branches of kind ``switch`` (``z_ohm`` if set);
* ``load`` (``p_mw × scaling``, ``q_mvar × scaling``; several per bus are summed) and
  ``shunt`` (capacitor injection at the bus's nominal voltage; a shunt's P is left to the
  AC power flow).

Static generators (``sgen``) are not read: the DSO's bus loads are demand, and a feeder's
own generation belongs to microgrid units or to per-bus time series. Elements a radial
LinDistFlow feeder cannot hold (``gen``, ``trafo3w``, ``impedance``, ``ward``, ``xward``,
``dcline``, ``storage``, ``motor``, asymmetric loads or sgens, a second ``ext_grid``)
are rejected with a :class:`ScenarioError` naming each, as are loops, negative loads,
in-service buses with load that no branch reaches, and buses without a nominal voltage.
The AC validation runs on the source net itself (see
:func:`scenarios.pandapower_net.build_pandapower_net`), so transformer taps, magnetising
currents and line charging are all in the AC model.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import pandapower as pp
import pandas as pd
from pandapower.auxiliary import pandapowerNet

from gridcosim.scenarios.errors import ScenarioError
from gridcosim.scenarios.network import NetworkData, per_unit_branches
from gridcosim.scenarios.phase_sources.pandapower_source import _active, _xy

SQRT3 = math.sqrt(3.0)
KM_PER_KFT = 0.3048
#: Element tables a balanced feeder cannot hold when they have an in-service row.
UNSUPPORTED = {
    "gen": "a voltage-controlled generator (make it an sgen or a microgrid unit)",
    "trafo3w": "a three-winding transformer",
    "impedance": "an impedance branch",
    "ward": "a ward equivalent", "xward": "an extended ward equivalent",
    "dcline": "a DC line", "storage": "storage (make it a microgrid unit)",
    "motor": "a motor", "asymmetric_load": "an asymmetric load (use a three-phase network)",
    "asymmetric_sgen": "an asymmetric sgen (use a three-phase network)",
    "svc": "a pandapower SVC (give the scenario's [[svcs]])",
    "tcsc": "a TCSC", "ssc": "an SSC", "vsc": "a VSC",
}


@dataclass(frozen=True)
class Edge:
    """A candidate branch before orientation: its label, ends and impedance data."""

    label: str
    kind: str
    a: int
    b: int
    data: dict


def _unsupported(net: pandapowerNet) -> list[str]:
    problems = []
    for table, why in UNSUPPORTED.items():
        frame = net.get(table)
        if isinstance(frame, pd.DataFrame) and len(frame):
            problems += [f"{table} {idx}: {why} is not supported"
                         for idx in frame.index[_active(frame)]]
    grids = net.ext_grid[_active(net.ext_grid)]
    if len(grids) != 1:
        problems.append(f"ext_grid: expected exactly one in-service external grid (the "
                        f"substation), found {len(grids)}")
    return problems


def _connected(net: pandapowerNet, table: str, et: str) -> pd.DataFrame:
    """In-service rows of ``table`` that no open switch of type ``et`` ('l', 't') opens."""
    sw = net.switch
    opened = {int(e) for e in sw.loc[(sw["et"] == et) & ~sw["closed"].astype(bool), "element"]}
    frame = net[table]
    return frame[_active(frame)].drop(index=list(opened), errors="ignore")


def _line_edges(net: pandapowerNet) -> list[Edge]:
    lines = _connected(net, "line", "l")
    kv = net.bus["vn_kv"]
    edges = []
    for idx, ln in lines.iterrows():
        par, length = float(ln["parallel"]), float(ln["length_km"])
        amps = float(ln["max_i_ka"]) * float(ln.get("df", 1.0)) * par
        level = float(kv[int(ln["from_bus"])])
        edges.append(Edge(f"line {idx}", "line", int(ln["from_bus"]), int(ln["to_bus"]), {
            "r_ohm": float(ln["r_ohm_per_km"]) * length / par,
            "x_ohm": float(ln["x_ohm_per_km"]) * length / par,
            "c_nf": float(ln["c_nf_per_km"]) * length * par,
            "length_kft": length / KM_PER_KFT, "z_base_kv": level,
            "s_max_kva": SQRT3 * level * amps * 1000.0, "v_ratio": 1.0}))
    return edges


def _tap_factor(tr: pd.Series) -> tuple[float, float]:
    """Tap factors of the HV and LV windings (1 + steps × step %), pandapower's convention.

    pandapower 3 applies a tap only with a ``tap_changer_type``; ``Ratio`` changes the
    magnitude, the phase-shifting types are refused off their neutral position.
    """
    pos, neutral = tr.get("tap_pos", np.nan), tr.get("tap_neutral", np.nan)
    step = tr.get("tap_step_percent", np.nan)
    kind = tr.get("tap_changer_type", "Ratio")
    if any(pd.isna(v) for v in (pos, neutral, step)) or kind is None or pd.isna(kind):
        return 1.0, 1.0
    if float(pos) == float(neutral):
        return 1.0, 1.0
    if str(kind) != "Ratio":
        raise ScenarioError([f"trafo {tr.name}: a {kind} tap changer off its neutral "
                             "position is not supported (only Ratio taps change magnitudes "
                             "alone)"])
    factor = 1.0 + (float(pos) - float(neutral)) * float(step) / 100.0
    return (factor, 1.0) if str(tr.get("tap_side", "hv")).lower() == "hv" else (1.0, factor)


def _trafo_edges(net: pandapowerNet) -> list[Edge]:
    trafos = _connected(net, "trafo", "t")
    kv = net.bus["vn_kv"]
    edges = []
    for idx, tr in trafos.iterrows():
        hv, lv = int(tr["hv_bus"]), int(tr["lv_bus"])
        s_mva = float(tr["sn_mva"]) * float(tr["parallel"])
        z_base = float(tr["vn_lv_kv"]) ** 2 / s_mva  # ohm, referred to the LV winding
        vk, vkr = float(tr["vk_percent"]) / 100.0, float(tr["vkr_percent"]) / 100.0
        t_hv, t_lv = _tap_factor(tr)
        ratio = (float(tr["vn_hv_kv"]) * t_hv / float(kv[hv])) / (
            float(tr["vn_lv_kv"]) * t_lv / float(kv[lv]))
        scale = (float(kv[lv]) / float(tr["vn_lv_kv"])) ** 2  # to the LV bus's nominal
        edges.append(Edge(f"trafo {idx}", "transformer", hv, lv, {
            "r_ohm": vkr * z_base * scale,
            "x_ohm": math.sqrt(max(vk**2 - vkr**2, 0.0)) * z_base * scale,
            "c_nf": 0.0, "length_kft": 0.0, "z_base_kv": float(kv[lv]),
            "s_max_kva": s_mva * 1000.0, "v_ratio": 1.0 / ratio**2}))
    return edges


def _switch_edges(net: pandapowerNet) -> list[Edge]:
    sw = net.switch[(net.switch["et"] == "b") & net.switch["closed"].astype(bool)]
    kv = net.bus["vn_kv"]
    edges = []
    for idx, s in sw.iterrows():
        z = float(s.get("z_ohm", 0.0) or 0.0)
        edges.append(Edge(f"switch {idx}", "switch", int(s["bus"]), int(s["element"]), {
            "r_ohm": z, "x_ohm": 0.0, "c_nf": 0.0, "length_kft": 0.0,
            "z_base_kv": float(kv[int(s["bus"])]), "s_max_kva": np.nan, "v_ratio": 1.0}))
    return edges


def orient_tree(edges: list[Edge], root: int, buses: set[int]) -> list[tuple[Edge, int, int]]:
    """(edge, parent, child) of every edge, breadth-first from ``root``.

    Raises:
        ScenarioError: If an edge closes a loop (naming it and the loop's two buses).

    """
    adjacent: dict[int, list[tuple[Edge, int]]] = {}
    for e in edges:
        if e.a not in buses or e.b not in buses:
            continue
        adjacent.setdefault(e.a, []).append((e, e.b))
        adjacent.setdefault(e.b, []).append((e, e.a))
    seen, used, out, queue = {root}, set(), [], deque([root])
    while queue:
        bus = queue.popleft()
        for edge, other in adjacent.get(bus, []):
            if edge.label in used:
                continue
            used.add(edge.label)
            if other in seen:
                raise ScenarioError([f"network: {edge.label} (buses {edge.a}-{edge.b}) closes "
                                     "a loop: the feeder is not radial (open a switch or take "
                                     "the element out of service)"])
            seen.add(other)
            out.append((edge, bus, other))
            queue.append(other)
    return out


def _branches(tree: list[tuple[Edge, int, int]], base_kva: float, base_kv: float
              ) -> pd.DataFrame:
    rows = [{"branch": e.label, "from_bus": p, "to_bus": c, "kind": e.kind,
             "linecode": "", **e.data} for e, p, c in tree]
    columns = ["branch", "from_bus", "to_bus", "kind", "linecode", "length_kft", "r_ohm",
               "x_ohm", "c_nf", "z_base_kv", "s_max_kva", "v_ratio"]
    frame = pd.DataFrame(rows, columns=columns).set_index("branch")
    frame[["from_bus", "to_bus"]] = frame[["from_bus", "to_bus"]].astype(np.int64)
    return per_unit_branches(frame, base_kva, base_kv)


def _bus_frame(net: pandapowerNet, order: list[int]) -> pd.DataFrame:
    frame = net.bus.loc[order]
    geo = frame["geo"] if "geo" in frame else pd.Series(None, index=frame.index)
    xy = np.array([_xy(g) for g in geo], dtype=float).reshape(-1, 2)
    names = [str(n) if isinstance(n, str) and n else str(b) for b, n in frame["name"].items()]
    return pd.DataFrame({"name_ieee": names, "x": xy[:, 0], "y": xy[:, 1],
                         "vn_kv": frame["vn_kv"].to_numpy(float)},
                        index=pd.Index(order, name="bus", dtype=np.int64))


def _loads(net: pandapowerNet, reached: set[int]) -> tuple[pd.DataFrame, list[str]]:
    loads = net.load[_active(net.load)]
    scale = loads["scaling"].fillna(1.0) if "scaling" in loads else 1.0
    frame = pd.DataFrame({"bus": loads["bus"].astype(np.int64),
                          "p_kw": loads["p_mw"] * scale * 1000.0,
                          "q_kvar": loads["q_mvar"] * scale * 1000.0, "model": "PQ"})
    problems = [f"load {i}: negative p_mw ({r.p_kw / 1000.0}); generation belongs to "
                "microgrid units or time series" for i, r in frame.iterrows() if r.p_kw < 0]
    unreached = frame[~frame["bus"].isin(reached) & (frame["p_kw"] != 0)]
    problems += [f"load {i}: at bus {r.bus}, which no in-service branch connects to the "
                 "substation" for i, r in unreached.iterrows()]
    return frame[frame["bus"].isin(reached)].set_index("bus"), problems


def _shunts(net: pandapowerNet, reached: set[int]) -> pd.DataFrame:
    sh = net.shunt[_active(net.shunt) & net.shunt["bus"].isin(reached)]
    kv = net.bus.loc[sh["bus"], "vn_kv"].to_numpy(float)
    step = sh["step"].fillna(1.0).to_numpy(float) if "step" in sh else 1.0
    q = -sh["q_mvar"].to_numpy(float) * step * 1000.0 * (kv / sh["vn_kv"].to_numpy(float)) ** 2
    return pd.DataFrame({"q_kvar": q}, index=pd.Index(sh["bus"].astype(np.int64), name="bus"))


def read_pandapower_balanced(net: pandapowerNet, *, name: str, base_kva: float,
                             base_kv: float | None = None) -> NetworkData:
    """The radial feeder of a pandapower net, as :class:`NetworkData` in the net's numbering.

    Args:
        net: A pandapower net (not modified).
        name: The data set's name (for messages and outputs).
        base_kva: Power base of the per-unit system in kVA.
        base_kv: Nominal voltage of the root bus; ``None`` takes the root's ``vn_kv``. A
            different value is refused: every bus's voltage base is its own ``vn_kv``.

    Returns:
        The network; ``ac_net_json`` holds the source net for the AC validation.

    Raises:
        ScenarioError: Listing every element that cannot be read (see the module doc).

    """
    problems = _unsupported(net)
    if problems:
        raise ScenarioError([f"network {name}: {p}" for p in problems])
    root = int(net.ext_grid.loc[_active(net.ext_grid), "bus"].iloc[0])
    root_kv = float(net.bus.at[root, "vn_kv"])
    if base_kv is not None and not math.isclose(base_kv, root_kv, rel_tol=1e-9):
        raise ScenarioError([f"network.base_kv: {base_kv} kV differs from the nominal voltage "
                             f"of the source's root bus {root} ({root_kv} kV); leave it out"])
    in_service = {int(b) for b in net.bus.index[_active(net.bus)]}
    tree = orient_tree(_line_edges(net) + _trafo_edges(net) + _switch_edges(net), root,
                       in_service)
    order = [root] + [child for _, _, child in tree]
    loads, problems = _loads(net, set(order))
    if problems:
        raise ScenarioError([f"network {name}: {p}" for p in problems])
    return NetworkData(
        name=name, base_kva=float(base_kva), base_kv=root_kv, root_bus=root,
        buses=_bus_frame(net, order), branches=_branches(tree, base_kva, root_kv),
        loads=loads, shunts=_shunts(net, set(order)), ac_net_json=pp.to_json(net))
