"""The validator's fast AC power flow against a plain ``pandapower.runpp`` (seed feeder).

The reference net is built here, independently of the validator's own net: a fresh
:func:`build_pandapower_net`, bus loads written per bus, microgrid exchanges and SVCs as
sgens, solved by ``pp.runpp`` with its defaults (tolerance 1e-8 MVA). Measured
(pandapower 3.5.6, lightsim2grid 1.2.0): max |Δ|V|| = 3e-11 p.u. on every point, losses
and substation import within 1e-7 kW, line currents within 1e-9 kA.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandapower as pp
import pandas as pd
import pytest
from pp_reference import net_with_loads

from gridcosim.scenarios.network import NetworkData
from gridcosim.simulator.validation.operating_point import OperatingPoint
from gridcosim.simulator.validation.results import PF_FAILED
from gridcosim.simulator.validation.validator import NetworkValidator

MG_BUSES = {"mg7": 7, "mg50": 50, "mg58": 58, "mg96": 96, "mg104": 104, "mg121": 121}
SVC_BUSES = (83, 88, 113, 117)  # 117 is fused with 13 by switch Sw2
AGREEMENT_PU = 1e-6


@pytest.fixture(scope="module")
def validator(network: NetworkData) -> NetworkValidator:
    return NetworkValidator(network, v_ref_pu=1.0, v_min_pu=0.95, v_max_pu=1.05,
                            mg_buses=MG_BUSES, svc_buses=SVC_BUSES)


def random_point(network: NetworkData, seed: int, slot: int = 0) -> OperatingPoint:
    """Loads at 0.5-1.6x nominal, partly curtailed; random exchanges and SVC outputs."""
    rng = np.random.default_rng(seed)
    ids = list(network.bus_ids)
    scale = rng.uniform(0.5, 1.6)
    keep = 1.0 - rng.uniform(0.0, 0.3, len(ids)) * (rng.random(len(ids)) < 0.2)
    return OperatingPoint(
        slot=slot,
        load_kw=network.load_p_kw.reindex(ids).to_numpy() * scale * keep,
        load_kvar=network.load_q_kvar.reindex(ids).to_numpy() * scale * keep,
        mg_kw=tuple(rng.uniform(-400, 400, len(MG_BUSES))),
        mg_kvar=tuple(rng.uniform(-300, 300, len(MG_BUSES))),
        svc_kvar=tuple(rng.uniform(-300, 300, len(SVC_BUSES))))


def plain_runpp(network: NetworkData, point: OperatingPoint) -> pp.pandapowerNet:
    """A fresh net with ``point`` written into it, solved by a plain ``pp.runpp``."""
    net = net_with_loads(network, point)
    for bus, p, q in zip(MG_BUSES.values(), point.mg_kw, point.mg_kvar, strict=True):
        pp.create_sgen(net, bus=bus, p_mw=p / 1000.0, q_mvar=q / 1000.0)
    for bus, q in zip(SVC_BUSES, point.svc_kvar, strict=True):
        pp.create_sgen(net, bus=bus, p_mw=0.0, q_mvar=q / 1000.0)
    pp.runpp(net, numba=False)
    return net


@pytest.mark.parametrize("seed", range(6))
def test_fast_path_agrees_with_plain_runpp(network: NetworkData, validator: NetworkValidator,
                                           seed: int) -> None:
    point = random_point(network, seed)
    result = validator.solve(point)
    net = plain_runpp(network, point)
    vm_ref = net.res_bus["vm_pu"].reindex(list(network.bus_ids)).to_numpy()
    assert result.ok
    assert np.max(np.abs(result.vm_pu - vm_ref)) < AGREEMENT_PU
    assert result.losses_kw == pytest.approx(net.res_line["pl_mw"].sum() * 1000.0, abs=1e-4)
    assert result.p_sub_kw == pytest.approx(net.res_ext_grid["p_mw"].sum() * 1000.0, abs=1e-4)
    assert result.q_sub_kvar == pytest.approx(net.res_ext_grid["q_mvar"].sum() * 1000.0,
                                              abs=1e-4)
    i_ref = pd.Series(net.res_line["i_ka"].to_numpy(), index=net.line["name"].to_numpy())
    assert np.allclose(result.i_ka, i_ref.reindex(list(validator.line_labels)), atol=1e-7)


def test_own_net_runpp_matches_fast_path(network: NetworkData,
                                         validator: NetworkValidator) -> None:
    """The validator's net (updated in place) gives the same answer with runpp."""
    point = random_point(network, 11)
    net = validator.run_pandapower(point)
    vm_ref = net.res_bus["vm_pu"].reindex(list(network.bus_ids)).to_numpy()
    assert np.max(np.abs(validator.solve(point).vm_pu - vm_ref)) < AGREEMENT_PU


def test_warm_start_gives_the_same_answer(network: NetworkData) -> None:
    cold = NetworkValidator(network, v_ref_pu=1.0, v_min_pu=0.95, v_max_pu=1.05,
                            mg_buses=MG_BUSES, svc_buses=SVC_BUSES, warm_start=False)
    warm = NetworkValidator(network, v_ref_pu=1.0, v_min_pu=0.95, v_max_pu=1.05,
                            mg_buses=MG_BUSES, svc_buses=SVC_BUSES)
    for seed in range(5):
        point = random_point(network, seed)
        assert np.max(np.abs(cold.solve(point).vm_pu - warm.solve(point).vm_pu)) < 1e-9


def test_violations_and_violation_sum(network: NetworkData, validator: NetworkValidator) -> None:
    ids = list(network.bus_ids)
    point = OperatingPoint(0, network.load_p_kw.reindex(ids).to_numpy() * 1.6,
                           network.load_q_kvar.reindex(ids).to_numpy() * 1.6,
                           (0.0,) * 6, (0.0,) * 6, (0.0,) * 4)
    result = validator.solve(point)
    low = result.vm_pu < 0.95
    assert low.any() and {v.kind for v in result.violations} == {"v_min"}
    assert len(result.violations) == int(low.sum())
    assert result.violation_pu == pytest.approx(float(np.sum(0.95 - result.vm_pu[low])))
    assert not result.feasible(1e-6)


def test_grotesque_overload_is_a_status_not_a_crash(network: NetworkData,
                                                    validator: NetworkValidator) -> None:
    ids = list(network.bus_ids)
    nominal = random_point(network, 3, slot=1)
    overloaded = OperatingPoint(0, network.load_p_kw.reindex(ids).to_numpy() * 10.0,
                                network.load_q_kvar.reindex(ids).to_numpy() * 10.0,
                                (0.0,) * 6, (0.0,) * 6, (0.0,) * 4)
    report = validator.validate([overloaded, nominal])
    failed, fine = report.slots
    assert failed.status == PF_FAILED and not failed.ok
    assert failed.vm_pu is None and failed.losses_kw is None and failed.violation_pu is None
    assert failed.violations == () and not failed.feasible(1.0)
    assert fine.ok and np.all(np.isfinite(fine.vm_pu))  # nothing stale or NaN downstream
    frame = report.slot_frame()
    assert frame.loc[0, "status"] == PF_FAILED and np.isnan(frame.loc[0, "vm_min_pu"])
    assert report.power_flows_failed == 1 and not report.feasible
    assert report.summary()["slots"][0]["losses_kw"] is None


def two_bus_network(load_kw: float, load_kvar: float) -> NetworkData:
    """Bus 1 (slack) -- line -- bus 2 with one load: the P-V curve has two branches."""
    buses = pd.DataFrame({"bus": [1, 2], "name_ieee": ["1", "2"], "x": [0.0, 1.0],
                          "y": [0.0, 0.0]}).set_index("bus")
    branches = pd.DataFrame({
        "branch": ["L1"], "from_bus": [1], "to_bus": [2], "kind": ["line"], "linecode": ["1"],
        "length_kft": [1.0], "r_ohm": [2.0], "x_ohm": [4.0], "c_nf": [0.0],
        "r_pu": [2.0 / 17.3056], "x_pu": [4.0 / 17.3056]}).set_index("branch")
    loads = pd.DataFrame({"bus": [2], "p_kw": [load_kw], "q_kvar": [load_kvar],
                          "model": ["PQ"]}).set_index("bus")
    shunts = pd.DataFrame({"bus": pd.Series([], dtype=int),
                           "q_kvar": pd.Series([], dtype=float)}).set_index("bus")
    return NetworkData("two-bus", 1000.0, 4.16, 1, buses, branches, loads, shunts)


def test_lower_branch_solution_is_rejected() -> None:
    """Newton-Raphson started low lands on the P-V curve's lower branch: not accepted."""
    net = two_bus_network(1000.0, 300.0)
    val = NetworkValidator(net, v_ref_pu=1.0, v_min_pu=0.6, v_max_pu=1.1, mg_buses={},
                           svc_buses=())
    point = OperatingPoint(0, np.array([0.0, 1000.0]), np.array([0.0, 300.0]), (), (), ())
    upper = val.solve(point)
    assert upper.ok
    sbus = val.feeder.sbus(*val.feeder.injections(point))
    lower, _ = val.feeder.solve(sbus, np.array([1.0, 0.2 + 0.0j]))  # no acceptance test
    assert lower is not None and abs(lower[1]) < upper.vm_pu[1] - 0.3  # the other solution
    mismatch = lower * np.conj(val.feeder.ybus @ lower) - sbus
    assert abs(mismatch[1]) < 1e-9  # a genuine power-flow solution ...
    assert val._operable(upper.voltage) and not val._operable(lower)  # ... but not operable


def test_loading_violation_where_a_rating_exists(network: NetworkData) -> None:
    branches = network.branches.copy()
    branches["s_max_kva"] = np.nan
    branches.loc["L3", "s_max_kva"] = 3000.0  # bus 1 -> 7 carries almost the whole feeder
    rated = dataclasses.replace(network, branches=branches)
    val = NetworkValidator(rated, v_ref_pu=1.0, v_min_pu=0.9, v_max_pu=1.1,
                           mg_buses={}, svc_buses=())
    ids = list(network.bus_ids)
    point = OperatingPoint(0, network.load_p_kw.reindex(ids).to_numpy(),
                           network.load_q_kvar.reindex(ids).to_numpy(), (), (), ())
    result = val.solve(point)
    assert val.rated_labels == ("L3",)
    expected = result.i_ka[val.line_labels.index("L3")] / (3000.0 / (np.sqrt(3) * 4.16) / 1e3)
    assert expected > 1.1
    assert result.loading_pu[0] == pytest.approx(expected)
    assert [v.kind for v in result.violations] == ["loading"]
    assert result.violation_pu == pytest.approx(expected - 1.0)


def test_results_are_not_overwritten_by_later_solves(network: NetworkData,
                                                     validator: NetworkValidator) -> None:
    """lightsim2grid's ``get_V`` is a view of the solver's memory: results must copy it."""
    first = validator.solve(random_point(network, 21, slot=0))
    kept = first.voltage.copy()
    validator.solve(random_point(network, 22, slot=1))
    assert np.array_equal(first.voltage, kept)
    assert np.allclose(np.abs(first.voltage[validator.feeder.node_of_bus]), first.vm_pu)
