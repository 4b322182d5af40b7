"""Record a co-simulation into an HDF5 trajectory (one file per run).

The recorder reads each agent's public state after every slot and buffers one row per
entity kind; after each coordinated window it buffers a convergence row. When a window's
committed slots are all executed it buffers the model's checkpoint
(:meth:`~gridcosim.simulator.cosim.CoSimulation.snapshot`) and flushes: the file always
holds whole committed windows, each with its convergence row, its iteration rows (one
per master solve of the decomposition; a market day has none) and the state to resume
from. A window that fails keeps its convergence and iteration rows (its status says why)
and no slot.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from gridcosim.agents.base import GridAgent, Record
from gridcosim.agents.dso import WindowReport
from gridcosim.outputs.convergence import ColumnKind
from gridcosim.outputs.hdf5 import TrajectoryWriter
from gridcosim.scenarios.series import time_origin
from gridcosim.simulator.decomposition.cut_families import CUT_FAMILIES

#: The convergence table's columns (one row per coordinated window): kind and meaning.
CONVERGENCE: dict[str, tuple[ColumnKind, str]] = {
    "start_slot": ("int", "first slot of the window"),
    "slots": ("int", "slots in the window"),
    "status": ("str", "the window's outcome (optimal, not_converged, infeasible, ...)"),
    "iterations": ("int", "master solves of the decomposition"),
    "lower_bound_usd": ("float", "the master's lower bound on the window cost"),
    "cost_usd": ("float", "cost of the adopted schedule (NaN without one)"),
    "gap": ("float", "relative gap between them (inf without a finite bound)"),
    "wall_s": ("float", "wall time of the coordination"),
    **{f"cuts_{k}": ("int", f"cuts of the family {k!s} added") for k in CUT_FAMILIES},
    "infeasible_microgrids": ("str", "comma-separated names of microgrids with no feasible"
                                     " schedule (empty if none)"),
}
#: The convergence columns' kinds (what the writer declares).
CONVERGENCE_COLUMNS: dict[str, ColumnKind] = {k: kind for k, (kind, _) in CONVERGENCE.items()}

#: The iterations table's columns (one row per master solve; the writer adds ``window``,
#: the window's convergence row): kind and meaning.
ITERATIONS: dict[str, tuple[ColumnKind, str]] = {
    "start_slot": ("int", "first slot of the window"),
    "iteration": ("int", "master solve of the window (1, 2, ...)"),
    "lower_bound_usd": ("float", "the master's lower bound after this solve"),
    "upper_bound_usd": ("float", "cost of the best runnable schedule so far (inf: none yet)"),
    "gap": ("float", "relative gap between them (inf without a finite bound)"),
    **{f"cuts_{k}": ("int", f"cuts of the family {k!s} in the master after this iteration "
                            f"(cumulative)") for k in CUT_FAMILIES},
    "master_wall_s": ("float", "wall time of the master solve"),
    "subproblems_wall_s": ("float", "wall time of the controllers' answers"),
    "overhead_wall_s": ("float", "wall time of the rest of the iteration (price rounds, AC "
                                 "checks, bookkeeping)"),
}
#: The iteration columns' kinds (what the writer declares).
ITERATION_COLUMNS: dict[str, ColumnKind] = {k: kind for k, (kind, _) in ITERATIONS.items()}

#: Run options stored as root attributes; a resumed run must give the same values.
RESULT_OPTIONS = ("total_slots", "horizon_slots", "commit_slots", "slot_hours", "noise",
                  "ac_cuts", "price_signals", "max_iterations", "time_limit_s", "input_sha256")


def _version() -> str:
    try:
        return version("gridcosim")
    except PackageNotFoundError:
        return "unknown"


def time_coordinate(scenario: Any) -> tuple[str, str | None]:
    """The time scales' units and time zone for a run of ``scenario``.

    ``hours since <start of slot 0 with its UTC offset>`` and the zone's IANA name when the
    scenario's series have dates (a time-series file, a shipped profile set:
    :func:`~gridcosim.scenarios.series.time_origin`), else ``hours since start of run``
    (stored as ``hours`` with a ``time_origin`` attribute) and no zone.
    """
    origin = time_origin(scenario)
    if origin is None:
        return "hours since start of run", None
    return origin.cf_units, origin.time_zone


def run_attributes(model: Any) -> dict[str, int | float | str | bool]:
    """How the run is driven (root attributes next to the seed)."""
    st, dec = model.settings, model.settings.decomposition
    return {"total_slots": int(model.total_slots), "horizon_slots": int(model.horizon),
            "commit_slots": int(st.commit), "slot_hours": float(model.series.slot_hours),
            "noise": float(st.noise), "ac_cuts": bool(st.ac_cuts),
            "price_signals": bool(dec.price_signals), "max_iterations": int(dec.max_iterations),
            "time_limit_s": float(dec.time_limit_s), "workers": int(dec.workers),
            "input_sha256": str(model.input_digest)}


@dataclass(frozen=True)
class RecordPlan:
    """What the recorder writes: per entity kind, its declaration and the agents with it.

    Built from the agents' :attr:`~gridcosim.agents.base.GridAgent.RECORDS`, in the order
    the agents were created; a new agent kind needs no change here.
    """

    kinds: dict[str, tuple[Record, list[GridAgent]]]

    @classmethod
    def of(cls, model: Any) -> RecordPlan:
        """The plan of a model's agents."""
        kinds: dict[str, tuple[Record, list[GridAgent]]] = {}
        for agent in model.agents:
            for record in getattr(agent, "RECORDS", ()):
                declared, agents = kinds.setdefault(record.kind, (record, []))
                if declared != record:
                    raise ValueError(f"two declarations of the kind {record.kind!r}")
                agents.append(agent)
        return cls(kinds)

    def entities(self) -> dict[str, list[str]]:
        """Entity ids per kind."""
        return {kind: [i for a in agents for i in a.record_ids(record)]
                for kind, (record, agents) in self.kinds.items()}

    def kind_attrs(self) -> dict[str, dict[str, str]]:
        """Per kind, its group's attributes: what an entity is, whose cost includes it."""
        return {kind: {"entity": record.entity, **(
            {"cost_included_in": record.cost_in} if record.cost_in else {})}
            for kind, (record, _) in self.kinds.items()}

    def variables(self) -> dict[str, list[str]]:
        """Variable names per kind."""
        return {kind: [o.name for o in record.outputs]
                for kind, (record, _) in self.kinds.items()}

    def values(self, *, initial: bool = False) -> dict[str, dict[str, list[float]]]:
        """Every agent's current values, per kind and variable (entities in order)."""
        out: dict[str, dict[str, list[float]]] = {}
        for kind, (record, agents) in self.kinds.items():
            names = [o.name for o in record.outputs if o.initial or not initial]
            if not names:
                continue
            columns: dict[str, list[float]] = {name: [] for name in names}
            for agent in agents:
                values = agent.record_values(record, initial=initial)
                for name in names:
                    columns[name].extend(values[name])
            out[kind] = columns
        return out


class Recorder:
    """Appends every slot of a :class:`~gridcosim.simulator.cosim.CoSimulation` to HDF5.

    Args:
        path: The file to write (replaced if it exists: the runner decides).
        model: The model to record (its entities, scenario and settings).

    """

    def __init__(self, path: str | Path, model: Any):
        self.path = Path(path)
        self.wall_s = 0.0
        tick = time.perf_counter()
        self.plan = RecordPlan.of(model)
        units, zone = time_coordinate(model.scenario)
        self._writer = TrajectoryWriter(
            self.path, scenario=model.scenario.name,
            scenario_json=model.scenario.model_dump_json(), seed=model.settings.seed,
            entities=self.plan.entities(), variables=self.plan.variables(),
            convergence=CONVERGENCE_COLUMNS, time_units=units,
            version=_version(), run_attrs=run_attributes(model),
            initial=self.plan.values(initial=True), kind_attrs=self.plan.kind_attrs(),
            iterations=ITERATION_COLUMNS, time_zone=zone)
        self.wall_s += time.perf_counter() - tick

    @property
    def writer(self) -> TrajectoryWriter:
        """The underlying trajectory writer."""
        return self._writer

    def __call__(self, model: Any, slot: int) -> None:
        """Buffer slot ``slot``; at the end of a window, checkpoint and flush."""
        tick = time.perf_counter()
        rows = self.plan.values()
        self._writer.append_slots([slot * model.series.slot_hours],
                                  {k: {v: np.atleast_2d(a) for v, a in d.items()}
                                   for k, d in rows.items()})
        if model.window_complete(slot):
            self._writer.append_checkpoint(json.dumps(model.snapshot()))
            self._writer.flush()
        self.wall_s += time.perf_counter() - tick

    def window(self, model: Any, report: WindowReport) -> None:
        """Buffer the convergence row of a coordinated window, with its iteration rows.

        They are flushed with the window's last committed slot, or when the run closes
        after the window failed (then with its status and no slot).
        """
        tick = time.perf_counter()
        self._writer.append_convergence(convergence_row(report), iteration_rows(report))
        self.wall_s += time.perf_counter() - tick

    def close(self, status: str = "finished",
              attrs: dict[str, int | float | str | bool] | None = None) -> None:
        """Flush what belongs in the file and record the run's final status."""
        self._writer.close(status, attrs)

    def discard(self) -> None:
        """Drop the slots of a window that did not finish (an interrupted run)."""
        self._writer.discard()


def convergence_row(report: WindowReport) -> dict[str, object]:
    """The convergence-table row of one window."""
    return {"start_slot": report.start, "slots": report.slots, "status": report.status,
            "iterations": report.iterations, "lower_bound_usd": report.lower_bound_usd,
            "cost_usd": report.cost_usd, "gap": report.gap, "wall_s": report.wall_s,
            **{f"cuts_{k}": int(report.cuts.get(k, 0)) for k in CUT_FAMILIES},
            "infeasible_microgrids": ",".join(report.infeasible_microgrids)}


def iteration_rows(report: WindowReport) -> list[dict[str, object]]:
    """The iterations-table rows of one window (none for a market day)."""
    return [{"start_slot": report.start, "iteration": r.iteration,
             "lower_bound_usd": r.lower_bound, "upper_bound_usd": r.upper_bound, "gap": r.gap,
             **{f"cuts_{k}": int(r.cuts.get(k, 0)) for k in CUT_FAMILIES},
             "master_wall_s": r.master_s, "subproblems_wall_s": r.subproblem_s,
             "overhead_wall_s": r.overhead_s} for r in report.records]
