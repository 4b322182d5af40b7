"""Per-slot AC results, safety-limit violations and the LinDistFlow-vs-AC approximation report.

A power flow that does not converge is data: its :class:`SlotResult` has status
``pf_failed`` and ``None`` for every AC quantity (never NaN or a previous slot's values).
The tables of :class:`ValidationReport` are the one place where a failed slot shows up as
NaN, next to its ``status`` column, so they can be written to HDF5 as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

PF_OK = "ok"
PF_FAILED = "pf_failed"


@dataclass(frozen=True)
class Violation:
    """One violated safety constraint ``u_l > 0`` (seed 001 (A4)-(A6)).

    Attributes:
        kind: ``v_min`` / ``v_max`` (bus voltage band) or ``loading`` (branch rating).
        element: Bus id (voltages) or branch label (loading).
        value: |V| in p.u., or loading in p.u. of the rating (1.0 = 100 %).
        limit: The limit that is violated, same unit as ``value``.
        excess_pu: ``u_l = |value - limit|`` in p.u., the slack problem's ``epsilon_l``.

    """

    kind: Literal["v_min", "v_max", "loading"]
    element: int | str
    value: float
    limit: float
    excess_pu: float


@dataclass(frozen=True, eq=False)
class SlotResult:
    """The AC power flow of one slot.

    Attributes:
        slot: Slot index.
        status: ``ok`` or ``pf_failed`` (Newton-Raphson did not converge).
        iterations: Newton-Raphson iterations of the last attempt.
        vm_pu: AC |V| by bus (the validator's ``bus_ids`` order); ``None`` if failed.
        i_ka: Current of every line (the validator's ``line_labels``); ``None`` if failed.
        loading_pu: Current over rating of every rated branch (``rated_labels``), empty
            when the data carry no ratings (IEEE 123); ``None`` if failed.
        losses_kw: Active losses (substation import minus net load); ``None`` if failed.
        p_sub_kw: Substation active import; ``None`` if failed.
        q_sub_kvar: Substation reactive import; ``None`` if failed.
        violations: Violated limits (empty if failed: a failure is not a list of limits).
        voltage: Complex voltages of pandapower's internal nodes (for sensitivities).

    """

    slot: int
    status: str
    iterations: int
    vm_pu: np.ndarray | None
    i_ka: np.ndarray | None
    loading_pu: np.ndarray | None
    losses_kw: float | None
    p_sub_kw: float | None
    q_sub_kvar: float | None
    violations: tuple[Violation, ...] = ()
    voltage: np.ndarray | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """Whether the power flow converged."""
        return self.status == PF_OK

    @property
    def violation_pu(self) -> float | None:
        """``E_t``: the sum of the violations' excesses (p.u.); ``None`` if failed."""
        return float(sum(v.excess_pu for v in self.violations)) if self.ok else None

    def feasible(self, tol_pu: float) -> bool:
        """Converged and ``E_t <= tol_pu``."""
        return self.ok and self.violation_pu <= tol_pu


@dataclass(frozen=True, eq=False)
class ValidationReport:
    """AC results of every slot of a schedule, with its LinDistFlow voltages.

    Attributes:
        bus_ids: Bus ids, the column order of the voltage arrays.
        slots: One result per slot.
        vm_lin_pu: LinDistFlow |V| of the schedule (slot x bus); ``None`` if not given.
        tol_pu: Violation tolerance ``epsilon_AC`` used by :meth:`feasible`.

    """

    bus_ids: tuple[int, ...]
    slots: tuple[SlotResult, ...]
    vm_lin_pu: np.ndarray | None = None
    tol_pu: float = 0.0

    @property
    def feasible(self) -> bool:
        """Every slot converged with ``E_t <= tol_pu``."""
        return all(r.feasible(self.tol_pu) for r in self.slots)

    @property
    def power_flows_failed(self) -> int:
        """Number of slots whose power flow did not converge."""
        return sum(not r.ok for r in self.slots)

    def vm_gap_pu(self, slot: int) -> float | None:
        """``max_n |V_lin - V_AC|`` of a slot (p.u.); ``None`` if failed or no LinDistFlow."""
        result = self.slots[slot]
        if self.vm_lin_pu is None or not result.ok:
            return None
        return float(np.max(np.abs(self.vm_lin_pu[slot] - result.vm_pu)))

    def slot_frame(self) -> pd.DataFrame:
        """One row per slot: status, Newton iterations, E_t, losses, import, voltage range, gap."""
        rows = []
        for r in self.slots:
            vm = r.vm_pu
            rows.append({
                "slot": r.slot, "status": r.status, "iterations": r.iterations,
                "violation_pu": r.violation_pu, "n_violations": len(r.violations),
                "losses_kw": r.losses_kw, "p_sub_kw": r.p_sub_kw, "q_sub_kvar": r.q_sub_kvar,
                "vm_min_pu": None if vm is None else float(vm.min()),
                "vm_max_pu": None if vm is None else float(vm.max()),
                "max_abs_vm_gap_pu": self.vm_gap_pu(r.slot)})
        return pd.DataFrame(rows).set_index("slot").astype({
            c: float for c in ("violation_pu", "losses_kw", "p_sub_kw", "q_sub_kvar",
                               "vm_min_pu", "vm_max_pu", "max_abs_vm_gap_pu")})

    def vm_pu_table(self) -> pd.DataFrame:
        """AC |V| (slot x bus id); a failed slot's row is NaN (its status says why)."""
        data = np.full((len(self.slots), len(self.bus_ids)), np.nan)
        for k, r in enumerate(self.slots):
            if r.ok:
                data[k] = r.vm_pu
        return pd.DataFrame(data, index=[r.slot for r in self.slots], columns=self.bus_ids)

    def vm_lin_pu_table(self) -> pd.DataFrame | None:
        """LinDistFlow |V| (slot x bus id), or ``None`` if not given."""
        if self.vm_lin_pu is None:
            return None
        return pd.DataFrame(self.vm_lin_pu, index=[r.slot for r in self.slots],
                            columns=self.bus_ids)

    def summary(self) -> dict[str, Any]:
        """A JSON-serialisable view (failed values are ``None``)."""
        frame = self.slot_frame()
        slots = [{k: _plain(v) for k, v in row.items()} | {"slot": int(t)}
                 for t, row in frame.iterrows()]
        vm = self.vm_pu_table()
        return {
            "feasible": self.feasible, "tol_pu": self.tol_pu,
            "power_flows_failed": self.power_flows_failed,
            # a failed power flow has no violation figure: the total is unknown (None)
            "violation_pu": (None if self.power_flows_failed
                             else float(sum(r.violation_pu for r in self.slots))),
            "slots": slots,
            "vm_pu": {str(b): [_plain(x) for x in vm[b]] for b in self.bus_ids},
        }


def _plain(value: Any) -> Any:
    """A JSON-friendly scalar: NaN -> None, numpy scalars -> Python."""
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value
