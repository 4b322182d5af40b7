"""Command line: ``gridcosim solve | scenarios`` (and the co-simulation commands).

Scenario problems are reported one per line on stderr with exit code 2 and no traceback;
solver trouble is reported as a status in the output.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence

from gridcosim.scenarios.errors import GridcosimError, ScenarioError

EXIT_SCENARIO = 2
EXIT_ERROR = 1


def _add_solve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("solve", help="solve one window (the scenario horizon)")
    p.add_argument("scenario", help="built-in scenario name or path to a TOML file")
    p.add_argument("--method", choices=("monolithic", "decomposition"), default="decomposition")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--workers", type=int, default=1, help="microgrid controller processes")
    p.add_argument("--integer-method", choices=("branch", "restoration"), default="branch")
    p.add_argument("--stabilisation", choices=("in-out", "none"), default="in-out")
    p.add_argument("--max-iterations", type=int, default=500)
    p.add_argument("--time-limit", type=float, default=300.0, help="seconds")
    p.add_argument("--ac", action="store_true",
                   help="validate with AC power flows and add AC feasibility cuts")


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="co-simulate a scenario on a rolling horizon")
    p.add_argument("scenario", help="built-in scenario name or path to a TOML file")
    p.add_argument("--days", type=float, default=None, help="days to simulate (default: all)")
    p.add_argument("--horizon", type=int, default=None, help="window length H in slots")
    p.add_argument("--commit", type=int, default=1, help="slots K committed per window")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise", type=float, default=0.0, help="relative std of realised values")
    p.add_argument("--out", default=None, help="HDF5 file (default: <scenario>.h5)")
    p.add_argument("--workers", type=int, default=1, help="microgrid controller processes")
    p.add_argument("--window-time-limit", type=float, default=60.0,
                   help="seconds per coordinated window (then its best runnable schedule)")
    p.add_argument("--max-iterations", type=int, default=500, help="per window")
    p.add_argument("--ac", action="store_true",
                   help="add AC feasibility cuts until every window's plan is AC-feasible")
    p.add_argument("--no-progress", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    """The ``gridcosim`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="gridcosim", description="Co-simulation of DSO-coordinated networked microgrids.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_solve(sub)
    _add_run(sub)
    sub.add_parser("scenarios", help="list the built-in scenarios")
    inspect = sub.add_parser("inspect", help="summarise an HDF5 trajectory")
    inspect.add_argument("file")
    return parser


def _cmd_scenarios(_: argparse.Namespace) -> int:
    from gridcosim.scenarios import builtin_names, load_scenario

    for name in builtin_names():
        print(f"{name:28s} {load_scenario(name).description}")
    return 0


def _finite(obj: object) -> object:
    """Replace NaN and infinities (not valid JSON) by ``None``, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _cmd_solve(args: argparse.Namespace) -> int:
    from gridcosim.scenarios import load_scenario
    from gridcosim.simulator.decomposition.settings import DecompositionSettings
    from gridcosim.simulator.solve import solve_scenario

    scenario = load_scenario(args.scenario)
    settings = DecompositionSettings(
        integer_method=args.integer_method, stabilisation=args.stabilisation,
        max_iterations=args.max_iterations, time_limit_s=args.time_limit,
        workers=args.workers)
    solution = solve_scenario(scenario, args.method, settings, ac=args.ac)
    if args.json:
        print(json.dumps(_finite({"scenario": scenario.name, **solution.to_json_dict()})))
    else:
        from gridcosim.outputs.tables import solution_table

        print(solution_table(scenario.name, solution))
    return 0 if solution.status in ("optimal", "not_converged") else EXIT_ERROR


def _cmd_run(args: argparse.Namespace) -> int:
    from gridcosim.scenarios import load_scenario
    from gridcosim.simulator.decomposition.settings import DecompositionSettings
    from gridcosim.simulator.runner import run_scenario

    scenario = load_scenario(args.scenario)
    slots = None
    if args.days is not None:
        slots = max(1, int(round(args.days * 24 / scenario.horizon.slot_hours)))
    out = args.out or f"{scenario.name}.h5"
    status = run_scenario(
        scenario, out, slots=slots, horizon=args.horizon, commit=args.commit, seed=args.seed,
        noise=args.noise, ac_cuts=args.ac, decomposition=DecompositionSettings(
            workers=args.workers, time_limit_s=args.window_time_limit,
            max_iterations=args.max_iterations),
        progress=not args.no_progress)
    print(f"run {status}; trajectory written to {out}")
    return 0 if status == "finished" else EXIT_ERROR


def _cmd_inspect(args: argparse.Namespace) -> int:
    from gridcosim.outputs.hdf5 import summary

    print(summary(args.file))
    return 0


_COMMANDS = {"solve": _cmd_solve, "scenarios": _cmd_scenarios, "run": _cmd_run,
             "inspect": _cmd_inspect}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gridcosim`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except ScenarioError as err:
        print(f"gridcosim: invalid scenario {getattr(args, 'scenario', '')!s}:", file=sys.stderr)
        for problem in err.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_SCENARIO
    except GridcosimError as err:
        print(f"gridcosim: {err}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
