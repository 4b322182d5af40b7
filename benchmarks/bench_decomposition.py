"""Decomposition vs the monolithic reference: wall times, iterations, branches, time split.

Run from the repository root::

    python benchmarks/bench_decomposition.py [--repeats 3] [--dec-repeats 1] [--only seed ...]

Cases: the seed (ieee123-nmg), startup_x6, stressed, small_pcc(150 kW, 100 kvar),
small_pcc(60 kW, 40 kvar), perturbed seeds 1 and 3 (default settings: price signals
and Lagrangian cuts first); some of them again with Benders cuts alone
(``price_signals=False``: unified cuts, branching), the seed also without stabilisation;
and the seed with ``workers=2``.

* monolithic wall: median of ``--repeats`` calls of ``solve_scenario(..., "monolithic")``
  after one warm-up call (Pyomo build + HiGHS through Pyomo's interface);
* decomposition wall: the same for the decomposition (median of ``--dec-repeats`` runs,
  after one warm-up decomposition of the process): controller pool and master built,
  loop run, final schedules extracted;
  ``loop s`` is the loop alone (``Solution.wall_s``);
* ms/it master | sub | overhead: sums of the iteration records' ``master_s``,
  ``subproblem_s`` and ``overhead_s`` divided by the number of iterations (with
  ``workers=2`` the subproblem time includes the round trip to the worker processes;
  ``nan`` for a case its price rounds settle before iterating, 0 iterations);
* ratio: decomposition wall / monolithic wall; rel diff: objective difference relative
  to the monolithic optimum (every run must be within 1e-6 or the script fails).

``--workers N`` runs every case with N controller processes (``--workers 1`` against
``--workers 2`` measures what the process pool costs or gains).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from gridcosim.scenarios import variants
from gridcosim.scenarios.loader import load_scenario
from gridcosim.scenarios.network import load_network
from gridcosim.scenarios.schema import Scenario
from gridcosim.simulator.decomposition.controller_pool import make_pool
from gridcosim.simulator.decomposition.loop import Decomposition
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.simulator.schedule import Solution
from gridcosim.simulator.solve import solve_scenario
from gridcosim.simulator.windows import microgrid_window, network_window


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Scenario], Scenario]
    settings: DecompositionSettings


CASES = [
    Case("seed", lambda s: s, DecompositionSettings()),
    Case("startup_x6", variants.startup_x6, DecompositionSettings()),
    Case("stressed", variants.stressed, DecompositionSettings()),
    Case("small_pcc 150", lambda s: variants.small_pcc(s, 150.0, 100.0),
         DecompositionSettings()),
    Case("small_pcc 60", variants.small_pcc, DecompositionSettings()),
    Case("perturbed 1", lambda s: variants.perturbed(s, 1), DecompositionSettings()),
    Case("perturbed 3", lambda s: variants.perturbed(s, 3), DecompositionSettings()),
    Case("seed, Benders cuts only", lambda s: s, DecompositionSettings(price_signals=False)),
    Case("startup_x6, Benders cuts only", variants.startup_x6,
         DecompositionSettings(price_signals=False)),
    Case("small_pcc 60, Benders cuts only", variants.small_pcc,
         DecompositionSettings(price_signals=False)),
    Case("perturbed 1, Benders cuts only", lambda s: variants.perturbed(s, 1),
         DecompositionSettings(price_signals=False)),
    Case("seed, Benders only, stabilisation none", lambda s: s,
         DecompositionSettings(price_signals=False, stabilisation="none")),
    Case("seed, workers=2", lambda s: s, DecompositionSettings(workers=2)),
]


@dataclass(frozen=True)
class Row:
    case: str
    mono_s: float
    dec_s: float
    loop_s: float
    iterations: int
    branches: int
    master_ms: float
    sub_ms: float
    overhead_ms: float
    status: str
    rel_diff: float


def decompose(scenario: Scenario, settings: DecompositionSettings
              ) -> tuple[Solution, Decomposition, float]:
    """``solve_scenario(..., "decomposition")`` keeping the loop (for its records)."""
    tick = time.perf_counter()
    network = load_network(scenario.network.source)
    pool = make_pool([microgrid_window(scenario, mg) for mg in scenario.microgrids], settings)
    try:
        dec = Decomposition(network_window(scenario, network, pool.bounds()), pool, settings)
        sol = dec.run()
    finally:
        pool.close()
    return sol, dec, time.perf_counter() - tick


def monolithic_wall(scenario: Scenario, repeats: int) -> tuple[Solution, float]:
    solve_scenario(scenario, "monolithic")  # warm-up
    walls, sol = [], None
    for _ in range(repeats):
        tick = time.perf_counter()
        sol = solve_scenario(scenario, "monolithic")
        walls.append(time.perf_counter() - tick)
    assert sol is not None
    if sol.status != "optimal":
        raise SystemExit(f"monolithic ended {sol.status}")
    return sol, statistics.median(walls)


def run_case(case: Case, base: Scenario, repeats: int, dec_repeats: int,
             references: dict[str, tuple[Solution, float]]) -> Row:
    scenario = case.build(base)
    key = scenario.model_dump_json()  # variant names do not carry their parameters
    if key not in references:
        references[key] = monolithic_wall(scenario, repeats)
    ref, mono_s = references[key]
    runs = [decompose(scenario, case.settings) for _ in range(dec_repeats)]
    walls = [w for _, _, w in runs]
    sol, dec, _ = runs[walls.index(statistics.median_low(walls))]
    rel = (sol.objective_usd - ref.objective_usd) / abs(ref.objective_usd)
    if not abs(rel) <= 1e-6:
        raise SystemExit(f"{case.name}: decomposition {sol.status} {sol.objective_usd} "
                         f"vs monolithic {ref.objective_usd}")
    frame = dec.records_frame()
    n = len(frame)
    per_it = ([1e3 * frame[c].sum() / n for c in ("master_s", "subproblem_s", "overhead_s")]
              if n else [math.nan] * 3)  # 0 iterations: settled by the price rounds
    return Row(case.name, mono_s, statistics.median(walls), sol.wall_s,
               sol.info["iterations"], sol.info["cuts"]["branch"], *per_it, sol.status, rel)


def markdown(rows: list[Row]) -> str:
    head = ("| case | mono s | dec s | loop s | ratio | iterations | branches "
            "| ms/it master | ms/it sub | ms/it overhead | status | rel diff |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        lines.append(
            f"| {r.case} | {r.mono_s:.3f} | {r.dec_s:.2f} | {r.loop_s:.2f} "
            f"| {r.dec_s / r.mono_s:.1f} | {r.iterations} | {r.branches} "
            f"| {r.master_ms:.2f} | {r.sub_ms:.2f} | {r.overhead_ms:.2f} | {r.status} "
            f"| {r.rel_diff:.1e} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="ieee123-nmg")
    parser.add_argument("--repeats", type=int, default=3, help="monolithic runs (median)")
    parser.add_argument("--dec-repeats", type=int, default=1,
                        help="decomposition runs (median)")
    parser.add_argument("--only", nargs="*", help="case names to run (default: all)")
    parser.add_argument("--workers", type=int, default=None,
                        help="run every case with this many controller processes")
    args = parser.parse_args()
    base = load_scenario(args.scenario)
    solve_scenario(base, "decomposition")  # one-time import and compile warm-up of the process
    references: dict[str, tuple[Solution, float]] = {}
    rows = []
    for case in CASES:
        if args.only and case.name not in args.only:
            continue
        if args.workers is not None:
            case = replace(case, settings=replace(case.settings, workers=args.workers))
        rows.append(run_case(case, base, args.repeats, args.dec_repeats, references))
        print(f"done: {case.name}", file=sys.stderr, flush=True)
    print(f"scenario {args.scenario}: monolithic median of {args.repeats} after a warm-up; "
          f"decomposition median of {args.dec_repeats} (after one warm-up decomposition)\n")
    print(markdown(rows))


if __name__ == "__main__":
    main()
