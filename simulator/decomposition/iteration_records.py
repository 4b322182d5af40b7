"""Iteration records of the decomposition, one per master solve, and their DataFrame."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import pandas as pd


class ReplyKind(StrEnum):
    """What a controller's answer was."""

    UNIFIED = "unified"
    BRANCH = "branch"
    RESTORATION = "restoration"
    ACCEPT = "accept"
    INFEASIBLE = "infeasible"


@dataclass(frozen=True)
class McReply:
    """What one microgrid returned in one iteration (as seen in the record)."""

    kind: ReplyKind
    f_d: float
    f_f: float | None


@dataclass(frozen=True)
class IterationRecord:
    """One iteration of the loop."""

    iteration: int
    lower_bound: float
    upper_bound: float
    gap: float
    replies: dict[str, McReply]
    cuts: dict[str, int]
    master_s: float
    subproblem_s: float
    overhead_s: float


def records_frame(records: Sequence[IterationRecord]) -> pd.DataFrame:
    """Flatten records: bounds, timings, cumulative cuts and per-microgrid F_D, F_F, reply."""
    rows = []
    for r in records:
        row = {"iteration": r.iteration, "lower_bound": r.lower_bound,
               "upper_bound": r.upper_bound, "gap": r.gap, "master_s": r.master_s,
               "subproblem_s": r.subproblem_s, "overhead_s": r.overhead_s}
        row.update({f"cuts_{k}": v for k, v in r.cuts.items()})
        for mg, reply in r.replies.items():
            row[f"{mg}.reply"] = str(reply.kind)
            row[f"{mg}.f_d"] = reply.f_d
            row[f"{mg}.f_f"] = reply.f_f
        rows.append(row)
    return pd.DataFrame(rows)
