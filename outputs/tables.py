"""Readable text tables of a solved window (the CLI's default output).

They read the solution's JSON form (:meth:`Solution.to_json_dict`), so this module needs
no solver code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd


def microgrid_frame(microgrids: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per microgrid unit and slot quantity: units' output and the exchange (kW).

    Units are the entries of the microgrid's unit lists (any field whose items carry a
    ``kind``), so a new DER kind shows up without an edit here; ``p_kw`` is the unit's
    injection into the microgrid (a battery discharging, a load reducing: positive).
    """
    rows = {}
    for name, mg in microgrids.items():
        for unit in _units(mg):
            rows[(name, f"{unit['kind']} {unit['name']} p_kw")] = unit["p_kw"]
        rows[(name, "exchange p_kw (export+)")] = mg["p_ex_kw"]
        rows[(name, "exchange q_kvar")] = mg["q_ex_kvar"]
    frame = pd.DataFrame(rows).T
    frame.columns = [f"t{t + 1}" for t in range(frame.shape[1])]
    return frame.round(2)


def _units(mg: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [u for value in mg.values() if isinstance(value, list)
            for u in value if isinstance(u, Mapping) and "kind" in u]


def solution_table(scenario: str, solution: Mapping[str, Any]) -> str:
    """A header with the status and cost, then the schedule table."""
    lines = [f"scenario {scenario}  method {solution['method']}  status {solution['status']}",
             f"objective {_num(solution['objective_usd'], '.6f')} $  "
             f"wall {solution['wall_s']:.3f} s"]
    if "iterations" in solution:
        cuts = ", ".join(f"{k} {v}" for k, v in solution["cuts"].items())
        lines.append(f"iterations {solution['iterations']}  gap "
                     f"{_num(solution['gap'], '.2e')}  cuts: {cuts}")
    net = solution.get("network")
    if net is not None:
        lines.append("substation p_kw: " + " ".join(f"{p:9.2f}" for p in net["p_sub_kw"]))
        lowest = min(net["vm_pu"], key=lambda n: min(net["vm_pu"][n]))
        where = "" if "." in str(lowest) else "bus "
        lines.append(f"network cost {net['cost_usd']:.4f} $  lowest planned (linearised) "
                     f"voltage {min(net['vm_pu'][lowest]):.4f} p.u. at {where}{lowest}")
    lines.extend(_ac_lines(solution.get("ac")))
    if solution.get("microgrids"):
        lines.append(microgrid_frame(solution["microgrids"]).to_string())
    return "\n".join(lines)


def _ac_lines(ac: Mapping[str, Any] | None) -> list[str]:
    """The AC verdict of the reported schedule (``--ac``): feasible, violation, voltages."""
    final = (ac or {}).get("final")
    if not final:
        return []
    slots = final["slots"]
    vm = [s["vm_min_pu"] for s in slots if s["vm_min_pu"] is not None]
    verdict = "AC-feasible" if final["feasible"] else "NOT AC-feasible"
    return [f"AC check: {verdict} (sum of limit excesses over slots and buses "
            f"{_num(final['violation_pu'], '.4g')} p.u., {final['power_flows_failed']} "
            f"power flows failed); lowest AC voltage {_num(min(vm) if vm else None, '.4f')} "
            f"p.u."]


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def market_day_table(scenario: str, day: Mapping[str, Any]) -> str:
    """A market day's solve: status, cost against the centralised optimum, the supply."""
    lines = [f"scenario {scenario}  method {day['method']}  status {day['status']}",
             f"cost {_num(day['cost_usd'], '.6f')} $  centralised LinDist3Flow optimum "
             f"{_num(day['centralised_cost_usd'], '.6f')} $  relative difference "
             f"{_num(day['relative_difference'], '.2e')}  wall {day['wall_s']:.3f} s",
             f"clearings {day['iterations']}  pricing rounds {day['rounds']}  DSO cuts "
             f"{day['cuts']}  largest AC violation {_num(day['max_violation_pu'], '.2e')} p.u."]
    supply = pd.DataFrame(day["supply_kw"])
    supply.insert(0, "demand_kw", day["demand_kw"])
    supply.index.name = "slot"
    lines.append(supply.round(3).to_string())
    return "\n".join(lines)
