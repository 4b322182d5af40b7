"""Readable text tables of a solved window (the CLI's default output).

They read the solution's JSON form (:meth:`Solution.to_json_dict`), so this module needs
no solver code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

#: Schedule fields of a microgrid in the JSON form, and their row labels.
_UNIT_ROWS = (("generators", "DG {} p_kw"), ("renewables", "RE {} p_kw"),
              ("storage", "ESS {} p_kw (dis+)"))


def microgrid_frame(microgrids: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per microgrid unit and slot quantity: units' output and the exchange (kW)."""
    rows = {}
    for name, mg in microgrids.items():
        for field, label in _UNIT_ROWS:
            for unit in mg.get(field, ()):
                rows[(name, label.format(unit["name"]))] = unit["p_kw"]
        rows[(name, "exchange p_kw (export+)")] = mg["p_ex_kw"]
        rows[(name, "exchange q_kvar")] = mg["q_ex_kvar"]
    frame = pd.DataFrame(rows).T
    frame.columns = [f"t{t + 1}" for t in range(frame.shape[1])]
    return frame.round(2)


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
        vmin = min(min(v) for v in net["vm_pu"].values())
        lines.append(f"network cost {net['cost_usd']:.4f} $  min LinDistFlow voltage "
                     f"{vmin:.4f} p.u.")
    if solution.get("microgrids"):
        lines.append(microgrid_frame(solution["microgrids"]).to_string())
    return "\n".join(lines)


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)
