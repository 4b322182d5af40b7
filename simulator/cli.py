"""Command line: ``gridcosim scenarios | solve | run | inspect``.

Every problem with the input (scenario file, options, files) is reported on stderr with
exit code 2 and no traceback; a solver or run outcome is reported as a status, with the
exit codes of :class:`~gridcosim.simulator.status.ExitCode`. ``--json`` prints exactly one
JSON document on stdout (progress bars and messages go to stderr).
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gridcosim.scenarios.errors import GridcosimError, InputError, ScenarioError
from gridcosim.simulator.plot_cli import add_plot_parser, cmd_plot
from gridcosim.simulator.status import ExitCode
from gridcosim.simulator.sweep_cli import add_sweep_parser, cmd_sweep
from gridcosim.simulator.view_cli import add_view_parser, cmd_view

#: Upper limits of the run options (far above any sensible use; they keep typos harmless).
MAX_WORKERS = 256
MAX_ITERATIONS = 1_000_000
MAX_SECONDS = 7 * 24 * 3600.0
MAX_HORIZON = 10_000
MAX_SEED = 2**63 - 1


def _number(kind: type, low: float, high: float, *, low_open: bool = False
            ) -> Callable[[str], Any]:
    """An argparse type: a finite ``kind`` in ``[low, high]`` (``(low, high]`` if open)."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a{'n integer' if kind is int else ' number'}"
                                              f" (got {text!r})") from None
        bad = not math.isfinite(value) or value > high or (
            value <= low if low_open else value < low)
        if bad:
            bracket = "(" if low_open else "["
            raise argparse.ArgumentTypeError(f"must be in {bracket}{low:g}, {high:g}] "
                                              f"(got {text!r})")
        return value
    parse.__name__ = kind.__name__
    return parse


def _add_solve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("solve", help="solve one window (the scenario horizon)")
    p.add_argument("scenario", help="built-in scenario name or path to a TOML file")
    p.add_argument("--method", choices=("monolithic", "decomposition"), default="decomposition")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--workers", type=_number(int, 1, MAX_WORKERS), default=1,
                   help="microgrid controller processes")
    p.add_argument("--integer-method", choices=("branch", "restoration"), default="branch")
    p.add_argument("--stabilisation", choices=("in-out", "none"), default="in-out")
    p.add_argument("--max-iterations", type=_number(int, 1, MAX_ITERATIONS), default=500)
    p.add_argument("--time-limit", type=_number(float, 0.0, MAX_SECONDS, low_open=True),
                   default=300.0, help="seconds")
    p.add_argument("--ac", action="store_true",
                   help="validate with AC power flows and add AC feasibility cuts")


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="co-simulate a scenario on a rolling horizon")
    p.add_argument("scenario", help="built-in scenario name or path to a TOML file")
    p.add_argument("--days", type=_number(float, 0.0, 3660.0, low_open=True), default=None,
                   help="days to simulate (default: all the scenario covers)")
    p.add_argument("--horizon", type=_number(int, 1, MAX_HORIZON), default=None,
                   help="window length H in slots")
    p.add_argument("--commit", type=_number(int, 1, MAX_HORIZON), default=1,
                   help="slots K committed per window")
    p.add_argument("--seed", type=_number(int, 0, MAX_SEED), default=0)
    p.add_argument("--noise", type=_number(float, 0.0, 1.0), default=0.0,
                   help="relative std of realised loads and renewables, in [0, 1]")
    p.add_argument("--out", default=None, help="HDF5 file (default: <scenario>.h5)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing output file (or a stopped run's .partial)")
    p.add_argument("--resume", action="store_true",
                   help="continue the stopped run that was writing --out (same options)")
    p.add_argument("--workers", type=_number(int, 1, MAX_WORKERS), default=1,
                   help="microgrid controller processes")
    p.add_argument("--window-time-limit", type=_number(float, 0.0, MAX_SECONDS, low_open=True),
                   default=60.0, help="seconds per coordinated window (then its best "
                   "runnable schedule)")
    p.add_argument("--max-iterations", type=_number(int, 1, MAX_ITERATIONS), default=500,
                   help="per window")
    p.add_argument("--ac", action="store_true",
                   help="add AC feasibility cuts until every window's plan is AC-feasible")
    p.add_argument("--json", action="store_true", help="print the outcome as one JSON object")
    p.add_argument("--no-progress", action="store_true")


def _add_validate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="AC power flow of one operating point (per phase)")
    p.add_argument("scenario", help="built-in scenario name or path to a TOML file")
    p.add_argument("--slot", type=_number(int, 0, MAX_ITERATIONS), default=None,
                   help="the planned point of this slot, from the monolithic reference's plan "
                        "of the horizon (default: the nominal point)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def build_parser() -> argparse.ArgumentParser:
    """The ``gridcosim`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="gridcosim", description="Co-simulation of DSO-coordinated networked microgrids.",
        epilog="exit codes: 0 ok, 1 internal error, 2 invalid input, 3 run or solve failed, "
               "4 finished with degraded windows or failed AC power flows, 5 output error, "
               "130 interrupted")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_solve(sub)
    _add_run(sub)
    _add_validate(sub)
    add_sweep_parser(sub)
    add_plot_parser(sub)
    add_view_parser(sub)
    sub.add_parser("scenarios", help="list the built-in scenarios")
    inspect = sub.add_parser("inspect", help="summarise an HDF5 trajectory")
    inspect.add_argument("file")
    inspect.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _cmd_scenarios(_: argparse.Namespace) -> int:
    from gridcosim.scenarios import builtin_names, load_scenario

    for name in builtin_names():
        print(f"{name:28s} {load_scenario(name).description}")
    return ExitCode.OK


def finite(obj: object) -> object:
    """Replace NaN and infinities (not valid JSON) by ``None``, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj


def _cmd_solve(args: argparse.Namespace) -> int:
    from gridcosim.scenarios import load_scenario
    from gridcosim.simulator.decomposition.settings import DecompositionSettings
    from gridcosim.simulator.solve import solve_exit_code, solve_scenario

    scenario = load_scenario(args.scenario)
    if scenario.market is not None:
        return _solve_market(scenario, args)
    settings = DecompositionSettings(
        integer_method=args.integer_method, stabilisation=args.stabilisation,
        max_iterations=args.max_iterations, time_limit_s=args.time_limit,
        workers=args.workers)
    try:
        solution = solve_scenario(scenario, args.method, settings, ac=args.ac)
    except GridcosimError as err:
        if args.json and not isinstance(err, InputError):
            print(json.dumps({"scenario": scenario.name, "method": args.method,
                              "status": "failed", "reason": str(err)}))
        raise
    doc = finite(solution.to_json_dict())
    if args.json:
        print(json.dumps({"scenario": scenario.name, **doc}))
    else:
        from gridcosim.outputs.tables import solution_table

        print(solution_table(scenario.name, doc))
    return solve_exit_code(solution)


def _solve_market(scenario: Any, args: argparse.Namespace) -> int:
    """``solve`` of a market scenario: its first day (:mod:`simulator.market_solve`)."""
    from gridcosim.outputs.tables import market_day_table
    from gridcosim.simulator.market_solve import market_exit_code, solve_market_day

    if args.ac:
        raise InputError("--ac: a market's DSO cuts follow [market] cut_model")
    result = solve_market_day(scenario, args.method)
    doc = finite(result.to_json_dict())
    print(json.dumps({"scenario": scenario.name, **doc}) if args.json
          else market_day_table(scenario.name, doc))
    return market_exit_code(result)


def _cmd_run(args: argparse.Namespace) -> int:
    from gridcosim.scenarios import load_scenario
    from gridcosim.simulator.cosim import RunSettings
    from gridcosim.simulator.decomposition.settings import DecompositionSettings
    from gridcosim.simulator.runner import run_scenario

    scenario = load_scenario(args.scenario)
    slots = None
    if args.days is not None:
        slots = max(1, int(round(args.days * 24 / scenario.horizon.slot_hours)))
        if slots > scenario.total_slots:
            covered = scenario.total_slots * scenario.horizon.slot_hours / 24
            raise InputError(f"--days {args.days:g}: the scenario covers only {covered:g} "
                             f"days ({scenario.total_slots} slots)")
    settings = RunSettings(
        slots=slots, horizon=args.horizon, commit=args.commit, seed=args.seed,
        noise=args.noise, ac_cuts=args.ac, decomposition=DecompositionSettings(
            workers=args.workers, time_limit_s=args.window_time_limit,
            max_iterations=args.max_iterations))
    source = Path(args.scenario)
    outcome = run_scenario(scenario, args.out or f"{scenario.name}.h5", settings,
                           force=args.force, resume=args.resume,
                           progress=not (args.no_progress or args.json),
                           scenario_file=source if source.is_file() else None)
    _report_run(outcome, args.json)
    return outcome.exit_code


def _cmd_validate(args: argparse.Namespace) -> int:
    from gridcosim.scenarios import load_scenario
    from gridcosim.simulator.validate import validate_point

    report = validate_point(load_scenario(args.scenario), args.slot)
    if args.json:
        print(json.dumps(finite(report.to_json_dict())))
    else:
        vm = [v for _, _, v in report.buses]
        where = f"slot {report.slot}" if report.slot is not None else "nominal point"
        print(f"{report.scenario}, {where}, engine {report.engine}: "
              + ("converged" if report.converged else f"FAILED ({report.message})"))
        if report.converged:
            low = min(report.buses, key=lambda b: b[2])
            print(f"  substation {report.p_sub_kw:.1f} kW / {report.q_sub_kvar:.1f} kvar, "
                  f"losses {report.losses_kw:.2f} kW")
            print(f"  |V| {min(vm):.4f} .. {max(vm):.4f} p.u. over {len(vm)} bus-phases; "
                  f"lowest at bus {low[0]} phase {low[1]}")
    return ExitCode.OK if report.converged else ExitCode.DEGRADED


def _report_run(outcome: Any, as_json: bool) -> None:
    """The outcome on stdout: one line per fact, or one JSON document."""
    failure = outcome.failure
    if as_json:
        print(json.dumps(finite({
            "status": str(outcome.status), "exit_code": int(outcome.exit_code),
            "file": str(outcome.path), "slots": outcome.slots, "windows": outcome.windows,
            "windows_not_optimal": outcome.windows_not_optimal,
            "powerflow_failures": outcome.powerflow_failures,
            "failed_slot": None if failure is None else failure.slot,
            "reason": None if failure is None else failure.reason,
            "resumed_from_slot": outcome.resumed_from_slot, "notes": list(outcome.notes)})))
        return
    where = "" if failure is None else f" at slot {failure.slot}: {failure.reason}"
    lines = [f"run {outcome.status}{where}",
             f"trajectory: {outcome.path} ({outcome.slots} slots, {outcome.windows} windows)"]
    if outcome.windows_not_optimal:
        lines.append(f"{outcome.windows_not_optimal} window(s) not optimal (see "
                     f"'gridcosim inspect {outcome.path}')")
    if outcome.powerflow_failures:
        lines.append(f"{outcome.powerflow_failures} slot(s) whose AC power flow did not "
                     f"converge (bus/vm_pu is NaN there)")
    if outcome.status == "interrupted":
        lines.append("continue it with the same command and --resume")
    lines.extend(outcome.notes)
    print("\n".join(lines))


def _cmd_inspect(args: argparse.Namespace) -> int:
    from gridcosim.outputs.reader import summary, summary_dict

    path = Path(args.file)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        if args.json:
            print(json.dumps(finite(summary_dict(path))))
        else:
            print(summary(path))
    except BrokenPipeError:
        raise
    except (OSError, KeyError, ValueError) as err:
        raise InputError(f"{path}: not a gridcosim trajectory ({_first_line(err)})") from None
    return ExitCode.OK


def _first_line(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text[:200]


_COMMANDS = {"solve": _cmd_solve, "scenarios": _cmd_scenarios, "run": _cmd_run,
             "inspect": _cmd_inspect, "validate": _cmd_validate}
_COMMANDS["plot"] = cmd_plot
_COMMANDS["sweep"] = cmd_sweep
_COMMANDS["view"] = cmd_view


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gridcosim`` console script."""
    args = build_parser().parse_args(argv)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)  # a clean stop, like Ctrl-C
    if hasattr(signal, "SIGXFSZ"):  # a file-size limit: a write error to report, not a crash
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        return int(_COMMANDS[args.command](args))
    except ScenarioError as err:
        print(f"gridcosim: invalid scenario {getattr(args, 'scenario', '')!s}:", file=sys.stderr)
        for problem in err.problems:
            print(f"  - {problem}", file=sys.stderr)
        return ExitCode.INVALID_INPUT
    except InputError as err:
        print(f"gridcosim: {err}", file=sys.stderr)
        return ExitCode.INVALID_INPUT
    except GridcosimError as err:
        print(f"gridcosim: {err}", file=sys.stderr)
        return ExitCode.FAILED
    except KeyboardInterrupt:
        print("gridcosim: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:  # stdout closed early (`gridcosim inspect f.h5 | head`)
        sys.stderr.close()
        return ExitCode.OK
    except Exception:  # noqa: BLE001 - a bug: say so, with the traceback to report
        print("gridcosim: internal error (please report it with this traceback):",
              file=sys.stderr)
        traceback.print_exc()
        return ExitCode.ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
