r"""The DSO's network limits of a market clearing, as functions of the suppliers' outputs.

Seed 001 (Appendix A): in every slot, :math:`V_{min} \le |V_n^\phi| \le V_{max}` on every
bus-phase and :math:`|P_l^\phi| \le P_{max}`, :math:`|Q_l^\phi| \le Q_{max}` on every
line-phase, the flows in p.u. of the per-phase base :math:`S_b/3`
(:attr:`PhaseNetwork.phase_base_kva`; 0.5 p.u. is 166.7 kW per phase on a 1 MVA base).

Every limit is written :math:`u_l \le 0` in one fixed order (:class:`LimitRows`): the
lower voltage limit of every node, the upper one, then :math:`+P`, :math:`-P`,
:math:`+Q`, :math:`-Q` of every line-phase, so that an absolute-value limit is two
one-sided rows. :class:`LinearLimits` is the LinDist3Flow model of docs/formulation.md
§6a in these terms: with the voltage limits on :math:`w = |V|^2` (p.u.², bounds squared)
and the lossless flows, every row is affine in the DERs' outputs,
:math:`u_{l,t} = c_{l,t} + \sum_s G_{l,s} p_{s,t}`; :math:`G` does not depend on the
loads, :math:`c_t` is linear in them. The upstream microgrid is the slack at the root, held
at :math:`V_{ref}`: its output has no coefficient in any row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gridcosim.scenarios.phase_network import PhaseNetwork, delta_split
from gridcosim.simulator.market.messages import LimitKind
from gridcosim.simulator.models.lindist3flow import LinDist3Flow


@dataclass(frozen=True)
class SupplierConnection:
    """Where a DER is connected (known to the DSO only).

    Attributes:
        name: The supplier's name in the market (its offers' ``supplier``).
        bus: Bus id.
        phases: The bus's phases (a balanced injection, a third per phase on a
            three-phase bus) or one phase letter (a single-phase DER).

    """

    name: str
    bus: int
    phases: str


@dataclass(frozen=True)
class NetworkLimits:
    """Seed 001's limits, every slot (flows in p.u. of the per-phase base S_b/3).

    Attributes:
        v_min_pu: Least |V| on every bus-phase.
        v_max_pu: Largest |V| on every bus-phase.
        v_ref_pu: |V| of the root (the slack), every phase.
        line_p_max_pu: Largest |P| on every line-phase.
        line_q_max_pu: Largest |Q| on every line-phase.

    """

    v_min_pu: float = 0.95
    v_max_pu: float = 1.05
    v_ref_pu: float = 1.0
    line_p_max_pu: float = 0.5
    line_q_max_pu: float = 0.4


def line_phases(network: PhaseNetwork) -> tuple[tuple[str, str], ...]:
    """Every (line, phase), lines in ``network.lines`` order (the engines' flow order)."""
    return tuple((str(line), p) for line, phases in network.lines["phases"].items()
                 for p in str(phases))


class LimitRows:
    r"""Every limit :math:`u_l \le 0` of a network in the fixed order of the module doc.

    Args:
        network: The network.
        limits: The limits.
        squared: Voltage rows on :math:`w = |V|^2` with squared bounds (LinDist3Flow)
            instead of on :math:`|V|`.

    """

    def __init__(self, network: PhaseNetwork, limits: NetworkLimits, *, squared: bool) -> None:
        nodes, lps = list(network.nodes), list(line_phases(network))
        n, m = len(nodes), len(lps)
        power = 2.0 if squared else 1.0
        base = network.phase_base_kva
        self.kinds = (*[LimitKind.VOLTAGE_MIN] * n, *[LimitKind.VOLTAGE_MAX] * n,
                      *[LimitKind.LINE_P] * (2 * m), *[LimitKind.LINE_Q] * (2 * m))
        self.elements: tuple[tuple[Any, str], ...] = (*nodes, *nodes, *lps, *lps, *lps, *lps)
        self.scale = np.concatenate([-np.ones(n), np.ones(n), np.full(m, 1 / base),
                                     np.full(m, -1 / base), np.full(m, 1 / base),
                                     np.full(m, -1 / base)])
        self.bound = np.concatenate([
            np.full(n, -limits.v_min_pu**power), np.full(n, limits.v_max_pu**power),
            np.full(2 * m, limits.line_p_max_pu), np.full(2 * m, limits.line_q_max_pu)])

    def __len__(self) -> int:
        return len(self.kinds)

    def values(self, v: np.ndarray, p_flow_kw: np.ndarray, q_flow_kvar: np.ndarray
               ) -> np.ndarray:
        """:math:`u` of every row from node voltages (|V| or w) and line-phase flows.

        The arguments may carry a trailing axis (slots, or suppliers for slopes).
        """
        return self.slopes(v, p_flow_kw, q_flow_kvar) - _column(self.bound, np.ndim(v))

    def slopes(self, dv: np.ndarray, dp_flow: np.ndarray, dq_flow: np.ndarray) -> np.ndarray:
        r""":math:`\partial u` of every row from the voltages' and flows' derivatives."""
        stacked = np.concatenate([dv, dv, dp_flow, dp_flow, dq_flow, dq_flow])
        return _column(self.scale, np.ndim(dv)) * stacked


def _column(values: np.ndarray, ndim: int) -> np.ndarray:
    """``values`` as a column when the other operand has a trailing axis."""
    return values[:, None] if ndim > 1 else values


def injection_matrix(network: PhaseNetwork, connections: Sequence[SupplierConnection]
                     ) -> np.ndarray:
    """Each DER's share of its output on every node (nodes × DERs).

    Raises:
        ValueError: A bus is not in the network, or the phases are neither the bus's
            phases nor one of them.

    """
    position = {node: i for i, node in enumerate(network.nodes)}
    out = np.zeros((len(position), len(connections)))
    for j, c in enumerate(connections):
        if c.bus not in network.buses.index:
            raise ValueError(f"supplier {c.name!r}: bus {c.bus} is not in {network.name}")
        bus_phases = str(network.buses.at[c.bus, "phases"])
        if c.phases != bus_phases and not (len(c.phases) == 1 and c.phases in bus_phases):
            raise ValueError(f"supplier {c.name!r}: phases {c.phases!r} at bus {c.bus}, "
                             f"which has {bus_phases!r} (give all of them or one)")
        for p in c.phases:
            out[position[(c.bus, p)], j] = 1.0 / len(c.phases)
    return out


def load_matrices(network: PhaseNetwork) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Node consumption per unit load power: ``(dp/dP, dp/dQ, dq/dP, dq/dQ)``, nodes × loads.

    The per-phase split (a delta load's rotation included) is linear in the load's kW and
    kvar, so the node loads are these matrices times the load vectors.
    """
    position = {node: i for i, node in enumerate(network.nodes)}
    out = np.zeros((4, len(position), len(network.loads)))
    for j, (bus, phases, conn) in enumerate(
            network.loads[["bus", "phases", "conn"]].itertuples(index=False)):
        for k, unit in enumerate(((1.0, 0.0), (0.0, 1.0))):
            for phase, (p, q) in delta_split(str(phases), str(conn), *unit).items():
                out[k, position[(int(bus), phase)], j] += p
                out[2 + k, position[(int(bus), phase)], j] += q
    return out[0], out[1], out[2], out[3]


def subtree_incidence(network: PhaseNetwork) -> Any:
    """S[(l, φ), (n, φ)] = 1 where line l lies on the path root → bus n (sparse).

    A line-phase's lossless sending-end flow is minus the injections below it,
    :math:`P = -S p`.
    """
    from scipy import sparse  # as in LinDist3Flow: not with the module

    row = {lp: i for i, lp in enumerate(line_phases(network))}
    rows, cols = [], []
    for j, (bus, phase) in enumerate(network.nodes):
        for b in network.path_to_root(bus)[:-1]:
            rows.append(row[(network.line_of[b], phase)])
            cols.append(j)
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)),
                             shape=(len(row), len(network.nodes)))


class LinearLimits:
    r"""LinDist3Flow's limits, affine in the DERs' outputs: :math:`u = U z - b`.

    With :math:`z = (V_{ref}^2, p_{DER}, P_{load}, Q_{load})`, the squared voltages
    :math:`w = W z` (capacitors' :math:`Q^{cap} w` solved in once), the lossless flows
    :math:`P = -S p_{inj}`, :math:`Q = -S (q_{inj} + Q^{cap} \circ w)` and every row
    of :class:`LimitRows` (``squared=True``) are the products of small matrices built once.

    Args:
        network: The network.
        connections: The DERs (columns of :attr:`slope`, in this order).
        limits: The limits.
        lindist: A LinDist3Flow model of ``network`` to reuse (its sensitivities take
            about 2.5 s to build on the European LV feeder).

    Attributes:
        rows: The limits (:class:`LimitRows`, voltage rows on w).
        names: The DERs' names, in the columns' order.
        slope: :math:`G = \partial u / \partial p_s`, rows × DERs (p.u. or p.u.² per kW).

    """

    def __init__(self, network: PhaseNetwork, connections: Sequence[SupplierConnection],
                 limits: NetworkLimits, *, lindist: LinDist3Flow | None = None) -> None:
        lin = LinDist3Flow(network) if lindist is None else lindist
        self.network, self.limits = network, limits
        self.names = tuple(c.name for c in connections)
        self.rows = LimitRows(network, limits, squared=True)
        e = injection_matrix(network, connections)
        lpp, lpq, lqp, lqq = load_matrices(network)
        zero = np.zeros((len(network.nodes), 1))
        p_inj = np.hstack([zero, e, -lpp, -lpq])
        q_inj = np.hstack([zero, np.zeros_like(e), -lqp, -lqq])
        w = _solve_shunts(lin, np.hstack([zero + 1.0, lin.dw_dp @ p_inj[:, 1:]
                                          + lin.dw_dq @ q_inj[:, 1:]]))
        s = subtree_incidence(network)
        u = self.rows.slopes(w, -(s @ p_inj), -(s @ (q_inj + lin.shunt_kvar[:, None] * w)))
        n_der = len(connections)
        self.slope = np.ascontiguousarray(u[:, 1:1 + n_der])
        self._u_loads = _load_columns(u, n_der)
        self._w_der = np.ascontiguousarray(w[:, 1:1 + n_der])
        self._w_loads = _load_columns(w, n_der)

    def _z_loads(self, load_p_kw: np.ndarray, load_q_kvar: np.ndarray) -> np.ndarray:
        """``(V_ref², P_load, Q_load)`` as columns (one per slot) of the load part of z."""
        p, q = np.atleast_2d(load_p_kw), np.atleast_2d(load_q_kvar)
        ones = np.full((1, p.shape[0]), self.limits.v_ref_pu**2)
        return np.vstack([ones, p.T, q.T])

    def offset(self, load_p_kw: np.ndarray, load_q_kvar: np.ndarray) -> np.ndarray:
        """:math:`u` with every DER at 0: rows × slots for loads slots × loads (or rows)."""
        out = self._u_loads @ self._z_loads(load_p_kw, load_q_kvar)
        out -= self.rows.bound[:, None]
        return out[:, 0] if np.ndim(load_p_kw) == 1 else out

    def squared_voltages(self, load_p_kw: np.ndarray, load_q_kvar: np.ndarray,
                         der_kw: np.ndarray) -> np.ndarray:
        """:math:`w` per node of one slot (loads in ``network.loads`` order, DERs in order)."""
        base = self._w_loads @ self._z_loads(load_p_kw, load_q_kvar)[:, 0]
        return base + self._w_der @ np.asarray(der_kw, float)


def _load_columns(matrix: np.ndarray, n_der: int) -> np.ndarray:
    """The columns of ``matrix`` that multiply ``(V_ref², P_load, Q_load)``."""
    return np.hstack([matrix[:, :1], matrix[:, 1 + n_der:]])


def _solve_shunts(lin: LinDist3Flow, rhs: np.ndarray) -> np.ndarray:
    r""":math:`(I - K_Q C)^{-1}` ``rhs``: the capacitors' :math:`Q^{cap} w` solved in."""
    c = lin.shunt_kvar
    if not c.any():
        return rhs
    return np.linalg.solve(np.eye(len(c)) - lin.dw_dq * c[None, :], rhs)
