"""One ``tem-eulv`` market day: wall time, market–DSO iterations, power-flow time, ratios.

Run from the repository root::

    python benchmarks/bench_market.py [--scenario tem-eulv] [--repeats 3]

For the day (24 hourly slots) it prints, as medians over ``--repeats`` runs after one
warm-up: the market loop's wall time (pricing rounds, clearings, DSO checks and cuts;
the target is <= 5 s on 2 cores) and its split (the aggregator's pricing, the DSO's
three-phase power flows and cut slopes, the market operator's LP), the clearings,
pricing rounds and cuts, the three-phase power-flow time per slot checked, the lowest
phase voltage of the first clearing (before any cut) and of the adopted one, and the
centralised LinDist3Flow solve of the same day (seed 001 Proposition 3) with the ratio
of the loop's time to it and the cost difference. The same day with LinDist3Flow cuts
must reach the centralised optimum (the script fails otherwise).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

from gridcosim.scenarios.loader import load_scenario
from gridcosim.scenarios.market_schema import CutModel
from gridcosim.scenarios.schema import Scenario
from gridcosim.simulator.market_sim import MarketSimulation
from gridcosim.simulator.market_solve import CentralisedMarket

#: The loop with LinDist3Flow cuts must equal the centralised optimum within this.
REL_TOL = 1e-6


class Timers:
    """Wall time per named part, accumulated by wrapping methods."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, obj: Any, method: str, part: str) -> None:
        """Time every call of ``obj.method`` under ``part``."""
        inner: Callable[..., Any] = getattr(obj, method)

        def timed(*args: Any, **kwargs: Any) -> Any:
            tick = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds[part] += time.perf_counter() - tick
                self.calls[part] += 1

        setattr(obj, method, timed)


def first_clearing_minimum(model: MarketSimulation) -> dict[str, float]:
    """Record the lowest voltage per phase of the day's first clearing (before cuts)."""
    found: dict[str, float] = {}
    validate = model.dso.validate

    def spy(clearing: Any, metered: Any) -> Any:
        checks, cuts = validate(clearing, metered)
        if not found:
            vm = np.concatenate([c.vm_pu.to_numpy() for c in checks])
            phases = np.concatenate([c.vm_pu.index.get_level_values("phase") for c in checks])
            found.update({ph: float(vm[phases == ph].min()) for ph in "abc"})
        return checks, cuts

    model.dso.validate = spy  # type: ignore[method-assign]
    return found


def loop_day(scenario: Scenario) -> dict[str, Any]:
    """One market day by the loop, timed by part."""
    tick = time.perf_counter()
    model = MarketSimulation(scenario)
    build = time.perf_counter() - tick
    timers = Timers()
    timers.wrap(model.aggregator, "quote", "pricing")
    timers.wrap(model.dso.check, "check_slot", "power flow (check)")
    timers.wrap(model.dso.check, "cuts", "cut slopes")
    timers.wrap(model.operator.lp, "solve", "clearing LP")
    before = first_clearing_minimum(model)
    tick = time.perf_counter()
    status = model.price_day(0)
    wall = time.perf_counter() - tick
    model.dso.adopt(model.operator.outcome.clearing, model.aggregator.metered(), 0)
    adopted = min(float(np.nanmin(c.vm_pu)) for c in model.dso._adopted)
    return {"status": str(status), "wall_s": wall, "build_s": build, "parts": timers,
            "clearings": model.operator.window_clearings,
            "rounds": model.operator.window_rounds, "cuts": model.operator.window_cuts,
            "cost_usd": model.operator.outcome.clearing.cost_usd, "before": before,
            "adopted_min_pu": adopted, "violation_pu": model.dso.adopted_violation_pu()}


def central_day(scenario: Scenario) -> dict[str, Any]:
    """The same day with every clearing the centralised LinDist3Flow LP."""
    model = CentralisedMarket(scenario)
    tick = time.perf_counter()
    status = model.price_day(0)
    return {"status": str(status), "wall_s": time.perf_counter() - tick,
            "cost_usd": model.operator.outcome.clearing.cost_usd,
            "rounds": model.operator.window_rounds}


def with_cut_model(scenario: Scenario, cut_model: CutModel) -> Scenario:
    """The scenario with another ``[market] cut_model``."""
    market = scenario.market.model_copy(update={"cut_model": cut_model})  # type: ignore[union-attr]
    return scenario.model_copy(update={"market": market})


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median wall time."""
    return sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]


def report(loop: dict[str, Any], central: dict[str, Any] | None, lin: dict[str, Any] | None,
           lin_central: dict[str, Any] | None) -> list[str]:
    """The printed table (the loop's day; the references where they ran)."""
    parts: Timers = loop["parts"]
    checks = parts.calls["power flow (check)"]
    lines = [
        f"market day (AC cuts): {loop['wall_s']:.2f} s (target <= 5 s), status "
        f"{loop['status']}; model build {loop['build_s']:.2f} s (not in the day)",
        f"  clearings {loop['clearings']}, pricing rounds {loop['rounds']}, DSO cuts "
        f"{loop['cuts']}",
        *(f"  {part:20s} {sec:6.2f} s  {100 * sec / loop['wall_s']:5.1f} %  "
          f"({parts.calls[part]} calls)" for part, sec in parts.seconds.items()),
        f"  three-phase power flow per slot checked: "
        f"{1000 * parts.seconds['power flow (check)'] / max(checks, 1):.2f} ms ({checks} slots)",
        "  lowest phase voltage, first clearing (before cuts): " + ", ".join(
            f"{ph} {v:.4f}" for ph, v in loop["before"].items()) + " p.u.",
        f"  lowest voltage, adopted clearing (AC): {loop['adopted_min_pu']:.4f} p.u.; largest "
        f"violation {loop['violation_pu']:.1e} p.u.",
    ]
    if central is None or lin is None or lin_central is None:
        return lines
    rel = (loop["cost_usd"] - central["cost_usd"]) / central["cost_usd"]
    rel_lin = (lin["cost_usd"] - lin_central["cost_usd"]) / lin_central["cost_usd"]
    return [*lines,
            f"centralised LinDist3Flow day: {central['wall_s']:.2f} s; loop / centralised "
            f"{loop['wall_s'] / central['wall_s']:.1f}x; cost loop {loop['cost_usd']:.4f} $ vs "
            f"centralised {central['cost_usd']:.4f} $ (AC cuts cost {100 * rel:+.2f} %)",
            f"LinDist3Flow cuts: loop {lin['cost_usd']:.6f} $ vs centralised "
            f"{lin_central['cost_usd']:.6f} $, relative difference {rel_lin:.1e} "
            f"({lin['wall_s']:.2f} s, {lin['clearings']} clearings, {lin['cuts']} cuts)"]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 1 if the LinDist3Flow loop misses the centralised optimum."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="tem-eulv")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-warm-up", action="store_true", help="skip the warm-up day")
    parser.add_argument("--loop-only", action="store_true",
                        help="only the loop's day (no centralised and LinDist3Flow runs)")
    args = parser.parse_args(argv)
    scenario = load_scenario(args.scenario)
    if not args.no_warm_up:
        loop_day(scenario)  # imports, OpenDSS, first HiGHS instances
    loop = median_run([loop_day(scenario) for _ in range(args.repeats)])
    if args.loop_only:
        print("\n".join(report(loop, None, None, None)))
        return 0
    central = median_run([central_day(scenario) for _ in range(args.repeats)])
    linear = with_cut_model(scenario, CutModel.LINDIST3FLOW)
    lin, lin_central = loop_day(linear), central_day(linear)
    print("\n".join(report(loop, central, lin, lin_central)))
    rel = abs(lin["cost_usd"] - lin_central["cost_usd"]) / abs(lin_central["cost_usd"])
    return 0 if rel <= REL_TOL else 1


if __name__ == "__main__":
    sys.exit(main())
