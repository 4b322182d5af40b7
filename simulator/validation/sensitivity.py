r"""Sensitivities of voltages (and line currents) to bus injections (docs/formulation.md §6).

**AC Jacobian** (the default). At a solved point the Newton-Raphson Jacobian
:math:`J = \partial F/\partial x`, with the state :math:`x = (\theta_{pvpq}, |V|_{pq})` and
the mismatch :math:`F = (P_{pvpq}, Q_{pq})` of pypower's convention, gives the state's
response to an injection change: :math:`J\,dx = dS`. For a scalar function
:math:`E(x)` (a violation) the gradient with respect to every injection at once is
:math:`\partial E/\partial S = J^{-T} \nabla_x E`: one sparse solve per slot, whatever the
number of violated limits and controllable injections. Injections are in p.u. on the
network base; the slack node is not a state.

**LinDistFlow** (the documented alternative, seed 001 (B6)-(B14), balanced): with
:math:`v = |V|^2`, :math:`\partial v_n/\partial p_k = 2 \sum_{l \in path(n) \cap path(k)}
r_l` (reactive: :math:`x_l`), so :math:`\partial |V_n|/\partial p_k = R_{nk}/|V_n|`. It
needs no solved point (used when a power flow fails) and neglects losses, so it differs
from the Jacobian by a few per cent on this feeder (``tests/test_validation_sensitivity.py``).
"""

from __future__ import annotations

import numpy as np
from pandapower.pypower.dSbus_dV import dSbus_dV
from scipy import sparse
from scipy.sparse.linalg import splu, spsolve

from gridcosim.scenarios.network import NetworkData


def jacobian(ybus: sparse.spmatrix, v: np.ndarray, pv: np.ndarray,
             pq: np.ndarray) -> sparse.csc_matrix:
    """The power-flow Jacobian ``d(P_pvpq, Q_pq) / d(theta_pvpq, |V|_pq)`` at ``v``."""
    ds_dvm, ds_dva = dSbus_dV(sparse.csr_matrix(ybus), v)
    ds_dvm, ds_dva = sparse.csr_matrix(ds_dvm), sparse.csr_matrix(ds_dva)
    pvpq = np.concatenate([pv, pq])
    j11 = ds_dva[pvpq][:, pvpq].real
    j12 = ds_dvm[pvpq][:, pq].real
    j21 = ds_dva[pq][:, pvpq].imag
    j22 = ds_dvm[pq][:, pq].imag
    return sparse.bmat([[j11, j12], [j21, j22]], format="csc")


def jacobian_sign(matrix: sparse.spmatrix) -> int:
    """Sign of ``det(J)`` (0 if singular), from a sparse LU factorisation.

    On a feeder with constant-PQ loads the Jacobian is singular only at the nose of the
    P-V curve, so the sign tells the upper (stable) solution branch from the lower one.
    """
    try:
        lu = splu(sparse.csc_matrix(matrix))
    except RuntimeError:  # scipy reports an exactly singular matrix this way
        return 0
    diag = lu.U.diagonal()
    if np.any(diag == 0):
        return 0
    sign = -1 if np.count_nonzero(diag < 0) % 2 else 1
    return sign * _parity(lu.perm_r) * _parity(lu.perm_c)


def _parity(perm: np.ndarray) -> int:
    """+1 for an even permutation, -1 for an odd one."""
    seen = np.zeros(len(perm), dtype=bool)
    transpositions = 0
    for start in range(len(perm)):
        length, k = 0, start
        while not seen[k]:
            seen[k] = True
            k = perm[k]
            length += 1
        transpositions += max(length - 1, 0)
    return -1 if transpositions % 2 else 1


def injection_gradient(ybus: sparse.spmatrix, v: np.ndarray, pv: np.ndarray, pq: np.ndarray,
                       g_va: np.ndarray, g_vm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradient of ``E`` with respect to the injections, given its gradient in the state.

    Args:
        ybus: Admittance matrix (p.u.).
        v: Solved complex node voltages.
        pv: PV node indices.
        pq: PQ node indices.
        g_va: ``dE / d theta`` per node (rad⁻¹; ignored at the slack).
        g_vm: ``dE / d|V|`` per node (ignored at the slack and PV nodes).

    Returns:
        ``dE / dP`` and ``dE / dQ`` per node, per p.u. injection (0 at the slack).

    """
    pvpq = np.concatenate([pv, pq])
    rhs = np.concatenate([g_va[pvpq], g_vm[pq]])
    y = spsolve(jacobian(ybus, v, pv, pq).T.tocsc(), rhs)
    d_p = np.zeros(len(v))
    d_q = np.zeros(len(v))
    d_p[pvpq] = y[:len(pvpq)]
    d_q[pq] = y[len(pvpq):]
    return d_p, d_q


def voltage_sensitivities(ybus: sparse.spmatrix, v: np.ndarray, pv: np.ndarray,
                          pq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense ``d|V_i| / dP_k`` and ``d|V_i| / dQ_k`` for every pair of nodes (p.u./p.u.).

    Rows and columns of the slack (and the Q columns of PV nodes) are 0.
    """
    n, pvpq = len(v), np.concatenate([pv, pq])
    inverse = np.linalg.inv(jacobian(ybus, v, pv, pq).toarray())
    dvm = inverse[len(pvpq):]  # rows: |V| of the PQ nodes; columns: (P_pvpq, Q_pq)
    dvm_dp = np.zeros((n, n))
    dvm_dq = np.zeros((n, n))
    dvm_dp[np.ix_(pq, pvpq)] = dvm[:, :len(pvpq)]
    dvm_dq[np.ix_(pq, pq)] = dvm[:, len(pvpq):]
    return dvm_dp, dvm_dq


def loading_state_gradient(yf: sparse.csr_matrix, yt: sparse.csr_matrix, v: np.ndarray,
                           row: int) -> tuple[np.ndarray, np.ndarray]:
    """Gradient of a branch's larger end current ``|I|`` (p.u.) in ``(theta, |V|)`` per node."""
    ends = [np.asarray(y[row].toarray()).ravel() for y in (yf, yt)]
    currents = [a @ v for a in ends]
    k = int(np.argmax(np.abs(currents)))
    a, current = ends[k], currents[k]
    unit = np.conj(current) / abs(current)
    d_va = np.real(unit * a * 1j * v)
    d_vm = np.real(unit * a * v / np.abs(v))
    return d_va, d_vm


def common_path_impedance(network: NetworkData) -> tuple[np.ndarray, np.ndarray]:
    """``R_nk`` and ``X_nk``: resistance and reactance (p.u.) shared by the paths of n and k.

    Rows and columns follow ``network.bus_ids``.
    """
    buses = list(network.bus_ids)
    col = {bus: k for k, bus in enumerate(buses)}
    on_path = np.zeros((len(buses), len(buses)))  # [branch (by child bus), bus]
    for bus in buses:
        for hop in network.path_to_root(bus)[:-1]:
            on_path[col[hop], col[bus]] = 1.0
    br = network.branches.set_index("to_bus")
    r = np.array([0.0 if b == network.root_bus else float(br.at[b, "r_pu"]) for b in buses])
    x = np.array([0.0 if b == network.root_bus else float(br.at[b, "x_pu"]) for b in buses])
    return on_path.T @ (r[:, None] * on_path), on_path.T @ (x[:, None] * on_path)


def lindistflow_voltage_sensitivities(network: NetworkData, vm_pu: np.ndarray | None = None
                                      ) -> tuple[np.ndarray, np.ndarray]:
    """LinDistFlow ``d|V_n| / dp_k`` (p.u. per kW) and ``d|V_n| / dq_k`` (p.u. per kvar).

    Args:
        network: The feeder (rows and columns follow ``network.bus_ids``).
        vm_pu: |V| at the linearisation point (default 1 p.u.), from ``d|V| = dv / 2|V|``.

    """
    r_nk, x_nk = common_path_impedance(network)
    vm = np.ones(len(r_nk)) if vm_pu is None else np.asarray(vm_pu, dtype=float)
    scale = 1.0 / (vm[:, None] * network.base_kva)
    return r_nk * scale, x_nk * scale
