"""``gridcosim sweep``: a parameter sweep from the command line (:mod:`.sweep`).

    gridcosim sweep SCENARIO --param PATH=V1,V2,... [--param ...] [--seeds N] --out DIR
        [--workers N | --scheduler ADDRESS] [--force] [--json] [--no-progress]

Every variant is validated before anything runs (a bad path or value is exit code 2,
naming the parameter). The exit code is the worst run's (3 if one failed, 4 if one is
degraded, 130 if the sweep was interrupted); ``--json`` prints one JSON document with the
summary's rows. Base run settings are ``gridcosim run``'s defaults (a 60 s window time
limit, :data:`~gridcosim.simulator.sweep.SWEEP_SETTINGS`); change any of them with a
one-value ``--param run.<option>=VALUE``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from gridcosim.scenarios.errors import InputError

#: Most seeds per grid point.
MAX_SEEDS = 100_000


def add_sweep_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``sweep`` subcommand to the ``gridcosim`` parser."""
    from gridcosim.simulator.cli import MAX_WORKERS, _number

    p = sub.add_parser("sweep", help="run a grid of scenario variants (parameter sweep)",
                       description="Run every combination of the --param values (times "
                       "--seeds); one HDF5 trajectory per run and summary.parquet / "
                       "summary.csv in DIR. Re-running skips the runs already finished.")
    p.add_argument("scenario", help="built-in scenario name or path to a TOML file")
    p.add_argument("--param", action="append", default=[], metavar="PATH=V1,V2,...",
                   help="a scenario field by dotted path (network.load_scale, "
                   "microgrids.0.storage.0.e_max_kwh, microgrids.mg7.pcc_p_max_kw) or a run "
                   "option (run.seed, run.noise, run.horizon, run.commit, run.slots, "
                   "run.ac_cuts, run.price_signals, run.max_iterations, run.time_limit_s, "
                   "...) and its values; repeat for a grid")
    p.add_argument("--seeds", type=_number(int, 1, MAX_SEEDS), default=1,
                   help="runs per grid point, seeds 0..N-1")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder of the trajectories and the summary (created if missing)")
    p.add_argument("--workers", type=_number(int, 1, MAX_WORKERS), default=1,
                   help="local processes (default 1: in this process)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on a dask.distributed cluster (tcp://host:8786); its workers "
                   "need gridcosim and DIR at the same path")
    p.add_argument("--force", action="store_true", help="redo every run, replacing its file")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.add_argument("--no-progress", action="store_true")


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run the sweep ``args`` describes; print its summary; return the exit code."""
    from gridcosim.scenarios import load_scenario
    from gridcosim.simulator.sweep import run_sweep

    params = _params(args.param)
    scenario = load_scenario(args.scenario)
    try:
        result = run_sweep(scenario, params, args.out, seeds=args.seeds,
                           workers=args.workers, scheduler=args.scheduler, force=args.force,
                           progress=not (args.no_progress or args.json))
    except KeyboardInterrupt:
        if args.json:
            _print_interrupted(args.out)
        raise
    if args.json:
        print(json.dumps(_document(result)))
    else:
        print(_text(result))
    return int(result.exit_code)


def _params(texts: list[str]) -> dict[str, list[str]]:
    from gridcosim.simulator.sweep_grid import split_param

    params: dict[str, list[str]] = {}
    for text in texts:
        path, values = split_param(text)
        if path in params:
            raise InputError(f"--param {path}: given more than once")
        params[path] = values
    return params


def _records(table: Any) -> list[dict[str, Any]]:
    """The table's rows as JSON values (NaN as null)."""
    return json.loads(table.to_json(orient="records", double_precision=15))


def _document(result: Any) -> dict[str, Any]:
    from gridcosim.simulator.sweep_summary import Column, RunAction

    table = result.table
    failed = int((table[Column.STATUS] != "finished").sum()) if len(table) else 0
    return {"exit_code": int(result.exit_code), "dir": str(result.out_dir),
            "summary": str(result.parquet), "csv": str(result.csv), "engine": str(result.engine),
            "runs": len(table), **{str(a): result.count(a) for a in RunAction},
            "not_finished": failed, "rows": _records(table)}


def _print_interrupted(out: str) -> None:
    from pathlib import Path

    from gridcosim.simulator.status import ExitCode
    from gridcosim.simulator.sweep_summary import read_summary

    folder = Path(out).resolve()
    table = read_summary(folder)
    print(json.dumps({"exit_code": int(ExitCode.INTERRUPTED), "interrupted": True,
                      "dir": str(folder), "rows": [] if table is None else _records(table)}))


def _text(result: Any) -> str:
    from gridcosim.simulator.sweep_summary import Column, RunAction

    table = result.table
    params = [c for c in table.columns if c.startswith("param.")]
    lines = [f"{'run':>4}  {'status':9} {'cost_usd':>12}  {'file':28} parameters"]
    for row in table.to_dict(orient="records"):
        values = " ".join(f"{c.removeprefix('param.')}={row[c]}" for c in params)
        lines.append(f"{row[Column.RUN]:>4}  {row[Column.STATUS]:9} "
                     f"{row.get(Column.COST_USD, float('nan')):>12.2f}  {row[Column.FILE]:28} "
                     f"{values} seed={row[Column.SEED]}"
                     + (f"  ({row[Column.REASON]})" if row.get(Column.REASON) else ""))
    counts = ", ".join(f"{result.count(a)} {a}" for a in RunAction)
    lines.append(f"{len(table)} runs ({counts}) on {result.engine}; summary: "
                 f"{result.parquet} and {result.csv.name}")
    return "\n".join(lines)
