r"""DSO network model: balanced LinDistFlow on a radial feeder (docs/formulation.md §2).

Flows in kW / kvar, squared voltages :math:`v_n` in p.u.², impedances in p.u. on the
scenario base :math:`S_b` (kVA). For the branch l feeding bus n from its parent
:math:`\pi(n)` and every slot t:

.. math::
    P_l = (P^L_n - c_n) - \sum_{i@n} P^{ex}_i + \sum_{k \in ch(n)} P_k \\
    Q_l = (Q^L_n - c_n Q^L_n / P^L_n) - \sum_{i@n} Q^{ex}_i - \sum_{s@n} q_s
          - Q^{cap}_n v_n + \sum_{k \in ch(n)} Q_k \\
    v_n = a_l v_{\pi(n)} - 2 (r_l P_l + x_l Q_l) / S_b, \qquad
    V_{min}^2 \le v_n \le V_{max}^2

At the root the same balance defines the substation import :math:`P^{sub}, Q^{sub}` and
:math:`v_0 = V_{ref}^2`. :math:`a_l = 1` except on a transformer whose rated ratio or tap
differs from its buses' nominal voltages (:math:`a_l = 1/t^2`, column ``v_ratio``).
Capacitors inject :math:`Q^{cap}_n v_n` (a shunt, exact in the
squared voltage). Bounds: :math:`0 \le c_n \le P^L_n`, :math:`q_s \in [q^{min}_s,
q^{max}_s]`, exchanges within the bounds each microgrid publishes. Optional thermal limit
on branches with a rating :math:`S_l`: the 8-sided inner polygon of
:math:`P_l^2 + Q_l^2 \le S_l^2`, only the sides the flow can reach (an exact screen,
:mod:`.thermal_screen`).

Network cost of the window:
:math:`\sum_t \Delta t [\lambda_t P^{sub}_t + \rho \sum_n c_{n,t}]`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo
from pyomo.core.expr.numeric_expr import LinearExpression, MonomialTermExpression

from gridcosim.scenarios.network import NetworkData
from gridcosim.scenarios.phase_network import PhaseNetwork
from gridcosim.scenarios.schema import SVC
from gridcosim.simulator.messages import ExchangeBounds
from gridcosim.simulator.models.thermal_screen import (
    SIDE_ANGLES,
    SIDE_RHS_FACTOR,
    LoadRange,
    binding_sides,
    rated_sides,
    window_load_range,
)


@dataclass(frozen=True)
class NetworkWindow:
    """The DSO's private data for one window.

    Attributes:
        network: Topology and impedances: balanced, or three-phase (LinDist3Flow).
        load_kw: Active bus loads, DataFrame (bus x slot).
        load_kvar: Reactive bus loads, DataFrame (bus x slot).
        price_usd_per_kwh: Utility price per slot (T,).
        slot_hours: Slot length in hours.
        curtailment_cost_usd_per_kwh: Cost rho of curtailing bus load.
        v_ref_pu: Substation voltage magnitude.
        v_min_pu: Lower voltage limit.
        v_max_pu: Upper voltage limit.
        svcs: Static var compensators.
        exchanges: The published PCC bounds of every microgrid.
        start: First slot of the window in the run (where a warm start moves from).
        load_range: Range of the bus loads over every slot of the run (the thermal
            screen's bounds, :mod:`.thermal_screen`); ``None``: this window's own, and
            the model is then loaded only with windows whose loads lie within it.

    """

    network: NetworkData | PhaseNetwork
    load_kw: pd.DataFrame
    load_kvar: pd.DataFrame
    price_usd_per_kwh: np.ndarray
    slot_hours: float
    curtailment_cost_usd_per_kwh: float
    v_ref_pu: float
    v_min_pu: float
    v_max_pu: float
    svcs: tuple[SVC, ...]
    exchanges: tuple[ExchangeBounds, ...]
    start: int = 0
    load_range: LoadRange | None = None

    @property
    def slots(self) -> int:
        """Number of slots T."""
        return len(self.price_usd_per_kwh)

    @cached_property
    def own_load_range(self) -> LoadRange:
        """The range of this window's own bus loads (balanced networks; computed once)."""
        return LoadRange.of(self.network, self.load_kw, self.load_kvar)


def add_network(b: pyo.Block, w: NetworkWindow, *, screen_thermal: bool = True) -> None:
    """Add LinDistFlow variables, constraints and ``b.cost_usd`` for window ``w``.

    ``screen_thermal`` builds only the thermal sides that can bind (an exact screen,
    :mod:`.thermal_screen`); without it every side of every rated branch (the same
    feasible set, more rows).

    The window's data that change from one window to the next (bus loads, prices) are
    mutable parameters and the curtailment bounds follow the loads, so that
    :func:`load_network_data` can move a built model to another window of the same shape.
    A three-phase network (:class:`~scenarios.phase_network.PhaseNetwork`) gets the
    LinDist3Flow block of :mod:`.lindist3flow_model`, which has the same interface.
    """
    if isinstance(w.network, PhaseNetwork):
        from gridcosim.simulator.models.lindist3flow_model import add_phase_network

        add_phase_network(b, w)
        return
    add_network_parameters(b, w)
    add_network_variables(b, w)
    add_power_balance_constraints(b, w)
    add_voltage_constraints(b, w)
    add_thermal_constraints(b, w, screen=screen_thermal)
    add_network_cost(b, w)


def add_network_parameters(b: pyo.Block, w: NetworkWindow) -> None:
    """Bus loads (kW, kvar) and the utility price as mutable parameters."""
    net = w.network
    b.T = pyo.RangeSet(0, w.slots - 1)
    b.N = pyo.Set(initialize=network_nodes(net), ordered=True)
    b.load_p_kw = pyo.Param(b.N, b.T, mutable=True, initialize=0.0)
    b.load_q_kvar = pyo.Param(b.N, b.T, mutable=True, initialize=0.0)
    b.price_usd_per_kwh = pyo.Param(b.T, mutable=True, initialize=0.0)
    _store_data(b, w)


def _store_data(b: pyo.Block, w: NetworkWindow) -> None:
    """The window's loads and prices into the mutable parameters, in bulk.

    The values are floats from validated data, so Pyomo's per-value check is skipped
    (``check=False``: 6× faster on the 123-bus, 24-slot window).
    """
    p, q = window_loads(b, w)
    slots = list(b.T)
    keys = [(n, t) for n in b.N for t in slots]  # the parameters' order (N x T), built fast
    for data, values in ((b.load_p_kw, p), (b.load_q_kvar, q)):
        data.store_values(dict(zip(keys, values.ravel().tolist(), strict=True)), check=False)
    b.price_usd_per_kwh.store_values(
        {t: float(w.price_usd_per_kwh[t]) for t in b.price_usd_per_kwh}, check=False)


def network_nodes(net: NetworkData | PhaseNetwork) -> list[int] | list[str]:
    """The model's nodes ``N``: bus ids, or ``"bus.phase"`` labels on a three-phase network."""
    if isinstance(net, PhaseNetwork):
        return [f"{bus}.{phase}" for bus, phase in net.nodes]
    return list(net.bus_ids)


def window_loads(b: pyo.Block, w: NetworkWindow) -> tuple[np.ndarray, np.ndarray]:
    """Node loads (kW, kvar) of window ``w`` as arrays (``b.N`` order x slot).

    On a three-phase network each bus load is split over its phases by the network's
    :attr:`~scenarios.phase_network.PhaseNetwork.load_shares`.
    """
    net = w.network
    if isinstance(net, PhaseNetwork):
        buses = list(net.bus_ids)
        return net.node_loads(w.load_kw.reindex(buses).to_numpy(dtype=float),
                              w.load_kvar.reindex(buses).to_numpy(dtype=float))
    buses = list(b.N)
    return (w.load_kw.reindex(buses).to_numpy(dtype=float),
            w.load_kvar.reindex(buses).to_numpy(dtype=float))


def same_shape(a: NetworkWindow, b: NetworkWindow) -> bool:
    """Whether a model built for window ``a`` can be loaded with window ``b``'s data."""
    same_mgs = [(e.mg, e.bus, e.p_min_kw, e.p_max_kw, e.q_min_kvar, e.q_max_kvar)
                for e in a.exchanges] == [
                   (e.mg, e.bus, e.p_min_kw, e.p_max_kw, e.q_min_kvar, e.q_max_kvar)
                   for e in b.exchanges]
    return (a.network is b.network and a.slots == b.slots and same_mgs
            and a.svcs == b.svcs and (a.slot_hours, a.curtailment_cost_usd_per_kwh, a.v_ref_pu,
                                      a.v_min_pu, a.v_max_pu)
            == (b.slot_hours, b.curtailment_cost_usd_per_kwh, b.v_ref_pu, b.v_min_pu,
                b.v_max_pu)
            and screen_covers(a, b))


def screen_covers(a: NetworkWindow, b: NetworkWindow) -> bool:
    """Whether the thermal screen of a model built for ``a`` holds for ``b``'s loads.

    Always true between windows of one run (they carry the run's load range); a window
    whose loads leave the range needs a model of its own.
    """
    if isinstance(a.network, PhaseNetwork):
        return True  # LinDist3Flow keeps every side
    return window_load_range(a).covers(b.own_load_range)


def load_network_data(b: pyo.Block, w: NetworkWindow) -> None:
    """Move a built block to window ``w`` (of the same shape): loads, prices, bounds."""
    _store_data(b, w)
    for ub, var in zip(curtailment_bounds(b, w), b.curtail.values(), strict=True):
        var.setub(ub)


def curtailment_bounds(b: pyo.Block, w: NetworkWindow) -> list[float]:
    """Upper bounds of ``b.curtail`` (in its order) for window ``w``: the bus loads."""
    p = w.load_kw.reindex(list(b.CN)).to_numpy(dtype=float)
    return p.ravel().tolist()


def add_network_variables(b: pyo.Block, w: NetworkWindow) -> None:
    """Flows, squared voltages, substation import, SVC output, curtailment, exchanges."""
    net = w.network
    b.L = pyo.Set(initialize=[n for n in net.bus_ids if n != net.root_bus], ordered=True)
    b.p_flow = pyo.Var(b.L, b.T)
    b.q_flow = pyo.Var(b.L, b.T)
    b.v = pyo.Var(b.N, b.T, bounds=(w.v_min_pu**2, w.v_max_pu**2))
    for t in b.T:
        b.v[net.root_bus, t].setlb(w.v_ref_pu**2)
        b.v[net.root_bus, t].setub(w.v_ref_pu**2)
    add_injection_variables(b, w)


def add_injection_variables(b: pyo.Block, w: NetworkWindow) -> None:
    """Substation import, SVC output, curtailment per load bus, microgrid exchanges."""
    net = w.network
    b.CN = pyo.Set(initialize=[n for n in net.bus_ids if net.load_p_kw[n] > 0], ordered=True)
    b.SV = pyo.RangeSet(0, len(w.svcs) - 1) if w.svcs else pyo.Set(initialize=[])
    b.MG = pyo.Set(initialize=[e.mg for e in w.exchanges], ordered=True)
    ex = {e.mg: e for e in w.exchanges}
    b.p_sub = pyo.Var(b.T)
    b.q_sub = pyo.Var(b.T)
    slots = list(b.T)  # a Pyomo set is slow to iterate: once, not once per bus
    loads = dict(zip([(n, t) for n in b.CN for t in slots], curtailment_bounds(b, w),
                     strict=True))
    b.curtail = pyo.Var(b.CN, b.T, bounds=lambda b, n, t: (0.0, loads[n, t]))
    b.q_svc = pyo.Var(b.SV, b.T,
                      bounds=lambda b, s, t: (w.svcs[s].q_min_kvar, w.svcs[s].q_max_kvar))
    b.p_ex = pyo.Var(b.MG, b.T, bounds=lambda b, i, t: (ex[i].p_min_kw, ex[i].p_max_kw))
    b.q_ex = pyo.Var(b.MG, b.T, bounds=lambda b, i, t: (ex[i].q_min_kvar, ex[i].q_max_kvar))


def bus_injections(w: NetworkWindow) -> tuple[dict[int, list[str]], dict[int, list[int]]]:
    """Microgrids and SVCs (indices) at each bus."""
    mg_at: dict[int, list[str]] = {}
    for e in w.exchanges:
        mg_at.setdefault(e.bus, []).append(e.mg)
    svc_at: dict[int, list[int]] = {}
    for s, svc in enumerate(w.svcs):
        svc_at.setdefault(svc.bus, []).append(s)
    return mg_at, svc_at


def linear(terms: list[tuple[float, Any]]) -> LinearExpression:
    """``Σ coef·var`` as one flat Pyomo linear expression.

    Built directly instead of through Pyomo's operators: the compile to HiGHS then reads
    each row's coefficients without walking a nested sum of products (Pyomo's standard
    form write of the scale case's master: 2.6 s instead of 4.4 s, under cProfile).
    """
    return LinearExpression([MonomialTermExpression((float(c), v)) for c, v in terms])


def add_power_balance_constraints(b: pyo.Block, w: NetworkWindow) -> None:
    """Active and reactive balance at every bus (branch flow in = net load + flows out).

    Rows ``inflow + Σ exchanges + curtailment (+ SVCs + shunt) − Σ outflows = load``.
    """
    net = w.network
    mg_at, svc_at = bus_injections(w)
    cap = net.shunt_q_kvar
    pf = {n: float(net.load_q_kvar[n] / net.load_p_kw[n]) for n in b.CN}

    def p_rule(b: pyo.Block, n: int, t: int) -> pyo.Expression:
        terms = [(1.0, b.p_sub[t] if n == net.root_bus else b.p_flow[n, t])]
        terms += [(1.0, b.p_ex[i, t]) for i in mg_at.get(n, ())]
        terms += [(1.0, b.curtail[n, t])] if n in pf else []
        terms += [(-1.0, b.p_flow[k, t]) for k in net.children[n]]
        return linear(terms) == b.load_p_kw[n, t]

    def q_rule(b: pyo.Block, n: int, t: int) -> pyo.Expression:
        terms = [(1.0, b.q_sub[t] if n == net.root_bus else b.q_flow[n, t])]
        terms += [(1.0, b.q_ex[i, t]) for i in mg_at.get(n, ())]
        terms += [(1.0, b.q_svc[s, t]) for s in svc_at.get(n, ())]
        terms += [(pf[n], b.curtail[n, t])] if n in pf else []
        terms += [(float(cap[n]), b.v[n, t])] if cap[n] else []
        terms += [(-1.0, b.q_flow[k, t]) for k in net.children[n]]
        return linear(terms) == b.load_q_kvar[n, t]

    b.p_balance = pyo.Constraint(b.N, b.T, rule=p_rule)
    b.q_balance = pyo.Constraint(b.N, b.T, rule=q_rule)


def add_voltage_constraints(b: pyo.Block, w: NetworkWindow) -> None:
    """Voltage drop along every branch (limits are the bounds of ``v``).

    Rows ``v_n − a_l v_parent + (2/S_b)(r_l P_l + x_l Q_l) = 0``.
    """
    net = w.network
    br = net.branches
    scale = 2.0 / net.base_kva
    r = {n: scale * float(br.at[net.branch_of[n], "r_pu"]) for n in b.L}
    x = {n: scale * float(br.at[net.branch_of[n], "x_pu"]) for n in b.L}
    ratio = ({n: float(br.at[net.branch_of[n], "v_ratio"]) for n in b.L}
             if "v_ratio" in br.columns else {})

    def drop(b: pyo.Block, n: int, t: int) -> pyo.Expression:
        return linear([(1.0, b.v[n, t]), (-ratio.get(n, 1.0), b.v[net.parent[n], t]),
                       (r[n], b.p_flow[n, t]), (x[n], b.q_flow[n, t])]) == 0.0

    b.v_drop = pyo.Constraint(b.L, b.T, rule=drop)


def add_thermal_constraints(b: pyo.Block, w: NetworkWindow, *, screen: bool = True) -> None:
    """8-sided inner polygon of P² + Q² ≤ S² on branches that carry a rating ``s_max_kva``.

    ``b.TH`` holds the ``(bus, side)`` pairs built, the same for every slot: with
    ``screen`` only the sides that can bind (:func:`~.thermal_screen.binding_sides`),
    else all eight of every rated branch.
    """
    br = w.network.branches
    b.TH = pyo.Set(initialize=binding_sides(w) if screen else rated_sides(w), dimen=2,
                   ordered=True)
    rhs = {n: float(br.at[w.network.branch_of[n], "s_max_kva"]) * SIDE_RHS_FACTOR
           for n, _ in b.TH}
    cos = [math.cos(a) for a in SIDE_ANGLES]
    sin = [math.sin(a) for a in SIDE_ANGLES]

    def side(b: pyo.Block, n: int, k: int, t: int) -> pyo.Expression:
        return linear([(cos[k], b.p_flow[n, t]), (sin[k], b.q_flow[n, t])]) <= rhs[n]

    b.thermal = pyo.Constraint(b.TH, b.T, rule=side)


def add_network_cost(b: pyo.Block, w: NetworkWindow) -> None:
    """Energy bought at the substation plus curtailment, ``b.cost_usd``."""
    dt, rho = w.slot_hours, w.curtailment_cost_usd_per_kwh
    slots = list(b.T)  # a Pyomo set is slow to iterate: once, not once per bus
    b.cost_usd = pyo.Expression(expr=sum(
        dt * b.price_usd_per_kwh[t] * b.p_sub[t] for t in slots)
        + sum(dt * rho * b.curtail[n, t] for n in b.CN for t in slots))

