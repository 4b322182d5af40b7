r"""DSO network model on a three-phase feeder: LinDist3Flow (docs/formulation.md §6a).

The block has the interface of the balanced :mod:`~simulator.models.lindistflow_model`
(``p_ex``, ``q_ex``, ``q_svc``, ``curtail`` per bus, ``p_sub``, ``q_sub``, ``cost_usd``,
balance rows over ``N`` × ``T`` with the loads on their right-hand sides, ``v`` over
``N`` × ``T``), so the master, the network LP and the decomposition run on it unchanged;
only here ``N`` are the network's nodes, labelled ``"bus.phase"`` (``"114.a"``), and
``v`` is each node's squared voltage :math:`w_n^\phi`. For the line l feeding bus n and
each of its phases :math:`\phi`:

.. math::
    P_l^\phi = s^p_{n\phi} (P^L_n - c_n) - \tfrac{1}{k_n} \sum_{i@n} P^{ex}_i
               + \sum_{k \in ch(n)} P_k^\phi \\
    Q_l^\phi = s^q_{n\phi} (Q^L_n - c_n Q^L_n/P^L_n) - \tfrac{1}{k_n} \sum_{i@n} Q^{ex}_i
               - \tfrac{1}{k_n} \sum_{s@n} q_s - Q^{cap}_{n\phi} w_n^\phi + \sum_{k} Q_k^\phi \\
    w_n^\phi = w_{\pi(n)}^\phi - \sum_\psi (M^P_l[\phi,\psi] P_l^\psi
               + M^Q_l[\phi,\psi] Q_l^\psi) / (S_b/3)

with :math:`s_{n\phi}` the phase's share of the bus load (:attr:`PhaseNetwork.load_shares`):
a bus's loads scale together and curtailment sheds them in proportion. Microgrids and
SVCs are balanced over the :math:`k_n` phases of their bus (a third on each phase of a
three-phase bus, all of it on a single-phase bus's phase). Voltage limits hold on
every phase; per-phase line ratings (``s_max_kva``) get §2's octagon.
"""

from __future__ import annotations

import math

import numpy as np
import pyomo.environ as pyo

from gridcosim.scenarios.phase_network import PhaseNetwork
from gridcosim.simulator.models.lindist3flow import m_matrices
from gridcosim.simulator.models.lindistflow_model import (
    NetworkWindow,
    add_injection_variables,
    add_network_cost,
    add_network_parameters,
    bus_injections,
)


def node_label(bus: int, phase: str) -> str:
    """The label of a (bus, phase) node: ``"114.a"``."""
    return f"{bus}.{phase}"


def add_phase_network(b: pyo.Block, w: NetworkWindow) -> None:
    """LinDist3Flow variables, constraints and ``b.cost_usd`` for window ``w``."""
    net = w.network
    assert isinstance(net, PhaseNetwork)
    add_network_parameters(b, w)
    add_injection_variables(b, w)
    add_phase_variables(b, w)
    add_phase_balance_constraints(b, w)
    add_phase_voltage_constraints(b, w)
    add_phase_thermal_constraints(b, w)
    add_network_cost(b, w)


def add_phase_variables(b: pyo.Block, w: NetworkWindow) -> None:
    """Per-phase flows (on ``LP``), squared voltages (on ``N``), substation import per phase.

    ``p_sub`` and ``q_sub`` are the sums of the per-phase imports.
    """
    net = w.network
    b.LP = pyo.Set(initialize=[(line, p) for line, row in net.lines.iterrows()
                               for p in str(row.phases)], dimen=2, ordered=True)
    b.p_flow = pyo.Var(b.LP, b.T)
    b.q_flow = pyo.Var(b.LP, b.T)
    b.v = pyo.Var(b.N, b.T, bounds=(w.v_min_pu**2, w.v_max_pu**2))
    b.PH = pyo.Set(initialize=list(str(net.buses.at[net.root_bus, "phases"])), ordered=True)
    b.p_sub_phase = pyo.Var(b.PH, b.T)
    b.q_sub_phase = pyo.Var(b.PH, b.T)
    b.p_sub_total = pyo.Constraint(b.T, rule=lambda b, t: b.p_sub[t] == sum(
        b.p_sub_phase[p, t] for p in b.PH))
    b.q_sub_total = pyo.Constraint(b.T, rule=lambda b, t: b.q_sub[t] == sum(
        b.q_sub_phase[p, t] for p in b.PH))
    for p in "abc":
        for t in b.T:
            b.v[node_label(net.root_bus, p), t].setlb(w.v_ref_pu**2)
            b.v[node_label(net.root_bus, p), t].setub(w.v_ref_pu**2)


def add_phase_balance_constraints(b: pyo.Block, w: NetworkWindow) -> None:
    """Active and reactive balance at every node; loads on the right-hand side."""
    net: PhaseNetwork = w.network
    mg_at, svc_at = bus_injections(w)
    shares = net.load_shares.to_dict("index")  # (bus, phase) -> {"p": .., "q": ..}
    cap = net.phase_shunts_kvar.to_dict()
    pf = {n: float(net.load_q_kvar[n] / net.load_p_kw[n]) for n in b.CN}
    node = {node_label(n, p): (n, p) for n, p in net.nodes}
    spread = {int(n): 1.0 / len(str(p)) for n, p in net.buses["phases"].items()}

    def inflow(flow: pyo.Var, sub: pyo.Var, bus: int, phase: str, t: int) -> object:
        return sub[phase, t] if bus == net.root_bus else flow[net.line_of[bus], phase, t]

    def out(flow: pyo.Var, bus: int, phase: str, t: int) -> object:
        return sum(flow[net.line_of[k], phase, t] for k in net.children[bus]
                   if (net.line_of[k], phase) in b.LP)

    def p_rule(b: pyo.Block, label: str, t: int) -> object:
        bus, phase = node[label]
        units = sum(b.p_ex[i, t] for i in mg_at.get(bus, ())) * spread[bus]
        shed = shares[(bus, phase)]["p"] * b.curtail[bus, t] if bus in pf else 0.0
        lhs = (inflow(b.p_flow, b.p_sub_phase, bus, phase, t) + units + shed
               - out(b.p_flow, bus, phase, t))
        return lhs == b.load_p_kw[label, t]

    def q_rule(b: pyo.Block, label: str, t: int) -> object:
        bus, phase = node[label]
        units = (sum(b.q_ex[i, t] for i in mg_at.get(bus, ()))
                 + sum(b.q_svc[s, t] for s in svc_at.get(bus, ()))) * spread[bus]
        shed = shares[(bus, phase)]["q"] * pf[bus] * b.curtail[bus, t] if bus in pf else 0.0
        shunt = float(cap[(bus, phase)]) * b.v[label, t] if cap[(bus, phase)] else 0.0
        lhs = (inflow(b.q_flow, b.q_sub_phase, bus, phase, t) + units + shed + shunt
               - out(b.q_flow, bus, phase, t))
        return lhs == b.load_q_kvar[label, t]

    b.p_balance = pyo.Constraint(b.N, b.T, rule=p_rule)
    b.q_balance = pyo.Constraint(b.N, b.T, rule=q_rule)


def add_phase_voltage_constraints(b: pyo.Block, w: NetworkWindow) -> None:
    """LinDist3Flow voltage drop on every line-phase (limits are the bounds of ``v``)."""
    net: PhaseNetwork = w.network
    m = {line: m_matrices(net.z_pu(line)) for line in net.lines.index}
    ends = {line: (str(r.phases), int(r.from_bus), int(r.to_bus))
            for line, r in net.lines.iterrows()}  # read once, not per constraint
    scale = 1.0 / net.phase_base_kva

    def drop(b: pyo.Block, line: str, phase: str, t: int) -> object:
        phases, parent, child = ends[line]
        mp, mq = m[line]
        i = "abc".index(phase)
        coupling = sum(mp[i, "abc".index(q)] * b.p_flow[line, q, t]
                       + mq[i, "abc".index(q)] * b.q_flow[line, q, t] for q in phases)
        return (b.v[node_label(child, phase), t]
                == b.v[node_label(parent, phase), t] - scale * coupling)

    b.v_drop = pyo.Constraint(b.LP, b.T, rule=drop)


def add_phase_thermal_constraints(b: pyo.Block, w: NetworkWindow) -> None:
    r"""Octagon of :math:`(P_l^\\phi)^2 + (Q_l^\\phi)^2 \\le S_l^2` on rated line-phases."""
    rating = w.network.lines["s_max_kva"].astype(float)
    half = math.cos(math.pi / 8)
    b.thermal = pyo.ConstraintList()
    for line, phase in b.LP:
        s_max = float(rating[line])
        if not (np.isfinite(s_max) and s_max > 0):
            continue
        for t in b.T:
            for k in range(8):
                a = k * math.pi / 4
                b.thermal.add(math.cos(a) * b.p_flow[line, phase, t]
                              + math.sin(a) * b.q_flow[line, phase, t] <= s_max * half)
