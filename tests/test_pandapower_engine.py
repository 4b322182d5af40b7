"""pandapower ``runpp_3ph`` as a three-phase engine: every trap caught, EULV read and solved.

Each trap test first shows that the trap is real in the installed pandapower (a direct
``runpp_3ph`` that drops, ignores, raises or returns NaN), then that the engine reports
it as a failed result. The European LV feeder read from pandapower must be the OpenDSS
files' feeder (same buses, tree, line impedances, loads), and both engines must solve it
alike.
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pandas as pd
import pytest
from packaging.version import Version

from gridcosim.scenarios.errors import ScenarioError
from gridcosim.scenarios.phase_network import PhaseNetwork
from gridcosim.scenarios.phase_sources.opendss_source import read_opendss
from gridcosim.scenarios.phase_sources.pandapower_source import (
    correct_eulv_power_factor,
    eulv_pandapower,
    phase_matrix,
    read_pandapower_3ph,
)
from gridcosim.simulator.validation.phase_engines import pandapower_engine as ppe
from gridcosim.simulator.validation.phase_engines.base import (
    BalancedInjection,
    PhaseInjection,
    PhaseOperatingPoint,
)

EULV = Path(__file__).resolve().parents[1] / "scenarios" / "data" / "eulv" / "opendss"
TAN = math.tan(math.acos(0.95))
Z1, Z0 = 0.02 + 0.008j, 0.08 + 0.03j  # ohm, a short LV cable
#: Some traps differ by version (no 3.5.0/3.5.1 on PyPI: 3.4.0 is followed by 3.5.2).
PANDAPOWER_3_5 = Version(pp.__version__) >= Version("3.5")


def small_network(lateral: str = "abc", z_lateral: np.ndarray | None = None,
                  shunt_phases: str | None = None) -> PhaseNetwork:
    """Root 0 - 1, then 1 - 2 and a lateral 1 - 3; wye, delta and lateral loads."""
    pos = ["abc".index(p) for p in lateral]
    z = phase_matrix(Z1, Z0)
    buses = pd.DataFrame({"name": ["0", "1", "2", "3"], "phases": ["abc"] * 3 + [lateral],
                          "x": np.nan, "y": np.nan}, index=pd.Index(range(4), name="bus"))
    lines = pd.DataFrame({"from_bus": [0, 1, 1], "to_bus": [1, 2, 3],
                          "phases": ["abc", "abc", lateral], "kind": "line", "s_max_kva": np.nan},
                         index=pd.Index(["l1", "l2", "l3"], name="line"))
    loads = pd.DataFrame({"bus": [2, 2, 3], "phases": ["a", "bc", lateral],
                          "conn": ["wye", "delta", "wye"], "p_kw": [10.0, 6.0, 9.0],
                          "q_kvar": [3.0, 2.0, 3.0]},
                         index=pd.Index(["d1", "d2", "d3"], name="load"))
    shunts = pd.DataFrame({"bus": [3], "phases": [shunt_phases], "q_kvar": [20.0]},
                          index=pd.Index(["c1"], name="shunt")).iloc[: 1 if shunt_phases else 0]
    return PhaseNetwork(
        name="small", base_kva=1000.0, base_kv=0.416, root_bus=0, buses=buses, lines=lines,
        z_ohm={"l1": z, "l2": 2 * z, "l3": z[np.ix_(pos, pos)] if z_lateral is None else z_lateral},
        loads=loads, shunts=shunts)


def direct_run(net: pp.pandapowerNet) -> float | str:
    """runpp_3ph without any guard: the slack's kW (converged True) or what went wrong."""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            pp.runpp_3ph(net, numba=False)
    except Exception as exc:  # the point is to see what it raises
        return type(exc).__name__
    if not net.converged:
        return "not converged"
    return float(net.res_ext_grid_3ph[ppe.P_COLS_EG].to_numpy().sum() * 1e3)


@pytest.fixture(scope="module")
def small() -> PhaseNetwork:
    return small_network()


@pytest.fixture
def engine(small: PhaseNetwork) -> ppe.PandapowerPhaseEngine:
    return ppe.PandapowerPhaseEngine(small)


@pytest.fixture(scope="module")
def eulv_pp() -> PhaseNetwork:
    return eulv_pandapower()


@pytest.fixture(scope="module")
def eulv_dss() -> PhaseNetwork:
    return read_opendss(EULV / "Master.dss", name="eulv", root="1", base_kva=1000,
                        base_kv=0.416, drop=["Transformer.TR1"])


@pytest.fixture(scope="module")
def eulv_engine(eulv_pp: PhaseNetwork) -> ppe.PandapowerPhaseEngine:
    return ppe.PandapowerPhaseEngine(eulv_pp)


def assert_caught(engine: ppe.PandapowerPhaseEngine, network: PhaseNetwork, *words: str) -> None:
    result = engine.solve(PhaseOperatingPoint.nominal(network))
    assert not result.converged and result.vm_pu.isna().all()
    for word in words:
        assert word in result.message, result.message


# --- the traps ------------------------------------------------------------------------------

@pytest.mark.parametrize(("table", "typ"), [("load", None), ("load", "foo"),
                                            ("asymmetric_load", None), ("sgen", None),
                                            ("asymmetric_sgen", None)])
def test_untyped_element_is_caught(engine, small, table, typ):
    base = direct_run(engine.net)
    if table in ("load", "sgen"):
        getattr(pp, f"create_{table}")(engine.net, 2, p_mw=0.005, type=typ)
    else:
        getattr(pp, f"create_{table}")(engine.net, 2, p_b_mw=0.005, type=typ)
    created = engine.net[table]["type"].iloc[-1]
    assert created == typ if isinstance(typ, str) else pd.isna(created)
    assert direct_run(engine.net) == pytest.approx(base)  # really dropped, silently
    assert_caught(engine, small, table, "type not 'wye'/'delta'")


def test_default_sgen_is_caught_or_solved(engine, small):
    """create_sgen's default type: None since pandapower 3.5 (dropped), 'wye' up to 3.4."""
    base = engine.solve(PhaseOperatingPoint.nominal(small))
    pp.create_sgen(engine.net, 2, p_mw=0.005)
    created = engine.net.sgen["type"].iloc[-1]
    if PANDAPOWER_3_5:
        assert pd.isna(created)
        assert_caught(engine, small, "sgen", "type not 'wye'/'delta'")
        return
    assert created == "wye"
    result = engine.solve(PhaseOperatingPoint.nominal(small))
    assert base.converged and result.converged, result.message
    # all of its 5 kW is solved: the slack gives 5 kW less, minus the losses it saves
    saved_kw = base.losses_kw - result.losses_kw
    assert 0 < saved_kw < 0.5
    assert result.p_sub_kw - base.p_sub_kw == pytest.approx(-5.0 - saved_kw, abs=1e-3)


def test_dropped_load_fails_the_slack_balance_too(engine, small, monkeypatch):
    pp.create_load(engine.net, 2, p_mw=0.005, type=None)
    monkeypatch.setattr(ppe, "check_runpp_3ph_traps", lambda net: [])
    assert_caught(engine, small, "slack balance off by -5")


@pytest.mark.parametrize("table", ["storage", "ward", "motor", "gen"])
def test_ignored_element_is_caught(engine, small, table):
    base = direct_run(engine.net)
    {"storage": lambda: pp.create_storage(engine.net, 2, p_mw=0.005, max_e_mwh=1.0),
     "ward": lambda: pp.create_ward(engine.net, 2, ps_mw=0.005, qs_mvar=0, pz_mw=0, qz_mvar=0),
     "motor": lambda: pp.create_motor(engine.net, 2, pn_mech_mw=0.005, cos_phi=0.9),
     "gen": lambda: pp.create_gen(engine.net, 2, p_mw=0.005, vm_pu=1.0)}[table]()
    outcome = direct_run(engine.net)
    if table == "gen" and not PANDAPOWER_3_5:  # up to 3.4: no res_gen_3ph table
        assert outcome == "KeyError"
    elif table == "gen":  # NaN everywhere, converged True
        assert math.isnan(outcome) and engine.net.res_bus_3ph["vm_a_pu"].isna().all()
    else:
        assert outcome == pytest.approx(base)
    assert_caught(engine, small, table)


def test_voltage_dependent_load_is_caught(engine, small):
    pp.create_load(engine.net, 2, p_mw=0.03, type="wye")
    constant_power = direct_run(engine.net)
    engine.net.load.loc[engine.net.load.index[-1], "const_z_p_percent"] = 100.0
    assert direct_run(engine.net) == pytest.approx(constant_power)  # treated as constant P
    assert_caught(engine, small, "const_z_p_percent != 0", "constant power")


@pytest.mark.parametrize("how", ["drop", "nan"])
@pytest.mark.parametrize("column", ["r0_ohm_per_km", "x0_ohm_per_km"])
def test_missing_zero_sequence_is_caught(small, column, how):
    net = ppe.build_net(small)
    if how == "drop":
        net.line = net.line.drop(columns=[column])
    else:
        net.line[column] = np.nan
    assert isinstance(direct_run(net), str)  # KeyError, FloatingPointError or similar
    assert_caught(ppe.PandapowerPhaseEngine.from_net(net, small), small, column)


@pytest.mark.parametrize("how", ["drop", "nan"])
@pytest.mark.parametrize("column", ["s_sc_max_mva", "rx_max", "x0x_max", "r0x0_max"])
def test_missing_short_circuit_data_is_caught(small, column, how):
    net = ppe.build_net(small)
    if how == "drop":
        net.ext_grid = net.ext_grid.drop(columns=[column])
    else:
        net.ext_grid[column] = np.nan
    outcome = direct_run(net)
    assert isinstance(outcome, str) if how == "drop" else math.isnan(outcome)
    assert_caught(ppe.PandapowerPhaseEngine.from_net(net, small), small, "ext_grid", column)


def test_nan_results_with_converged_true_are_caught(eulv_pp, monkeypatch):
    """pandapower #3068: an overloaded feeder may come back NaN with ``converged`` True.

    Whether a given overload shows it depends on the machine's floating point: the point
    below (200 kW on one phase at the far end) gave it on earlier machines and raises
    ``LoadflowNotConverged`` on others (2026-12-02). Either is a failed result; the
    symptom itself is produced here, the real run's voltages set to NaN with
    ``converged`` True, so the guard is tested on every machine.
    """
    engine = ppe.PandapowerPhaseEngine(eulv_pp)
    nominal = PhaseOperatingPoint.nominal(eulv_pp)
    overloaded = PhaseOperatingPoint.nominal(
        eulv_pp, single_phase=(PhaseInjection(906, "b", -200.0, 0.0),))
    assert engine.solve(nominal).converged
    result = engine.solve(overloaded)  # warm-started from the nominal solution
    assert not result.converged and ("#3068" in result.message
                                     or "LoadflowNotConverged" in result.message)
    real = ppe.runpp_3ph

    def nan_results(net, **kwargs):  # noqa: ANN001, ANN003, ANN202 - runpp_3ph's signature
        real(net, **kwargs)
        net.res_bus_3ph["vm_b_pu"] = np.nan
        net.converged = True

    monkeypatch.setattr(ppe, "runpp_3ph", nan_results)
    result = engine.solve(nominal)
    assert not result.converged and "NaN" in result.message and "#3068" in result.message
    monkeypatch.setattr(ppe, "runpp_3ph", real)
    assert engine.solve(nominal).converged  # recovers


def test_a_single_nan_is_caught(engine, small, monkeypatch):
    def one_nan(net, **kwargs):
        pp.runpp_3ph(net, **kwargs)
        net.res_bus_3ph.loc[3, "vm_c_pu"] = np.nan

    monkeypatch.setattr(ppe, "runpp_3ph", one_nan)
    assert_caught(engine, small, "1 NaN")


def test_slack_balance_mismatch_is_caught(engine, small, monkeypatch):
    def off_by_1kw(net, **kwargs):
        pp.runpp_3ph(net, **kwargs)
        net.res_ext_grid_3ph.loc[:, "p_a_mw"] += 0.001

    assert engine.solve(PhaseOperatingPoint.nominal(small)).converged
    monkeypatch.setattr(ppe, "runpp_3ph", off_by_1kw)
    assert_caught(engine, small, "slack balance off by 1 kW")


def test_exception_from_runpp_3ph_is_a_result(engine, small, monkeypatch):
    def diverge(net, **kwargs):
        raise pp.LoadflowNotConverged("Power Flow nr did not converge after 30 iterations!")
    monkeypatch.setattr(ppe, "runpp_3ph", diverge)
    assert_caught(engine, small, "LoadflowNotConverged")


@pytest.mark.parametrize(("network", "words"), [
    (small_network(lateral="a"), "always three-phase"),
    (small_network(lateral="ac"), "always three-phase"),
    (small_network(z_lateral=phase_matrix(Z1, Z0) + np.diag([0.0, 0.001, 0.0])), "not circulant"),
    (small_network(z_lateral=np.zeros((3, 3), complex)), "zero sequence impedance"),
    (small_network(shunt_phases="a"), "only three-phase shunts"),
])
def test_unrepresentable_network_is_rejected(network, words):
    with pytest.raises(ScenarioError, match=words):
        ppe.PandapowerPhaseEngine(network)


def test_three_phase_shunt_is_honoured(small):
    plain = ppe.PandapowerPhaseEngine(small).solve(PhaseOperatingPoint.nominal(small))
    network = small_network(shunt_phases="abc")
    engine = ppe.PandapowerPhaseEngine(network)
    result = engine.solve(PhaseOperatingPoint.nominal(network))
    assert engine.net.shunt["q_mvar"].tolist() == [-0.02]
    vm2 = float((result.vm_pu.loc[3] ** 2).mean())
    assert plain.q_sub_kvar - result.q_sub_kvar == pytest.approx(20.0 * vm2, rel=1e-2)


def test_bad_operating_point_is_a_result(engine, small):
    nominal = PhaseOperatingPoint.nominal(small)
    for point in (PhaseOperatingPoint(nominal.load_p_kw[:2], nominal.load_q_kvar[:2]),
                  PhaseOperatingPoint.nominal(small, single_phase=(PhaseInjection(9, "a", 1, 0),)),
                  PhaseOperatingPoint.nominal(small, v_ref_pu=math.nan)):
        assert not engine.solve(point).converged


# --- reading pandapower nets ------------------------------------------------------------------

def pp_feeder() -> pp.pandapowerNet:
    """Ext grid at 0; lines 0-1, 1-2, 1-3; balanced, wye and delta loads; a capacitor."""
    net = pp.create_empty_network()
    pp.create_buses(net, 4, vn_kv=0.416)
    pp.create_ext_grid(net, 0, **ppe.STIFF_SOURCE)
    for f, t in ((0, 1), (1, 2), (1, 3)):
        pp.create_line_from_parameters(net, f, t, 0.2, r_ohm_per_km=0.1, x_ohm_per_km=0.04,
                                       c_nf_per_km=0.0, max_i_ka=0.2, r0_ohm_per_km=0.4,
                                       x0_ohm_per_km=0.1, c0_nf_per_km=0.0)
    pp.create_load(net, 2, p_mw=0.006, q_mvar=0.002, name="bal")
    pp.create_asymmetric_load(net, 3, p_a_mw=0.004, p_c_mw=0.002, q_c_mvar=0.001, name="wye")
    pp.create_asymmetric_load(net, 2, p_b_mw=0.003, type="delta", name="dlt")
    pp.create_shunt(net, 3, q_mvar=-0.01)
    return net


def test_read_pandapower_feeder():
    network = read_pandapower_3ph(pp_feeder(), name="f", root_bus=0, base_kva=1000.0,
                                  bus_id=lambda b: 100 + b)
    assert network.bus_ids == (100, 101, 102, 103) and network.base_kv == 0.416
    assert network.z_ohm["line1"] == pytest.approx(phase_matrix(0.02 + 0.008j, 0.08 + 0.02j))
    assert network.loads.reset_index().values.tolist() == [
        ["bal", 102, "abc", "wye", 6.0, 2.0], ["wye.a", 103, "a", "wye", 4.0, 0.0],
        ["wye.c", 103, "c", "wye", 2.0, 1.0], ["dlt", 102, "bc", "delta", 3.0, 0.0]]
    assert network.shunts.reset_index().values.tolist() == [["shunt0", 103, "abc", 10.0]]
    assert ppe.PandapowerPhaseEngine(network).solve(PhaseOperatingPoint.nominal(network)).converged


def _trafo_below(net):
    pp.create_bus(net, 0.4)
    pp.create_transformer_from_parameters(net, 3, 4, 0.1, 0.416, 0.4, 1.0, 4.0, 0.0, 0.0)


@pytest.mark.parametrize(("change", "words"), [
    (_trafo_below, "trafo 0: a transformer below the root"),
    (lambda n: pp.create_storage(n, 3, p_mw=0.01, max_e_mwh=1.0), "storage 0"),
    (lambda n: pp.create_sgen(n, 3, p_mw=0.01), "sgen 0: a generator"),
    (lambda n: pp.create_asymmetric_load(n, 3, p_a_mw=0.01, type=None), "neither wye nor delta"),
    (lambda n: n.load.__setitem__("const_i_p_percent", 50.0), "const_i_p_percent"),
    (lambda n: n.line.__setitem__("r0_ohm_per_km", np.nan), "r0_ohm_per_km missing"),
    (lambda n: n.line.__setitem__("c_nf_per_km", 10.0), "c_nf_per_km != 0"),
    (lambda n: pp.create_line_from_parameters(n, 2, 3, 0.1, 0.1, 0.04, 0.0, 0.2), "not radial"),
])
def test_read_rejects_what_it_cannot_represent(change, words):
    net = pp_feeder()
    change(net)
    with pytest.raises(ScenarioError, match=words):
        read_pandapower_3ph(net, name="f", root_bus=0, base_kva=1000.0)


def test_power_factor_correction():
    net = pn.ieee_european_lv_asymmetric("off_peak_1")
    loads = net.asymmetric_load
    on_b = loads["p_b_mw"] > 0
    assert (loads.loc[on_b, "q_b_mvar"] < 1e-3 * loads.loc[on_b, "p_b_mw"]).all()  # #2218
    correct_eulv_power_factor(net)
    for phase in "abc":
        assert loads[f"q_{phase}_mvar"].to_numpy() == pytest.approx(
            loads[f"p_{phase}_mw"].to_numpy() * TAN, rel=1e-12)
    assert (loads.loc[on_b, "q_b_mvar"] > 0).all()
    with pytest.raises(ScenarioError, match="#2218"):  # a fixed pandapower would be noticed
        correct_eulv_power_factor(net)


def test_eulv_pandapower_is_the_opendss_feeder(eulv_pp, eulv_dss):
    assert len(eulv_pp.buses) == 906 and len(eulv_pp.lines) == 905 and len(eulv_pp.loads) == 55
    assert eulv_pp.root_bus == eulv_dss.root_bus == 1
    pd.testing.assert_frame_equal(eulv_pp.buses.sort_index()[["name", "phases"]],
                                  eulv_dss.buses.sort_index()[["name", "phases"]])
    assert np.abs(eulv_pp.buses.sort_index()[["x", "y"]].to_numpy()
                  - eulv_dss.buses.sort_index()[["x", "y"]].to_numpy()).max() < 1e-6
    assert eulv_pp.parent == eulv_dss.parent
    columns = ["from_bus", "to_bus", "phases"]
    pd.testing.assert_frame_equal(eulv_pp.lines.loc[eulv_dss.lines.index, columns],
                                  eulv_dss.lines[columns])
    worst = max(np.abs(eulv_pp.z_ohm[k] - z).max() / np.abs(z).max()
                for k, z in eulv_dss.z_ohm.items())
    assert worst < 1e-9, worst
    columns = ["bus", "phases", "conn"]
    pd.testing.assert_frame_equal(eulv_pp.loads[columns], eulv_dss.loads[columns])


def test_eulv_loads_are_minute_566_of_the_opendss_profiles(eulv_pp, eulv_dss):
    shapes = [line.split("Yearly=Shape_")[1].split()[0]
              for line in (EULV / "Loads.txt").read_text().splitlines() if "Yearly=" in line]
    minute = [float((EULV / "Daily_1min_100profiles" / f"load_profile_{s}.txt")
                    .read_text().split()[565]) for s in shapes]
    assert eulv_pp.loads["p_kw"].to_numpy() == pytest.approx(
        eulv_dss.loads["p_kw"].to_numpy() * minute, rel=1e-12)
    assert eulv_pp.loads["q_kvar"].to_numpy() == pytest.approx(
        eulv_pp.loads["p_kw"].to_numpy() * TAN, rel=1e-12)


# --- solving EULV -----------------------------------------------------------------------------

def test_eulv_nominal_solve(eulv_pp, eulv_engine):
    point = PhaseOperatingPoint.nominal(eulv_pp)
    eulv_engine.solve(point)
    start = time.perf_counter()
    result = eulv_engine.solve(point)
    seconds = time.perf_counter() - start
    assert result.converged, result.message
    assert result.vm_pu.index.tolist() == list(eulv_pp.nodes)
    assert result.vm_pu.loc[1].to_numpy() == pytest.approx(1.0, abs=1e-8)
    demand = eulv_pp.loads["p_kw"].sum()
    assert result.p_sub_kw == pytest.approx(demand + result.losses_kw, rel=1e-3)
    assert result.p_flow_kw.loc["line1"].sum() == pytest.approx(result.p_sub_kw, rel=1e-6)
    print(f"EULV runpp_3ph: {seconds:.3f} s per solve, p_sub {result.p_sub_kw:.3f} kW, "
          f"losses {result.losses_kw:.3f} kW, min |V| {result.vm_pu.min():.4f}")


def test_eulv_phase_b_injection_raises_b_and_lowers_a_c(eulv_pp, eulv_engine):
    base = eulv_engine.solve(PhaseOperatingPoint.nominal(eulv_pp))
    point = PhaseOperatingPoint.nominal(eulv_pp, single_phase=(PhaseInjection(906, "b", 10.0, 0),))
    result = eulv_engine.solve(point)
    assert result.converged, result.message
    demand = eulv_pp.loads["p_kw"].sum()
    assert result.p_sub_kw == pytest.approx(demand - 10.0 + result.losses_kw, rel=1e-3)
    change = (result.vm_pu - base.vm_pu).loc[906]
    print(f"10 kW on phase b at bus 906: {change.round(5).to_dict()}")
    assert change["b"] == pytest.approx(0.0357, abs=5e-4)
    assert change["a"] == pytest.approx(-0.0073, abs=5e-4)
    assert change["c"] == pytest.approx(-0.0073, abs=5e-4)


def test_engines_agree(eulv_pp):
    opendss = pytest.importorskip("gridcosim.simulator.validation.phase_engines.opendss_engine")
    points = [PhaseOperatingPoint.nominal(eulv_pp),
              PhaseOperatingPoint.nominal(eulv_pp, single_phase=(PhaseInjection(906, "b", 10, 0),)),
              PhaseOperatingPoint.nominal(eulv_pp, balanced=(BalancedInjection(600, 15.0, 3.0),),
                                          single_phase=(PhaseInjection(899, "c", 5.0, 1.0),),
                                          v_ref_pu=1.03)]
    cases = [(eulv_pp, points)]
    for shunt in (None, "abc"):
        net = small_network(shunt_phases=shunt)
        cases.append((net, [PhaseOperatingPoint.nominal(net, balanced=(
            BalancedInjection(3, 4.0, 1.0),), single_phase=(PhaseInjection(2, "c", 3.0, 0),))]))
    for network, network_points in cases:
        ours, theirs = ppe.PandapowerPhaseEngine(network), opendss.OpenDSSPhaseEngine(network)
        for point in network_points:
            a, b = ours.solve(point), theirs.solve(point)
            assert a.converged and b.converged, (a.message, b.message)
            worst = float((a.vm_pu - b.vm_pu).abs().max())
            print(f"{network.name}: max |V| difference {worst:.2e} p.u., losses "
                  f"{a.losses_kw:.4f} vs {b.losses_kw:.4f} kW")
            assert worst < 1e-3
            assert a.losses_kw == pytest.approx(b.losses_kw, rel=1e-3)
