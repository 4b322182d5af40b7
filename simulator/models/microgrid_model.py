r"""Microgrid i's private operation model (docs/formulation.md §3; seed 000's y_i, z_i).

Slots :math:`t = 1..T` of :math:`\Delta t` hours. Every kind of unit the microgrid has
(generators, renewables, storage, ...) adds its own block of variables and constraints
(:mod:`gridcosim.simulator.models.ders`); this module joins them at the point of common
coupling (PCC). With local curtailment :math:`0 \le k_t \le D^P_t` (reactive load reduced
at the same power factor):

.. math::
    \sum_{kinds} p^{inj}_t - D^P_t + k_t = P^{ex}_t,\qquad
    \sum_{kinds} q^{inj}_t - D^Q_t + k_t D^Q_t / D^P_t = Q^{ex}_t

with :math:`|P^{ex}_t| \le \bar P^{PCC}`, :math:`|Q^{ex}_t| \le \bar Q^{PCC}` (the published
rating). Cost: :math:`C = \sum_{kinds} C_{kind} + \sum_t \rho k_t \Delta t`.
``relax=True`` gives the LP relaxation (binaries in [0, 1]) of the unified subproblem.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyomo.environ as pyo

from gridcosim.scenarios.schema import Microgrid
from gridcosim.simulator.models.ders import DerModel, der_models


@dataclass(frozen=True)
class MicrogridState:
    """Initial condition of a window: what the previous committed slot left behind.

    Attributes:
        units: Per unit name, its kind's state (e.g. a generator's ``on`` and ``p_kw``,
            a battery's ``e_kwh``; :meth:`DerModel.initial_state`).

    """

    units: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def of(self, name: str) -> Mapping[str, float]:
        """The state of one unit (empty for a kind without state)."""
        return self.units.get(name, {})

    @classmethod
    def initial(cls, mg: Microgrid) -> MicrogridState:
        """The state the scenario gives for the first window."""
        return cls({u.name: state for m in der_models() for u in m.units(mg)
                    if (state := m.initial_state(u))})


@dataclass(frozen=True)
class MicrogridWindow:
    """Everything microgrid controller i knows about one optimisation window (private).

    Attributes:
        spec: The microgrid's units and ratings.
        forecast_kw: Per unit name, its forecast over the window (T,) where its kind has
            one (a renewable's availability).
        load_kw: Local active load per slot (T,).
        load_kvar: Local reactive load per slot (T,).
        slot_hours: Slot length in hours.
        curtailment_cost_usd_per_kwh: Cost rho of local load curtailment.
        state: Initial condition.
        price_usd_per_kwh: The public utility price per slot, if known (T,).
        start: First slot of the window in the run (where a warm start moves from).

    """

    spec: Microgrid
    forecast_kw: Mapping[str, np.ndarray]
    load_kw: np.ndarray
    load_kvar: np.ndarray
    slot_hours: float
    curtailment_cost_usd_per_kwh: float
    state: MicrogridState
    price_usd_per_kwh: np.ndarray | None = None
    start: int = 0

    @property
    def slots(self) -> int:
        """Number of slots T."""
        return len(self.load_kw)

    def cost_upper_bound_usd(self) -> float:
        """A published upper bound on the window cost (for big-M values)."""
        units = sum(m.cost_bound(m.units(self.spec), self) for m in der_models())
        curtail = self.curtailment_cost_usd_per_kwh * float(np.sum(self.load_kw)) * self.slot_hours
        return units + curtail + 1.0


def kinds_of(mg: Microgrid) -> list[DerModel]:
    """The DER kinds the microgrid has units of, in order."""
    return [m for m in der_models() if m.units(mg)]


def add_microgrid(b: pyo.Block, w: MicrogridWindow, *, relax: bool = False) -> None:
    """Add the microgrid's variables, constraints and cost expression ``b.cost_usd``.

    Each kind's units go on a block named after the kind (``b.generator``, ...). What
    changes from one window to the next (local load, initial state, forecasts) enters as
    mutable parameters or bounds, so that :func:`load_microgrid_data` can move a built
    model to the next window.
    """
    b.T = pyo.RangeSet(0, w.slots - 1)
    b.load_p_kw = pyo.Param(b.T, mutable=True, initialize=0.0)
    b.load_q_kvar = pyo.Param(b.T, mutable=True, initialize=0.0)
    _store_load(b, w)
    for model in kinds_of(w.spec):
        block = pyo.Block()
        b.add_component(model.kind, block)
        model.build(block, model.units(w.spec), w, relax)
    add_balance_constraints(b, w)
    add_cost_expression(b, w)


def _store_load(b: pyo.Block, w: MicrogridWindow) -> None:
    b.load_p_kw.store_values({t: float(w.load_kw[t]) for t in range(w.slots)})
    b.load_q_kvar.store_values({t: float(w.load_kvar[t]) for t in range(w.slots)})


def unit_blocks(b: pyo.Block, mg: Microgrid) -> list[tuple[DerModel, pyo.Block]]:
    """Each kind's model and its block on a built microgrid block."""
    return [(m, b.component(m.kind)) for m in kinds_of(mg)]


def same_shape(a: MicrogridWindow, b: MicrogridWindow) -> bool:
    """Whether a model built for window ``a`` can be loaded with window ``b``'s data.

    The units, slot count and length must agree, and so must the local load's power
    factor (it is a coefficient of the reactive balance).
    """
    return (a.spec == b.spec and a.slots == b.slots and a.slot_hours == b.slot_hours
            and a.curtailment_cost_usd_per_kwh == b.curtailment_cost_usd_per_kwh
            and np.allclose(pf_ratio(a), pf_ratio(b), rtol=0.0, atol=1e-12))


def pf_ratio(w: MicrogridWindow) -> np.ndarray:
    """Reactive over active local load per slot (0 where there is no load)."""
    load = np.asarray(w.load_kw, dtype=float)
    safe = np.where(load > 0, load, 1.0)
    return np.where(load > 0, np.asarray(w.load_kvar, dtype=float) / safe, 0.0)


def load_microgrid_data(b: pyo.Block, w: MicrogridWindow) -> None:
    """Move a built block to window ``w`` (of the same shape): parameters and bounds."""
    _store_load(b, w)
    for model, block in unit_blocks(b, w.spec):
        model.load_window(block, model.units(w.spec), w)
    for t, var in b.curtail.items():
        var.setub(float(w.load_kw[t]))


def window_rows(b: pyo.Block, mg: Microgrid) -> list[Any]:
    """Rows whose bounds read window data (balances and each kind's own)."""
    rows = [*b.pcc.p_balance.values(), *b.pcc.q_balance.values()]
    for model, block in unit_blocks(b, mg):
        rows += model.window_rows(block)
    return rows


def window_vars(b: pyo.Block, mg: Microgrid) -> list[Any]:
    """Variables whose bounds follow window data (curtailment and each kind's own)."""
    out = list(b.curtail.values())
    for model, block in unit_blocks(b, mg):
        out += model.window_vars(block)
    return out


def binary_vars(b: pyo.Block, mg: Microgrid) -> list[Any]:
    """Every binary (commitments, storage modes, ...) in a fixed order: kind, name, unit, slot."""
    out = []
    for model, block in unit_blocks(b, mg):
        for name in model.binaries:
            out += [getattr(block, name)[k, t] for k in block.K for t in block.T]
    return out


def unit_reactive_ranges(mg: Microgrid, read: Callable[[DerModel, str], np.ndarray]
                         ) -> list[tuple[DerModel, np.ndarray, np.ndarray]]:
    """Each reactive kind's per-unit range at a fixed active schedule (units x slots).

    ``read(model, component)`` gives the values of one of the kind's components.
    """
    out = []
    for model in kinds_of(mg):
        found = model.reactive_range(model.units(mg), lambda c, m=model: read(m, c))
        if found is not None:
            out.append((model, *found))
    return out


def reactive_need(w: MicrogridWindow, q_ex: np.ndarray, curtail: np.ndarray) -> np.ndarray:
    """Reactive output the units must give for exchange ``q_ex`` (the reactive balance)."""
    return np.asarray(q_ex, dtype=float) + np.asarray(w.load_kvar, dtype=float) - (
        pf_ratio(w) * curtail)


def reactive_band(w: MicrogridWindow, ranges: list[tuple[DerModel, np.ndarray, np.ndarray]],
                  curtail: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Range of the reactive exchange per slot for fixed commitments and active outputs.

    Each unit's reactive output moves independently within its range
    (:func:`unit_reactive_ranges`), so by the reactive balance the exchange ranges over
    ``Σ lo − D^Q + k D^Q/D^P .. Σ hi − D^Q + k D^Q/D^P``, clipped to the PCC rating.
    """
    base = -reactive_need(w, np.zeros(w.slots), curtail)
    lo = base + sum((r[1].sum(axis=0) for r in ranges), np.zeros(w.slots))
    hi = base + sum((r[2].sum(axis=0) for r in ranges), np.zeros(w.slots))
    cap = w.spec.pcc_q_max_kvar
    return np.clip(lo, -cap, cap), np.clip(hi, -cap, cap)


def add_balance_constraints(b: pyo.Block, w: MicrogridWindow) -> None:
    """PCC balance defining the exchange P_ex, Q_ex (export to the DN positive)."""
    spec = w.spec
    b.p_ex = pyo.Var(b.T, bounds=(-spec.pcc_p_max_kw, spec.pcc_p_max_kw))
    b.q_ex = pyo.Var(b.T, bounds=(-spec.pcc_q_max_kvar, spec.pcc_q_max_kvar))
    b.curtail = pyo.Var(b.T, bounds=lambda b, t: (0.0, float(w.load_kw[t])))
    ratio = [float(r) for r in pf_ratio(w)]
    blocks = unit_blocks(b, spec)

    def p_balance(pcc: pyo.Block, t: int) -> Any:
        units = sum(m.p_injection(blk, t) for m, blk in blocks)
        return units + b.curtail[t] - b.p_ex[t] == b.load_p_kw[t]

    def q_balance(pcc: pyo.Block, t: int) -> Any:
        units = sum(m.q_injection(blk, t) for m, blk in blocks)
        return units + ratio[t] * b.curtail[t] - b.q_ex[t] == b.load_q_kvar[t]

    # the rows sit on a block declared after the kinds' blocks so that a compiled model
    # lists them after the units' rows (a solver's vertex choice follows the row order)
    b.pcc = pyo.Block()
    b.pcc.p_balance = pyo.Constraint(b.T, rule=p_balance)
    b.pcc.q_balance = pyo.Constraint(b.T, rule=q_balance)


def add_cost_expression(b: pyo.Block, w: MicrogridWindow) -> None:
    """Operation cost ``b.cost_usd``: every kind's cost and local curtailment."""
    rho, dt = w.curtailment_cost_usd_per_kwh, w.slot_hours
    units = sum(m.cost(blk, w) for m, blk in unit_blocks(b, w.spec))
    b.cost_usd = pyo.Expression(expr=units + sum(rho * b.curtail[t] * dt for t in b.T))
