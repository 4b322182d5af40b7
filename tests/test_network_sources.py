"""Networks from where users keep them: pandapower cases and JSON files, SimBench, OpenDSS.

References are independent of the reader: pandapower's own internal branch impedances
(``net._ppc``) and its ``runpp`` on the untouched source net, the monolithic optimum for
the decomposition, OpenDSS for the three-phase reading of a user's master file.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest

from gridcosim.scenarios.errors import ScenarioError
from gridcosim.scenarios.loader import load_scenario
from gridcosim.scenarios.network import network_for
from gridcosim.scenarios.network_sources import SourceKind, parse_source
from gridcosim.scenarios.network_sources.opendss_user import opendss_bus_ids
from gridcosim.scenarios.network_sources.pandapower_balanced import read_pandapower_balanced
from gridcosim.scenarios.pandapower_net import build_pandapower_net
from gridcosim.simulator.solve import solve_scenario

REPO = Path(__file__).resolve().parents[1]
BUILTIN = REPO / "scenarios" / "builtin"
IEEE123_DSS = REPO / "scenarios" / "data" / "ieee123" / "opendss"
REL = 1e-6


def scenario_file(tmp_path: Path, source: str, base: str = "case33bw-3mg",
                  edits: dict[str, str] | None = None, stem: str = "scenario") -> Path:
    """A copy of a built-in scenario in ``tmp_path`` with another ``[network] source``."""
    text = (BUILTIN / f"{base}.toml").read_text(encoding="utf-8")
    lines = [f'source = "{source}"' if line.startswith("source = ") else line
             for line in text.splitlines()]
    text = "\n".join(lines) + "\n"
    for old, new in (edits or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / f"{stem}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def assert_decomposition_exact(path: Path) -> float:
    scenario = load_scenario(path)
    mono = solve_scenario(scenario, "monolithic")
    dec = solve_scenario(scenario, "decomposition")
    assert mono.status == dec.status == "optimal"
    assert dec.objective_usd == pytest.approx(mono.objective_usd, rel=REL)
    return mono.objective_usd


# ---- parsing -------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "kind", "target"), [
    ("ieee123", SourceKind.BUILTIN, "ieee123"),
    ("pandapower:case33bw", SourceKind.PANDAPOWER_CASE, "case33bw"),
    ("simbench:1-LV-rural1--0-sw", SourceKind.SIMBENCH, "1-LV-rural1--0-sw"),
    ("nets/feeder.JSON", SourceKind.PANDAPOWER_JSON, "nets/feeder.JSON"),
    ("C:/feeders/master.dss", SourceKind.OPENDSS, "C:/feeders/master.dss"),
])
def test_sources_parse(text: str, kind: SourceKind, target: str) -> None:
    parsed = parse_source(text)
    assert (parsed.kind, parsed.target) == (kind, target)


def test_opendss_ids_keep_integer_names() -> None:
    assert opendss_bus_ids(["650", "rg60", "632", "sourcebus"]) == {
        "650": 650, "632": 632, "rg60": 651, "sourcebus": 652}


# ---- pandapower: the reading against pandapower's own model ---------------------------

def _ppc_branch_pu(net: pp.pandapowerNet) -> dict[tuple[int, int], complex]:
    """pandapower's internal series impedance of every branch (p.u. on net.sn_mva).

    The pi model keeps a transformer's short-circuit impedance as the series branch (the
    default T model moves a little of it into the magnetising shunt).
    """
    pp.runpp(net, trafo_model="pi")
    ppc, lookup = net._ppc, net._pd2ppc_lookups["bus"]
    node_bus = {int(lookup[b]): int(b) for b in net.bus.index}
    out = {}
    for row in ppc["branch"]:
        a, b = node_bus[int(row[0].real)], node_bus[int(row[1].real)]
        out[(min(a, b), max(a, b))] = complex(row[2].real, row[3].real)
    return out


def test_case33bw_branches_equal_pandapowers_internal_impedances() -> None:
    net = pn.case33bw()
    data = read_pandapower_balanced(net, name="case33bw", base_kva=1000.0)
    assert data.is_radial_and_connected() and data.root_bus == 0 and len(data.buses) == 33
    assert data.load_p_kw.sum() == pytest.approx(net.load.p_mw.sum() * 1000.0, rel=1e-12)
    net.sn_mva = 1.0
    reference = _ppc_branch_pu(net)
    for row in data.branches.itertuples():
        key = (min(row.from_bus, row.to_bus), max(row.from_bus, row.to_bus))
        assert complex(row.r_pu, row.x_pu) == pytest.approx(reference[key], rel=1e-9)


def test_transformer_impedance_equals_pandapowers_on_a_simbench_like_feeder() -> None:
    net = pp.create_empty_network(sn_mva=1.0)
    hv, lv, end = (pp.create_bus(net, vn_kv=kv) for kv in (20.0, 0.4, 0.4))
    pp.create_ext_grid(net, hv)
    pp.create_transformer_from_parameters(net, hv, lv, sn_mva=0.4, vn_hv_kv=20.0, vn_lv_kv=0.4,
                                          vk_percent=6.0, vkr_percent=1.2, pfe_kw=0.5,
                                          i0_percent=0.3)
    pp.create_line_from_parameters(net, lv, end, 0.3, 0.2, 0.08, 210.0, 0.27)
    pp.create_load(net, end, p_mw=0.1, q_mvar=0.03)
    data = read_pandapower_balanced(net, name="tiny", base_kva=1000.0)
    assert set(data.branches["kind"]) == {"transformer", "line"}
    reference = _ppc_branch_pu(net)
    for row in data.branches.itertuples():
        key = (min(row.from_bus, row.to_bus), max(row.from_bus, row.to_bus))
        assert complex(row.r_pu, row.x_pu) == pytest.approx(reference[key], rel=1e-9)
    rating = data.branches.set_index("kind").loc["line", "s_max_kva"]
    assert rating == pytest.approx(math.sqrt(3.0) * 0.4 * 0.27 * 1000.0)


def test_off_nominal_tap_sets_the_voltage_ratio() -> None:
    net = pp.create_empty_network()
    hv, lv = pp.create_bus(net, vn_kv=20.0), pp.create_bus(net, vn_kv=0.4)
    pp.create_ext_grid(net, hv)
    pp.create_transformer_from_parameters(net, hv, lv, sn_mva=0.4, vn_hv_kv=20.0, vn_lv_kv=0.4,
                                          vk_percent=6.0, vkr_percent=1.2, pfe_kw=0.0,
                                          i0_percent=0.0, tap_side="hv", tap_neutral=0,
                                          tap_pos=-2, tap_step_percent=2.5,
                                          tap_changer_type="Ratio")
    pp.create_load(net, lv, p_mw=0.0, q_mvar=0.0)
    data = read_pandapower_balanced(net, name="tap", base_kva=1000.0)
    pp.runpp(net)  # no load: the LV voltage is the ratio alone
    ratio = float(data.branches["v_ratio"].iloc[0])
    assert math.sqrt(ratio) == pytest.approx(net.res_bus.vm_pu.at[lv], rel=1e-6)


def test_source_net_ac_flow_equals_pandapower_on_the_untouched_net() -> None:
    net = pn.case33bw()
    data = read_pandapower_balanced(net, name="case33bw", base_kva=1000.0)
    ac = build_pandapower_net(data)
    pp.runpp(ac)
    pp.runpp(net)
    assert np.allclose(ac.res_bus.vm_pu.loc[net.bus.index], net.res_bus.vm_pu, atol=1e-7)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda n: pp.create_line_from_parameters(n, 17, 32, 1.0, 0.5, 0.5, 0.0, 1.0), "loop"),
    (lambda n: pp.create_gen(n, 5, p_mw=0.1), "gen 0"),
    (lambda n: pp.create_ext_grid(n, 10), "exactly one"),
    (lambda n: n.load.__setitem__("p_mw", -n.load["p_mw"]), "negative p_mw"),
])
def test_unreadable_nets_are_refused_with_the_element_named(edit, message: str) -> None:
    net = pn.case33bw()
    edit(net)
    with pytest.raises(ScenarioError, match=message):
        read_pandapower_balanced(net, name="case33bw", base_kva=1000.0)


def test_open_switch_breaks_a_loop_and_out_of_service_lines_are_left_out() -> None:
    net = pn.case33bw()
    tie = pp.create_line_from_parameters(net, 17, 32, 1.0, 0.5, 0.5, 0.0, 1.0)
    pp.create_switch(net, 17, tie, et="l", closed=False)
    spare = pp.create_line_from_parameters(net, 10, 30, 1.0, 0.5, 0.5, 0.0, 1.0)
    net.line.at[spare, "in_service"] = False
    data = read_pandapower_balanced(net, name="case33bw", base_kva=1000.0)
    assert len(data.branches) == 32 and data.is_radial_and_connected()


# ---- pandapower JSON and cases in scenarios: decomposition = monolithic, AC converges --

def test_case33bw_json_file_relative_to_the_scenario(tmp_path: Path) -> None:
    pp.to_json(pn.case33bw(), str(tmp_path / "case33bw.json"))
    path = scenario_file(tmp_path, "case33bw.json")
    assert load_scenario(path).network.source == str(tmp_path / "case33bw.json")
    run = subprocess.run([sys.executable, "-m", "gridcosim.simulator.cli", "solve", str(path),
                          "--ac", "--json"], cwd=REPO, capture_output=True, text=True,
                         timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    import json

    out = json.loads(run.stdout)
    assert out["status"] == "optimal" and out["ac"]["final"]["feasible"]
    assert out["ac"]["final"]["power_flows_failed"] == 0
    mono = solve_scenario(load_scenario(path), "monolithic")
    assert out["objective_usd"] >= mono.objective_usd * (1 - REL)  # AC cuts only tighten


def test_case33bw_decomposition_equals_monolithic_where_the_band_binds(tmp_path: Path) -> None:
    scenario = load_scenario("case33bw-3mg")
    mono = solve_scenario(scenario, "monolithic")
    dec = solve_scenario(scenario, "decomposition")
    assert dec.objective_usd == pytest.approx(mono.objective_usd, rel=REL)
    vm = np.array(list(dec.network.vm_pu.values()))
    assert vm.min() == pytest.approx(0.95, abs=1e-7)  # the lower limit binds ...
    loose = scenario_file(tmp_path, "pandapower:case33bw",
                          edits={"v_min_pu = 0.95": "v_min_pu = 0.9"})
    free = solve_scenario(load_scenario(loose), "monolithic").objective_usd
    assert mono.objective_usd > free + 0.1  # ... and costs something


def test_line_rating_binds_in_the_master_and_is_kept(tmp_path: Path) -> None:
    net = pn.case33bw()
    net.line.at[0, "max_i_ka"] = 0.15  # 3.29 MVA at 12.66 kV on the substation line
    pp.to_json(net, str(tmp_path / "rated.json"))
    path = scenario_file(tmp_path, "rated.json", edits={"v_min_pu = 0.95": "v_min_pu = 0.9"})
    rated = assert_decomposition_exact(path)
    free = solve_scenario(load_scenario(scenario_file(
        tmp_path, "pandapower:case33bw", edits={"v_min_pu = 0.95": "v_min_pu = 0.9"},
        stem="free")),
        "monolithic").objective_usd
    assert rated > free + 1.0
    sol = solve_scenario(load_scenario(path), "monolithic")
    s_kva = np.hypot(sol.network.p_sub_kw, sol.network.q_sub_kvar)
    limit = math.sqrt(3.0) * 12.66 * 0.15 * 1000.0
    assert s_kva.max() <= limit + 1e-6


# ---- SimBench ---------------------------------------------------------------------------

def test_simbench_lv_grid_with_its_transformer(tmp_path: Path) -> None:
    path = tmp_path / "lv.toml"
    path.write_text(SIMBENCH_LV, encoding="utf-8")
    scenario = load_scenario(path)
    network = network_for(scenario)
    assert network.root_bus == 42 and "transformer" in set(network.branches["kind"])
    assert_decomposition_exact(path)
    dec = solve_scenario(scenario, "decomposition", ac=True)
    assert dec.status == "optimal" and dec.info["ac"]["final"]["power_flows_failed"] == 0


SIMBENCH_LV = """
name = "lv-rural1-2mg"
[network]
source = "simbench:1-LV-rural1--0-sw"
v_ref_pu = 1.0
v_min_pu = 0.96
v_max_pu = 1.04
load_scale = 3.0
[horizon]
slots = 4
[profiles]
price = [0.8, 1.0, 1.3, 0.9]
load = [0.8, 1.0, 1.0, 0.9]
renewables = [1.0, 1.2, 0.6, 1.0]
[[microgrids]]
name = "mg8"
bus = 8
pcc_p_max_kw = 40.0
pcc_q_max_kvar = 30.0
[[microgrids.generators]]
name = "dg8"
cost_usd_per_kwh = 0.06
startup_cost_usd = 2
p_min_kw = 5
p_max_kw = 30
q_min_kvar = -15
q_max_kvar = 15
ramp_kw_per_slot = 20
[[microgrids]]
name = "mg13"
bus = 13
pcc_p_max_kw = 40.0
pcc_q_max_kvar = 30.0
[[microgrids.storage]]
name = "ess13"
p_charge_max_kw = 10
p_discharge_max_kw = 10
e_min_kwh = 5
e_max_kwh = 30
e_initial_kwh = 15
eta_charge = 0.9
eta_discharge = 0.9
"""


# ---- OpenDSS files ------------------------------------------------------------------------

def test_ieee123_master_file_read_by_name_and_solved(tmp_path: Path) -> None:
    shutil.copytree(IEEE123_DSS, tmp_path / "opendss")
    path = scenario_file(tmp_path, "opendss/IEEE123Master.dss", base="ieee123-nmg-3ph", edits={
        "base_kv = 4.16\n": "", "bus = 121\n": 'bus = "300"\n', "bus = 117\n": "bus = 152\n"})
    scenario = load_scenario(path)
    network = network_for(scenario)
    assert network.root_bus == 150 and network.base_kv == pytest.approx(4.16, rel=1e-3)
    assert scenario.microgrids[-1].bus == 300  # the IEEE name, resolved to its id
    assert_decomposition_exact(path)


TINY_DSS = """
clear
new circuit.tiny basekv=12.47 pu=1.0 bus1=sourcebus phases=3
new linecode.lc nphases=3 r1=0.3 x1=0.6 r0=0.6 x0=1.8 c1=0 c0=0 units=km
new line.l1 bus1=sourcebus bus2=mid linecode=lc length=2 units=km
new line.l2 bus1=mid bus2=feeder_end linecode=lc length=3 units=km
new line.l3 bus1=mid.1 bus2=lateral.1 phases=1 linecode=lc length=1 units=km
new load.big bus1=feeder_end phases=3 kv=12.47 kw=900 kvar=300 model=1
new load.small bus1=lateral.1 phases=1 kv=7.2 kw=80 kvar=20 model=1
set voltagebases=[12.47]
calcvoltagebases
"""

TINY_SCENARIO = """
name = "tiny-dss"
[network]
source = "tiny.dss"
v_min_pu = 0.95
v_max_pu = 1.05
[horizon]
slots = 3
[profiles]
price = [0.8, 1.2, 1.0]
load = [0.9, 1.0, 0.95]
renewables = [1.0, 1.0, 1.0]
[[microgrids]]
name = "end"
bus = "feeder_end"
pcc_p_max_kw = 400.0
pcc_q_max_kvar = 300.0
[[microgrids.generators]]
name = "dg"
cost_usd_per_kwh = 0.05
startup_cost_usd = 5
p_min_kw = 20
p_max_kw = 300
q_min_kvar = -150
q_max_kvar = 150
ramp_kw_per_slot = 200
"""


def test_user_opendss_feeder_with_named_buses(tmp_path: Path) -> None:
    (tmp_path / "tiny.dss").write_text(TINY_DSS, encoding="utf-8")
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_SCENARIO, encoding="utf-8")
    scenario = load_scenario(path)
    network = network_for(scenario)
    ids = dict(zip(network.buses["name"], network.buses.index, strict=True))
    assert scenario.microgrids[0].bus == ids["feeder_end"]
    assert network.root_bus == ids["sourcebus"] and network.base_kv == pytest.approx(12.47)
    assert_decomposition_exact(path)
    dec = solve_scenario(scenario, "decomposition", ac=True)
    assert dec.info["ac"]["final"]["feasible"]


def test_opendss_loads_behind_a_transformer_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "tiny.dss").write_text(TINY_DSS.replace(
        "set voltagebases", "new transformer.t1 phases=3 windings=2 buses=[feeder_end, lv] "
        "conns=[wye, wye] kvs=[12.47, 0.48] kvas=[500, 500] xhl=5\n"
        "new load.lvload bus1=lv phases=3 kv=0.48 kw=50 kvar=10\nset voltagebases"),
        encoding="utf-8")
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_SCENARIO, encoding="utf-8")
    with pytest.raises(ScenarioError, match="t1"):
        load_scenario(path)


# ---- bad sources: exit 2, the field named, no traceback -----------------------------------

@pytest.mark.parametrize(("source", "message"), [
    ("pandapower:case_nope", "no case 'case_nope'"),
    ("missing.json", "no such file"),
    ("missing.dss", "no such file"),
    ("nonsense:thing", "unknown source prefix"),
])
def test_bad_sources_name_the_field(tmp_path: Path, source: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message) as err:
        load_scenario(scenario_file(tmp_path, source))
    assert all(p.startswith("network.source") for p in err.value.problems)


def test_a_bad_source_exits_2_without_a_traceback(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "missing.json")
    run = subprocess.run([sys.executable, "-m", "gridcosim.simulator.cli", "solve", str(path)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 2, run.stderr
    assert "network.source" in run.stderr and "no such file" in run.stderr
    assert "Traceback" not in run.stderr


def test_base_kv_must_match_a_sources_root(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "pandapower:case33bw",
                         edits={"[network]\n": "[network]\nbase_kv = 11.0\n"})
    with pytest.raises(ScenarioError, match="network.base_kv"):
        load_scenario(path)
