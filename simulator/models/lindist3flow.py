r"""LinDist3Flow: the linearised three-phase branch flow model (docs/formulation.md §6a).

Per phase :math:`\phi` that a line or bus has: squared voltage :math:`w_n^\phi`, lossless
sending-end flows :math:`P_l^\phi, Q_l^\phi`. With the line's phase impedance matrix
:math:`Z_l = R_l + jX_l` (p.u.) and :math:`\Gamma = [[1, \alpha^2, \alpha], [\alpha, 1,
\alpha^2], [\alpha^2, \alpha, 1]]`, :math:`\alpha = e^{-j2\pi/3}`:

.. math::
    M^P_l = 2(\Re\Gamma \circ R_l + \Im\Gamma \circ X_l), \quad
    M^Q_l = 2(\Re\Gamma \circ X_l - \Im\Gamma \circ R_l), \quad
    w_n = w_{\pi(n)} - M^P_l P_l - M^Q_l Q_l

(PowerModelsDistribution's LinDist3FlowPowerModel form; seed 001's (B3)-(B5) carry sign
and entry errata). Flows are in p.u. of the per-phase base :math:`S_b/3`; on a balanced
diagonal line :math:`M^P = 2r I`, :math:`M^Q = 2x I`, which is §2's LinDistFlow.

Because an injection at bus k changes only the flows on the path root → k (by −1), the
voltages are affine in the injections: :math:`\partial w_n^\phi/\partial p_k^\psi =
\sum_{l \in path(n) \cap path(k)} M^P_l[\phi,\psi]`. :class:`LinDist3Flow` builds these
sensitivity matrices once per network (sparse products over the path incidence) and
solves operating points with them; the capacitors' :math:`Q^{cap} w` makes the solve a
small linear system.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from gridcosim.scenarios.phase_network import PHASES, PhaseNetwork

ALPHA = np.exp(-2j * np.pi / 3)
GAMMA = np.array([[1, ALPHA**2, ALPHA], [ALPHA, 1, ALPHA**2], [ALPHA**2, ALPHA, 1]])


def m_matrices(z_pu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:math:`M^P, M^Q` of a line from its 3×3 phase impedance matrix (absent phases 0).

    Args:
        z_pu: Complex 3×3 impedance matrix in p.u. (zero rows/columns for absent phases).

    Returns:
        ``(M_P, M_Q)``, real 3×3.

    """
    r, x = z_pu.real, z_pu.imag
    return (2.0 * (GAMMA.real * r + GAMMA.imag * x),
            2.0 * (GAMMA.real * x - GAMMA.imag * r))


@dataclass(frozen=True, eq=False)
class LinearFlow:
    r"""A LinDist3Flow operating point.

    Attributes:
        vm_pu: :math:`\\sqrt{w}` per (bus, phase), ``network.nodes`` order.
        p_flow_kw: Sending-end active flow per (line, phase).
        q_flow_kvar: Sending-end reactive flow per (line, phase).
        p_sub_kw: Three-phase active import at the root (lossless).
        q_sub_kvar: Three-phase reactive import at the root.

    """

    vm_pu: pd.Series
    p_flow_kw: pd.Series
    q_flow_kvar: pd.Series
    p_sub_kw: float
    q_sub_kvar: float


class LinDist3Flow:
    """Sensitivities and linear power flow of one :class:`PhaseNetwork`."""

    def __init__(self, network: PhaseNetwork) -> None:
        self.network = network
        self.nodes = network.nodes
        self.position = {node: i for i, node in enumerate(self.nodes)}

    @cached_property
    def line_m(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """:math:`(M^P_l, M^Q_l)` of every line, 3×3 in p.u. of the per-phase base."""
        return {line: m_matrices(self.network.z_pu(line)) for line in self.network.lines.index}

    @cached_property
    def _path_incidence(self) -> Any:
        """A[l, n] = 1 where line l lies on the path root → bus n (lines × buses, sparse).

        scipy is imported here, not with the module: with Pyomo loaded, importing scipy
        pulls in ``scipy.stats`` (about 1.3 s), which the master model never needs.
        """
        from scipy import sparse

        net = self.network
        lines = list(net.lines.index)
        row_of = {line: i for i, line in enumerate(lines)}
        bus_pos = {bus: j for j, bus in enumerate(net.bus_ids)}
        rows, cols = [], []
        for bus in net.bus_ids:
            for b in net.path_to_root(bus)[:-1]:
                rows.append(row_of[net.line_of[b]])
                cols.append(bus_pos[bus])
        return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)),
                                 shape=(len(lines), len(net.bus_ids)))

    def _sensitivity(self, which: int) -> np.ndarray:
        r""":math:`\\partial w / \\partial` injection (p.u.² per kW or kvar), nodes × nodes."""
        net = self.network
        a = self._path_incidence
        lines = list(net.lines.index)
        bus_pos = {bus: j for j, bus in enumerate(net.bus_ids)}
        node_bus = np.array([bus_pos[b] for b, _ in self.nodes])
        node_phase = np.array([PHASES.index(p) for _, p in self.nodes])
        from scipy import sparse

        out = np.empty((len(self.nodes), len(self.nodes)))
        for phi in range(3):
            for psi in range(3):
                weights = np.array([self.line_m[line][which][phi, psi] for line in lines])
                k = (a.T @ sparse.diags(weights) @ a).toarray()
                rows, cols = node_phase == phi, node_phase == psi
                out[np.ix_(rows, cols)] = k[np.ix_(node_bus[rows], node_bus[cols])]
        return out / net.phase_base_kva

    @cached_property
    def dw_dp(self) -> np.ndarray:
        r""":math:`\\partial w_n^\\phi / \\partial p_k^\\psi` for injections in kW."""
        return self._sensitivity(0)

    @cached_property
    def dw_dq(self) -> np.ndarray:
        r""":math:`\\partial w_n^\\phi / \\partial q_k^\\psi` for injections in kvar."""
        return self._sensitivity(1)

    @cached_property
    def shunt_kvar(self) -> np.ndarray:
        """Capacitor kvar at 1 p.u. per node."""
        return self.network.phase_shunts_kvar.reindex(list(self.nodes)).to_numpy(float)

    def squared_voltages(self, p_kw: np.ndarray, q_kvar: np.ndarray,
                         v_ref_pu: float = 1.0) -> np.ndarray:
        """W per node for net injections per node (kW, kvar; injection positive).

        Capacitors inject :math:`Q^{cap} w` (exact in w), so
        :math:`(I - K_Q C) w = w_0 + K_P p + K_Q q`.
        """
        c = self.shunt_kvar
        lhs = np.eye(len(self.nodes)) - self.dw_dq * c[None, :]
        rhs = v_ref_pu**2 + self.dw_dp @ p_kw + self.dw_dq @ q_kvar
        return np.linalg.solve(lhs, rhs) if c.any() else rhs

    def solve(self, injections: pd.DataFrame, v_ref_pu: float = 1.0) -> LinearFlow:
        """The LinDist3Flow point of net node injections.

        Args:
            injections: ``p_kw``, ``q_kvar`` per (bus, phase), injection positive (as
                :meth:`PhaseOperatingPoint.node_injections` gives them).
            v_ref_pu: Root voltage.

        Returns:
            Voltages, flows and the substation import.

        """
        frame = injections.reindex(list(self.nodes), fill_value=0.0)
        p, q = frame["p_kw"].to_numpy(float), frame["q_kvar"].to_numpy(float)
        w = self.squared_voltages(p, q, v_ref_pu)
        q_total = q + self.shunt_kvar * w
        index = pd.MultiIndex.from_tuples(self.nodes, names=["bus", "phase"])
        p_flow, q_flow = self._flows(p, q_total)
        return LinearFlow(pd.Series(np.sqrt(np.maximum(w, 0.0)), index=index),
                          p_flow, q_flow, -float(p.sum()), -float(q_total.sum()))

    def _flows(self, p: np.ndarray, q: np.ndarray) -> tuple[pd.Series, pd.Series]:
        """Sending-end flows: minus the injections of the line's subtree, per phase."""
        net = self.network
        p_node = dict(zip(self.nodes, p, strict=True))
        q_node = dict(zip(self.nodes, q, strict=True))
        p_sub: dict[tuple[int, str], float] = {}
        q_sub: dict[tuple[int, str], float] = {}
        for bus in reversed(net.bus_ids):
            for phase in str(net.buses.at[bus, "phases"]):
                kids = [(c, phase) for c in net.children[bus] if (c, phase) in p_node]
                p_sub[(bus, phase)] = p_node[(bus, phase)] + sum(p_sub[k] for k in kids)
                q_sub[(bus, phase)] = q_node[(bus, phase)] + sum(q_sub[k] for k in kids)
        keys = [(line, phase) for line, row in net.lines.iterrows() for phase in str(row.phases)]
        index = pd.MultiIndex.from_tuples(keys, names=["line", "phase"])
        to_bus = net.lines["to_bus"]
        ends = [(int(to_bus[line]), ph) for line, ph in keys]
        return (pd.Series([-p_sub[e] for e in ends], index=index),
                pd.Series([-q_sub[e] for e in ends], index=index))
