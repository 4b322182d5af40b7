"""One run of a sweep: the spec a worker gets and the function every engine calls.

:func:`run_one` takes a small frozen :class:`RunSpec` (the variant's scenario as JSON, its
run settings, its file) and returns the run's summary row (a dict of plain values). It is
a top-level function of a light module, so a process pool or a dask worker can pickle it
by reference. It runs the variant with :func:`~gridcosim.simulator.runner.run_scenario`,
resuming a stopped run's file, and never raises for a failed run: the row says why.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gridcosim.outputs.layout import attr_value, open_trajectory
from gridcosim.scenarios.loader import scenario_from_dict
from gridcosim.simulator.cosim import RunSettings
from gridcosim.simulator.run_files import OutputPathError, partial_path
from gridcosim.simulator.runner import run_scenario
from gridcosim.simulator.status import RunStatus
from gridcosim.simulator.sweep_grid import PARAM_COLUMN
from gridcosim.simulator.sweep_summary import Column, RunAction, exit_code_of, outcome_figures

#: One run at a time per process: Pyomo models are not thread-safe (a dask worker with
#: several threads runs its runs one after the other).
_RUN_LOCK = threading.Lock()
#: Set while this process runs a run: a pool worker's SIGINT or SIGTERM then stops the run
#: (its file is marked ``interrupted``, and a re-run resumes it); between runs it waits.
_RUNNING = threading.Event()
#: Set by that signal: the worker starts no further run (the sweep is stopping).
_STOPPING = threading.Event()


@dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs for one run (small, picklable).

    Attributes:
        index: The run's position in the grid.
        key: Hash of the scenario and the run settings (also in the file name).
        params: The swept parameters' values, ``(path, value)``.
        scenario_json: The variant's validated scenario (``Scenario.model_dump_json``).
        settings: Its run settings.
        out: The trajectory file (absolute; workers must see the same path).
        force: Replace an existing trajectory instead of reusing or resuming it.

    """

    index: int
    key: str
    params: tuple[tuple[str, Any], ...]
    scenario_json: str
    settings: RunSettings
    out: str
    force: bool = False

    @property
    def path(self) -> Path:
        """The trajectory file."""
        return Path(self.out)


def run_one(spec: RunSpec) -> dict[str, Any]:
    """Run one variant and return its summary row: the function every engine calls.

    Never raises for a run that fails: an exception is a ``failed`` row with the reason.
    """
    tick = time.perf_counter()
    if _STOPPING.is_set():
        return spec_row(spec, RunStatus.INTERRUPTED, "the sweep stopped before this run",
                        RunAction.NOT_RUN, 0.0)
    try:
        with _RUN_LOCK:
            _RUNNING.set()
            status, reason, action = _execute(spec)
    except Exception as err:  # noqa: BLE001 - recorded in the row; the sweep goes on
        status, reason, action = RunStatus.FAILED, f"{type(err).__name__}: {err}", RunAction.RAN
    finally:
        _RUNNING.clear()
    return spec_row(spec, status, reason, action, time.perf_counter() - tick)


def _execute(spec: RunSpec) -> tuple[RunStatus, str | None, RunAction]:
    """Run, or resume a stopped run's file (redone if it cannot be resumed)."""
    scenario = scenario_from_dict(json.loads(spec.scenario_json))
    stopped = not spec.force and (partial_path(spec.path).exists() or _unfinished(spec.path))
    action, outcome = RunAction.RAN, None
    if stopped:
        try:
            outcome = run_scenario(scenario, spec.path, spec.settings, resume=True,
                                   progress=False)
            action = RunAction.RESUMED
        except OutputPathError:  # another run's leftovers under this run's name
            pass
    if outcome is None:
        outcome = run_scenario(scenario, spec.path, spec.settings, progress=False,
                               force=spec.force or stopped)
    reason = None if outcome.failure is None else outcome.failure.reason
    return outcome.status, reason, action


def _unfinished(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        with open_trajectory(path) as f:
            return attr_value(f.attrs.get("status")) != RunStatus.FINISHED
    except (OSError, KeyError, ValueError):
        return True


def spec_row(spec: RunSpec, status: RunStatus, reason: str | None, action: RunAction,
             wall_s: float) -> dict[str, Any]:
    """A run's summary row: its parameters and status, then its file's figures."""
    status = RunStatus(status)
    figures = outcome_figures(spec.path, status)
    row = {Column.RUN: spec.index, Column.FILE: spec.path.name, Column.KEY: spec.key,
           Column.SEED: spec.settings.seed,
           **{PARAM_COLUMN + path: value for path, value in spec.params},
           Column.STATUS: str(status), Column.REASON: reason,
           Column.EXIT_CODE: int(exit_code_of(status, figures)), Column.ACTION: str(action),
           **figures, Column.WALL_S: float(wall_s)}
    return {str(k): v for k, v in row.items()}


def failed_row(spec: RunSpec, reason: str, wall_s: float = float("nan")) -> dict[str, Any]:
    """The row of a run whose worker gave no row (it died, or the engine failed)."""
    return spec_row(spec, RunStatus.FAILED, reason, RunAction.RAN, wall_s)


def init_pool_worker() -> None:
    """Initialise a local pool's worker: Ctrl-C and SIGTERM stop a run, not the worker."""
    signal.signal(signal.SIGINT, _stop_run)
    signal.signal(signal.SIGTERM, _stop_run)


def _stop_run(signum: int, frame: object) -> None:
    _STOPPING.set()
    if _RUNNING.is_set():
        raise KeyboardInterrupt
