"""Record a co-simulation into an HDF5 trajectory (one file per run).

The recorder reads each agent's public state after every slot and buffers one row per
entity kind; after each coordinated window it buffers a convergence row. When a window's
committed slots are all executed it buffers the model's checkpoint
(:meth:`~gridcosim.simulator.cosim.CoSimulation.snapshot`) and flushes: the file always
holds whole committed windows, each with its convergence row and the state to resume
from. A window that fails keeps its convergence row (its status says why) and no slot.
"""

from __future__ import annotations

import json
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from gridcosim.agents.dso import WindowReport
from gridcosim.outputs.convergence import ColumnKind
from gridcosim.outputs.hdf5 import TrajectoryWriter

VARIABLES = {
    "microgrid": ("p_ex_kw", "q_ex_kvar", "deviation_kw", "cost_usd"),
    "generator": ("p_kw", "q_kvar", "on", "cost_usd"),
    "renewable": ("p_kw", "q_kvar", "available_kw"),
    "storage": ("p_kw", "e_kwh"),
    "customer": ("p_kw", "q_kvar"),
    "bus": ("vm_lin_pu", "vm_pu"),
    "substation": ("p_kw", "q_kvar", "price_usd_per_kwh", "cost_usd", "ac_losses_kw",
                   "max_abs_vm_gap_pu", "ac_converged"),
    "svc": ("q_kvar",),
}

#: Cut families counted in the convergence table (``cuts_<family>``).
CUT_FAMILIES = ("unified", "lagrangian", "restoration", "branch", "ac")

#: The convergence table's columns, one row per coordinated window.
CONVERGENCE_COLUMNS: dict[str, ColumnKind] = {
    "start_slot": "int", "slots": "int", "status": "str", "iterations": "int",
    "lower_bound_usd": "float", "cost_usd": "float", "gap": "float", "wall_s": "float",
    **{f"cuts_{k}": "int" for k in CUT_FAMILIES},
    "infeasible_microgrids": "str",
}

#: Run options stored as root attributes; a resumed run must give the same values.
RESULT_OPTIONS = ("total_slots", "horizon_slots", "commit_slots", "slot_hours", "noise",
                  "ac_cuts", "price_signals", "max_iterations", "time_limit_s")


def _version() -> str:
    try:
        return version("gridcosim")
    except PackageNotFoundError:
        return "unknown"


def run_attributes(model: Any) -> dict[str, int | float | str | bool]:
    """How the run is driven (root attributes next to the seed)."""
    st, dec = model.settings, model.settings.decomposition
    return {"total_slots": int(model.total_slots), "horizon_slots": int(model.horizon),
            "commit_slots": int(st.commit), "slot_hours": float(model.series.slot_hours),
            "noise": float(st.noise), "ac_cuts": bool(st.ac_cuts),
            "price_signals": bool(dec.price_signals), "max_iterations": int(dec.max_iterations),
            "time_limit_s": float(dec.time_limit_s), "workers": int(dec.workers)}


def entities(model: Any) -> dict[str, list[str]]:
    """Entity ids per kind, in the order the recorder writes them."""
    mcs = model.microgrids
    return {
        "microgrid": [mc.spec.name for mc in mcs],
        "generator": [g.spec.name for mc in mcs for g in mc.generators],
        "renewable": [r.spec.name for mc in mcs for r in mc.renewables],
        "storage": [s.spec.name for mc in mcs for s in mc.storage],
        "customer": [str(c.bus) for c in model.customers],
        "bus": [str(b) for b in model.dso.bus_ids],
        "substation": ["substation"],
        "svc": [f"svc{s.bus}" for s in model.scenario.svcs],
    }


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
        self._writer = TrajectoryWriter(
            self.path, scenario=model.scenario.name,
            scenario_json=model.scenario.model_dump_json(), seed=model.settings.seed,
            entities=entities(model), variables=VARIABLES, convergence=CONVERGENCE_COLUMNS,
            time_units="hours since start of run", version=_version(),
            run_attrs=run_attributes(model))
        self.wall_s += time.perf_counter() - tick

    @property
    def writer(self) -> TrajectoryWriter:
        """The underlying trajectory writer."""
        return self._writer

    def __call__(self, model: Any, slot: int) -> None:
        """Buffer slot ``slot``; at the end of a window, checkpoint and flush."""
        tick = time.perf_counter()
        rows = _slot_values(model, slot)
        self._writer.append_slots([slot * model.series.slot_hours],
                                  {k: {v: np.atleast_2d(a) for v, a in d.items()}
                                   for k, d in rows.items()})
        if model.window_complete:
            self._writer.append_checkpoint(json.dumps(model.snapshot()))
            self._writer.flush()
        self.wall_s += time.perf_counter() - tick

    def window(self, model: Any, report: WindowReport) -> None:
        """Buffer the convergence row of a coordinated window.

        It is flushed with the window's last committed slot, or when the run closes
        after the window failed (then with its status and no slot).
        """
        tick = time.perf_counter()
        self._writer.append_convergence(convergence_row(report))
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


def _slot_values(model: Any, slot: int) -> dict[str, dict[str, Any]]:
    mcs, dso = model.microgrids, model.dso
    k = slot - dso.plan_start
    plan = dso.plan
    gens = [g for mc in mcs for g in mc.generators]
    res = [r for mc in mcs for r in mc.renewables]
    ess = [s for mc in mcs for s in mc.storage]
    vm_lin = [plan.vm_pu[b][k] for b in dso.bus_ids]
    vm_ac, losses, gap, converged = [np.nan] * len(vm_lin), np.nan, np.nan, np.nan
    report = dso.ac_report
    if report is not None:
        converged = float(report.slots[k].ok)
    if report is not None and report.slots[k].ok:
        vm_ac = report.vm_pu_table().loc[k, list(dso.bus_ids)].to_numpy()
        losses, gap = report.slots[k].losses_kw, report.vm_gap_pu(k)
    return {
        "microgrid": {"p_ex_kw": [mc.last.p_ex_kw for mc in mcs],
                      "q_ex_kvar": [mc.last.q_ex_kvar for mc in mcs],
                      "deviation_kw": [mc.last.deviation_kw for mc in mcs],
                      "cost_usd": [mc.last.cost_usd for mc in mcs]},
        "generator": {"p_kw": [g.p_kw for g in gens], "q_kvar": [g.q_kvar for g in gens],
                      "on": [float(g.on) for g in gens],
                      "cost_usd": [g.last_cost_usd for g in gens]},
        "renewable": {"p_kw": [r.p_kw for r in res], "q_kvar": [r.q_kvar for r in res],
                      "available_kw": [r.available_kw for r in res]},
        "storage": {"p_kw": [s.p_kw for s in ess], "e_kwh": [s.e_kwh for s in ess]},
        "customer": {"p_kw": [c.p_kw for c in model.customers],
                     "q_kvar": [c.q_kvar for c in model.customers]},
        "bus": {"vm_lin_pu": vm_lin, "vm_pu": vm_ac},
        "substation": {"p_kw": [model.substation_p_kw], "q_kvar": [model.substation_q_kvar],
                       "price_usd_per_kwh": [float(model.series.price_usd_per_kwh.iloc[slot])],
                       "cost_usd": [model.substation_cost_usd],
                       "ac_losses_kw": [losses], "max_abs_vm_gap_pu": [gap],
                       "ac_converged": [converged]},
        "svc": {"q_kvar": [q[k] for q in plan.q_svc_kvar]},
    }
