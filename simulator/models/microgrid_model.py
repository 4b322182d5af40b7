r"""Microgrid i's private operation model (FORMULATION §3; seed 000's y_i, z_i).

Slots :math:`t = 1..T` of :math:`\Delta t` hours; index 0 is the initial state.

Dispatchable generator g (commitment :math:`u_{g,t} \in \{0,1\}`, start-up :math:`s_{g,t}`):

.. math::
    s_{g,t} \ge u_{g,t} - u_{g,t-1},\quad s_{g,t} \le u_{g,t},\quad
    s_{g,t} \le 1 - u_{g,t-1},\quad s_{g,t} \ge 0 \\
    P^{min}_g u_{g,t} \le p_{g,t} \le P^{max}_g u_{g,t},\quad
    Q^{min}_g u_{g,t} \le q_{g,t} \le Q^{max}_g u_{g,t} \\
    -R_g \le p_{g,t} - p_{g,t-1} \le R_g

Renewable r: :math:`0 \le p_{r,t} \le \hat P_{r,t}`,
:math:`|q_{r,t}| \le p_{r,t} \tan(\arccos pf_r)`.

Storage e (mode :math:`b_{e,t} = 1` charging):

.. math::
    0 \le p^{ch}_{e,t} \le P^{ch}_e b_{e,t},\quad
    0 \le p^{dis}_{e,t} \le P^{dis}_e (1 - b_{e,t}) \\
    E_{e,t} = E_{e,t-1} + \eta^{ch} p^{ch}_{e,t} \Delta t - p^{dis}_{e,t}\Delta t/\eta^{dis},
    \quad E^{min}_e \le E_{e,t} \le E^{max}_e

Balance at the PCC (local curtailment :math:`0 \le k_t \le D^P_t`, reactive load reduced at
the same power factor):

.. math::
    \sum_g p_{g,t} + \sum_r p_{r,t} + \sum_e (p^{dis} - p^{ch}) - D^P_t + k_t = P^{ex}_t \\
    \sum_g q_{g,t} + \sum_r q_{r,t} - D^Q_t + k_t D^Q_t / D^P_t = Q^{ex}_t

with :math:`|P^{ex}_t| \le \bar P^{PCC}`, :math:`|Q^{ex}_t| \le \bar Q^{PCC}` (the published
rating). Cost:
:math:`C = \sum_t [\sum_g (c_g p_{g,t}\Delta t + SU_g s_{g,t}) + \rho k_t \Delta t]`.

:func:`add_microgrid` puts all of it on a Pyomo block; ``relax=True`` gives the LP
relaxation (binaries in [0, 1]) used by the unified subproblem.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo

from gridcosim.scenarios.schema import Microgrid


@dataclass(frozen=True)
class MicrogridState:
    """Initial condition of a window: what the previous committed slot left behind.

    Attributes:
        dg_on: Commitment of each generator before the window.
        dg_p_kw: Output of each generator before the window.
        e_kwh: Energy of each storage unit before the window.

    """

    dg_on: tuple[bool, ...]
    dg_p_kw: tuple[float, ...]
    e_kwh: tuple[float, ...]

    @classmethod
    def initial(cls, mg: Microgrid) -> MicrogridState:
        """The state the scenario gives for the first window."""
        return cls(
            dg_on=tuple(g.initial_on for g in mg.generators),
            dg_p_kw=tuple(g.initial_p_kw for g in mg.generators),
            e_kwh=tuple(s.e_initial_kwh for s in mg.storage),
        )


@dataclass(frozen=True)
class MicrogridWindow:
    """Everything microgrid controller i knows about one optimisation window (private).

    Attributes:
        spec: The microgrid's units and ratings.
        renewable_kw: Forecast of each renewable, shape (n_renewables, T).
        load_kw: Local active load per slot (T,).
        load_kvar: Local reactive load per slot (T,).
        slot_hours: Slot length in hours.
        curtailment_cost_usd_per_kwh: Cost rho of local load curtailment.
        state: Initial condition.

    """

    spec: Microgrid
    renewable_kw: np.ndarray
    load_kw: np.ndarray
    load_kvar: np.ndarray
    slot_hours: float
    curtailment_cost_usd_per_kwh: float
    state: MicrogridState
    price_usd_per_kwh: np.ndarray | None = None

    @property
    def slots(self) -> int:
        """Number of slots T."""
        return len(self.load_kw)

    def cost_upper_bound_usd(self) -> float:
        """A published upper bound on the window cost (for big-M values; FORMULATION §9)."""
        dt, t = self.slot_hours, self.slots
        gens = sum(g.cost_usd_per_kwh * g.p_max_kw * dt * t for g in self.spec.generators)
        starts = sum(g.startup_cost_usd * math.ceil(t / 2) for g in self.spec.generators)
        curtail = self.curtailment_cost_usd_per_kwh * float(np.sum(self.load_kw)) * dt
        return gens + starts + curtail + 1.0


def add_microgrid(b: pyo.Block, w: MicrogridWindow, *, relax: bool = False) -> None:
    """Add the microgrid's variables, constraints and cost expression ``b.cost_usd``.

    What changes from one window to the next (local load, the initial state) enters as
    mutable parameters, and the renewable and curtailment bounds follow the forecasts, so
    that :func:`load_microgrid_data` can move a built model to the next window.
    """
    b.T = pyo.RangeSet(0, w.slots - 1)
    add_window_parameters(b, w)
    add_generator_constraints(b, w, relax)
    add_renewable_constraints(b, w)
    add_storage_constraints(b, w, relax)
    add_balance_constraints(b, w)
    add_cost_expression(b, w)


def add_window_parameters(b: pyo.Block, w: MicrogridWindow) -> None:
    """Local load per slot and the initial state (commitment, output, stored energy)."""
    gens, ess = w.spec.generators, w.spec.storage
    b.G = pyo.RangeSet(0, len(gens) - 1) if gens else pyo.Set(initialize=[])
    b.S = pyo.RangeSet(0, len(ess) - 1) if ess else pyo.Set(initialize=[])
    b.load_p_kw = pyo.Param(b.T, mutable=True, initialize=0.0)
    b.load_q_kvar = pyo.Param(b.T, mutable=True, initialize=0.0)
    b.on_0 = pyo.Param(b.G, mutable=True, initialize=0.0)
    b.p_g_0 = pyo.Param(b.G, mutable=True, initialize=0.0)
    b.e_0 = pyo.Param(b.S, mutable=True, initialize=0.0)
    _store_data(b, w)


def _store_data(b: pyo.Block, w: MicrogridWindow) -> None:
    b.load_p_kw.store_values({t: float(w.load_kw[t]) for t in range(w.slots)})
    b.load_q_kvar.store_values({t: float(w.load_kvar[t]) for t in range(w.slots)})
    b.on_0.store_values({g: float(on) for g, on in enumerate(w.state.dg_on)})
    b.p_g_0.store_values({g: float(p) for g, p in enumerate(w.state.dg_p_kw)})
    b.e_0.store_values({s: float(e) for s, e in enumerate(w.state.e_kwh)})


def same_shape(a: MicrogridWindow, b: MicrogridWindow) -> bool:
    """Whether a model built for window ``a`` can be loaded with window ``b``'s data.

    The units, slot count and length must agree, and so must the local load's power
    factor (it is a coefficient of the reactive balance).
    """
    return (a.spec == b.spec and a.slots == b.slots and a.slot_hours == b.slot_hours
            and a.curtailment_cost_usd_per_kwh == b.curtailment_cost_usd_per_kwh
            and np.allclose(pf_ratio(a), pf_ratio(b), rtol=0.0, atol=1e-12))


def pf_ratio(w: MicrogridWindow) -> np.ndarray:
    """Reactive over active local load per slot (0 where there is no load)."""
    load = np.asarray(w.load_kw, dtype=float)
    safe = np.where(load > 0, load, 1.0)
    return np.where(load > 0, np.asarray(w.load_kvar, dtype=float) / safe, 0.0)


def load_microgrid_data(b: pyo.Block, w: MicrogridWindow) -> None:
    """Move a built block to window ``w`` (of the same shape): parameters and bounds."""
    _store_data(b, w)
    for (r, t), var in b.p_r.items():
        var.setub(float(w.renewable_kw[r, t]))
    for t, var in b.curtail.items():
        var.setub(float(w.load_kw[t]))


def unit_reactive_ranges(spec: Microgrid, u: np.ndarray, p_r: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Reactive range of every unit per slot (generators, then renewables; rows x slots).

    A generator gives ``[Q_min u, Q_max u]``, a renewable ``±tan(acos pf) p_r`` at its output.
    """
    lo = [g.q_min_kvar * u[k] for k, g in enumerate(spec.generators)]
    hi = [g.q_max_kvar * u[k] for k, g in enumerate(spec.generators)]
    for k, ren in enumerate(spec.renewables):
        reach = math.tan(math.acos(ren.min_power_factor)) * p_r[k]
        lo.append(-reach)
        hi.append(reach)
    slots = u.shape[1] if len(spec.generators) else p_r.shape[1]
    return np.array(lo).reshape(-1, slots), np.array(hi).reshape(-1, slots)


def reactive_need(w: MicrogridWindow, q_ex: np.ndarray, curtail: np.ndarray) -> np.ndarray:
    """Reactive output the units must give for exchange ``q_ex`` (the reactive balance)."""
    return np.asarray(q_ex, dtype=float) + np.asarray(w.load_kvar, dtype=float) - (
        pf_ratio(w) * curtail)


def reactive_band(w: MicrogridWindow, u: np.ndarray, p_r: np.ndarray, curtail: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Range of the reactive exchange per slot for fixed commitments and active outputs.

    With ``u`` (generators x slots), renewable outputs ``p_r`` (renewables x slots) and
    local curtailment fixed, each unit's reactive output moves independently within its
    limits (:func:`unit_reactive_ranges`), so by the reactive balance the exchange ranges
    over ``Σ_g Q_g u + Σ_r ±tan(φ_r) p_r − D^Q + k D^Q/D^P``, clipped to the PCC rating.
    """
    lo, hi = unit_reactive_ranges(w.spec, u, p_r)
    base = -reactive_need(w, np.zeros(w.slots), curtail)
    cap = w.spec.pcc_q_max_kvar
    return (np.clip(base + lo.sum(axis=0), -cap, cap),
            np.clip(base + hi.sum(axis=0), -cap, cap))


def add_generator_constraints(b: pyo.Block, w: MicrogridWindow, relax: bool) -> None:
    """Commitment, start-up, P/Q limits and ramping of every dispatchable generator."""
    gens = w.spec.generators
    dom = pyo.UnitInterval if relax else pyo.Binary
    b.u = pyo.Var(b.G, b.T, domain=dom)
    b.su = pyo.Var(b.G, b.T, bounds=(0, 1))
    b.p_g = pyo.Var(b.G, b.T)
    b.q_g = pyo.Var(b.G, b.T)

    def startup(b: pyo.Block, g: int, t: int) -> pyo.Expression:
        if t == 0:  # the initial commitment is a parameter: keep it on the bound side
            return b.su[g, 0] - b.u[g, 0] >= -b.on_0[g]
        return b.su[g, t] >= b.u[g, t] - b.u[g, t - 1]

    def ramp(b: pyo.Block, g: int, t: int) -> pyo.Expression:
        r = gens[g].ramp_kw_per_slot
        if t == 0:
            return pyo.inequality(b.p_g_0[g] - r, b.p_g[g, 0], b.p_g_0[g] + r)
        return pyo.inequality(-r, b.p_g[g, t] - b.p_g[g, t - 1], r)

    def started_off(b: pyo.Block, g: int, t: int) -> pyo.Expression:
        if t == 0:
            return b.su[g, 0] <= 1 - b.on_0[g]
        return b.su[g, t] <= 1 - b.u[g, t - 1]

    b.startup = pyo.Constraint(b.G, b.T, rule=startup)
    # s <= u_t and s <= 1 - u_{t-1}: with binary u the start-up is exactly
    # max(0, u_t - u_{t-1}) even in a solve whose objective does not price it
    b.startup_on = pyo.Constraint(b.G, b.T, rule=lambda b, g, t: b.su[g, t] <= b.u[g, t])
    b.startup_off = pyo.Constraint(b.G, b.T, rule=started_off)
    b.p_min = pyo.Constraint(
        b.G, b.T, rule=lambda b, g, t: b.p_g[g, t] >= gens[g].p_min_kw * b.u[g, t])
    b.p_max = pyo.Constraint(
        b.G, b.T, rule=lambda b, g, t: b.p_g[g, t] <= gens[g].p_max_kw * b.u[g, t])
    b.q_min = pyo.Constraint(
        b.G, b.T, rule=lambda b, g, t: b.q_g[g, t] >= gens[g].q_min_kvar * b.u[g, t])
    b.q_max = pyo.Constraint(
        b.G, b.T, rule=lambda b, g, t: b.q_g[g, t] <= gens[g].q_max_kvar * b.u[g, t])
    b.ramp = pyo.Constraint(b.G, b.T, rule=ramp)


def add_renewable_constraints(b: pyo.Block, w: MicrogridWindow) -> None:
    """Output up to the forecast; reactive power within the minimum power factor."""
    res = w.spec.renewables
    b.R = pyo.RangeSet(0, len(res) - 1) if res else pyo.Set(initialize=[])
    b.p_r = pyo.Var(b.R, b.T, bounds=lambda b, r, t: (0.0, float(w.renewable_kw[r, t])))
    b.q_r = pyo.Var(b.R, b.T)
    tan = [math.tan(math.acos(r.min_power_factor)) for r in res]
    b.q_r_max = pyo.Constraint(b.R, b.T, rule=lambda b, r, t: b.q_r[r, t] <= tan[r] * b.p_r[r, t])
    b.q_r_min = pyo.Constraint(b.R, b.T, rule=lambda b, r, t: b.q_r[r, t] >= -tan[r] * b.p_r[r, t])


def add_storage_constraints(b: pyo.Block, w: MicrogridWindow, relax: bool) -> None:
    """Charge/discharge limits with a mode binary, energy balance with efficiencies."""
    ess = w.spec.storage
    dt = w.slot_hours
    b.mode = pyo.Var(b.S, b.T, domain=pyo.UnitInterval if relax else pyo.Binary)
    b.p_ch = pyo.Var(b.S, b.T, bounds=(0.0, None))
    b.p_dis = pyo.Var(b.S, b.T, bounds=(0.0, None))
    b.e = pyo.Var(b.S, b.T, bounds=lambda b, s, t: (ess[s].e_min_kwh, ess[s].e_max_kwh))
    b.ch_max = pyo.Constraint(
        b.S, b.T, rule=lambda b, s, t: b.p_ch[s, t] <= ess[s].p_charge_max_kw * b.mode[s, t])
    b.dis_max = pyo.Constraint(b.S, b.T, rule=lambda b, s, t: (
        b.p_dis[s, t] <= ess[s].p_discharge_max_kw * (1 - b.mode[s, t])))

    def energy(b: pyo.Block, s: int, t: int) -> pyo.Expression:
        flow = ess[s].eta_charge * b.p_ch[s, t] * dt - b.p_dis[s, t] * dt / ess[s].eta_discharge
        if t == 0:  # the initial energy is a parameter: keep it on the right-hand side
            return b.e[s, 0] - flow == b.e_0[s]
        return b.e[s, t] == b.e[s, t - 1] + flow

    b.energy = pyo.Constraint(b.S, b.T, rule=energy)


def add_balance_constraints(b: pyo.Block, w: MicrogridWindow) -> None:
    """PCC balance defining the exchange P_ex, Q_ex (export to the DN positive)."""
    spec = w.spec
    b.p_ex = pyo.Var(b.T, bounds=(-spec.pcc_p_max_kw, spec.pcc_p_max_kw))
    b.q_ex = pyo.Var(b.T, bounds=(-spec.pcc_q_max_kvar, spec.pcc_q_max_kvar))
    b.curtail = pyo.Var(b.T, bounds=lambda b, t: (0.0, float(w.load_kw[t])))
    ratio = [float(r) for r in pf_ratio(w)]

    def p_balance(b: pyo.Block, t: int) -> pyo.Expression:
        gen = sum(b.p_g[g, t] for g in b.G) + sum(b.p_r[r, t] for r in b.R)
        ess = sum(b.p_dis[s, t] - b.p_ch[s, t] for s in b.S)
        return gen + ess + b.curtail[t] - b.p_ex[t] == b.load_p_kw[t]

    def q_balance(b: pyo.Block, t: int) -> pyo.Expression:
        gen = sum(b.q_g[g, t] for g in b.G) + sum(b.q_r[r, t] for r in b.R)
        return gen + ratio[t] * b.curtail[t] - b.q_ex[t] == b.load_q_kvar[t]

    b.p_balance = pyo.Constraint(b.T, rule=p_balance)
    b.q_balance = pyo.Constraint(b.T, rule=q_balance)


def add_cost_expression(b: pyo.Block, w: MicrogridWindow) -> None:
    """Operation cost ``b.cost_usd``: energy, start-ups and local curtailment."""
    gens, dt, rho = w.spec.generators, w.slot_hours, w.curtailment_cost_usd_per_kwh
    b.cost_usd = pyo.Expression(expr=sum(
        gens[g].cost_usd_per_kwh * b.p_g[g, t] * dt + gens[g].startup_cost_usd * b.su[g, t]
        for g in b.G for t in b.T) + sum(rho * b.curtail[t] * dt for t in b.T))
