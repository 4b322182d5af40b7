"""Tests of the IEEE 123-bus network data (scenarios/data/ieee123) and its pandapower model."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import networkx as nx
import numpy as np
import pandapower as pp
import pytest

from gridcosim.scenarios.network import NetworkData
from gridcosim.scenarios.pandapower_net import build_pandapower_net, bus_index

SOURCE = Path(str(files("gridcosim.scenarios.data.ieee123") / "opendss"))

# SOURCE.md, "Positive-sequence line constants, per kft": (r1 ohm, x1 ohm, c1 nF).
EXPECTED_PER_KFT = {
    ("1", "2", "3", "4", "5", "6"): (0.05797, 0.11876, 3.475),
    ("7", "8"): (0.05796, 0.13005, 3.114),
    ("9", "10", "11"): (0.25174, 0.25521, 2.270),
    ("12",): (0.19209, 0.09152, 33.77),
}
# r1/x1 are printed to 5 decimals: match within 1e-4. c1 is printed to 3 (2 for code 12)
# decimals, e.g. 3.474583 -> 3.475, so it is matched to half a unit of its last printed digit.
R_X_ATOL = 1e-4
#: The balanced equivalent scales single-phase laterals' impedance by 3 and two-phase ones'
#: by 1.5 (scenarios/data/ieee123/README.md); the line codes' own constants are unscaled.
LATERAL_FACTOR = {("7", "8"): 1.5, ("9", "10", "11"): 3.0}
C_ATOL = {("12",): 5e-3}
C_ATOL_DEFAULT = 5e-4


@pytest.fixture(scope="module")
def solved_net(network: NetworkData) -> pp.pandapowerNet:
    net = build_pandapower_net(network)
    pp.runpp(net, numba=False)
    return net


def test_total_load(network: NetworkData) -> None:
    assert network.load_p_kw.sum() == pytest.approx(3490.0)
    assert network.load_q_kvar.sum() == pytest.approx(1920.0)
    assert len(network.loads) == 85
    assert set(network.loads["model"]) == {"PQ", "Z", "I"}


def test_shunts(network: NetworkData) -> None:
    assert network.shunt_q_kvar[network.shunt_q_kvar != 0].to_dict() == {
        83: 600.0,
        88: 50.0,
        90: 50.0,
        92: 50.0,
    }


def test_buses_and_branches(network: NetworkData) -> None:
    assert sorted(network.buses.index) == list(range(1, 124))
    assert network.root_bus == 1 and network.bus_ids[0] == 1
    assert len(network.branches) == 122
    switches = network.branches[network.branches["kind"] == "switch"]
    assert sorted(switches.index) == ["Sw2", "Sw3", "Sw4", "Sw5", "Sw6"]
    assert (switches[["r_ohm", "x_ohm", "c_nf"]] == 0).all().all()
    renamed = {
        115: "135",
        116: "151",
        117: "152",
        118: "160",
        119: "197",
        120: "250",
        121: "300",
        122: "450",
        123: "61s",
        9: "9",
        25: "25",
        114: "114",
    }
    assert {b: network.buses.at[b, "name_ieee"] for b in renamed} == renamed
    assert network.buses[["x", "y"]].notna().all().all()


def test_radial_and_connected(network: NetworkData) -> None:
    assert network.is_radial_and_connected()
    graph = nx.Graph()
    graph.add_nodes_from(network.buses.index)
    graph.add_edges_from(zip(network.branches["from_bus"], network.branches["to_bus"], strict=True))
    assert nx.is_tree(graph)
    depth = nx.shortest_path_length(graph, source=1)
    for label, row in network.branches.iterrows():  # oriented parent -> child, away from bus 1
        assert depth[row["to_bus"]] == depth[row["from_bus"]] + 1, label
    assert network.path_to_root(114) == tuple(reversed(nx.shortest_path(graph, 1, 114)))
    position = {bus: i for i, bus in enumerate(network.bus_ids)}
    assert all(position[network.parent[b]] < position[b] for b in network.parent)
    assert network.branch_of[35] == "L114" and network.children[67] == (68, 72, 97)


def test_per_unit_values(network: NetworkData) -> None:
    lines = network.branches
    assert network.z_base_ohm == pytest.approx(17.3056)
    np.testing.assert_allclose(lines["r_pu"], lines["r_ohm"] / 17.3056, rtol=1e-8)
    np.testing.assert_allclose(lines["x_pu"], lines["x_ohm"] / 17.3056, rtol=1e-8)
    # OpenDSS lengths are kept (L81 175 ft, L89 250 ft; kersting_csv has 475 / 225 ft).
    assert lines.at["L81", "length_kft"] == 0.175 and lines.at["L89", "length_kft"] == 0.25
    assert lines["length_kft"].sum() == pytest.approx(38.975 - 0.4)  # L115 dropped


@pytest.mark.parametrize("codes,expected", list(EXPECTED_PER_KFT.items()))
def test_line_constants_per_kft(
    network: NetworkData, codes: tuple[str, ...], expected: tuple[float, float, float]
) -> None:
    lines = network.branches[network.branches["kind"] == "line"]
    family = lines[lines["linecode"].isin(codes)]
    assert len(family) > 0
    tolerances = (R_X_ATOL, R_X_ATOL, C_ATOL.get(codes, C_ATOL_DEFAULT))
    factor = LATERAL_FACTOR.get(codes, 1.0)
    for column, value, tol in zip(("r_ohm", "x_ohm", "c_nf"), expected, tolerances, strict=True):
        per_kft = family[column] / family["length_kft"] / (factor if column != "c_nf" else 1.0)
        np.testing.assert_allclose(per_kft, value, rtol=0, atol=tol, err_msg=f"{codes} {column}")


@pytest.mark.skipif(not SOURCE.is_dir(), reason="raw OpenDSS data not available")
def test_converter_line_codes_from_source() -> None:
    from gridcosim.scenarios.tools.convert_ieee123 import linecode_constants, load_objects

    codes = linecode_constants(load_objects(SOURCE / "IEEE123Master.dss"))
    for names, expected in EXPECTED_PER_KFT.items():
        atol = np.array([R_X_ATOL, R_X_ATOL, C_ATOL.get(names, C_ATOL_DEFAULT)])
        for name in names:
            assert np.all(np.abs(np.array(codes[name]) - np.array(expected)) <= atol), name


def test_pandapower_net_structure(network: NetworkData) -> None:
    net = build_pandapower_net(network, v_ref_pu=1.02)
    assert bus_index(net) == {b: b for b in range(1, 124)}
    assert len(net.line) == 117 and len(net.switch) == 5 and net.switch["closed"].all()
    assert net.ext_grid.at[0, "bus"] == 1 and net.ext_grid.at[0, "vm_pu"] == 1.02
    assert net.shunt.at[83, "q_mvar"] == pytest.approx(-0.6)
    assert net.load["p_mw"].sum() == pytest.approx(3.49)


def test_power_flow_nominal_load(solved_net: pp.pandapowerNet) -> None:
    """The balanced equivalent against OpenDSS solving the unbalanced feeder (nominal load).

    Reference: the OpenDSS engine on ``ieee123-3ph`` (same choices: bus 1 at 1.0 p.u.,
    regulators at neutral tap, constant-power loads). With the laterals' impedance scaled
    the balanced voltages are within 0.019 p.u. of the lowest phase at every
    bus either way (0.025 without the scaling), and the losses within 5 %.
    """
    from gridcosim.scenarios.phase_sources.builtin import load_phase_network
    from gridcosim.simulator.validation.phase_engines.base import PhaseOperatingPoint
    from gridcosim.simulator.validation.phase_engines.opendss_engine import OpenDSSPhaseEngine

    assert solved_net.converged
    vm = solved_net.res_bus["vm_pu"]
    net3 = load_phase_network("ieee123-3ph")
    ac3 = OpenDSSPhaseEngine(net3).solve(PhaseOperatingPoint.nominal(net3))
    lowest = ac3.vm_pu.groupby(level="bus").min()
    gap = (vm.reindex(lowest.index) - lowest)
    assert vm.idxmin() == 114 == lowest.idxmin()
    assert gap.abs().max() < 0.019  # optimistic on loaded single phases, pessimistic on light
    losses_kw = solved_net.res_line["pl_mw"].sum() * 1000.0
    assert losses_kw == pytest.approx(ac3.losses_kw, rel=0.05)
