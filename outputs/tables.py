"""Readable text tables of a solved window (the CLI's default output)."""

from __future__ import annotations

import pandas as pd

from gridcosim.simulator.schedule import Solution


def microgrid_frame(solution: Solution) -> pd.DataFrame:
    """One row per microgrid unit and slot quantity: DG, renewable, storage, exchange (kW)."""
    rows = {}
    for mg in solution.microgrids:
        for g in mg.generators:
            rows[(mg.name, f"DG {g.name} p_kw")] = g.p_kw
        for r in mg.renewables:
            rows[(mg.name, f"RE {r.name} p_kw")] = r.p_kw
        for s in mg.storage:
            rows[(mg.name, f"ESS {s.name} p_kw (dis+)")] = s.p_kw
        rows[(mg.name, "exchange p_kw (export+)")] = mg.p_ex_kw
        rows[(mg.name, "exchange q_kvar")] = mg.q_ex_kvar
    frame = pd.DataFrame(rows).T
    frame.columns = [f"t{t + 1}" for t in range(frame.shape[1])]
    return frame.round(2)


def solution_table(scenario: str, solution: Solution) -> str:
    """A header with the status and cost, then the schedule table."""
    info = solution.info
    lines = [f"scenario {scenario}  method {solution.method}  status {solution.status}",
             f"objective {solution.objective_usd:.6f} $  wall {solution.wall_s:.3f} s"]
    if "iterations" in info:
        cuts = ", ".join(f"{k} {v}" for k, v in info["cuts"].items())
        lines.append(f"iterations {info['iterations']}  gap {info['gap']:.2e}  cuts: {cuts}")
    if solution.network is not None:
        net = solution.network
        lines.append("substation p_kw: " + " ".join(f"{p:9.2f}" for p in net.p_sub_kw))
        vmin = min(min(v) for v in net.vm_pu.values())
        lines.append(f"network cost {net.cost_usd:.4f} $  min LinDistFlow voltage {vmin:.4f} p.u.")
    if solution.microgrids:
        lines.append(microgrid_frame(solution).to_string())
    return "\n".join(lines)
