"""Run a co-simulation end to end: output files, recorder, statuses, resume, progress.

:func:`run_scenario` is what ``gridcosim run`` calls. It plans the output files
(:mod:`~gridcosim.simulator.run_files`), steps the model while the recorder flushes every
committed window, and always ends with an honest status in the file: ``finished``,
``interrupted`` (Ctrl-C; the unfinished window is dropped) or ``failed`` (the failing slot
and the reason). With ``resume=True`` it continues a stopped run from its last complete
window, and the finished file equals an uninterrupted run's.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from gridcosim.outputs.layout import CONVERGENCE, committed_counts, open_trajectory
from gridcosim.outputs.overview import failed_power_flows
from gridcosim.outputs.prefix import ResumePoint, copy_prefix, resume_point
from gridcosim.scenarios.digest import data_digest
from gridcosim.scenarios.errors import GridcosimError, OutputError
from gridcosim.scenarios.schema import Scenario
from gridcosim.simulator.cosim import CoSimulation, RunFailure, RunSettings
from gridcosim.simulator.market_sim import MarketSimulation
from gridcosim.simulator.recording import RESULT_OPTIONS, Recorder, run_attributes
from gridcosim.simulator.run_files import OutputPathError, OutputPlan, plan_output, settle
from gridcosim.simulator.status import ExitCode, RunStatus, WindowStatus

#: What a run drives: the DSO–microgrid co-simulation or a market simulation.
Simulation = CoSimulation | MarketSimulation


@dataclass(frozen=True)
class RunOutcome:
    """What a run did, as the file records it.

    Attributes:
        status: ``finished``, ``interrupted`` or ``failed``.
        path: Where the trajectory is (``out``, or ``out.partial`` beside an earlier one).
        slots: Slots in the file.
        windows: Coordinated windows in the file.
        windows_not_optimal: Windows whose status is not ``optimal``.
        powerflow_failures: Slots whose AC power flow did not converge.
        failure: Why the run stopped early (``None`` if it finished).
        resumed_from_slot: The slot a resumed run continued from (``None``: fresh run).

    """

    status: RunStatus
    path: Path
    slots: int
    windows: int
    windows_not_optimal: int = 0
    powerflow_failures: int = 0
    failure: RunFailure | None = None
    resumed_from_slot: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def exit_code(self) -> ExitCode:
        """The command line's exit code for this outcome (:class:`ExitCode`)."""
        if self.status is RunStatus.INTERRUPTED:
            return ExitCode.INTERRUPTED
        if self.status is RunStatus.FAILED:
            output = self.failure is not None and self.failure.output_error
            return ExitCode.OUTPUT_ERROR if output else ExitCode.FAILED
        if self.windows_not_optimal or self.powerflow_failures:
            return ExitCode.DEGRADED
        return ExitCode.OK


def run_scenario(scenario: Scenario, out: str | Path, settings: RunSettings | None = None,
                 *, force: bool = False, resume: bool = False, progress: bool = True,
                 scenario_file: Path | None = None) -> RunOutcome:
    """Simulate ``scenario`` and write its trajectory to ``out``.

    Args:
        scenario: A validated scenario.
        out: The trajectory file.
        settings: How the run is driven.
        force: Replace an existing ``out`` (or a stopped run's ``out.partial``).
        resume: Continue the stopped run that was writing ``out`` (same settings).
        progress: Show a progress bar on stderr.
        scenario_file: The scenario's file, which ``out`` must not be.

    Raises:
        OutputPathError: If the output rules forbid the run, or a resumed run's settings
            differ from the stopped run's (nothing is written).
        RunSettingsError: If the settings cannot drive a run.

    """
    settings = settings or RunSettings()
    plan = plan_output(out, scenario_file=scenario_file, force=force, resume=resume)
    model = make_model(scenario, settings)
    point = _resume_from(plan, model) if plan.source is not None else None
    if point is not None and point.attrs.get("status") == RunStatus.FINISHED:
        model.close()
        return _finished_already(plan, point)
    recorder = _start(plan, model, point)
    return _drive(model, recorder, plan, point, progress)


def make_model(scenario: Scenario, settings: RunSettings) -> Simulation:
    """The simulation a scenario describes: a market, or the DSO–microgrid co-simulation."""
    if scenario.market is not None:
        return MarketSimulation(scenario, settings)
    return CoSimulation(scenario, settings)


def input_digest(scenario: Scenario, settings: RunSettings) -> str:
    """The digest of the data a run of ``scenario`` reads (``input_sha256``, :mod:`.digest`)."""
    model_class = MarketSimulation if scenario.market is not None else CoSimulation
    return data_digest(*model_class.read_inputs(scenario, settings))


def _resume_from(plan: OutputPlan, model: Simulation) -> ResumePoint:
    """The stopped run's last checkpoint, after checking it is the same run."""
    try:
        point = resume_point(plan.source)
    except (OSError, ValueError) as err:
        raise OutputPathError(f"--resume: cannot read {plan.source}: {err}") from None
    want = {"scenario_json": model.scenario.model_dump_json(), "seed": model.settings.seed,
            **{k: v for k, v in run_attributes(model).items() if k in RESULT_OPTIONS}}
    for key, value in want.items():
        got = point.attrs.get(key)
        if key == "input_sha256" and got != value:
            raise OutputPathError(
                f"--resume: the data {plan.source} was written with are not the data the "
                f"scenario reads now (a network or time-series file changed, or the file "
                f"predates the input digest); start the run again with --force")
        if not _same(got, value):
            raise OutputPathError(
                f"--resume: {plan.source} was written with a different {key} "
                f"(file: {_show(got)}, now: {_show(value)}); resume with the same options")
    return point


def _same(a: Any, b: Any) -> bool:
    if isinstance(b, bool) or isinstance(a, bool):
        return bool(a) == bool(b)
    if isinstance(b, float) and isinstance(a, int | float):
        return math.isclose(a, b, rel_tol=0.0, abs_tol=0.0)
    return a == b


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _finished_already(plan: OutputPlan, point: ResumePoint) -> RunOutcome:
    return RunOutcome(RunStatus.FINISHED, point.path, point.slots, point.windows,
                      notes=(f"{point.path} is already finished: nothing to resume",))


def _start(plan: OutputPlan, model: Simulation, point: ResumePoint | None) -> Recorder:
    """Create the partial file; for a resumed run copy the prefix and restore the state."""
    source = plan.source
    if point is not None and source == plan.partial:
        source = plan.partial.rename(plan.moved_aside)
        point = ResumePoint(source, point.attrs, point.slots, point.windows, point.state)
    recorder = Recorder(plan.partial, model)
    if point is not None and point.state is not None:
        copy_prefix(point, recorder.writer)
        model.restore(point.state)
    if source is not None and source == plan.moved_aside:
        source.unlink()
    return recorder


def _drive(model: Simulation, recorder: Recorder, plan: OutputPlan,
           point: ResumePoint | None, progress: bool) -> RunOutcome:
    """Step to the end or the first failure; record the status; place the file.

    An unexpected exception (a bug) is recorded as ``failed`` too, then raised.
    """
    model.recorder = recorder
    start = model.slot
    tqdm.set_lock(threading.RLock())  # not tqdm's default multiprocessing lock (semaphores)
    bar = tqdm(total=model.total_slots, initial=start, unit="slot", disable=not progress,
               desc=model.scenario.name)
    status, internal = RunStatus.FINISHED, None
    try:
        while model.running:
            model.step()
            bar.update(1)
        status = model.status
    except KeyboardInterrupt:
        status = _stopped(model, recorder, RunStatus.INTERRUPTED,
                          "interrupted (Ctrl-C or SIGTERM)")
    except OutputError as err:
        status = RunStatus.FAILED
        model.failure = RunFailure(recorder.writer.slots_committed, str(err), output_error=True)
    except GridcosimError as err:
        status = _stopped(model, recorder, RunStatus.FAILED, str(err))
    except Exception as err:  # noqa: BLE001 - a bug: recorded as failed, then raised
        status = _stopped(model, recorder, RunStatus.FAILED,
                          f"internal error: {type(err).__name__}: {err}")
        internal = err
    finally:
        bar.close()
        model.close()
    outcome = _finish(model, recorder, plan, status, None if point is None else start)
    if internal is not None:
        raise internal
    return outcome


def _stopped(model: Simulation, recorder: Recorder, status: RunStatus,
             reason: str) -> RunStatus:
    """Note why the run stops at the current slot and drop its unfinished window."""
    model.failure = RunFailure(model.started_slot, reason)
    recorder.discard()
    return status


def _close(model: Simulation, recorder: Recorder, status: RunStatus) -> None:
    failure = model.failure
    attrs: dict[str, int | float | str | bool] = {
        "status_reason": "" if failure is None else failure.reason,
        "failed_slot": -1 if failure is None else int(failure.slot)}
    try:
        recorder.close(status, attrs)
    except OutputError as err:
        if failure is None or not failure.output_error:
            model.failure = RunFailure(model.started_slot, str(err), output_error=True)


def _finish(model: Simulation, recorder: Recorder, plan: OutputPlan, status: RunStatus,
            resumed_from: int | None) -> RunOutcome:
    _close(model, recorder, status)
    if model.failure is not None and model.failure.output_error:
        status = RunStatus.FAILED
    path = settle(plan, finished=status is RunStatus.FINISHED)
    slots, windows, not_optimal, pf_failed = _counts(path)
    notes = ()
    if path != plan.out:
        notes = (f"the earlier trajectory {plan.out} was kept; this run's is in {path}",)
    return RunOutcome(status, path, slots, windows, not_optimal, pf_failed, model.failure,
                      resumed_from, notes)


def _counts(path: Path) -> tuple[int, int, int, int]:
    """Slots, windows, windows not optimal and failed AC power flows, read from the file."""
    try:
        with open_trajectory(path) as f:
            slots, windows, _ = committed_counts(f)
            statuses = [str(s) for s in f[CONVERGENCE]["status"].asstr()[:windows]]
            failed = failed_power_flows(f, slots)
    except (OSError, KeyError):
        return 0, 0, 0, 0
    not_optimal = sum(s != WindowStatus.OPTIMAL for s in statuses)
    return slots, len(statuses), not_optimal, failed
