"""The scale case: one 24-slot window of simbench-mvlv-rural-100mg, decomposition vs monolithic.

Run from the repository root::

    python benchmarks/bench_scale.py                       # the full case (several minutes)
    python benchmarks/bench_scale.py --microgrids 4 --slots 3      # a smoke-test size
    python benchmarks/bench_scale.py --only dec1 --profile /tmp/dec1.prof        # cProfile
    python benchmarks/bench_scale.py --only dec1 dec2 --repeats 5     # medians of 5 pairs

Three runs of the scenario's first window, each in a fresh child process so that its peak
memory is its own: the decomposition with ``workers=1`` (``dec1``), with ``workers=2``
(``dec2``) and the monolithic MILP (``mono``). Each child reads the scenario and the
network first (``read s``, not part of the window's time), then times the window:

* decomposition: the controller pool (``pool s``: the microgrid models built, worker
  processes started), the master built (``master s``), the loop (``loop s``) and the unit
  schedules collected: what ``solve_scenario(..., "decomposition")`` does;
* monolithic: ``solve_scenario(..., "monolithic")`` (Pyomo build ``pool s`` column: build,
  then HiGHS through Pyomo).

Peak memory, the figure checked: the largest total proportional set size (PSS, from
``/proc/<pid>/smaps_rollup``) of the child and all its worker processes, sampled every
20 ms during the window (scenario, network, master, models, solver; pages a forked worker
shares with the coordinator are counted once, every worker is counted). Sampling costs
most of a core, so each decomposition run is made twice: its times come from a child
without the sampler, its memory from one with it (the monolithic run, one HiGHS thread
for 90 s, is one sampled child). For reference the
table also gives ``ru_maxrss`` of the child and ``RUSAGE_CHILDREN`` (the largest peak
among its workers), which count shared pages twice and only one worker. It prints a
table, the ratios decomposition / monolithic and 1 worker / 2 workers, and the issue's
targets (window <= 30 s and <= monolithic, 2 workers >= 1.6x faster, peak <= 1 GiB) met
or missed. Exits 1 if a run is not optimal or the decomposition's optimum differs from the
monolithic one by more than 1e-6 relative.

``--microgrids N`` keeps the first N microgrids and ``--slots T`` shortens the window (the
network is always the full 1,317-bus feeder); ``--profile FILE`` writes each child's
cProfile statistics to ``FILE.<run>``.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import math
import resource
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

SCENARIO = "simbench-mvlv-rural-100mg"
RUNS = {"dec1": ("decomposition", 1), "dec2": ("decomposition", 2),
        "mono": ("monolithic", 1)}
TARGET_WINDOW_S, TARGET_SPEEDUP, TARGET_PEAK_MIB = 30.0, 1.6, 1024.0
REL_TOLERANCE = 1e-6


@dataclass(frozen=True)
class RunResult:
    """One child's figures (times in s, memory in MiB)."""

    run: str
    status: str
    objective_usd: float
    iterations: int
    read_s: float
    window_s: float
    pool_s: float
    master_s: float
    loop_s: float
    peak_self_mib: float
    peak_child_mib: float
    peak_pss_mib: float


def scenario_for(name: str, microgrids: int | None, slots: int | None):  # noqa: ANN201
    """The scenario, optionally cut to its first microgrids and a shorter window."""
    from gridcosim.scenarios.loader import load_scenario, scenario_from_dict

    scenario = load_scenario(name)
    if microgrids is None and slots is None:
        return scenario
    data = scenario.model_dump(mode="json", exclude_defaults=False)
    if microgrids is not None:
        data["microgrids"] = data["microgrids"][:microgrids]
    if slots is not None:
        data["horizon"]["slots"] = slots
    return scenario_from_dict(data)


def _pss_mib(pid: int | str) -> float:
    """Proportional set size of one process (shared pages split among their users)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return float(line.split()[1]) / 1024.0
    except OSError:  # the process ended, or no /proc
        pass
    return 0.0


def _children(pid: int | str) -> list[str]:
    found: list[str] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids = (task / "children").read_text().split()
        except OSError:
            continue
        for kid in kids:
            found += [kid, *_children(kid)]
    return found


class PssSampler:
    """The largest total PSS of this process and its descendants, sampled every 20 ms.

    Unlike ``ru_maxrss`` sums, pages a forked worker shares with its parent are counted
    once, and every worker is counted; a spike shorter than the period can be missed.
    """

    def __init__(self, period_s: float = 0.02):
        self.period_s, self.peak_mib = period_s, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            total = _pss_mib("self") + sum(_pss_mib(k) for k in _children("self"))
            self.peak_mib = max(self.peak_mib, total)
            self._stop.wait(self.period_s)

    def __enter__(self) -> PssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _peaks_mib() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return own, kids


def _decomposition(scenario, network, workers: int) -> tuple[object, dict[str, float]]:  # noqa: ANN001
    from gridcosim.scenarios.series import scenario_series
    from gridcosim.simulator.decomposition.controller_pool import make_pool
    from gridcosim.simulator.decomposition.loop import Decomposition
    from gridcosim.simulator.decomposition.settings import DecompositionSettings
    from gridcosim.simulator.solve import with_unit_schedules
    from gridcosim.simulator.windows import microgrid_window, network_window

    settings = DecompositionSettings(workers=workers)
    tick = time.perf_counter()
    series = scenario_series(scenario, network)
    pool = make_pool([microgrid_window(scenario, mg, series=series)
                      for mg in scenario.microgrids], settings)
    try:
        pool_s = time.perf_counter() - tick
        dec = Decomposition(network_window(scenario, network, pool.bounds(), series=series),
                            pool, settings)
        master_s = time.perf_counter() - tick - pool_s
        solution = with_unit_schedules(dec.run(), pool)
    finally:
        pool.close()
    return solution, {"pool_s": pool_s, "master_s": master_s, "loop_s": solution.wall_s}


def run_one(run: str, args: argparse.Namespace) -> RunResult:
    """Solve the window once as ``run`` (in this process) and measure it."""
    from gridcosim.scenarios.network import network_for
    from gridcosim.simulator.solve import solve_scenario

    method, workers = RUNS[run]
    tick = time.perf_counter()
    scenario = scenario_for(args.scenario, args.microgrids, args.slots)
    network = network_for(scenario)  # cached: solve_scenario reads the same object
    read_s = time.perf_counter() - tick
    tick = time.perf_counter()
    with PssSampler() if args.sample_memory else contextlib.nullcontext() as pss:
        if method == "monolithic":
            solution = solve_scenario(scenario, "monolithic")
            phases = {"pool_s": solution.info["build_s"], "master_s": 0.0,
                      "loop_s": solution.info["solve_s"]}
        else:
            solution, phases = _decomposition(scenario, network, workers)
        window_s = time.perf_counter() - tick
    own, kids = _peaks_mib()
    return RunResult(run, str(solution.status), float(solution.objective_usd),
                     int(solution.info.get("iterations", 0)), read_s, window_s,
                     peak_self_mib=own, peak_child_mib=kids,
                     peak_pss_mib=pss.peak_mib if pss is not None else math.nan,
                     **phases)


def measured(run: str, args: argparse.Namespace) -> RunResult:
    """``run``'s times from a run without the memory sampler, its memory from one with it.

    Reading ``smaps_rollup`` walks a process's pages (about 10 ms for 700 MiB): every
    20 ms for the coordinator and both workers that is most of a core, which the timed
    window would share on 2 cores. The monolithic run (one single-threaded HiGHS solve,
    90 s) is run once, sampled, for both.
    """
    if RUNS[run][0] == "monolithic":
        return child(run, args, sample_memory=True)
    timed = child(run, args, sample_memory=False)
    memory = child(run, args, sample_memory=True)
    return replace(timed, peak_self_mib=memory.peak_self_mib,
                   peak_child_mib=memory.peak_child_mib, peak_pss_mib=memory.peak_pss_mib)


def child(run: str, args: argparse.Namespace, *, sample_memory: bool) -> RunResult:
    """``run`` in a fresh Python process (its own peak memory)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", run,
           "--scenario", args.scenario]
    if sample_memory:
        cmd.append("--sample-memory")
    for flag, value in (("--microgrids", args.microgrids), ("--slots", args.slots),
                        ("--profile", args.profile)):
        if value is not None:
            cmd += [flag, str(value)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{run} failed:\n{proc.stderr[-3000:]}")
    return RunResult(**json.loads(proc.stdout.strip().splitlines()[-1]))


def table(results: list[RunResult]) -> str:
    """The Markdown table of the runs."""
    head = ("| run | status | objective $ | iterations | read s | window s | pool/build s "
            "| master s | loop/solve s | peak RSS MiB (self + largest worker) "
            "| peak total PSS MiB |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        lines.append(f"| {r.run} | {r.status} | {r.objective_usd:.6f} | {r.iterations} "
                     f"| {r.read_s:.1f} | {r.window_s:.1f} | {r.pool_s:.1f} | {r.master_s:.1f}"
                     f" | {r.loop_s:.1f} | {r.peak_self_mib:.0f} + {r.peak_child_mib:.0f} "
                     f"| {r.peak_pss_mib:.0f} |")
    return "\n".join(lines)


def verdicts(by: dict[str, RunResult]) -> list[str]:
    """Ratios and the issue's targets, met or missed."""
    out = []
    if "dec1" in by and "mono" in by:
        ratio = by["dec1"].window_s / by["mono"].window_s
        out.append(f"decomposition (1 worker) / monolithic window time: {ratio:.2f}"
                   f" [target <= 1: {'met' if ratio <= 1 else 'MISSED'}]")
    if "dec1" in by and "dec2" in by:
        speedup = by["dec1"].window_s / by["dec2"].window_s
        met = "met" if speedup >= TARGET_SPEEDUP else "MISSED"
        out.append(f"1 worker / 2 workers window time: {speedup:.2f}"
                   f" [target >= {TARGET_SPEEDUP}: {met}]")
    for run in ("dec1", "dec2"):
        if run in by:
            w = by[run].window_s
            out.append(f"{run} window {w:.1f} s [target <= {TARGET_WINDOW_S:.0f} s: "
                       f"{'met' if w <= TARGET_WINDOW_S else 'MISSED'}]")
    for r in by.values():
        peak = r.peak_pss_mib
        out.append(f"{r.run} peak memory {peak:.0f} MiB (total PSS of the process and its "
                   f"workers) [target <= {TARGET_PEAK_MIB:.0f}: "
                   f"{'met' if peak <= TARGET_PEAK_MIB else 'MISSED'}]")
    return out


def check_optima(by: dict[str, RunResult]) -> None:
    """Exit 1 unless every run is optimal and the decompositions match the monolithic."""
    bad = [r.run for r in by.values() if r.status != "optimal"]
    if bad:
        raise SystemExit(f"not optimal: {', '.join(f'{r} ({by[r].status})' for r in bad)}")
    if "mono" in by:
        ref = by["mono"].objective_usd
        for r in by.values():
            rel = abs(r.objective_usd - ref) / abs(ref)
            print(f"{r.run}: relative gap to the monolithic optimum {rel:.1e}")
            if rel > REL_TOLERANCE:
                raise SystemExit(f"{r.run}: {r.objective_usd} vs monolithic {ref}")


def main() -> None:
    """Parse the options; run the children (or be one) and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=SCENARIO)
    parser.add_argument("--microgrids", type=int, help="keep the first N microgrids")
    parser.add_argument("--slots", type=int, help="window length (default: the scenario's)")
    parser.add_argument("--only", nargs="*", choices=sorted(RUNS), help="runs (default: all)")
    parser.add_argument("--profile", help="cProfile output file of each child (suffixed)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run each decomposition this many times, interleaved; the "
                             "verdicts use the median window (the monolithic runs once)")
    parser.add_argument("--child", choices=sorted(RUNS), help=argparse.SUPPRESS)
    parser.add_argument("--sample-memory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        profiler = cProfile.Profile() if args.profile else None
        result = profiler.runcall(run_one, args.child, args) if profiler else run_one(
            args.child, args)
        if profiler:
            profiler.dump_stats(f"{args.profile}.{args.child}")
        print(json.dumps(asdict(result)))
        return
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    chosen = [run for run in RUNS if not args.only or run in args.only]
    results = [measured(run, args) for k in range(args.repeats) for run in chosen
               if k == 0 or RUNS[run][0] != "monolithic"]  # the monolithic once
    by = {run: median_run([r for r in results if r.run == run]) for run in chosen}
    print(f"{args.scenario}: first window, measured {stamp} (started), each run in a "
          f"fresh process, {args.repeats} time(s) interleaved (medians below)\n")
    print(table(results))
    print()
    if args.repeats > 1 and {"dec1", "dec2"} <= set(chosen):
        pairs = zip([r for r in results if r.run == "dec1"],
                    [r for r in results if r.run == "dec2"], strict=True)
        print("1 worker / 2 workers, each repeat: "
              + ", ".join(f"{one.window_s / two.window_s:.2f}" for one, two in pairs))
    check_optima(by)
    print("\n".join(verdicts(by)))


def median_run(runs: list[RunResult]) -> RunResult:
    """The run with the median window time (the lower one of an even count)."""
    window = statistics.median_low([r.window_s for r in runs])
    return next(r for r in runs if r.window_s == window)


if __name__ == "__main__":
    main()
