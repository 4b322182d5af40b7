"""A sweep's summary table: one row per run, read from its trajectory file.

Every figure of a row comes from the run's HDF5 file (:func:`trajectory_facts`), so a run
done earlier and reused gives the same row as when it ran. The costs, payments, energies
and counts are those of finished runs; a run that did not finish has its status, reason
and the slots it recorded, and NaN for the rest (its partial figures are not a run's).
The table is written as Parquet and CSV (:func:`write_summary`), each through a temporary
file renamed over the old one.
"""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gridcosim.outputs.layout import (
    CONVERGENCE,
    KINDS_ATTR,
    attr_value,
    committed_counts,
    open_trajectory,
)
from gridcosim.outputs.overview import summary_dict
from gridcosim.simulator.status import ExitCode, RunStatus, WindowStatus
from gridcosim.simulator.sweep_grid import PARAM_COLUMN

SUMMARY_STEM = "summary"
#: A feeder limit violation above this (p.u.) counts (market runs).
VIOLATION_TOL_PU = 1e-6


class RunAction(StrEnum):
    """What the sweep did for a run."""

    RAN = "ran"
    RESUMED = "resumed"  # continued a stopped run's file from its last complete window
    REUSED = "reused"  # its finished trajectory was already there: nothing ran
    NOT_RUN = "not_run"  # the sweep was stopped before the run started


class Column(StrEnum):
    """The fixed columns of the summary table (then ``param.<path>``, then the figures)."""

    RUN = "run"
    FILE = "file"
    KEY = "key"
    SEED = "seed"
    STATUS = "status"
    REASON = "reason"
    EXIT_CODE = "exit_code"
    ACTION = "action"
    SLOTS = "slots"
    WINDOWS = "windows"
    WINDOWS_NOT_OPTIMAL = "windows_not_optimal"
    POWERFLOW_FAILURES = "powerflow_failures"
    VIOLATION_SLOTS = "violation_slots"
    ITERATIONS = "iterations"
    CUTS = "cuts"
    COST_USD = "cost_usd"
    ENERGY_SERVED_KWH = "energy_served_kwh"
    ENERGY_CURTAILED_KWH = "energy_curtailed_kwh"
    RENEWABLE_CURTAILED_KWH = "renewable_curtailed_kwh"
    STORAGE_THROUGHPUT_KWH = "storage_throughput_kwh"
    WALL_S = "wall_s"


#: Columns that depend on the machine or on what the sweep did, not on the run's results.
NONDETERMINISTIC = frozenset({Column.ACTION, Column.WALL_S})


def trajectory_facts(path: Path) -> dict[str, Any]:
    """The figures of a trajectory file: counts, costs and payments, energies.

    Costs and payments: ``cost_usd`` (the total ``gridcosim inspect`` reports) and, per
    entity kind, every ``*_usd`` variable summed over the run (``microgrid.cost_usd``,
    ``microgrid.settlement_usd``, ``substation.cost_usd``, ...). Energies in kWh: served
    to the customers, curtailed (bus loads, from the substation's bill, and curtailable
    loads), renewable output curtailed, storage throughput (charge plus discharge).
    """
    facts = summary_dict(path)
    with open_trajectory(path) as f:
        slots, windows, _ = committed_counts(f)
        dt_h = float(attr_value(f.attrs.get("slot_hours", 1.0)))
        scenario = json.loads(str(attr_value(f.attrs.get("scenario_json", ""))) or "{}")
        sums = _sums(f, slots, dt_h)
        cuts = _cuts(f, windows)
        feeder = _feeder_violations(f, slots)
    band = facts.get("realised_voltage") or {}
    optimal = facts["window_statuses"].get(WindowStatus.OPTIMAL, 0)
    curtail_usd_per_kwh = float(scenario.get("curtailment_cost_usd_per_mwh", 0.0)) / 1000.0
    return {Column.SLOTS: facts["slots"], Column.WINDOWS: facts["windows"],
            Column.WINDOWS_NOT_OPTIMAL: facts["windows"] - optimal,
            Column.POWERFLOW_FAILURES: facts["powerflow_failures"],
            Column.VIOLATION_SLOTS: band.get("slots_outside_band", feeder),
            Column.ITERATIONS: facts["iterations"], Column.CUTS: sum(cuts.values()), **cuts,
            Column.COST_USD: facts["cost_usd"]["total"],
            **_energies(sums, curtail_usd_per_kwh, dt_h),
            **{k: v for k, v in sums.items() if k.endswith("_usd")}}


#: Derived sums of :func:`_sums` (not variables of the file; no ``_usd`` suffix).
_ABS_STORAGE, _IMPORT_BILL = "storage.abs_p_kw", "substation.import_bill"
_SERVED, _SPILLED = "customers.p_kw", "available_unused.p_kw"


def _sums(f: Any, slots: int, dt_h: float) -> dict[str, float]:
    """``kind.variable`` -> the variable summed over slots and entities (NaN skipped).

    Also the derived sums: customers' consumption (every ``customer`` or ``*_customer``
    kind), output available but not used (every kind with ``available_kw`` and ``p_kw``),
    storage throughput and the substation's import bill.
    """
    out: dict[str, float] = {_SERVED: 0.0, _SPILLED: 0.0}
    for kind in (str(k) for k in attr_value(f.attrs.get(KINDS_ATTR, []))):
        for name, ds in f[kind].items():
            if getattr(ds, "ndim", 0) == 2:
                out[f"{kind}.{name}"] = float(np.nansum(ds[:slots]))
        if kind == "customer" or kind.endswith("_customer"):
            out[_SERVED] += out.get(f"{kind}.p_kw", 0.0)
        if f"{kind}.available_kw" in out and f"{kind}.p_kw" in out:
            out[_SPILLED] += out[f"{kind}.available_kw"] - out[f"{kind}.p_kw"]
    if "storage/p_kw" in f:
        out[_ABS_STORAGE] = float(np.nansum(np.abs(f["storage/p_kw"][:slots])))
    if "substation/p_kw" in f and "substation/price_usd_per_kwh" in f:
        bill = f["substation/p_kw"][:slots, 0] * f["substation/price_usd_per_kwh"][:slots, 0]
        out[_IMPORT_BILL] = float(np.nansum(bill)) * dt_h
    return out


def _energies(sums: dict[str, float], curtail_usd_per_kwh: float, dt_h: float
              ) -> dict[str, float]:
    """Served, curtailed, spilled and stored energy (kWh) from the summed variables.

    The bus loads' curtailment is no variable of the file: the substation's bill is the
    import at its price plus the curtailment at the curtailment cost, so the curtailment is
    the bill's remainder divided by that cost.
    """
    bus = 0.0
    if _IMPORT_BILL in sums and curtail_usd_per_kwh > 0:
        rest = sums["substation.cost_usd"] - sums[_IMPORT_BILL]
        bus = rest / curtail_usd_per_kwh if rest > 1e-6 else 0.0
    local = sums.get("curtailable_load.curtailed_kw", 0.0) * dt_h
    return {Column.ENERGY_SERVED_KWH: sums[_SERVED] * dt_h,
            Column.ENERGY_CURTAILED_KWH: bus + local,
            Column.RENEWABLE_CURTAILED_KWH: sums[_SPILLED] * dt_h,
            Column.STORAGE_THROUGHPUT_KWH: sums.get(_ABS_STORAGE, 0.0) * dt_h}


def _cuts(f: Any, windows: int) -> dict[str, int]:
    """``cuts.<family>``: the cuts of every window, per family."""
    if CONVERGENCE not in f:
        return {}
    group = f[CONVERGENCE]
    return {f"cuts.{name.removeprefix('cuts_')}": int(np.sum(group[name][:windows]))
            for name in sorted(group) if name.startswith("cuts_")}


def _feeder_violations(f: Any, slots: int) -> int:
    """Slots of a market run whose adopted clearing violates a feeder limit."""
    if "feeder/max_violation_pu" not in f:
        return 0
    return int(np.sum(f["feeder/max_violation_pu"][:slots] > VIOLATION_TOL_PU))


def outcome_figures(path: Path | None, status: RunStatus) -> dict[str, Any]:
    """The row's figures: all of them for a finished run, the recorded slots otherwise."""
    if path is None or not path.is_file():
        return {}
    try:
        facts = trajectory_facts(path)
    except (OSError, KeyError, ValueError):
        return {}
    if status is RunStatus.FINISHED:
        return facts
    return {Column.SLOTS: facts[Column.SLOTS], Column.WINDOWS: facts[Column.WINDOWS]}


def exit_code_of(status: RunStatus, figures: dict[str, Any]) -> ExitCode:
    """The exit code ``gridcosim run`` would give this run."""
    if status is RunStatus.INTERRUPTED:
        return ExitCode.INTERRUPTED
    if status is not RunStatus.FINISHED:
        return ExitCode.FAILED
    degraded = figures.get(Column.WINDOWS_NOT_OPTIMAL) or figures.get(Column.POWERFLOW_FAILURES)
    return ExitCode.DEGRADED if degraded else ExitCode.OK


def summary_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The rows in run order, the fixed columns first, then parameters, then the rest."""
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=[str(c) for c in Column])
    table = table.sort_values(Column.RUN, kind="stable").reset_index(drop=True)
    fixed = [str(c) for c in Column if c in table.columns]
    params = [c for c in table.columns if str(c).startswith(PARAM_COLUMN)]
    rest = sorted(c for c in table.columns if c not in fixed and c not in params)
    head = fixed[:4]  # run, file, key, seed
    return table[head + params + fixed[4:] + rest]


def write_summary(table: pd.DataFrame, out_dir: Path) -> tuple[Path, Path]:
    """Write ``summary.parquet`` and ``summary.csv`` in ``out_dir``; return their paths."""
    parquet, csv = out_dir / f"{SUMMARY_STEM}.parquet", out_dir / f"{SUMMARY_STEM}.csv"
    _replace(parquet, lambda tmp: _for_parquet(table).to_parquet(tmp, index=False))
    _replace(csv, lambda tmp: table.to_csv(tmp, index=False))
    return parquet, csv


def _for_parquet(table: pd.DataFrame) -> pd.DataFrame:
    """Lists and tables as JSON text, so that every column has one Arrow type."""
    out = table.copy()
    for column in out.columns:
        if out[column].map(lambda v: isinstance(v, list | dict)).any():
            out[column] = out[column].map(json.dumps)
    return out


def _replace(path: Path, write: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def read_summary(out_dir: Path) -> pd.DataFrame | None:
    """The summary an earlier sweep wrote in ``out_dir`` (``None``: none or unreadable)."""
    path = out_dir / f"{SUMMARY_STEM}.parquet"
    try:
        return pd.read_parquet(path) if path.is_file() else None
    except (OSError, ValueError):
        return None
