"""24-slot windows where the network binds: decomposition vs the monolithic reference.

Run from the repository root::

    python benchmarks/bench_long_windows.py [--starts 0 14 40] [--slots 24]
        [--load-scale 2.0] [--v-band 0.97 1.03] [--benders-only] [--no-inner-master]
        [--price-rounds N] [--cut-purge-age N]

The scenario is ``ieee123-nmg-week`` with the loads scaled and the voltage band narrowed
so that voltage limits bind at zero exchange. For each window start the table gives the
decomposition's status, price rounds, iterations, cuts by kind, the cut pool (cuts kept in
the master at the end / dropped / put back), the master's rows at the end, the wall time
(one process, models built per window), the monolithic MILP's wall time (build and solve)
beside it, their ratio and the relative cost difference. ``--no-inner-master`` gives the
price rounds and proposals without the inner master (the rule before it).
"""

from __future__ import annotations

import argparse
import time

from gridcosim.scenarios.loader import load_scenario
from gridcosim.scenarios.network import load_network
from gridcosim.scenarios.series import scenario_series
from gridcosim.simulator.decomposition.controller_pool import make_pool
from gridcosim.simulator.decomposition.loop import Decomposition
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.simulator.models.monolithic_model import solve_monolithic
from gridcosim.simulator.windows import microgrid_window, network_window

HEADER = ("| start | status | price rounds | iterations | cuts | kept / dropped / re-added "
          "| master rows | dec s | mono s | dec / mono | rel diff |")


def arguments() -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--starts", type=int, nargs="+", default=[0, 14, 40])
    p.add_argument("--slots", type=int, default=24)
    p.add_argument("--load-scale", type=float, default=2.0)
    p.add_argument("--v-band", type=float, nargs=2, default=[0.97, 1.03])
    p.add_argument("--benders-only", action="store_true", help="price_signals=False")
    p.add_argument("--no-inner-master", action="store_true", help="inner_master=False")
    p.add_argument("--price-rounds", type=int, default=DecompositionSettings.price_rounds)
    p.add_argument("--cut-purge-age", type=int, default=DecompositionSettings.cut_purge_age)
    p.add_argument("--time-limit", type=float, default=120.0)
    return p.parse_args()


def main() -> None:
    """Solve each window both ways and print one table row per window."""
    args = arguments()
    week = load_scenario("ieee123-nmg-week")
    scenario = week.model_copy(update={"network": week.network.model_copy(update={
        "load_scale": args.load_scale, "v_min_pu": args.v_band[0], "v_max_pu": args.v_band[1]})})
    net = load_network(scenario.network.source)
    series = scenario_series(scenario, net)
    settings = DecompositionSettings(
        max_iterations=5000, time_limit_s=args.time_limit, price_signals=not args.benders_only,
        inner_master=not args.no_inner_master, price_rounds=args.price_rounds,
        cut_purge_age=args.cut_purge_age)
    print(HEADER)
    print("|" + "---|" * (HEADER.count("|") - 1))
    for start in args.starts:
        mgw = [microgrid_window(scenario, mg, None, start, args.slots, series)
               for mg in scenario.microgrids]
        tick = time.perf_counter()
        pool = make_pool(mgw, settings)
        try:
            window = network_window(scenario, net, pool.bounds(), start, args.slots, series)
            dec = Decomposition(window, pool, settings)
            sol = dec.run()
        finally:
            pool.close()
        wall = time.perf_counter() - tick
        ref = solve_monolithic(window, mgw)
        cuts = ", ".join(f"{k} {v}" for k, v in sol.info["cuts"].items() if v)
        cut_pool = dec.master.pool
        rel = (sol.objective_usd - ref.objective_usd) / abs(ref.objective_usd)
        print(f"| {start} | {sol.status} | {dec.prices.sent} | {sol.info['iterations']} "
              f"| {cuts} | {cut_pool.kept} / {cut_pool.dropped} / {cut_pool.readded} "
              f"| {dec.master.hm.num_rows} | {wall:.2f} | {ref.wall_s:.2f} "
              f"| {wall / ref.wall_s:.2f} | {rel:.1e} |", flush=True)


if __name__ == "__main__":
    main()
