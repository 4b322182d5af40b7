"""Independent feasibility checks of schedules (docs/formulation.md §2 and §3), in plain numpy.

This module re-derives every limit from the scenario data and the schedule alone. It does
not import Pyomo nor :mod:`simulator.models`, so a bug in a model cannot hide itself by
being repeated here. Every check returns a list of human-readable violations (empty when
the schedule is feasible within ``tol``).

Tolerances: ``tol`` is absolute in the unit of the quantity (kW, kvar, kWh, p.u.²); the cost
comparison uses ``tol * max(1, |cost|)``. Schedules are rounded to 1e-9 on extraction and
HiGHS's primal feasibility tolerance is 1e-7, so the default 1e-6 has head room.

Note: :func:`simulator.schedule.extract_microgrid` rounds the commitment ``u`` to an int,
so a fractional commitment (LP relaxation) cannot be seen here; it shows up instead as an
output outside ``[P_min u, P_max u]`` of the rounded ``u``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from gridcosim.scenarios.network import NetworkData
from gridcosim.scenarios.schema import SVC, Microgrid
from gridcosim.simulator.schedule import MicrogridSchedule, NetworkSchedule


class InitialState(Protocol):
    """What a window starts from (duck-typed ``MicrogridState``: ``of(unit name)``)."""

    def of(self, name: str) -> Any:
        """The unit's state: a generator's ``on`` and ``p_kw``, a battery's ``e_kwh``."""


@dataclass(frozen=True)
class UnitStates:
    """An :class:`InitialState` from plain per-unit values (for tests)."""

    units: dict[str, dict[str, float]]

    def of(self, name: str) -> dict[str, float]:
        return self.units.get(name, {})


def state_of(spec: Microgrid, dg_on: Sequence[bool], dg_p_kw: Sequence[float],
             e_kwh: Sequence[float]) -> Any:
    """A ``MicrogridState`` of ``spec`` from its generators' and batteries' values."""
    from gridcosim.simulator.models.microgrid_model import MicrogridState

    units = {g.name: {"on": float(on), "p_kw": float(p)}
             for g, on, p in zip(spec.generators, dg_on, dg_p_kw, strict=True)}
    units.update({s.name: {"e_kwh": float(e)} for s, e in zip(spec.storage, e_kwh, strict=True)})
    return MicrogridState(units)


def renewable_forecast(w: Any) -> np.ndarray:
    """A window's renewable forecasts as an array (renewables x slots)."""
    return np.array([w.forecast_kw[r.name] for r in w.spec.renewables],
                    dtype=float).reshape(len(w.spec.renewables), w.slots)


def _arr(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=float).ravel()


def start_ups(on: Sequence[int], initial_on: bool) -> np.ndarray:
    """Start-up indicator per slot: 1 where the unit goes off -> on."""
    u = np.asarray(on, dtype=float)
    prev = np.concatenate(([1.0 if initial_on else 0.0], u[:-1]))
    return np.maximum(u - prev, 0.0)


def recompute_cost_usd(spec: Microgrid, sched: MicrogridSchedule, slot_hours: float,
                       rho: float, initial_state: InitialState) -> float:
    """Microgrid cost of docs/formulation.md §3 from the schedule alone.

    ``C = Σ_t [Σ_g (c_g p_g,t Δt + SU_g s_g,t) + ρ k_t Δt]`` with ``s_g,t = 1`` exactly at
    each off -> on transition (the initial commitment counts as slot 0).
    """
    cost = 0.0
    for k, gen in enumerate(spec.generators):
        unit = sched.generators[k]
        cost += gen.cost_usd_per_kwh * slot_hours * float(np.sum(_arr(unit.p_kw)))
        cost += gen.startup_cost_usd * float(
            np.sum(start_ups(unit.on, bool(initial_state.of(gen.name)["on"]))))
    cost += rho * slot_hours * float(np.sum(_arr(sched.curtail_kw)))
    return cost


def recompute_network_cost_usd(sched: NetworkSchedule, price_usd_per_kwh: Sequence[float],
                               slot_hours: float, rho: float) -> float:
    """Network cost of docs/formulation.md §2: ``Σ_t Δt [λ_t P_sub,t + ρ Σ_n c_n,t]``."""
    energy = slot_hours * float(np.dot(_arr(price_usd_per_kwh), _arr(sched.p_sub_kw)))
    curtail = sum(float(np.sum(_arr(c))) for c in sched.curtail_kw.values())
    return energy + rho * slot_hours * curtail


def _fmt(x: float) -> str:
    return f"{x:.9g}"


def _check_generators(spec: Microgrid, sched: MicrogridSchedule, state: InitialState,
                      tol: float, out: list[str]) -> None:
    for k, gen in enumerate(spec.generators):
        unit = sched.generators[k]
        p, q, on = _arr(unit.p_kw), _arr(unit.q_kvar), list(unit.on)
        p_prev = float(state.of(gen.name)["p_kw"])
        for t in range(len(p)):
            tag = f"{spec.name}/{gen.name} t={t}"
            u = on[t]
            if u not in (0, 1):
                out.append(f"{tag}: commitment {u} is not binary")
                u = float(u)
            if p[t] < gen.p_min_kw * u - tol or p[t] > gen.p_max_kw * u + tol:
                out.append(f"{tag}: p={_fmt(p[t])} outside [{gen.p_min_kw}, {gen.p_max_kw}]·u"
                           f" with u={u}")
            if q[t] < gen.q_min_kvar * u - tol or q[t] > gen.q_max_kvar * u + tol:
                out.append(f"{tag}: q={_fmt(q[t])} outside [{gen.q_min_kvar}, "
                           f"{gen.q_max_kvar}]·u with u={u}")
            if abs(p[t] - p_prev) > gen.ramp_kw_per_slot + tol:
                out.append(f"{tag}: ramp |{_fmt(p[t])} - {_fmt(p_prev)}| > "
                           f"{gen.ramp_kw_per_slot}")
            p_prev = p[t]


def _check_renewables(spec: Microgrid, sched: MicrogridSchedule, renewable_kw: np.ndarray,
                      tol: float, out: list[str]) -> None:
    for k, res in enumerate(spec.renewables):
        unit = sched.renewables[k]
        p, q = _arr(unit.p_kw), _arr(unit.q_kvar)
        tan = math.tan(math.acos(res.min_power_factor))
        for t in range(len(p)):
            tag = f"{spec.name}/{res.name} t={t}"
            forecast = float(renewable_kw[k, t])
            if p[t] < -tol or p[t] > forecast + tol:
                out.append(f"{tag}: p={_fmt(p[t])} outside [0, forecast {_fmt(forecast)}]")
            if abs(q[t]) > max(p[t], 0.0) * tan + tol:
                out.append(f"{tag}: |q|={_fmt(abs(q[t]))} > p·tan(acos pf) = "
                           f"{_fmt(max(p[t], 0.0) * tan)}")


def _check_storage(spec: Microgrid, sched: MicrogridSchedule, slot_hours: float,
                   state: InitialState, tol: float, out: list[str]) -> None:
    for k, ess in enumerate(spec.storage):
        unit = sched.storage[k]
        ch, dis, e = _arr(unit.p_charge_kw), _arr(unit.p_discharge_kw), _arr(unit.e_kwh)
        e_prev = float(state.of(ess.name)["e_kwh"])
        for t in range(len(ch)):
            tag = f"{spec.name}/{ess.name} t={t}"
            if ch[t] < -tol or ch[t] > ess.p_charge_max_kw + tol:
                out.append(f"{tag}: p_ch={_fmt(ch[t])} outside [0, {ess.p_charge_max_kw}]")
            if dis[t] < -tol or dis[t] > ess.p_discharge_max_kw + tol:
                out.append(f"{tag}: p_dis={_fmt(dis[t])} outside [0, "
                           f"{ess.p_discharge_max_kw}]")
            if min(ch[t], dis[t]) > tol:
                out.append(f"{tag}: charges ({_fmt(ch[t])}) and discharges ({_fmt(dis[t])}) "
                           "at once")
            if unit.p_kw and abs(unit.p_kw[t] - (dis[t] - ch[t])) > tol:
                out.append(f"{tag}: net p={_fmt(unit.p_kw[t])} != p_dis - p_ch")
            e_now = (e_prev + ess.eta_charge * ch[t] * slot_hours
                     - dis[t] * slot_hours / ess.eta_discharge)
            if abs(e_now - e[t]) > tol:
                out.append(f"{tag}: E={_fmt(e[t])} but the energy balance gives {_fmt(e_now)}")
            if e_now < ess.e_min_kwh - tol or e_now > ess.e_max_kwh + tol:
                out.append(f"{tag}: E={_fmt(e_now)} outside [{ess.e_min_kwh}, "
                           f"{ess.e_max_kwh}]")
            e_prev = e[t]


def _check_pcc(spec: Microgrid, sched: MicrogridSchedule, load_kw: np.ndarray,
               load_kvar: np.ndarray, tol: float, out: list[str]) -> None:
    curtail = _arr(sched.curtail_kw)
    p_ex, q_ex = _arr(sched.p_ex_kw), _arr(sched.q_ex_kvar)
    for t in range(len(load_kw)):
        tag = f"{spec.name} t={t}"
        if curtail[t] < -tol or curtail[t] > load_kw[t] + tol:
            out.append(f"{tag}: curtailment {_fmt(curtail[t])} outside [0, {_fmt(load_kw[t])}]")
        p_inj = (sum(u.p_kw[t] for u in sched.generators)
                 + sum(u.p_kw[t] for u in sched.renewables)
                 + sum(u.p_discharge_kw[t] - u.p_charge_kw[t] for u in sched.storage))
        p_net = p_inj - load_kw[t] + curtail[t]
        if abs(p_net - p_ex[t]) > tol:
            out.append(f"{tag}: P balance gives {_fmt(p_net)} but P_ex={_fmt(p_ex[t])}")
        ratio = load_kvar[t] / load_kw[t] if load_kw[t] > 0 else 0.0
        q_inj = (sum(u.q_kvar[t] for u in sched.generators)
                 + sum(u.q_kvar[t] for u in sched.renewables))
        q_net = q_inj - load_kvar[t] + ratio * curtail[t]
        if abs(q_net - q_ex[t]) > tol:
            out.append(f"{tag}: Q balance gives {_fmt(q_net)} but Q_ex={_fmt(q_ex[t])}")
        if abs(p_ex[t]) > spec.pcc_p_max_kw + tol:
            out.append(f"{tag}: |P_ex|={_fmt(abs(p_ex[t]))} > PCC rating {spec.pcc_p_max_kw}")
        if abs(q_ex[t]) > spec.pcc_q_max_kvar + tol:
            out.append(f"{tag}: |Q_ex|={_fmt(abs(q_ex[t]))} > PCC rating "
                       f"{spec.pcc_q_max_kvar}")


def check_microgrid_schedule(spec: Microgrid, sched: MicrogridSchedule,
                             renewable_kw: Any, load_kw: Any, load_kvar: Any,
                             slot_hours: float, rho: float, initial_state: InitialState,
                             tol: float = 1e-6) -> list[str]:
    """Every violated limit of docs/formulation.md §3 in ``sched`` (empty list: feasible).

    Args:
        spec: The microgrid's units and ratings.
        sched: The schedule to check.
        renewable_kw: Forecast per renewable and slot, shape (n_renewables, T).
        load_kw: Local active load per slot.
        load_kvar: Local reactive load per slot.
        slot_hours: Slot length Δt.
        rho: Curtailment cost in $/kWh.
        initial_state: The units' state before the window (``of(name)``).
        tol: Absolute tolerance (kW, kvar, kWh); relative for the cost.
    """
    out: list[str] = []
    load_kw, load_kvar = _arr(load_kw), _arr(load_kvar)
    n_slots = len(load_kw)
    renewable_kw = np.asarray(renewable_kw, dtype=float).reshape(len(spec.renewables), n_slots)
    counts = ((len(sched.generators), len(spec.generators), "generators"),
              (len(sched.renewables), len(spec.renewables), "renewables"),
              (len(sched.storage), len(spec.storage), "storage units"))
    for got, want, what in counts:
        if got != want:
            return [f"{spec.name}: schedule has {got} {what}, spec has {want}"]
    series = [sched.p_ex_kw, sched.q_ex_kvar, sched.curtail_kw]
    series += [s for u in sched.generators for s in (u.p_kw, u.q_kvar, u.on)]
    series += [s for u in sched.renewables for s in (u.p_kw, u.q_kvar)]
    series += [s for u in sched.storage for s in (u.p_charge_kw, u.p_discharge_kw, u.e_kwh)]
    if any(len(s) != n_slots for s in series):
        return [f"{spec.name}: a schedule series does not have {n_slots} slots"]

    _check_generators(spec, sched, initial_state, tol, out)
    _check_renewables(spec, sched, renewable_kw, tol, out)
    _check_storage(spec, sched, slot_hours, initial_state, tol, out)
    _check_pcc(spec, sched, load_kw, load_kvar, tol, out)
    cost = recompute_cost_usd(spec, sched, slot_hours, rho, initial_state)
    if abs(cost - sched.cost_usd) > tol * max(1.0, abs(cost)):
        out.append(f"{spec.name}: cost {_fmt(sched.cost_usd)} but the schedule costs "
                   f"{_fmt(cost)}")
    return out


def check_network_schedule(sched: NetworkSchedule, network: NetworkData,
                           load_kw: pd.DataFrame, load_kvar: pd.DataFrame,
                           svcs: Sequence[SVC], v_min_pu: float, v_max_pu: float,
                           v_ref_pu: float, exchanges: Sequence[MicrogridSchedule] = (),
                           tol: float = 1e-6) -> list[str]:
    """Every violated limit of the DSO side (docs/formulation.md §2) in ``sched``.

    Checks voltage magnitudes within ``[v_min, v_max]`` and the root at ``v_ref``, SVC outputs
    within range, bus curtailment within ``[0, load]``, and re-derives the LinDistFlow
    solution from the injections: branch flows from the leaves up (loads net of curtailment,
    microgrid exchanges, SVCs, capacitors ``Q_cap v``), then the substation import and every
    voltage drop ``v_n = v_parent - 2 (r P + x Q) / S_base``.

    Args:
        sched: The network schedule (``vm_pu`` holds ``sqrt(v)`` per bus and slot).
        network: Feeder data.
        load_kw: Active bus loads (bus x slot) of the window.
        load_kvar: Reactive bus loads (bus x slot).
        svcs: The window's SVCs, in the order of ``sched.q_svc_kvar``.
        v_min_pu: Lower voltage limit.
        v_max_pu: Upper voltage limit.
        v_ref_pu: Substation voltage.
        exchanges: Microgrid schedules (their ``bus``, ``p_ex_kw``, ``q_ex_kvar``).
        tol: Absolute tolerance in p.u. (voltages), p.u.² (drops) and kW per kW of
            total load (balances).
    """
    out: list[str] = []
    n_slots = len(sched.p_sub_kw)
    power_tol = tol * max(1.0, float(np.abs(load_kw.to_numpy()).sum()) / n_slots)
    for bus, vm in sched.vm_pu.items():
        for t, v in enumerate(vm):
            if v < v_min_pu - tol or v > v_max_pu + tol:
                out.append(f"bus {bus} t={t}: |V|={_fmt(v)} outside [{v_min_pu}, {v_max_pu}]")
    for t, v in enumerate(sched.vm_pu[network.root_bus]):
        if abs(v - v_ref_pu) > tol:
            out.append(f"root t={t}: |V|={_fmt(v)} != v_ref {v_ref_pu}")
    if len(sched.q_svc_kvar) != len(svcs):
        out.append(f"{len(sched.q_svc_kvar)} SVC series for {len(svcs)} SVCs")
    for svc, q in zip(svcs, sched.q_svc_kvar, strict=False):
        for t, val in enumerate(q):
            if val < svc.q_min_kvar - tol or val > svc.q_max_kvar + tol:
                out.append(f"SVC at bus {svc.bus} t={t}: q={_fmt(val)} outside "
                           f"[{svc.q_min_kvar}, {svc.q_max_kvar}]")
    for bus, c in sched.curtail_kw.items():
        for t, val in enumerate(c):
            load = float(load_kw.at[bus, t])
            if val < -tol or val > load + tol:
                out.append(f"bus {bus} t={t}: curtailment {_fmt(val)} outside [0, {_fmt(load)}]")
    for t in range(n_slots):
        out += _check_lindistflow(sched, network, load_kw, load_kvar, svcs, exchanges, t,
                                  tol, power_tol)
    return out


def _check_lindistflow(sched: NetworkSchedule, network: NetworkData, load_kw: pd.DataFrame,
                       load_kvar: pd.DataFrame, svcs: Sequence[SVC],
                       exchanges: Sequence[MicrogridSchedule], t: int, tol: float,
                       power_tol: float) -> list[str]:
    out: list[str] = []
    inj_p: dict[int, float] = {}
    inj_q: dict[int, float] = {}
    for mg in exchanges:
        inj_p[mg.bus] = inj_p.get(mg.bus, 0.0) + mg.p_ex_kw[t]
        inj_q[mg.bus] = inj_q.get(mg.bus, 0.0) + mg.q_ex_kvar[t]
    for svc, q in zip(svcs, sched.q_svc_kvar, strict=False):
        inj_q[svc.bus] = inj_q.get(svc.bus, 0.0) + q[t]
    cap = network.shunt_q_kvar
    v = {bus: vm[t] ** 2 for bus, vm in sched.vm_pu.items()}
    flow_p: dict[int, float] = {}
    flow_q: dict[int, float] = {}
    for bus in reversed(network.bus_ids):
        p_load, q_load = float(load_kw.at[bus, t]), float(load_kvar.at[bus, t])
        c = sched.curtail_kw[bus][t] if bus in sched.curtail_kw else 0.0
        ratio = q_load / p_load if p_load > 0 else 0.0
        flow_p[bus] = (p_load - c - inj_p.get(bus, 0.0)
                       + sum(flow_p[k] for k in network.children[bus]))
        flow_q[bus] = (q_load - ratio * c - inj_q.get(bus, 0.0) - float(cap[bus]) * v[bus]
                       + sum(flow_q[k] for k in network.children[bus]))
    root = network.root_bus
    if abs(flow_p[root] - sched.p_sub_kw[t]) > power_tol:
        out.append(f"t={t}: P_sub={_fmt(sched.p_sub_kw[t])} but the bus balances give "
                   f"{_fmt(flow_p[root])}")
    if abs(flow_q[root] - sched.q_sub_kvar[t]) > power_tol:
        out.append(f"t={t}: Q_sub={_fmt(sched.q_sub_kvar[t])} but the bus balances give "
                   f"{_fmt(flow_q[root])}")
    br = network.branches
    for bus in network.bus_ids:
        if bus == root:
            continue
        label = network.branch_of[bus]
        r, x = float(br.at[label, "r_pu"]), float(br.at[label, "x_pu"])
        parent = network.parent[bus]
        v_calc = v[parent] - 2.0 * (r * flow_p[bus] + x * flow_q[bus]) / network.base_kva
        if abs(v_calc - v[bus]) > tol:
            out.append(f"bus {bus} t={t}: v={_fmt(v[bus])} but the LinDistFlow drop gives "
                       f"{_fmt(v_calc)}")
    return out


def replace_units(sched: MicrogridSchedule, kind: str, units: Sequence[Any]
                  ) -> MicrogridSchedule:
    """``sched`` with its units of ``kind`` replaced (to make broken schedules in tests)."""
    import dataclasses

    others = tuple(u for u in sched.units if u.kind != kind)
    return dataclasses.replace(sched, units=others + tuple(units))
