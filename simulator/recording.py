"""Record a co-simulation into an HDF5 trajectory (one file per run).

The recorder reads each agent's public state after every slot and appends one row per
entity kind; after each coordinated window it appends a convergence row. The file is
flushed after the last committed slot of every window (and on close), so it always holds
whole committed windows, each convergence row with its slots: an interrupted run leaves a
readable file with every window committed before it.
"""

from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from gridcosim.agents.dso import WindowReport
from gridcosim.outputs.hdf5 import TrajectoryWriter

VARIABLES = {
    "microgrid": ("p_ex_kw", "q_ex_kvar", "deviation_kw", "cost_usd"),
    "generator": ("p_kw", "q_kvar", "on", "cost_usd"),
    "renewable": ("p_kw", "q_kvar", "available_kw"),
    "storage": ("p_kw", "e_kwh"),
    "customer": ("p_kw", "q_kvar"),
    "bus": ("vm_lin_pu", "vm_pu"),
    "substation": ("p_kw", "q_kvar", "price_usd_per_kwh", "cost_usd", "ac_losses_kw",
                   "max_abs_vm_gap_pu"),
    "svc": ("q_kvar",),
}


def _version() -> str:
    try:
        return version("gridcosim")
    except PackageNotFoundError:
        return "unknown"


class Recorder:
    """Appends every slot of a :class:`~simulator.cosim.CoSimulation` to an HDF5 file."""

    def __init__(self, path: str | Path, model: object):
        self.path = Path(path)
        self.wall_s = 0.0
        tick = time.perf_counter()
        self._writer = TrajectoryWriter(
            self.path, scenario=model.scenario.name,
            scenario_json=model.scenario.model_dump_json(), seed=model.settings.seed,
            entities=self._entities(model), variables=VARIABLES,
            time_units="hours since start of run", version=_version(),
            run_attrs=self._run_attrs(model))
        self.wall_s += time.perf_counter() - tick

    @staticmethod
    def _run_attrs(model: object) -> dict[str, int | float | str | bool]:
        """How the run was driven (root attributes next to the seed)."""
        st = model.settings
        return {"horizon_slots": int(model.horizon), "commit_slots": int(st.commit),
                "slot_hours": float(model.series.slot_hours), "noise": float(st.noise),
                "ac_cuts": bool(st.ac_cuts),
                "price_signals": bool(st.decomposition.price_signals),
                "workers": int(st.decomposition.workers)}

    @staticmethod
    def _entities(model: object) -> dict[str, list[str]]:
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

    def __call__(self, model: object, slot: int) -> None:
        """Append slot ``slot``; flush if it is the last committed slot of its window."""
        tick = time.perf_counter()
        rows = _slot_values(model, slot)
        self._writer.append_slots([slot * model.series.slot_hours],
                                  {k: {v: np.atleast_2d(a) for v, a in d.items()}
                                   for k, d in rows.items()})
        committed = slot + 1 - model.dso.plan_start
        if committed % model.settings.commit == 0 or slot + 1 >= model.total_slots:
            self._writer.flush()
        self.wall_s += time.perf_counter() - tick

    def window(self, model: object, report: WindowReport) -> None:
        """Append the convergence row of a coordinated window.

        It is flushed with the window's last committed slot (or on close, for a failed
        window), so the file never holds a row whose slots were not committed.
        """
        tick = time.perf_counter()
        row = {"start_slot": report.start, "slots": report.slots,
               "iterations": report.iterations, "status": report.status,
               "lower_bound_usd": report.lower_bound_usd, "cost_usd": report.cost_usd,
               "wall_s": report.wall_s}
        row.update({f"cuts_{k}": int(report.cuts.get(k, 0))
                    for k in ("unified", "restoration", "branch", "ac")})
        self._writer.append_convergence(row)
        self.wall_s += time.perf_counter() - tick

    def close(self) -> None:
        """Flush and close the file."""
        self._writer.close()


def _slot_values(model: object, slot: int) -> dict[str, dict[str, np.ndarray]]:
    mcs, dso = model.microgrids, model.dso
    k = slot - dso.plan_start
    plan = dso.plan
    gens = [g for mc in mcs for g in mc.generators]
    res = [r for mc in mcs for r in mc.renewables]
    ess = [s for mc in mcs for s in mc.storage]
    vm_lin = [plan.vm_pu[b][k] for b in dso.bus_ids]
    vm_ac, losses, gap = [np.nan] * len(vm_lin), np.nan, np.nan
    report = dso.ac_report
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
                       "ac_losses_kw": [losses], "max_abs_vm_gap_pu": [gap]},
        "svc": {"q_kvar": [q[k] for q in plan.q_svc_kvar]},
    }

