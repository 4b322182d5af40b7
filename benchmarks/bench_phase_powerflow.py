"""Three-phase AC power flows per second on the shipped feeders, one section per engine.

Run from the repository root::

    python benchmarks/bench_phase_powerflow.py [--points 2000] [--pp-points 50] [--repeats 5]

On each shipped three-phase feeder (``ieee123-3ph``: IEEE 123, any phasing, delta loads,
capacitors; ``eulv``: the European LV feeder, 906 buses) it draws a seeded sequence of
operating points, every load at its nominal value times an independent factor in
0.9-1.1 (so every solve changes every load), and solves them one after the other with
each engine behind :class:`~simulator.validation.phase_engines.base.PhaseEngine`:

* :func:`bench_opendss`: :class:`OpenDSSPhaseEngine` (OpenDSSDirect.py), without and with
  the per-(line, phase) flows;
* :func:`bench_pandapower`: ``PandapowerPhaseEngine`` (pandapower ``runpp_3ph``) when its
  module exists and the feeder is one it can model (not IEEE 123: single-phase laterals,
  non-circulant phase matrices), on the first ``--pp-points`` points (it is much slower).

It prints power flows per second (median over repeats), the solves that did not converge
and the largest |V| difference of each engine to OpenDSS on the points both solved; the
target is >= 1000 PF/s for OpenDSS on IEEE 123.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from gridcosim.scenarios.errors import ScenarioError
from gridcosim.scenarios.phase_network import PhaseNetwork
from gridcosim.scenarios.phase_sources.builtin import PHASE_NETWORKS, load_phase_network
from gridcosim.simulator.validation.phase_engines.base import (
    PhaseEngine,
    PhaseFlowResult,
    PhaseOperatingPoint,
)
from gridcosim.simulator.validation.phase_engines.opendss_engine import OpenDSSPhaseEngine

TARGETS_PF_PER_S = {("opendss", "ieee123-3ph"): 1000.0}
PERTURBATION = 0.1
PANDAPOWER_ENGINE = "gridcosim.simulator.validation.phase_engines.pandapower_engine"


@dataclass(frozen=True)
class Row:
    """One engine's measurement on one feeder."""

    label: str
    engine: PhaseEngine
    points: int
    pf_per_s: float
    failed: int


def make_points(network: PhaseNetwork, n: int, seed: int = 0) -> list[PhaseOperatingPoint]:
    """``n`` points, each load at nominal times its own factor in 1 ± ``PERTURBATION``."""
    rng = np.random.default_rng(seed)
    p = network.loads["p_kw"].to_numpy(float)
    q = network.loads["q_kvar"].to_numpy(float)
    factors = rng.uniform(1 - PERTURBATION, 1 + PERTURBATION, (n, 2, len(p)))
    return [PhaseOperatingPoint(p * f[0], q * f[1]) for f in factors]


def measure(label: str, engine: PhaseEngine, points: Sequence[PhaseOperatingPoint],
            repeats: int) -> Row:
    """Median power flows per second over ``repeats`` passes (after one warm-up solve)."""
    engine.solve(points[0])
    rates, failed = [], 0
    for _ in range(repeats):
        tick = time.perf_counter()
        failed = sum(not engine.solve(point).converged for point in points)
        rates.append(len(points) / (time.perf_counter() - tick))
    return Row(label, engine, len(points), statistics.median(rates), failed)


def bench_opendss(network: PhaseNetwork, points: Sequence[PhaseOperatingPoint],
                  args: argparse.Namespace) -> list[Row]:
    """OpenDSS through OpenDSSDirect.py, without and with the line flows."""
    return [measure("opendss", OpenDSSPhaseEngine(network), points, args.repeats),
            measure("opendss (line flows)", OpenDSSPhaseEngine(network, line_flows=True),
                    points, args.repeats)]


def bench_pandapower(network: PhaseNetwork, points: Sequence[PhaseOperatingPoint],
                     args: argparse.Namespace) -> list[Row]:
    """pandapower ``runpp_3ph`` (skipped while its engine module does not import)."""
    if importlib.util.find_spec(PANDAPOWER_ENGINE) is None:
        print(f"(pandapower engine skipped: no module {PANDAPOWER_ENGINE})")
        return []
    try:
        engine = importlib.import_module(PANDAPOWER_ENGINE).PandapowerPhaseEngine(network)
    except ScenarioError as exc:  # what runpp_3ph cannot represent (laterals, ...)
        print(f"(pandapower runpp_3ph skipped: {len(exc.problems)} elements it cannot "
              f"model, e.g. {exc.problems[0]})")
        return []
    return [measure("pandapower runpp_3ph", engine, points[:args.pp_points], args.repeats)]


ENGINES: tuple[Callable[[PhaseNetwork, Sequence[PhaseOperatingPoint], argparse.Namespace],
                        list[Row]], ...] = (bench_opendss, bench_pandapower)


def gap_to(reference: PhaseEngine, row: Row, points: Sequence[PhaseOperatingPoint]) -> float:
    """Largest |V| difference of ``row``'s engine to ``reference`` (points both solve)."""
    gaps = [0.0]
    for point in points[:min(row.points, 20)]:
        ours: PhaseFlowResult = row.engine.solve(point)
        theirs = reference.solve(point)
        if ours.converged and theirs.converged:
            gaps.append(float(np.max(np.abs(ours.vm_pu - theirs.vm_pu))))
    return max(gaps)


def report(network: PhaseNetwork, rows: list[Row], points: Sequence[PhaseOperatingPoint]
           ) -> None:
    """Print one feeder's table and the targets that apply to it."""
    print(f"{'engine':24s} {'points':>7s} {'PF/s':>9s} {'us/PF':>9s} {'failed':>7s} "
          f"{'max|dV| to opendss':>19s}")
    for row in rows:
        gap = "-" if row is rows[0] else f"{gap_to(rows[0].engine, row, points):.2e}"
        print(f"{row.label:24s} {row.points:7d} {row.pf_per_s:9.0f} {1e6 / row.pf_per_s:9.1f} "
              f"{row.failed:7d} {gap:>19s}")
    for row in rows:
        target = TARGETS_PF_PER_S.get((row.engine.name, network.name))
        if target is not None and row.label == row.engine.name:
            verdict = "met" if row.pf_per_s >= target else "NOT met"
            print(f"target {target:.0f} PF/s, {row.label} on {network.name}: {verdict}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeders", nargs="+", default=list(PHASE_NETWORKS),
                        choices=PHASE_NETWORKS)
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--pp-points", type=int, default=50,
                        help="points for the (slow) pandapower runpp_3ph runs")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    for name in args.feeders:
        network = load_phase_network(name)
        print(f"\nthree-phase AC power flows on {name} ({len(network.buses)} buses, "
              f"{len(network.nodes)} bus-phases, {len(network.loads)} loads), loads ±"
              f"{PERTURBATION:.0%} per solve, median of {args.repeats}")
        points = make_points(network, args.points)
        rows = [row for bench in ENGINES for row in bench(network, points, args)]
        report(network, rows, points)
    return 0


if __name__ == "__main__":
    sys.exit(main())
