"""The built-in scale case: simbench-mvlv-rural (1,317 buses) with 100 microgrids, 7 days.

References independent of gridcosim's reader: pandapower's own topology
(``create_nxgraph``) and power flow (``runpp``) on the stored ``net.json``, and the counts
the data set's README states. The slow tests solve the first window both ways and rebuild
the shipped files from SimBench.
"""

from __future__ import annotations

import re
from importlib.resources import files

import networkx as nx
import pandapower as pp
import pandapower.topology as top
import pytest

from gridcosim.scenarios.loader import load_scenario
from gridcosim.scenarios.network import NetworkData, network_for
from gridcosim.scenarios.schema import Scenario

SCENARIO = "simbench-mvlv-rural-100mg"
DATA_SET = "simbench-mvlv-rural"
FOLDER = files("gridcosim.scenarios") / "data" / DATA_SET


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_scenario(SCENARIO)


@pytest.fixture(scope="module")
def network(scenario: Scenario) -> NetworkData:
    return network_for(scenario)


@pytest.fixture(scope="module")
def stored() -> pp.pandapowerNet:
    """The shipped net, read by pandapower alone."""
    return pp.from_json_string((FOLDER / "net.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def tree(stored: pp.pandapowerNet) -> nx.MultiGraph:
    return top.create_nxgraph(stored, respect_switches=True)


def test_scale_counts(scenario: Scenario, network: NetworkData) -> None:
    assert len(network.buses) >= 1000
    assert len(scenario.microgrids) == 100
    assert scenario.timeseries is not None and scenario.timeseries.days == 7
    assert scenario.total_slots == 7 * 24
    assert (scenario.horizon.slots, scenario.horizon.slot_hours) == (24, 1.0)


def test_network_is_the_radial_tree_pandapower_sees(network: NetworkData, stored, tree) -> None:
    assert nx.is_tree(tree) and set(tree.nodes) == {int(b) for b in stored.bus.index}
    assert network.is_radial_and_connected()
    assert network.root_bus == int(stored.ext_grid["bus"].iloc[0])
    edges = {frozenset((int(a), int(b))) for a, b, _ in tree.edges(keys=True)}
    branches = {frozenset((int(r.from_bus), int(r.to_bus)))
                for r in network.branches.itertuples()}
    assert branches == edges


def test_microgrids_sit_at_distinct_mv_and_lv_buses(scenario: Scenario, stored) -> None:
    buses = [mg.bus for mg in scenario.microgrids]
    assert len(set(buses)) == len(buses)
    assert set(buses) <= {int(b) for b in stored.bus.index}
    assert int(stored.ext_grid["bus"].iloc[0]) not in buses
    levels = {float(stored.bus.at[b, "vn_kv"]) for b in buses}
    assert levels == {20.0, 0.4}


def test_pcc_ratings_are_a_fraction_of_the_load_below(scenario: Scenario, stored, tree) -> None:
    """Each PCC rating is below the nominal load downstream of its bus (pandapower graph)."""
    below = nx.bfs_tree(tree, int(stored.ext_grid["bus"].iloc[0]))
    load_kw = (stored.load.groupby("bus")["p_mw"].sum() * 1000.0).to_dict()
    for mg in scenario.microgrids:
        subtree = nx.descendants(below, mg.bus) | {mg.bus}
        downstream_kw = sum(load_kw.get(b, 0.0) for b in subtree)
        assert 0.0 < mg.pcc_p_max_kw < downstream_kw, mg.name


def test_loads_and_limits_match_pandapowers_power_flow(network: NetworkData, stored) -> None:
    net = pp.from_json_string(pp.to_json(stored))  # a copy for the results
    pp.runpp(net, numba=False)
    consumed_kw = (net.res_load["p_mw"].groupby(net.load["bus"]).sum() * 1000.0)
    consumed_kw = consumed_kw[consumed_kw > 0]
    loader_kw = network.load_p_kw[network.load_p_kw > 0]
    assert sorted(consumed_kw.index) == sorted(loader_kw.index)
    assert (abs(consumed_kw - loader_kw[consumed_kw.index]) <= 1e-9 * loader_kw.max()).all()
    losses_kw = net.res_ext_grid["p_mw"].sum() * 1000.0 - loader_kw.sum()
    assert 0.0 < losses_kw < 0.05 * loader_kw.sum()
    assert 0.9 <= net.res_bus["vm_pu"].min() and net.res_bus["vm_pu"].max() <= 1.1
    assert net.res_line["loading_percent"].max() < 100.0
    assert net.res_trafo["loading_percent"].max() < 100.0


def test_readme_counts_are_the_stored_nets(stored) -> None:
    text = (FOLDER / "README.md").read_text(encoding="utf-8")
    buses = re.search(r"\| buses \(MV 20 kV / LV 0.4 kV\) \| (\d+) \((\d+) / (\d+)\) \|", text)
    assert buses is not None
    lv = int((stored.bus["vn_kv"] < 1.0).sum())
    assert tuple(map(int, buses.groups())) == (len(stored.bus), len(stored.bus) - lv, lv)
    load = re.search(r"\| total nominal load \| ([\d.]+) kW, ([\d.]+) kvar \|", text)
    assert load is not None
    assert float(load.group(1)) == pytest.approx(stored.load["p_mw"].sum() * 1000.0, abs=0.05)
    assert float(load.group(2)) == pytest.approx(stored.load["q_mvar"].sum() * 1000.0, abs=0.05)
    trafos = re.search(r"\| MV/LV transformers \| (\d+) \|", text)
    assert trafos is not None and int(trafos.group(1)) == len(stored.trafo)


def test_shipped_scenario_is_what_the_tool_writes(stored) -> None:
    from gridcosim.scenarios.tools.scale_case_microgrids import scenario_toml

    shipped = (files("gridcosim.scenarios") / "builtin" / f"{SCENARIO}.toml").read_text(
        encoding="utf-8")
    assert scenario_toml(stored, DATA_SET) == shipped


def test_thermal_screen_holds_for_every_window_of_the_week(scenario: Scenario,
                                                           network: NetworkData) -> None:
    """The DSO's model, screened once with the run's loads, re-loads for all seven days."""
    from gridcosim.simulator.models.lindistflow_model import same_shape
    from gridcosim.simulator.models.thermal_screen import binding_sides, branch_ratings
    from gridcosim.simulator.windows import microgrid_window, network_window, published_bounds

    bounds = [published_bounds(microgrid_window(scenario, mg)) for mg in scenario.microgrids]
    first = network_window(scenario, network, bounds)
    for start in range(24, scenario.total_slots - 23, 12):
        assert same_shape(first, network_window(scenario, network, bounds, start))
    kept, rated = binding_sides(first), branch_ratings(first)
    assert len(rated) == 1315 and 0 < len(kept) < 0.01 * 8 * len(rated)


@pytest.mark.slow
def test_first_window_decomposition_reaches_the_monolithic_optimum(scenario: Scenario) -> None:
    from gridcosim.simulator.solve import solve_scenario

    mono = solve_scenario(scenario, "monolithic")
    dec = solve_scenario(scenario, "decomposition")
    assert mono.status == "optimal" and dec.status == "optimal"
    assert abs(dec.objective_usd - mono.objective_usd) <= 1e-6 * abs(mono.objective_usd)


@pytest.mark.slow
def test_tool_rebuilds_the_shipped_files_byte_for_byte() -> None:
    pytest.importorskip("simbench")
    from gridcosim.scenarios.tools import build_scale_case as tool

    for path, text in tool.outputs(tool.simbench_net()).items():
        assert path.read_text(encoding="utf-8") == text, path
