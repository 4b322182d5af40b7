"""Three-phase decomposition with per-phase AC cuts against the monolithic solve.

Run from the repository root::

    python benchmarks/bench_phase_ac_cuts.py [--scenarios ieee123-nmg-3ph ...] [--repeats 3]

For each scenario (default: the 6-slot ``ieee123-nmg-3ph`` and ``ieee123-nmg-3ph-stressed``)
it times the monolithic LinDist3Flow solve, the decomposition, and the decomposition with
per-phase AC feasibility cuts (OpenDSS power flows, slopes by forward differences), and
prints them side by side with their ratio to the monolithic solve, the iterations, AC
cuts, power flows, and whether the final schedule is AC-feasible on every phase. Wall
times are medians over ``--repeats`` (after one warm-up of each).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from gridcosim.scenarios.loader import load_scenario
from gridcosim.simulator.solve import solve_scenario


def timed(run: Callable[[], Any], repeats: int, warm_up: bool = True) -> tuple[Any, float]:
    """The last result of ``run`` and its median wall time over ``repeats`` (after a warm-up)."""
    if warm_up:
        run()
    walls, result = [], None
    for _ in range(repeats):
        tick = time.perf_counter()
        result = run()
        walls.append(time.perf_counter() - tick)
    return result, statistics.median(walls)


def row(name: str, label: str, sol: Any, wall: float, mono_s: float) -> str:
    """One table row."""
    ac = sol.info.get("ac") or {}
    final = ac.get("final") or {}
    feasible = final.get("feasible", "-")
    return (f"| {name} | {label} | {wall:.2f} | {wall / mono_s:.1f} | {sol.status} | "
            f"{sol.objective_usd:.3f} | {sol.info.get('iterations', '-')} | "
            f"{ac.get('cuts', '-')} | {ac.get('power_flows', '-')} | {feasible} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+",
                        default=["ieee123-nmg-3ph", "ieee123-nmg-3ph-stressed"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-warm-up", dest="warm_up", action="store_false",
                        help="skip the warm-up solve (a quick check, not a measurement)")
    args = parser.parse_args(argv)
    print("| scenario | method | wall s | × mono | status | cost $ | iterations | AC cuts "
          "| power flows | AC-feasible per phase |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.scenarios:
        scenario = load_scenario(name)
        mono, mono_s = timed(lambda s=scenario: solve_scenario(s, "monolithic", ac=True),
                             args.repeats, args.warm_up)
        print(row(name, "monolithic (+ AC check)", mono, mono_s, mono_s))
        for label, ac in (("decomposition", False), ("decomposition + AC cuts", True)):
            sol, wall = timed(lambda s=scenario, a=ac: solve_scenario(s, "decomposition", ac=a),
                              args.repeats, args.warm_up)
            print(row(name, label, sol, wall, mono_s))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
