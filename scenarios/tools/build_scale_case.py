"""Build the built-in scale case: a ~1,300-bus SimBench MV/LV feeder and its 100 microgrids.

Usage (needs the optional dependency: ``pip install gridcosim[simbench]``)::

    python -m gridcosim.scenarios.tools.build_scale_case           # write the three files
    python -m gridcosim.scenarios.tools.build_scale_case --check   # compare with the shipped

Writes ``scenarios/data/simbench-mvlv-rural/net.json`` (a pandapower net, read by
:mod:`gridcosim.scenarios.network_sources.pandapower_balanced`), the counts table of that folder's
``README.md`` and ``scenarios/builtin/simbench-mvlv-rural-100mg.toml`` (the microgrids:
:mod:`gridcosim.scenarios.tools.scale_case_microgrids`). The run is deterministic (no
randomness here, a fixed seed there): running it again gives the same bytes, which
``--check`` verifies.

Construction of the network from SimBench ``1-MVLV-rural-all-0-sw`` (5,479 buses):

1. the HV part is cut: the two 110 kV buses, the HV/MV transformers and the HV external
   grid are dropped; the first MV busbar (the LV side of the first HV/MV transformer,
   joined to the second busbar by the closed MV sectionaliser) becomes the slack, held at
   :data:`SLACK_VM_PU`;
2. of the 90 LV grids, every :data:`KEEP_EVERY`-th of each SimBench LV type (LV1..LV4, in
   name order) is kept in full with its MV/LV transformer; each other LV grid is replaced
   by one equivalent load at the MV bus of its substation: the sums of its loads' ``p_mw``
   and ``q_mvar`` and, as its profile, the SimBench profile carrying most of its ``p_mw``;
3. the static generators (renewables become microgrid units), the measurements, study
   cases and profiles are dropped, as are the closed line and transformer switches (they
   change nothing); the six open MV loop switches and the MV sectionaliser stay;
4. checks (:func:`check_net`): one tree from the slack through the closed switches, and a
   converged AC power flow at nominal load with every voltage in
   [:data:`V_MIN_PU`, :data:`V_MAX_PU`] and every line and transformer below 100 % loading.
"""

from __future__ import annotations

import argparse
import copy
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import pandapower as pp
import pandapower.toolbox as tb
import pandas as pd
from pandapower.auxiliary import pandapowerNet

#: The SimBench grid the case is cut from (simbench 1.6.3).
SIMBENCH_CODE = "1-MVLV-rural-all-0-sw"
#: The data set's name: folder under ``scenarios/data`` and ``[network] source``.
NAME = "simbench-mvlv-rural"
#: Every this many LV grids of each SimBench LV type is kept in full (the first included).
KEEP_EVERY = 5
#: Voltage set point of the MV busbar (the slack) in p.u.: SimBench's nominal loads all at
#: once drop the voltage by up to 12.4 % at the end of the weakest LV grid (LV2.126).
SLACK_VM_PU = 1.04
#: Buses at or above this nominal voltage (kV) are the HV part, which is cut.
HV_KV = 60.0
#: Band the nominal-load power flow must respect (:func:`check_net`).
V_MIN_PU, V_MAX_PU = 0.9, 1.1
#: Columns SimBench adds that nothing reads (voltage-level codes, OPF limits, substations).
DROPPED_COLUMNS = ("voltLvl", "min_vm_pu", "max_vm_pu", "substation", "zone")
#: Tables emptied: measurements, SimBench's study cases and substations.
EMPTIED_TABLES = ("sgen", "measurement", "loadcases", "substation")

ROOT = Path(__file__).resolve().parents[1]
NET_FILE = ROOT / "data" / NAME / "net.json"
README_FILE = ROOT / "data" / NAME / "README.md"
SCENARIO_FILE = ROOT / "builtin" / f"{NAME}-100mg.toml"
COUNTS_BEGIN, COUNTS_END = "<!-- generated: counts -->", "<!-- end generated -->"


@dataclass(frozen=True)
class NetCheck:
    """What :func:`check_net` found: the power flow at nominal load and the topology."""

    vm_min_pu: float
    vm_max_pu: float
    line_loading_max_percent: float
    trafo_loading_max_percent: float
    p_slack_mw: float
    is_tree: bool


def simbench_net(code: str = SIMBENCH_CODE) -> pandapowerNet:
    """The SimBench grid ``code`` (imports simbench, an optional dependency)."""
    try:
        import simbench
    except ImportError as exc:
        raise ImportError("build_scale_case needs simbench: pip install gridcosim[simbench]"
                          ) from exc
    return simbench.get_simbench_net(code)


def lv_grid(net: pandapowerNet, bus: int) -> str:
    """The SimBench grid a bus belongs to (``LV2.101``, ``MV1.101``, ...)."""
    return str(net.bus.at[bus, "subnet"]).split("_")[0]


def mv_lv_trafos(net: pandapowerNet) -> pd.Series:
    """LV grid name of every MV/LV transformer (index: trafo index), in name order."""
    trafos = net.trafo[net.trafo["vn_hv_kv"] < HV_KV]
    names = pd.Series({int(i): lv_grid(net, int(t.lv_bus)) for i, t in trafos.iterrows()})
    return names.sort_values(kind="stable")


def kept_grids(names: pd.Series, every: int = KEEP_EVERY) -> list[str]:
    """Every ``every``-th LV grid of each LV type (``LV1``...), counted in name order."""
    kinds = sorted({name.split(".")[0] for name in names})
    return [g for kind in kinds for g in sorted(n for n in names if n.startswith(kind + "."))
            [::every]]


def cut_hv(net: pandapowerNet) -> int:
    """Drop the HV buses and what hangs on them; the first MV busbar becomes the slack.

    Returns:
        The slack bus.

    """
    hv_mv = net.trafo[net.trafo["vn_hv_kv"] >= HV_KV]
    root = int(hv_mv["lv_bus"].min())
    tb.drop_buses(net, net.bus.index[net.bus["vn_kv"] >= HV_KV])
    pp.create_ext_grid(net, root, vm_pu=SLACK_VM_PU, va_degree=0.0,
                       name="MV busbar (HV/MV substation cut)")
    return root


def dominant_profile(loads: pd.DataFrame) -> str:
    """The profile with the largest summed ``p_mw`` (ties: the first name in sort order)."""
    totals = loads.groupby("profile")["p_mw"].sum().sort_index()
    return str(totals.idxmax())


def replace_lv_grid(net: pandapowerNet, trafo: int, grid: str) -> None:
    """Replace the LV grid behind ``trafo`` by its total load at the trafo's MV bus."""
    buses = net.bus.index[net.bus["subnet"].astype(str).str.split("_").str[0] == grid]
    members = net.load[net.load["bus"].isin(buses)]
    hv_bus = int(net.trafo.at[trafo, "hv_bus"])
    pp.create_load(net, hv_bus, p_mw=float(members["p_mw"].sum()),
                   q_mvar=float(members["q_mvar"].sum()), name=f"{grid} equivalent",
                   profile=dominant_profile(members), subnet=grid)
    tb.drop_buses(net, buses)


def strip(net: pandapowerNet) -> None:
    """Drop what the case does not use (see the module doc, step 3)."""
    for table in EMPTIED_TABLES:
        if table in net:
            net[table] = net[table].iloc[0:0]
    net["profiles"] = {}
    keep = ~net.switch["closed"].astype(bool) | (net.switch["et"] == "b")
    net.switch = net.switch[keep]
    for table in element_tables(net):
        net[table] = net[table].drop(columns=[c for c in DROPPED_COLUMNS if c in net[table]])


def element_tables(net: pandapowerNet) -> list[str]:
    """Names of the net's element tables (data frames, not results or private tables)."""
    return [k for k, v in net.items() if isinstance(v, pd.DataFrame)
            and not k.startswith(("_", "res_"))]


def canonical_columns(net: pandapowerNet) -> None:
    """Order every table's columns: pandapower's own first, then the others by name.

    SimBench adds its extra columns in an order that changes from one Python process to the
    next (set iteration over strings), and ``to_json`` writes them in table order.
    """
    empty = pp.create_empty_network()
    for table in element_tables(net):
        own = [c for c in empty[table].columns if c in net[table]] if table in empty else []
        extra = sorted(c for c in net[table].columns if c not in own)
        net[table] = net[table][own + extra]


def build_net(source: pandapowerNet, every: int = KEEP_EVERY) -> pandapowerNet:
    """The scale case from the SimBench net (a copy is modified; see the module doc)."""
    net = copy.deepcopy(source)
    cut_hv(net)
    names = mv_lv_trafos(net)
    keep = set(kept_grids(names, every))
    for trafo, grid in names.items():
        if grid not in keep:
            replace_lv_grid(net, int(trafo), grid)
    strip(net)
    canonical_columns(net)
    net.name = NAME
    return net


def check_net(net: pandapowerNet) -> NetCheck:
    """Run the nominal-load AC power flow and the topology check on a copy of ``net``.

    Raises:
        ValueError: If the graph is not one tree, the power flow does not converge, a
            voltage leaves [V_MIN_PU, V_MAX_PU] or a line or transformer is at 100 % or more.

    """
    work = copy.deepcopy(net)
    graph = pp.topology.create_nxgraph(work, respect_switches=True)
    pp.runpp(work, numba=False)
    found = NetCheck(
        vm_min_pu=float(work.res_bus["vm_pu"].min()),
        vm_max_pu=float(work.res_bus["vm_pu"].max()),
        line_loading_max_percent=float(work.res_line["loading_percent"].max()),
        trafo_loading_max_percent=float(work.res_trafo["loading_percent"].max()),
        p_slack_mw=float(work.res_ext_grid["p_mw"].sum()),
        is_tree=bool(nx.is_tree(graph)) and graph.number_of_nodes() == len(work.bus))
    problems = [what for what, bad in (
        ("the network is not one tree", not found.is_tree),
        (f"a voltage outside [{V_MIN_PU}, {V_MAX_PU}]",
         found.vm_min_pu < V_MIN_PU or found.vm_max_pu > V_MAX_PU),
        ("a line at 100 % or more", found.line_loading_max_percent >= 100.0),
        ("a transformer at 100 % or more", found.trafo_loading_max_percent >= 100.0)) if bad]
    if problems:
        raise ValueError(f"scale case fails its checks: {'; '.join(problems)} ({found})")
    return found


def net_json(net: pandapowerNet) -> str:
    """``pandapower.to_json`` text with a final newline (the file's exact content)."""
    text = pp.to_json(net)
    return text if text.endswith("\n") else text + "\n"


def counts_table(net: pandapowerNet, found: NetCheck) -> str:
    """The README's counts table (Markdown), every number from ``net`` and ``found``."""
    lv = net.bus["vn_kv"] < 1.0
    equivalent = net.load["name"].astype(str).str.endswith(" equivalent")
    kept = sorted({lv_grid(net, int(b)) for b in net.bus.index[lv]})
    n_open = int((~net.switch["closed"].astype(bool) & (net.switch["et"] == "l")).sum())
    rows = [
        ("buses (MV 20 kV / LV 0.4 kV)", f"{len(net.bus)} ({int((~lv).sum())} / {int(lv.sum())})"),
        ("lines (of which opened by a loop switch)", f"{len(net.line)} ({n_open})"),
        ("MV/LV transformers", f"{len(net.trafo)}"),
        ("switches: open line switches / closed bus-bus",
         f"{int((~net.switch['closed']).sum())} / {int(net.switch['closed'].sum())}"),
        ("LV grids kept in full", f"{len(kept)}: {', '.join(kept)}"),
        ("loads (of which LV-grid equivalents)", f"{len(net.load)} ({int(equivalent.sum())})"),
        ("total nominal load", f"{net.load['p_mw'].sum() * 1000:.1f} kW, "
                               f"{net.load['q_mvar'].sum() * 1000:.1f} kvar"),
        ("  in LV-grid equivalents", f"{net.load.loc[equivalent, 'p_mw'].sum() * 1000:.1f} kW"),
        ("slack (MV busbar) bus, set point", f"{int(net.ext_grid['bus'].iloc[0])}, "
                                             f"{float(net.ext_grid['vm_pu'].iloc[0])} p.u."),
        ("AC power flow at nominal load: slack P", f"{found.p_slack_mw * 1000:.1f} kW"),
        ("  voltages", f"{found.vm_min_pu:.4f} to {found.vm_max_pu:.4f} p.u."),
        ("  largest loading: line / transformer",
         f"{found.line_loading_max_percent:.1f} % / {found.trafo_loading_max_percent:.1f} %"),
        ("graph (closed switches) is a tree", "yes" if found.is_tree else "no"),
    ]
    lines = ["| quantity | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)


def with_counts(readme: str, table: str) -> str:
    """``readme`` with the text between the counts markers replaced by ``table``."""
    head, sep, rest = readme.partition(COUNTS_BEGIN)
    _, sep2, tail = rest.partition(COUNTS_END)
    if not sep or not sep2:
        raise ValueError(f"{README_FILE}: counts markers {COUNTS_BEGIN} ... {COUNTS_END} missing")
    return f"{head}{COUNTS_BEGIN}\n\n{table}\n\n{COUNTS_END}{tail}"


def outputs(source: pandapowerNet) -> dict[Path, str]:
    """The three files' contents, built from the SimBench net."""
    from gridcosim.scenarios.tools.scale_case_microgrids import scenario_toml

    net = build_net(source)
    found = check_net(net)
    text = net_json(net)
    stored = pp.from_json(io.StringIO(text))  # the scenario is built from what is stored
    readme = README_FILE.read_text(encoding="utf-8") if README_FILE.is_file() else (
        f"# {NAME}\n\n{COUNTS_BEGIN}\n{COUNTS_END}\n")
    return {NET_FILE: text, README_FILE: with_counts(readme, counts_table(net, found)),
            SCENARIO_FILE: scenario_toml(stored, NAME)}


def main(argv: list[str] | None = None) -> int:
    """Write (or ``--check``) the scale case's files; 0 on success, 1 on a difference."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the shipped files instead of writing them")
    args = parser.parse_args(argv)
    files = outputs(simbench_net())
    differ = []
    for path, text in files.items():
        if args.check:
            same = path.is_file() and path.read_text(encoding="utf-8") == text
            differ += [] if same else [str(path)]
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    state = "match" if args.check else "written"
    print(f"{NAME}: differs: {', '.join(differ)}" if differ else f"{NAME}: all files {state}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
