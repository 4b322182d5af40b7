"""Build and solve times of the monolithic reference on the seed case (ieee123-nmg).

Run from the repository root::

    python benchmarks/bench_monolithic.py [--repeats 5] [--scenario ieee123-nmg]

For each repetition it solves the monolithic MILP twice:

* with ``solve_monolithic`` (HiGHS through Pyomo's ``highs`` interface, 1 thread, 1e-9
  gap): the Pyomo build time and the solve time from ``Solution.info`` (the latter includes
  the interface's translation of the model), and the wall time of the whole call;
* compiled once into :class:`simulator.highs_model.HighsModel` (same options): the compile
  time and HiGHS's own run time (``SolveOutcome.wall_s``), i.e. the solver alone.

It prints the median and the minimum of each.
"""

from __future__ import annotations

import argparse
import statistics
import time

from gridcosim.scenarios.loader import load_scenario
from gridcosim.scenarios.network import load_network
from gridcosim.simulator.highs_model import HighsModel
from gridcosim.simulator.models.monolithic_model import build_monolithic, solve_monolithic
from gridcosim.simulator.windows import microgrid_window, network_window, published_bounds


def run(scenario_name: str, repeats: int) -> dict[str, list[float]]:
    scenario = load_scenario(scenario_name)
    network = load_network(scenario.network.source)
    mgs = [microgrid_window(scenario, mg) for mg in scenario.microgrids]
    net = network_window(scenario, network, [published_bounds(w) for w in mgs])
    times: dict[str, list[float]] = {
        "build_monolithic (Pyomo)": [], "solve via Pyomo highs": [], "solve_monolithic total": [],
        "HighsModel compile": [], "HiGHS run": []}
    objective = None
    for _ in range(repeats):
        tick = time.perf_counter()
        sol = solve_monolithic(net, mgs)
        total = time.perf_counter() - tick
        if sol.status != "optimal":
            raise SystemExit(f"monolithic solve ended {sol.status}")
        if objective is not None and abs(sol.objective_usd - objective) > 1e-9:
            raise SystemExit(f"objective changed: {objective} -> {sol.objective_usd}")
        objective = sol.objective_usd
        times["build_monolithic (Pyomo)"].append(sol.info["build_s"])
        times["solve via Pyomo highs"].append(sol.info["solve_s"])
        times["solve_monolithic total"].append(total)
        model = build_monolithic(net, mgs)
        tick = time.perf_counter()
        hm = HighsModel(model)
        times["HighsModel compile"].append(time.perf_counter() - tick)
        out = hm.solve()
        if out.status != "optimal" or abs(out.objective - objective) > 1e-6 * abs(objective):
            raise SystemExit(f"HighsModel: {out.status}, objective {out.objective}")
        times["HiGHS run"].append(out.wall_s)
    print(f"scenario {scenario_name}: {len(scenario.microgrids)} microgrids, "
          f"{len(network.bus_ids)} buses, {scenario.horizon.slots} slots; "
          f"objective {objective:.6f} $; {repeats} repetitions")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="ieee123-nmg")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    times = run(args.scenario, args.repeats)
    print(f"{'phase':<26} {'median s':>10} {'min s':>10}")
    for phase, values in times.items():
        print(f"{phase:<26} {statistics.median(values):>10.4f} {min(values):>10.4f}")


if __name__ == "__main__":
    main()
