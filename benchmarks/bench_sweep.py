"""A parameter sweep's overhead over its runs, and its speed-up on a local pool.

Run from the repository root::

    python benchmarks/bench_sweep.py [--scenario ieee123-nmg] [--runs 8] [--horizon 6]
        [--commit 1] [--noise 0.05] [--workers 2] [--repeats 1] [--dask] [--no-warm-up]

The runs are ``--runs`` seeds of one scenario (``run.seed`` 0..N-1, noise ``--noise``), by
default eight ``gridcosim run ieee123-nmg`` runs (6 hourly slots, H = 6, K = 1). Side by
side, each in a fresh temporary folder, medians over ``--repeats``:

* the runs themselves: ``run_scenario`` called once per run, one after the other;
* the sweep in this process (``workers=1``): its overhead over the runs themselves,
  ``(sweep - runs) / runs``, against the sum of its own runs' wall times (measured in the
  same sweep, so independent of the machine's drift) and against the runs one by one
  (validation, planning, reading each file's figures, writing the summary; target <= 5 %);
* the sweep on a local pool of ``--workers`` processes: its speed-up over the sweep in
  this process (target >= 1.7x with 2 workers on 2 cores);
* with ``--dask``, the sweep on a dask ``LocalCluster`` of ``--workers`` processes (the
  cluster's start-up not counted).

One warm-up run first (imports, first model builds), unless ``--no-warm-up``.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gridcosim.scenarios.loader import load_scenario
from gridcosim.simulator.runner import run_scenario
from gridcosim.simulator.sweep import SWEEP_SETTINGS, run_sweep
from gridcosim.simulator.sweep_summary import Column


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="ieee123-nmg")
    p.add_argument("--runs", type=int, default=8)
    p.add_argument("--horizon", type=int, default=6)
    p.add_argument("--commit", type=int, default=1)
    p.add_argument("--noise", type=float, default=0.05)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--dask", action="store_true", help="also on a dask LocalCluster")
    p.add_argument("--no-warm-up", action="store_true")
    return p.parse_args(argv)


def grid(args: argparse.Namespace) -> dict[str, list[Any]]:
    return {"run.seed": list(range(args.runs)), "run.noise": [args.noise],
            "run.horizon": [args.horizon], "run.commit": [args.commit]}


def one_by_one(args: argparse.Namespace, folder: Path) -> tuple[float, float]:
    """The runs themselves: wall time, and the sum of the runs' own times (the same)."""
    scenario = load_scenario(args.scenario)
    tick = time.perf_counter()
    for seed in range(args.runs):
        settings = dataclasses.replace(SWEEP_SETTINGS, horizon=args.horizon,
                                       commit=args.commit, noise=args.noise, seed=seed)
        run_scenario(scenario, folder / f"run{seed}.h5", settings, progress=False)
    wall = time.perf_counter() - tick
    return wall, wall


def sweep(args: argparse.Namespace, folder: Path, **engine: Any) -> tuple[float, float]:
    """A sweep's wall time and the sum of its runs' wall times."""
    tick = time.perf_counter()
    result = run_sweep(load_scenario(args.scenario), grid(args), folder, progress=False,
                       **engine)
    wall = time.perf_counter() - tick
    assert (result.table[Column.STATUS] == "finished").all(), result.table[Column.REASON]
    return wall, float(result.table[Column.WALL_S].sum())


def median_of(args: argparse.Namespace, case: Callable[[Path], tuple[float, float]]
              ) -> tuple[float, float]:
    walls, sums = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            wall, runs = case(Path(tmp))
        walls.append(wall)
        sums.append(runs)
    return statistics.median(walls), statistics.median(sums)


def dask_case(args: argparse.Namespace) -> Callable[[Path], tuple[float, float]]:
    from distributed import Client, LocalCluster

    def case(folder: Path) -> tuple[float, float]:
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            client.run(lambda: __import__("gridcosim.simulator.sweep_run"))  # warm workers
            return sweep(args, folder, client=client)
    return case


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if not args.no_warm_up:
        with tempfile.TemporaryDirectory() as tmp:
            one_by_one(argparse.Namespace(**{**vars(args), "runs": 1}), Path(tmp))
    cases: dict[str, tuple[int, Callable[[Path], tuple[float, float]]]] = {
        "runs one by one (run_scenario)": (1, lambda d: one_by_one(args, d)),
        "sweep, in process": (1, lambda d: sweep(args, d)),
        "sweep, local pool": (args.workers, lambda d: sweep(args, d, workers=args.workers))}
    if args.dask:
        cases["sweep, dask LocalCluster"] = (args.workers, dask_case(args))
    results = {name: (workers, *median_of(args, case))
               for name, (workers, case) in cases.items()}
    report(args, results)


def report(args: argparse.Namespace, results: dict[str, tuple[int, float, float]]) -> None:
    runs_s = results["runs one by one (run_scenario)"][1]
    in_process = results["sweep, in process"][1]
    print(f"{args.scenario}: {args.runs} runs (H = {args.horizon}, K = {args.commit}, noise "
          f"{args.noise:g}), medians of {args.repeats}")
    print("| case | workers | wall s | sum of run walls s | overhead vs its runs | "
          "overhead vs one by one | speed-up vs in process |")
    print("|---|---|---|---|---|---|---|")
    for name, (workers, wall, runs) in results.items():
        own = f"{100 * (wall - runs) / runs:+.1f} %" if workers == 1 else "-"
        direct = f"{100 * (wall - runs_s) / runs_s:+.1f} %" if workers == 1 else "-"
        print(f"| {name} | {workers} | {wall:.2f} | {runs:.2f} | {own} | {direct} | "
              f"{in_process / wall:.2f}x |")


if __name__ == "__main__":
    main()
