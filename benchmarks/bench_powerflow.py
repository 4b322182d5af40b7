"""AC power flows per second on the IEEE 123 feeder: the validator against plain pandapower.

Run from the repository root::

    python benchmarks/bench_powerflow.py [--points 3000] [--runpp 60] [--repeats 3]

It draws a seeded sequence of operating points over 24 slots (bus loads at 0.6-1.3x
nominal with some curtailment, random microgrid exchanges within the PCC ratings and SVC
outputs within their ranges; the scenario's PCCs and SVCs) and solves them

* through :class:`simulator.validation.validator.NetworkValidator` (the full per-slot
  work: injections, Newton-Raphson, voltages, line currents, losses, limit check), with
  its default warm start (each slot starts from that slot's previous solution) and cold
  (from the nominal-load solution every time);
* with a plain ``pandapower.runpp`` on the validator's net after writing the point into
  its tables (the reference; ``runpp`` uses lightsim2grid's Newton-Raphson when
  installed, so the difference is pandapower's conversion work);
* with ``pandapower.runpp(recycle=...)``, pandapower's own fast path, for context.

It prints power flows per second (median over repeats), the ratio to plain ``runpp`` and
the largest |V| difference to ``runpp``; the target is >= 5000 PF/s for the validator.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np
import pandapower as pp

from gridcosim.scenarios.loader import load_scenario
from gridcosim.scenarios.network import load_network
from gridcosim.simulator.models.lindistflow_model import NetworkWindow
from gridcosim.simulator.validation.ac_cuts import window_validator
from gridcosim.simulator.validation.operating_point import OperatingPoint
from gridcosim.simulator.validation.validator import NetworkValidator
from gridcosim.simulator.windows import microgrid_window, network_window, published_bounds

TARGET_PF_PER_S = 5000.0
SLOTS = 24


def make_window(name: str) -> NetworkWindow:
    scenario = load_scenario(name)
    bounds = [published_bounds(microgrid_window(scenario, mg)) for mg in scenario.microgrids]
    return network_window(scenario, load_network(scenario.network.source), bounds)


def make_points(window: NetworkWindow, n: int, seed: int = 0) -> list[OperatingPoint]:
    rng = np.random.default_rng(seed)
    ids = list(window.network.bus_ids)
    p_nom = window.network.load_p_kw.reindex(ids).to_numpy()
    q_nom = window.network.load_q_kvar.reindex(ids).to_numpy()
    day = 0.95 + 0.35 * np.sin(np.linspace(0, 2 * np.pi, SLOTS, endpoint=False))
    points = []
    for k in range(n):
        mult = day[k % SLOTS] * rng.uniform(0.9, 1.0)
        keep = 1.0 - rng.uniform(0, 0.2, len(ids)) * (rng.random(len(ids)) < 0.1)
        ex = window.exchanges
        points.append(OperatingPoint(
            slot=k % SLOTS, load_kw=p_nom * mult * keep, load_kvar=q_nom * mult * keep,
            mg_kw=tuple(rng.uniform(e.p_min_kw, e.p_max_kw) for e in ex),
            mg_kvar=tuple(rng.uniform(e.q_min_kvar, e.q_max_kvar) for e in ex),
            svc_kvar=tuple(rng.uniform(s.q_min_kvar, s.q_max_kvar) for s in window.svcs)))
    return points


def rate(run: Callable[[OperatingPoint], object], points: Sequence[OperatingPoint],
         repeats: int) -> float:
    """Median power flows per second over ``repeats`` passes."""
    rates = []
    for _ in range(repeats):
        tick = time.perf_counter()
        for point in points:
            run(point)
        rates.append(len(points) / (time.perf_counter() - tick))
    return statistics.median(rates)


def runpp_vm(validator: NetworkValidator, point: OperatingPoint, **options: object
             ) -> np.ndarray:
    net = validator.feeder.apply(point)
    pp.runpp(net, numba=False, **options)
    return net.res_bus["vm_pu"].reindex(list(validator.bus_ids)).to_numpy()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="ieee123-nmg")
    parser.add_argument("--points", type=int, default=3000)
    parser.add_argument("--runpp", type=int, default=60, help="points for the runpp runs")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    window = make_window(args.scenario)
    points = make_points(window, args.points)
    warm = window_validator(window)
    cold = window_validator(window, warm_start=False)
    rows = {"validator (warm start)": rate(warm.solve, points, args.repeats),
            "validator (cold start)": rate(cold.solve, points, args.repeats)}
    few = points[:args.runpp]
    rows["pandapower.runpp"] = rate(lambda p: runpp_vm(warm, p), few, args.repeats)
    recycle = {"bus_pq": True, "trafo": False, "gen": False}
    rows["pandapower.runpp(recycle)"] = rate(lambda p: runpp_vm(warm, p, recycle=recycle),
                                             few, args.repeats)
    gap = max(float(np.max(np.abs(warm.solve(p).vm_pu - runpp_vm(warm, p)))) for p in few)
    base = rows["pandapower.runpp"]
    print(f"AC power flows on {window.network.name} ({len(window.network.bus_ids)} buses), "
          f"{args.points} points ({args.runpp} for runpp), median of {args.repeats}")
    print(f"{'method':28s} {'PF/s':>10s} {'us/PF':>9s} {'x runpp':>9s}")
    for name, value in rows.items():
        print(f"{name:28s} {value:10.0f} {1e6 / value:9.1f} {value / base:9.1f}")
    print(f"max |V_validator - V_runpp| over {len(few)} points: {gap:.2e} p.u.")
    for name in ("validator (warm start)", "validator (cold start)"):
        verdict = "met" if rows[name] >= TARGET_PF_PER_S else "NOT met"
        print(f"target {TARGET_PF_PER_S:.0f} PF/s, {name}: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
