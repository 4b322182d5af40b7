"""AC-Jacobian sensitivities against finite differences of pandapower power flows.

The Jacobian's ``d|V_n|/dP_k`` and ``d|V_n|/dQ_k`` (every bus n, injection buses k = PCCs,
SVCs and load buses) are compared with central differences of plain ``pandapower.runpp``
runs (step 2 kW / 2 kvar, ``tolerance_mva=1e-11``) at 1.4x nominal load. Error measure:
``max_n |FD - J| / max_n |J|`` per injection. Measured (pandapower 3.5.6): 3.6e-9 to
4.5e-8 over the 14 cases below (the central difference's own O(h²) error); bound: 1e-6.
The violation gradient ``dE_t/dx`` (and a branch-loading gradient) is checked the same way
against the validator's own power flows. LinDistFlow's path sensitivities (seed 001
(B8)-(B11)) differ from the AC Jacobian by 2.4-15 % (max over buses, relative to the
largest entry; bound 20 %): the documented alternative, not a substitute.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandapower as pp
import pytest
from pp_reference import net_with_loads

from gridcosim.scenarios.network import NetworkData
from gridcosim.simulator.validation.operating_point import OperatingPoint
from gridcosim.simulator.validation.sensitivity import (
    lindistflow_voltage_sensitivities,
    voltage_sensitivities,
)
from gridcosim.simulator.validation.validator import NetworkValidator

INJECTION_BUSES = (7, 50, 58, 83, 96, 114, 121)
STEP_KW = 2.0
FD_REL_ERROR = 1e-6
LDF_REL_ERROR = 0.2


@pytest.fixture(scope="module")
def validator(network: NetworkData) -> NetworkValidator:
    return NetworkValidator(network, v_ref_pu=1.0, v_min_pu=0.95, v_max_pu=1.05, mg_buses={},
                            svc_buses=())


def loaded_point(network: NetworkData, scale: float = 1.4) -> OperatingPoint:
    ids = list(network.bus_ids)
    return OperatingPoint(0, network.load_p_kw.reindex(ids).to_numpy() * scale,
                          network.load_q_kvar.reindex(ids).to_numpy() * scale, (), (), ())


def runpp_vm(network: NetworkData, point: OperatingPoint, bus: int, p_kw: float,
             q_kvar: float) -> np.ndarray:
    """|V| by bus from a plain runpp with an extra injection at ``bus``."""
    net = net_with_loads(network, point)
    pp.create_sgen(net, bus=bus, p_mw=p_kw / 1000.0, q_mvar=q_kvar / 1000.0)
    pp.runpp(net, numba=False, tolerance_mva=1e-11)
    return net.res_bus["vm_pu"].reindex(list(network.bus_ids)).to_numpy()


@pytest.fixture(scope="module")
def jacobian_per_kw(network: NetworkData, validator: NetworkValidator
                    ) -> tuple[np.ndarray, np.ndarray]:
    """d|V_n|/dP_k and d|V_n|/dQ_k by bus id (p.u. per kW / kvar) at the loaded point."""
    result = validator.solve(loaded_point(network))
    f = validator.feeder
    dvm_dp, dvm_dq = voltage_sensitivities(f.ybus, result.voltage, f.pv, f.pq)
    node = f.node_of_bus
    return (dvm_dp[np.ix_(node, node)] / network.base_kva,
            dvm_dq[np.ix_(node, node)] / network.base_kva)


@pytest.mark.parametrize("bus", INJECTION_BUSES)
@pytest.mark.parametrize("kind", ["p", "q"])
def test_jacobian_matches_runpp_finite_differences(network: NetworkData, jacobian_per_kw,
                                                   bus: int, kind: str) -> None:
    point = loaded_point(network)
    step = (STEP_KW, 0.0) if kind == "p" else (0.0, STEP_KW)
    up = runpp_vm(network, point, bus, *step)
    down = runpp_vm(network, point, bus, -step[0], -step[1])
    fd = (up - down) / (2 * STEP_KW)
    k = list(network.bus_ids).index(bus)
    jac = jacobian_per_kw[0 if kind == "p" else 1][:, k]
    rel = np.max(np.abs(fd - jac)) / np.max(np.abs(jac))
    print(f"bus {bus} d|V|/d{kind}: rel. error {rel:.2e}")
    assert rel < FD_REL_ERROR


def test_violation_gradient_matches_finite_differences(network: NetworkData,
                                                       validator: NetworkValidator) -> None:
    """dE_t/d(injection) at a slot with undervoltages (active set unchanged by the step)."""
    point = loaded_point(network, 1.6)
    result = validator.solve(point)
    assert len(result.violations) > 5
    d_p, d_q = validator.violation_gradient(result)
    row = {b: k for k, b in enumerate(network.bus_ids)}
    for bus in (58, 83, 114):
        k = row[bus]
        for grad, field in ((d_p, "load_kw"), (d_q, "load_kvar")):
            values = []
            for sign in (1.0, -1.0):  # an injection of +h is a load of -h
                load = getattr(point, field).copy()
                load[k] -= sign * STEP_KW
                moved = validator.solve(dataclasses.replace(point, **{field: load}))
                assert {v.element for v in moved.violations} == {
                    v.element for v in result.violations}
                values.append(moved.violation_pu)
            fd = (values[0] - values[1]) / (2 * STEP_KW)
            assert fd == pytest.approx(grad[k], rel=FD_REL_ERROR)
            assert grad[k] < 0  # injecting anywhere raises the low voltages


def test_lindistflow_sensitivities_close_to_the_jacobian(network: NetworkData,
                                                         validator: NetworkValidator,
                                                         jacobian_per_kw) -> None:
    result = validator.solve(loaded_point(network))
    ldf_p, ldf_q = lindistflow_voltage_sensitivities(network, result.vm_pu)
    jac_p, jac_q = jacobian_per_kw
    for bus in INJECTION_BUSES:
        k = list(network.bus_ids).index(bus)
        for ldf, jac in ((ldf_p, jac_p), (ldf_q, jac_q)):
            rel = np.max(np.abs(ldf[:, k] - jac[:, k])) / np.max(np.abs(jac[:, k]))
            print(f"bus {bus}: LinDistFlow vs Jacobian rel. difference {rel:.3f}")
            assert rel < LDF_REL_ERROR
    assert np.all(ldf_p >= 0) and np.all(ldf_q >= 0)  # injections raise every voltage


def test_loading_gradient_matches_finite_differences(network: NetworkData) -> None:
    branches = network.branches.copy()
    branches["s_max_kva"] = np.nan
    branches.loc["L3", "s_max_kva"] = 3000.0
    val = NetworkValidator(dataclasses.replace(network, branches=branches), v_ref_pu=1.0,
                           v_min_pu=0.5, v_max_pu=1.5, mg_buses={}, svc_buses=())
    point = loaded_point(network, 1.0)
    result = val.solve(point)
    assert [v.kind for v in result.violations] == ["loading"]
    d_p, d_q = val.violation_gradient(result)
    k = list(network.bus_ids).index(58)
    for grad, field in ((d_p, "load_kw"), (d_q, "load_kvar")):
        values = []
        for sign in (1.0, -1.0):
            load = getattr(point, field).copy()
            load[k] -= sign * STEP_KW
            values.append(val.solve(dataclasses.replace(point, **{field: load})).violation_pu)
        fd = (values[0] - values[1]) / (2 * STEP_KW)
        assert fd == pytest.approx(grad[k], rel=FD_REL_ERROR)
        assert grad[k] < 0  # less load downstream, less current in L3
