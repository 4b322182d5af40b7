"""Parameter sweeps: the grid of variants, run in process, in a local pool or on dask.

:func:`run_sweep` validates every variant (:mod:`~gridcosim.simulator.sweep_grid`), plans
one trajectory per run in the output folder, skips the runs whose finished trajectory is
already there, and hands the others to an engine: in this process (``workers=1``), a local
process pool that lives for the sweep (``workers > 1``), or a dask.distributed cluster
(``client`` or ``scheduler``). Every engine calls the same top-level function,
:func:`run_one`, with a small frozen :class:`RunSpec`, and gets the run's summary row back;
the table is written as ``summary.parquet`` and ``summary.csv`` (:mod:`.sweep_summary`).

A run's file is ``<scenario>-<key>.h5``, the key a hash of its scenario and run settings,
so a re-run (or a larger grid) finds the runs already done. A run is reused only if its
file is finished and records the same scenario, seed and run options; a stopped run's file
is resumed; a failed run does not stop the sweep: its row has the status and the reason.
Results do not depend on the engine or the number of workers: each run has its own seed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from gridcosim.outputs.layout import attr_value, open_trajectory
from gridcosim.scenarios.errors import GridcosimError, InputError
from gridcosim.scenarios.loader import scenario_from_dict
from gridcosim.scenarios.schema import Scenario
from gridcosim.simulator.cosim import RunSettings
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.simulator.run_files import partial_path
from gridcosim.simulator.runner import input_digest
from gridcosim.simulator.status import ExitCode, RunStatus
from gridcosim.simulator.sweep_engines import Engine, make_engine
from gridcosim.simulator.sweep_grid import Variant, build_variants, resolve_params
from gridcosim.simulator.sweep_run import RunSpec, run_one, spec_row
from gridcosim.simulator.sweep_summary import (
    Column,
    RunAction,
    read_summary,
    summary_table,
    write_summary,
)

#: The base run settings of a sweep: ``gridcosim run``'s defaults (a 60 s window time limit),
#: the same from Python and from the command line.
SWEEP_SETTINGS = RunSettings(decomposition=DecompositionSettings(time_limit_s=60.0))
#: Root attributes a reused file must match, and the run settings they record.
_RECORDED = {"commit_slots": lambda s: s.commit, "noise": lambda s: s.noise,
             "ac_cuts": lambda s: s.ac_cuts,
             "price_signals": lambda s: s.decomposition.price_signals,
             "max_iterations": lambda s: s.decomposition.max_iterations,
             "time_limit_s": lambda s: s.decomposition.time_limit_s}


@dataclass(frozen=True)
class SweepResult:
    """What a sweep did.

    Attributes:
        out_dir: The folder of the trajectories and the summary.
        table: The summary, one row per run (``summary.parquet`` holds the same).
        parquet: ``summary.parquet``.
        csv: ``summary.csv``.
        engine: Where the runs ran.

    """

    out_dir: Path
    table: pd.DataFrame
    parquet: Path
    csv: Path
    engine: Engine

    def count(self, action: RunAction) -> int:
        """Runs the sweep ran, resumed or reused."""
        return int((self.table[Column.ACTION] == action).sum()) if len(self.table) else 0

    @property
    def exit_code(self) -> ExitCode:
        """The worst run's: 3 if a run failed, else 4 if one is degraded, else 0."""
        codes = {int(c) for c in self.table[Column.EXIT_CODE]} if len(self.table) else set()
        if ExitCode.INTERRUPTED in codes:
            return ExitCode.INTERRUPTED
        if codes & {ExitCode.ERROR, ExitCode.FAILED, ExitCode.OUTPUT_ERROR}:
            return ExitCode.FAILED
        return ExitCode.DEGRADED if ExitCode.DEGRADED in codes else ExitCode.OK


def run_sweep(scenario: Scenario, params: Mapping[str, Sequence[Any] | str],
              out_dir: str | Path, *, seeds: int = 1, settings: RunSettings | None = None,
              workers: int = 1, client: Any = None, scheduler: str | None = None,
              force: bool = False, progress: bool = True) -> SweepResult:
    """Run every variant of ``scenario`` on the grid of ``params``; write the summary.

    Args:
        scenario: The base scenario.
        params: Dotted path -> values (``{"network.load_scale": [1.0, 1.3]}``, or the
            command line's text ``"1.0,1.3"``); run options as ``run.<option>``.
        out_dir: Folder of the trajectories and the summary (created if missing).
        seeds: Runs per grid point, seeds ``settings.seed``, ``settings.seed + 1``, ...
        settings: The base run settings (default :data:`SWEEP_SETTINGS`).
        workers: Local processes (1: in this process).
        client: A ``dask.distributed.Client``: run on its cluster.
        scheduler: Address of a dask scheduler to connect to (instead of ``client``).
        force: Redo every run, replacing its trajectory.
        progress: A progress bar over the runs on stderr.

    Raises:
        InputError: For a bad parameter, value or folder (before anything runs).

    """
    engine = make_engine(workers, client, scheduler)
    base = settings or SWEEP_SETTINGS
    variants = build_variants(scenario, resolve_params(scenario, params), base, seeds)
    folder = _prepare(Path(out_dir))
    specs = [_spec(i, v, folder, force) for i, v in enumerate(variants)]
    walls = _earlier_walls(folder)
    rows = [_reused_row(s, walls.get(s.key)) for s in specs if _complete(s)]
    done = {r[Column.RUN] for r in rows}
    pending = [s for s in specs if s.index not in done]
    with engine:
        try:
            _collect(engine.rows(pending), rows, len(specs), progress)
        finally:
            table = summary_table(rows)
            parquet, csv = write_summary(table, folder)
    return SweepResult(folder, table, parquet, csv, engine.kind)


def _prepare(folder: Path) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"--out {folder}: cannot create the folder ({err})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"--out {folder}: the folder is not writable")
    return folder.resolve()


def run_key(variant: Variant) -> str:
    """A hash of the variant's scenario and run settings (``workers`` left out)."""
    settings = dataclasses.asdict(variant.settings)
    settings["decomposition"].pop("workers", None)
    doc = {"scenario": json.loads(variant.scenario.model_dump_json()), "settings": settings}
    text = json.dumps(doc, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _spec(index: int, variant: Variant, folder: Path, force: bool) -> RunSpec:
    key = run_key(variant)
    out = folder / f"{variant.scenario.name}-{key[:12]}.h5"
    return RunSpec(index, key, variant.values, variant.scenario.model_dump_json(),
                   variant.settings, str(out), force)


def _complete(spec: RunSpec) -> bool:
    """Whether the run's finished trajectory is there, for this scenario, settings and data."""
    if spec.force or not spec.path.is_file() or partial_path(spec.path).exists():
        return False
    try:
        with open_trajectory(spec.path) as f:
            attrs = {k: attr_value(v) for k, v in f.attrs.items()}
    except (OSError, KeyError, ValueError):
        return False
    want = {name: get(spec.settings) for name, get in _RECORDED.items()}
    want.update(status=RunStatus.FINISHED, scenario_json=spec.scenario_json,
                seed=spec.settings.seed)
    if spec.settings.horizon is not None:
        want["horizon_slots"] = spec.settings.horizon
    if spec.settings.slots is not None:
        want["total_slots"] = spec.settings.slots
    if not all(_same(attrs.get(k), v) for k, v in want.items()):
        return False
    return attrs.get("input_sha256") == _input_digest(spec)


def _input_digest(spec: RunSpec) -> str | None:
    """The digest of the data the run reads now (``None``: they cannot be read)."""
    try:
        return input_digest(scenario_from_dict(json.loads(spec.scenario_json)), spec.settings)
    except (GridcosimError, OSError, ValueError):
        return None  # the run itself reports why


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, bool):
        return got is not None and bool(got) == want
    return got == want


def _earlier_walls(folder: Path) -> dict[str, float]:
    """The wall times an earlier sweep measured, by run key."""
    table = read_summary(folder)
    if table is None or Column.KEY not in table or Column.WALL_S not in table:
        return {}
    return dict(zip(table[Column.KEY], table[Column.WALL_S], strict=True))


def _collect(source: Iterator[dict[str, Any]], rows: list[dict[str, Any]], total: int,
             progress: bool) -> None:
    """Gather the engine's rows under a progress bar; stop when a run was interrupted."""
    with tqdm(total=total, initial=len(rows), unit="run", desc="sweep",
              disable=not progress) as bar:
        for row in source:
            rows.append(row)
            bar.update(1)
            if row[Column.STATUS] == RunStatus.INTERRUPTED:
                raise KeyboardInterrupt


def _reused_row(spec: RunSpec, wall_s: float | None) -> dict[str, Any]:
    wall = float("nan") if wall_s is None else float(wall_s)
    return spec_row(spec, RunStatus.FINISHED, None, RunAction.REUSED, wall)


__all__ = ["Engine", "RunSpec", "SweepResult", "run_one", "run_sweep"]
