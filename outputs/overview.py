"""What ``gridcosim inspect FILE.h5`` prints: a trajectory file summarised.

:func:`summary_dict` collects the facts (status, slots, agents, costs, windows, AC power
flows, iterations); :func:`summary` formats them as text.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gridcosim.outputs.layout import (
    COST_IN_ATTR,
    IDS,
    ORIGIN_ATTR,
    TIME,
    TIME_ZONE_ATTR,
    attr_value,
    committed_counts,
    open_trajectory,
)
from gridcosim.outputs.reader import (
    COST_PARENT,
    _convergence,
    _kinds,
    _time_index,
)


def run_status_text(attrs: dict[str, Any]) -> str:
    """The run's status as ``inspect`` shows it, from the file's root attributes."""
    status = attrs.get("status")
    if status is None:  # layout version 1
        return "complete" if attrs.get("complete") else "INCOMPLETE (interrupted or running)"
    if status == "running":
        return ("INCOMPLETE: the writer did not close the file (still running, killed, or "
                "stopped by a write error)")
    if status == "finished":
        return "finished"
    where = attrs.get("failed_slot")
    at = f" at slot {where}" if isinstance(where, int) and where >= 0 else ""
    reason = attrs.get("status_reason")
    return f"{str(status).upper()}{at}" + (f": {reason}" if reason else "")



def realised_band(f: Any, attrs: dict[str, Any], slots: int) -> dict[str, Any] | None:
    """The realised slots' voltage range and how many slots left the scenario's band.

    ``None`` when the file has no realised voltages (older files) or none converged.
    """
    if "bus/vm_real_pu" not in f or not slots:
        return None
    vm = np.asarray(f["bus/vm_real_pu"][:slots], dtype=float)
    if not np.isfinite(vm).any():
        return None
    network = json.loads(attrs.get("scenario_json") or "{}").get("network", {})
    lo, hi = float(network.get("v_min_pu", 0.9)), float(network.get("v_max_pu", 1.1))
    outside = int(np.sum((np.nanmin(vm, axis=1) < lo - 1e-6) | (np.nanmax(vm, axis=1) > hi + 1e-6)))
    return {"vm_min_pu": float(np.nanmin(vm)), "vm_max_pu": float(np.nanmax(vm)),
            "v_min_pu": lo, "v_max_pu": hi, "slots_outside_band": outside}


def failed_power_flows(f: Any, slots: int) -> int:
    """Slots whose plan's or realised state's AC power flow failed (each slot once)."""
    failed = np.zeros(slots, dtype=bool)
    for name in ("substation/ac_converged", "substation/realised_converged",
                 "feeder/ac_converged"):
        if name in f:
            failed |= f[name][:slots, 0] == 0
    return int(failed.sum())

def _format_time(value: float, units: str, time_zone: str | None = None) -> str:
    """A slot time as the zone's local time and abbreviation (``2016-10-30 02:00 CET``)."""
    index = _time_index(np.array([value]), units, True, time_zone)
    if isinstance(index, pd.DatetimeIndex):
        return index[0].strftime("%Y-%m-%d %H:%M %Z").rstrip()
    return f"{value:g} h"


def summary_dict(path: str | Path) -> dict[str, Any]:
    """The facts of a trajectory file (JSON-serialisable but for NaN and infinities).

    See :func:`_facts` for what the costs add up.
    """
    return _facts(path)[0]


def _facts(path: str | Path) -> tuple[dict[str, Any], np.ndarray]:
    """The facts of a file and its slot times (hours).

    The total cost sums ``cost_usd`` over every kind (substation included), except the
    kinds whose group says another kind's cost includes theirs (attribute
    ``cost_included_in``: a DER's cost is part of its microgrid's) when that kind records
    ``cost_usd``. Files without the attribute use :data:`COST_PARENT`.
    """
    path = Path(path)
    with open_trajectory(path) as f:
        attrs = {k: attr_value(v) for k, v in f.attrs.items()}
        time_h = np.asarray(f[TIME][: committed_counts(f)[0]], dtype=np.float64)
        units = str(attr_value(f[TIME].attrs.get("units", "hours")))
        origin = attr_value(f[TIME].attrs.get(ORIGIN_ATTR))
        zone = attr_value(f[TIME].attrs.get(TIME_ZONE_ATTR))
        agents = {kind: int(f[kind][IDS].shape[0]) for kind in _kinds(f)}
        costs = {kind: float(np.nansum(f[kind]["cost_usd"][: len(time_h)]))
                 for kind in agents if "cost_usd" in f[kind]}
        parents = {kind: str(attr_value(f[kind].attrs.get(COST_IN_ATTR, COST_PARENT.get(kind))))
                   for kind in costs if COST_IN_ATTR in f[kind].attrs or kind in COST_PARENT}
        ac = (f["substation/ac_converged"][: len(time_h), 0]
              if "substation/ac_converged" in f else np.zeros(0))
        failed = failed_power_flows(f, len(time_h))
        realised = realised_band(f, attrs, len(time_h))
        conv = _convergence(f)
    counted = {k: v for k, v in costs.items() if parents.get(k) not in costs}
    return {
        "file": str(path), "status": attrs.get("status"), "status_text": run_status_text(attrs),
        "attrs": {k: v for k, v in attrs.items() if k != "scenario_json"},
        "slots": len(time_h), "time_units": units, "time_origin": origin,
        "time_zone": None if zone is None else str(zone),
        "first_time_h": float(time_h[0]) if len(time_h) else None,
        "agents": agents, "cost_usd": {"total": sum(counted.values()), **costs},
        "cost_included_in": parents,
        "windows": len(conv),
        "window_statuses": dict(Counter(conv["status"])) if "status" in conv else {},
        "iterations": (int(np.nansum(conv["iterations"])) if "iterations" in conv
                       and len(conv) else 0),
        "max_iterations_per_window": (int(np.nanmax(conv["iterations"]))
                                      if "iterations" in conv and len(conv) else 0),
        "powerflows_checked": int(np.isfinite(ac).sum()),
        "powerflow_failures": failed,
        "realised_voltage": realised,
    }, time_h


def summary(path: str | Path) -> str:
    """A short text description of a trajectory file (``gridcosim inspect FILE.h5``)."""
    d, time_h = _facts(path)
    attrs, units = d["attrs"], d["time_units"]
    seed = attrs.get("seed")
    lines = [
        f"file        {Path(d['file']).name}  [{d['status_text']}]",
        f"scenario    {attrs.get('scenario', '?')}  seed {seed if seed is not None else '-'}"
        f"  gridcosim {attrs.get('gridcosim_version', '?')}  created {attrs.get('created_utc')}",
    ]
    if "horizon_slots" in attrs:
        lines.append(f"run         H = {attrs['horizon_slots']}, K = {attrs.get('commit_slots')}"
                     f", noise {attrs.get('noise')}, AC cuts {bool(attrs.get('ac_cuts'))}")
    lines.append(_slots_line(time_h, units, d["time_origin"], d["time_zone"]))
    lines.append("agents      " + (", ".join(f"{k} {v}" for k, v in d["agents"].items())
                                   or "none"))
    lines.append(_cost_line(d["cost_usd"], d["cost_included_in"]))
    statuses = ", ".join(f"{s} {c}" for s, c in Counter(d["window_statuses"]).most_common())
    lines.append(f"windows     {d['windows']}" + (f"  statuses: {statuses}" if statuses else ""))
    if d["powerflows_checked"]:
        failed = d["powerflow_failures"]
        lines.append(f"AC flows    {failed} of {d['powerflows_checked']} failed" + (
            " (bus/vm_pu is NaN in those slots)" if failed else ""))
    band = d.get("realised_voltage")
    if band:
        lines.append(f"realised    |V| {band['vm_min_pu']:.4f} .. {band['vm_max_pu']:.4f} p.u.; "
                     f"{band['slots_outside_band']} slot(s) outside the band "
                     f"[{band['v_min_pu']:g}, {band['v_max_pu']:g}]")
    if d["windows"]:
        lines.append(f"iterations  total {d['iterations']}  "
                     f"(max {d['max_iterations_per_window']} per window)")
    return "\n".join(lines)


def _slots_line(time_h: np.ndarray, units: str, origin: Any, zone: str | None) -> str:
    n = len(time_h)
    if not n:
        return "slots       0"
    step = float(np.median(np.diff(time_h))) if n > 1 else None
    end = time_h[-1] + (step or 0.0)
    step_text = f", slot {step:g} h" if step is not None else ""
    if origin:
        step_text += f", hours since {origin}"
    return (f"slots       {n}  ({_format_time(time_h[0], units, zone)} -> "
            f"{_format_time(end, units, zone)}{step_text})")


def _cost_line(costs: dict[str, float], parents: dict[str, str]) -> str:
    by_kind = {k: v for k, v in costs.items() if k != "total"}
    if not by_kind:
        return "cost        no cost_usd variables"
    parts = ", ".join(f"{k} {v:.2f}" + ("" if parents.get(k) not in by_kind else
                                         f" (in {parents[k]})") for k, v in by_kind.items())
    return f"cost        total {costs['total']:.2f} USD  ({parts})"
