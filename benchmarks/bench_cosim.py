"""Wall time of a rolling-horizon co-simulation and where it goes.

Run from the repository root::

    python benchmarks/bench_cosim.py [--scenario ieee123-nmg-week] [--days 7] [--horizon 24]
        [--commit 1] [--window-time-limit 20] [--max-iterations 200] [--workers 1]
        [--seed 0] [--noise 0] [--out FILE.h5]

The run is the one ``gridcosim run`` makes (``CoSimulation`` + ``Recorder``), without a
progress bar. The table splits the wall time of the stepping loop:

* optimisation: the sum of every coordinated window's decomposition wall time
  (``WindowReport.wall_s`` in ``model.dso.reports``, the loop of docs/formulation.md §4);
* power flow: AC power flows (``NetworkValidator.solve``, timed by wrapping it). The DSO
  runs one for each planned slot that is committed, to record ``bus/vm_pu`` and the
  LinDistFlow gap (a window's other slots are planned again before they run), and one of
  the realised slot; with ``--ac`` (AC feasibility cuts) it also runs them inside the
  decomposition loop, and those are taken out of the optimisation row so nothing is
  counted twice. Building
  the compiled feeder once per run is part of ``window build``;
* agents: everything else in the loop (``total - optimisation - power flow - recording``),
  shown in two parts: ``window build`` is the re-planning outside the decomposition loop
  (each controller's private window and its models loaded into the pool, the DSO's
  network window, the master and evaluator built, warm-start cuts), ``slot execution``
  the agents' observe/commit of every slot and the clock;
* HDF5 recording: ``Recorder.wall_s`` (reading agent state, appending, flushing).

Model construction (network, series, agents) and opening the file are timed separately
as ``setup``. The default case is the issue's performance bar: 7 days, H = 24, K = 1,
168 windows of 24 slots (target ≤ 60 s on 2 cores, recording ≤ 5 %).

**Monolithic reference** (unless ``--no-monolithic``): every window the run coordinated
(its network window and each controller's private window, as the decomposition got them)
is solved again by the monolithic MILP, as ``gridcosim solve --method monolithic`` solves
a window (:func:`~gridcosim.simulator.models.monolithic_model.solve_monolithic`: Pyomo
build, compile, HiGHS with a 1e-9 gap). The second table puts its figures beside the
decomposition's: the rolling horizon's optimisation time (build + solve), per window,
and each window's optimum (the decomposition must reach it: the largest relative
difference is printed, and the script fails above 1e-6).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gridcosim.agents.dso as dso_module
from gridcosim.agents.microgrid_controller import MicrogridControllerAgent
from gridcosim.scenarios.loader import load_scenario
from gridcosim.simulator.cosim import CoSimulation, RunSettings
from gridcosim.simulator.decomposition.loop import Decomposition
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.simulator.models.lindistflow_model import NetworkWindow
from gridcosim.simulator.models.microgrid_model import MicrogridWindow
from gridcosim.simulator.models.monolithic_model import solve_monolithic
from gridcosim.simulator.recording import Recorder
from gridcosim.simulator.validation.realised_flow import RealisedPowerFlow
from gridcosim.simulator.validation.validator import NetworkValidator


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="ieee123-nmg-week")
    p.add_argument("--days", type=float, default=7.0)
    p.add_argument("--horizon", type=int, default=24)
    p.add_argument("--commit", type=int, default=1)
    p.add_argument("--window-time-limit", type=float, default=20.0)
    p.add_argument("--max-iterations", type=int, default=200)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise", type=float, default=0.0)
    p.add_argument("--ac", action="store_true", help="add AC feasibility cuts (run --ac)")
    p.add_argument("--out", default=None, help="HDF5 file (default: a temporary file)")
    p.add_argument("--no-monolithic", action="store_true",
                   help="skip the monolithic rolling horizon of the same windows")
    return p.parse_args(argv)


def _timed(func: Callable[..., Any], timers: dict[str, float], key: str
           ) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        tick = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            timers[key] += time.perf_counter() - tick
    return wrapper


class PowerFlowClock:
    """Times every AC power flow, and those run inside a decomposition loop separately."""

    def __init__(self) -> None:
        self.total_s = self.in_loop_s = 0.0
        self.count = 0
        self._in_loop = False

    def install(self) -> None:
        solve, run = NetworkValidator.solve, Decomposition.run

        def timed_solve(validator: NetworkValidator, point: Any) -> Any:
            tick = time.perf_counter()
            try:
                return solve(validator, point)
            finally:
                spent = time.perf_counter() - tick
                self.total_s += spent
                self.count += 1
                if self._in_loop:
                    self.in_loop_s += spent

        def flagged_run(engine: Decomposition) -> Any:
            self._in_loop = True
            try:
                return run(engine)
            finally:
                self._in_loop = False

        NetworkValidator.solve = timed_solve  # type: ignore[method-assign]
        Decomposition.run = flagged_run  # type: ignore[method-assign]


class WindowCapture:
    """Every coordinated window's data: the DSO's network window and the controllers'."""

    def __init__(self) -> None:
        self.network: list[NetworkWindow] = []
        self.microgrids: dict[int, list[MicrogridWindow]] = {}

    def install(self) -> None:
        window, network_window = MicrogridControllerAgent.window, dso_module.network_window

        def mg_window(agent: MicrogridControllerAgent, start: int, slots: int
                      ) -> MicrogridWindow:
            out = window(agent, start, slots)
            self.microgrids.setdefault(start, []).append(out)
            return out

        def net_window(*args: Any, **kwargs: Any) -> NetworkWindow:
            out = network_window(*args, **kwargs)
            self.network.append(out)
            return out

        MicrogridControllerAgent.window = mg_window  # type: ignore[method-assign]
        dso_module.network_window = net_window

    def windows(self) -> list[tuple[NetworkWindow, list[MicrogridWindow]]]:
        """The windows in run order."""
        return [(net, self.microgrids[net.start]) for net in self.network]


def monolithic_horizon(capture: WindowCapture) -> list[tuple[float, float, float, str]]:
    """Each window solved by the monolithic MILP: (wall s, build s, objective, status)."""
    out = []
    for net, mgs in capture.windows():
        tick = time.perf_counter()
        sol = solve_monolithic(net, mgs)
        out.append((time.perf_counter() - tick, sol.info["build_s"], sol.objective_usd,
                    str(sol.status)))
    return out


def print_comparison(reports: list[Any], mono: list[tuple[float, float, float, str]],
                     total_s: float) -> float:
    """The decomposition's figures beside the monolithic ones; returns the worst rel diff."""
    dec_walls = [r.wall_s for r in reports]
    mono_walls = [m[0] for m in mono]
    diffs = [abs(r.cost_usd - m[2]) / max(1.0, abs(m[2])) for r, m in zip(reports, mono,
                                                                           strict=True)]
    mono_s, dec_s = sum(mono_walls), sum(dec_walls)
    print()
    print(f"{'same windows':<28}{'decomposition':>15}{'monolithic':>13}{'ratio':>9}")
    for name, dec, mon in (("optimisation s", dec_s, mono_s),
                           ("  per window mean s", dec_s / len(reports), mono_s / len(mono)),
                           ("  per window max s", max(dec_walls), max(mono_walls))):
        print(f"{name:<28}{dec:>15.3f}{mon:>13.3f}{mon / max(dec, 1e-12):>8.1f}x")
    print(f"{'whole run s (vs its solves)':<28}{total_s:>15.2f}{mono_s:>13.2f}"
          f"{mono_s / total_s:>8.1f}x")
    print(f"{'  of which Pyomo build s':<28}{'':>15}{sum(m[1] for m in mono):>13.2f}")
    optimal = sum(m[3] == "optimal" for m in mono)
    dec_optimal = sum(r.status == "optimal" for r in reports)
    print(f"{'windows optimal':<28}{dec_optimal:>15d}{optimal:>13d}")
    print(f"{'sum of window optima USD':<28}{sum(r.cost_usd for r in reports):>15.4f}"
          f"{sum(m[2] for m in mono):>13.4f}")
    print(f"largest relative difference of a window's optimum: {max(diffs):.2e} "
          f"(window at slot {reports[diffs.index(max(diffs))].start})")
    return max(diffs)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    scenario = load_scenario(args.scenario)
    slots = max(1, int(round(args.days * 24 / scenario.horizon.slot_hours)))
    settings = RunSettings(
        slots=slots, horizon=args.horizon, commit=args.commit, seed=args.seed,
        noise=args.noise, ac_cuts=args.ac, decomposition=DecompositionSettings(
            workers=args.workers, time_limit_s=args.window_time_limit,
            max_iterations=args.max_iterations))
    tmp = None
    if args.out is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench_cosim_")
        out = Path(tmp.name) / f"{scenario.name}.h5"
    else:
        out = Path(args.out)

    clock = PowerFlowClock()
    clock.install()
    capture = WindowCapture()
    if not args.no_monolithic:
        capture.install()
    tick = time.perf_counter()
    model = CoSimulation(scenario, settings)
    recorder = Recorder(out, model)
    model.recorder = recorder
    setup_s = time.perf_counter() - tick
    setup_rec_s = recorder.wall_s  # opening the file and writing the layout

    timers = {"coordinate": 0.0, "record_window": 0.0, "feeder": 0.0, "realised": 0.0}
    RealisedPowerFlow.solve = _timed(RealisedPowerFlow.solve, timers, "realised")
    if hasattr(dso_module, "window_validator"):  # the DSO builds its AC feeder once
        dso_module.window_validator = _timed(dso_module.window_validator, timers, "feeder")
    model._coordinate = _timed(model._coordinate, timers, "coordinate")
    recorder.window = _timed(recorder.window, timers, "record_window")

    tick = time.perf_counter()
    try:
        while model.running:
            model.step()
    finally:
        model.close()
        recorder.close()
    total_s = time.perf_counter() - tick

    reports = model.dso.reports
    optimisation_s = sum(r.wall_s for r in reports) - clock.in_loop_s
    powerflow_s = clock.total_s
    recording_s = recorder.wall_s - setup_rec_s
    agents_s = total_s - optimisation_s - powerflow_s - recording_s
    build_s = timers["coordinate"] - timers["record_window"] - optimisation_s - powerflow_s
    slots_s = agents_s - build_s

    print(f"scenario {scenario.name}: {model.slot} of {model.total_slots} slots, "
          f"H = {model.horizon}, K = {args.commit}, window time limit "
          f"{args.window_time_limit:g} s, max {args.max_iterations} iterations, "
          f"workers {args.workers}, noise {args.noise:g}, seed {args.seed}, "
          f"AC cuts {'on' if args.ac else 'off'}")
    print(f"run status {model.status}; file {out if tmp is None else '(temporary)'}")
    print()
    print(f"{'part':<16}{'seconds':>10}{'% of run':>10}")
    for name, sec in (("optimisation", optimisation_s), ("power flow", powerflow_s),
                      ("agents", agents_s), ("HDF5 recording", recording_s),
                      ("total (run)", total_s)):
        print(f"{name:<16}{sec:>10.2f}{100 * sec / total_s:>9.1f}%")
        if name == "agents":
            for sub, val in (("window build", build_s), ("slot execution", slots_s)):
                print(f"  {sub:<14}{val:>10.2f}{100 * val / total_s:>9.1f}%")
            print(f"    {'AC feeder':<12}{timers['feeder']:>10.2f}"
                  f"{100 * timers['feeder'] / total_s:>9.1f}%  (built once, in window build)")
    print(f"{'setup':<16}{setup_s:>10.2f}{'':>10}  (model build + file layout, not in run)")
    print(f"power flow: {clock.count} AC power flows ({clock.in_loop_s:.2f} s of them inside "
          f"decomposition loops), "
          f"{1e3 * powerflow_s / max(clock.count, 1):.2f} ms each")
    print(f"realised-slot power flows: {timers['realised']:.2f} s in all, "
          f"{100 * timers['realised'] / total_s:.1f} % of the run (target <= 5 %)")
    print()
    statuses = Counter(r.status for r in reports)
    iterations = [r.iterations for r in reports]
    walls = [r.wall_s for r in reports]
    others = "".join(f", {st} {n}" for st, n in sorted(statuses.items())
                     if st not in ("optimal", "not_converged"))
    print(f"windows {len(reports)}: optimal {statuses.get('optimal', 0)}, not_converged "
          f"{statuses.get('not_converged', 0)}{others}")
    late = [r.start for r in reports if r.status != "optimal"]
    if late:
        print(f"non-optimal windows start at slots {late}")
    if reports:
        print(f"iterations per window: total {sum(iterations)}, mean "
              f"{sum(iterations) / len(reports):.1f}, max {max(iterations)}")
        print(f"window wall: mean {sum(walls) / len(walls):.2f} s, max {max(walls):.2f} s")
        gaps = [(r.cost_usd - r.lower_bound_usd) / max(1.0, abs(r.cost_usd)) for r in reports
                if r.status != "optimal"]
        if gaps:
            print(f"relative gap of non-optimal windows: max {max(gaps):.2e}")
    substation = model.dso.total_cost_usd
    cost = substation + sum(mc.total_cost_usd for mc in model.microgrids)
    print(f"realised cost {cost:.2f} USD (substation {substation:.2f}, "
          f"microgrids {cost - substation:.2f})")
    if tmp is not None:
        tmp.cleanup()
    worst = 0.0
    if not args.no_monolithic and reports:
        worst = print_comparison(reports, monolithic_horizon(capture), total_s)
    return 0 if model.status == "finished" and worst <= 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main())
