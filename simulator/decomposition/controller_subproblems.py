"""Microgrid i's elastic model compiled for the loop: the unified LP or the restoration MILP.

Both compile the same Pyomo model (:func:`simulator.models.elastic_model.build_elastic`), with
and without integrality, into persistent HiGHS instances; the loop then only sets the
proposal's right-hand sides, swaps objective coefficients (price responses, economic
restoration) and re-loads the window data rows between windows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pyomo.environ as pyo
from pyomo.repn import generate_standard_repn

from gridcosim.simulator.highs_instance import LP_RESOLVE_OPTIONS, SolveOutcome
from gridcosim.simulator.highs_model import HighsModel
from gridcosim.simulator.messages import PriceSignal, RestoredExchange
from gridcosim.simulator.models.ders import DerModel
from gridcosim.simulator.models.microgrid_model import (
    MicrogridWindow,
    binary_vars,
    reactive_band,
    reactive_need,
    unit_blocks,
    unit_reactive_ranges,
    window_rows,
    window_vars,
)

#: How far (kvar) a requested reactive exchange may lie outside the band: the DSO's
#: values sit on band edges up to its LP's tolerance.
_REDISPATCH_TOL = 1e-4



@dataclass(frozen=True)
class Point:
    """A point of the coupling space of one microgrid: exchange per slot and eta."""

    p_kw: tuple[float, ...]
    q_kvar: tuple[float, ...]
    eta_usd: float


class CompiledElastic:
    """A compiled elastic model (unified LP or restoration MILP) with its parameter rows.

    The LP and the MILP compile the same Pyomo model, with and without integrality.
    """

    def __init__(self, model: pyo.ConcreteModel, window: MicrogridWindow, *, relax: bool):
        self.model, self.window = model, window
        self.hm = HighsModel(model, relax_integrality=relax,
                             options=LP_RESOLVE_OPTIONS if relax else None)
        m = self.model
        self.rows_p = [m.couple_p[t] for t in m.mg.T]
        self.rows_q = [m.couple_q[t] for t in m.mg.T]
        b = m.mg
        self.binary_cols = [self.hm.col(v) for v in binary_vars(b, window.spec)]
        self._cost = self._read_cost_terms()
        self._blocks = {model.kind: block for model, block in unit_blocks(b, window.spec)}
        self._unit_cols: dict[tuple[str, str], np.ndarray] = {}
        self._curtail_cols = np.array([self.hm.col(b.curtail[t]) for t in b.T], dtype=np.int64)
        self._q_ex_cols = np.array([self.hm.col(b.q_ex[t]) for t in b.T], dtype=np.int64)
        self._p_ex_cols = np.array([self.hm.col(b.p_ex[t]) for t in b.T], dtype=np.int64)
        self._coupling = self.hm.rhs_rows([*self.rows_p, *self.rows_q, m.couple_eta])

    def reload(self, window: MicrogridWindow) -> None:
        """Re-read the window data rows and bounds after the Pyomo block was re-loaded."""
        self.window = window
        b, hm = self.model.mg, self.hm
        hm.refresh_rows(window_rows(b, window.spec))
        bounded = window_vars(b, window.spec)
        hm.set_cols_bounds([hm.col(v) for v in bounded], [v.lb for v in bounded],
                           [v.ub for v in bounded])
        hm.reset()  # answer as a model compiled afresh for the window

    def solve_at(self, x: Point) -> SolveOutcome:
        """Solve at the proposal ``x`` (its values become the coupling right-hand sides)."""
        m = self.model
        for t in m.mg.T:
            m.p_hat[t] = x.p_kw[t]
            m.q_hat[t] = x.q_kvar[t]
        m.eta_hat = x.eta_usd
        self.hm.set_rhs(self._coupling, [*x.p_kw, *x.q_kvar, x.eta_usd])
        return self.hm.solve()

    def exchange(self, out: SolveOutcome) -> RestoredExchange:
        """The exchange of a solution, the microgrid's true cost of it and its reactive band.

        The band is only given for an integral solution (a runnable schedule).
        """
        x = out.x
        q = tuple(x[self._q_ex_cols].tolist())
        lo, hi = self._band(out, q)
        return RestoredExchange(
            p_kw=tuple(x[self._p_ex_cols].tolist()), q_kvar=q,
            cost_usd=float(sum(x[j] * c for j, c in self._cost)),
            q_min_kvar=lo, q_max_kvar=hi)

    def _band(self, out: SolveOutcome, q: tuple[float, ...]
              ) -> tuple[tuple[float, ...], tuple[float, ...]]:
        x = out.x
        binaries = x[self.binary_cols]  # commitments and storage modes
        if np.any(np.abs(binaries - np.round(binaries)) > 1e-6):
            return (), ()
        lo, hi = reactive_band(self.window, self._reactive_ranges(x), x[self._curtail_cols])
        # the schedule's own Q is in the band up to solver tolerance: widen to contain it
        return (tuple(np.minimum(lo, q).tolist()), tuple(np.maximum(hi, q).tolist()))

    def redispatch_reactive(self, out: SolveOutcome, q_kvar: tuple[float, ...]
                            ) -> SolveOutcome | None:
        """The schedule ``out`` with its reactive exchange moved to ``q_kvar`` (in its band).

        Only the generators' and renewables' reactive outputs and the reactive exchange
        change; every active value, commitment and the cost stay exactly ``out``'s. Per
        slot each unit is placed at the same fraction of its reactive range (the ranges
        :func:`~simulator.models.microgrid_model.unit_reactive_ranges`). Returns ``None`` if
        ``q_kvar`` leaves the band by more than :data:`_REDISPATCH_TOL` kvar.
        """
        x = out.x.copy()
        need = reactive_need(self.window, np.asarray(q_kvar), x[self._curtail_cols])
        ranges = self._reactive_ranges(x)
        zero = np.zeros(self.window.slots)
        lo_sum = sum((lo.sum(axis=0) for _, lo, _ in ranges), zero)
        hi_sum = sum((hi.sum(axis=0) for _, _, hi in ranges), zero)
        if np.any(need < lo_sum - _REDISPATCH_TOL) or np.any(need > hi_sum + _REDISPATCH_TOL):
            return None
        width = hi_sum - lo_sum
        frac = np.clip(np.divide(need - lo_sum, width, out=np.zeros_like(width),
                                 where=width > 0), 0.0, 1.0)
        for model, lo, hi in ranges:
            x[self.unit_cols(model, model.reactive)] = lo + frac * (hi - lo)
        x[self._q_ex_cols] = q_kvar
        return replace(out, x=x, row_dual=None, col_dual=None)

    def unit_cols(self, model: DerModel, component: str) -> np.ndarray:
        """Columns of one of a kind's components, shape (units, slots)."""
        key = (model.kind, component)
        cols = self._unit_cols.get(key)
        if cols is None:
            block = self._blocks[model.kind]
            var = block.component(component)
            cols = np.array([[self.hm.col(var[k, t]) for t in block.T] for k in block.K],
                            dtype=np.int64).reshape(len(block.K), len(block.T))
            self._unit_cols[key] = cols
        return cols

    def _reactive_ranges(self, x: np.ndarray) -> list[tuple[DerModel, np.ndarray, np.ndarray]]:
        return unit_reactive_ranges(self.window.spec, lambda m, c: x[self.unit_cols(m, c)])

    def _read_cost_terms(self) -> list[tuple[int, float]]:
        repn = generate_standard_repn(self.model.mg.cost_usd.expr)
        if repn.constant:
            raise ValueError("microgrid cost expression with a constant term")
        return [(self.hm.col(v), float(c))
                for v, c in zip(repn.linear_vars, repn.linear_coefs, strict=True)]

    def price_response(self, signal: PriceSignal) -> SolveOutcome:
        """Minimise ``C − Σ λ_P P_ex − Σ λ_Q Q_ex`` with the exchange free.

        The elastic slacks and ``s_eta`` cost nothing, so the coupling rows never bind
        whatever x̂ they hold; the MG's own cost terms carry the objective. The outcome's
        ``bound`` is the proven lower bound ``L(λ)``.
        """
        hm, m = self.hm, self.model
        slacks = [m.sp_plus, m.sp_minus, m.sq_plus, m.sq_minus]
        costs = {hm.col(v): 0.0 for comp in slacks for v in comp.values()}
        costs[hm.col(m.s_eta)] = 0.0
        costs.update(dict(self._cost))
        for t, lp, lq in zip(m.mg.T, signal.p_usd_per_kw, signal.q_usd_per_kvar, strict=True):
            costs[hm.col(m.mg.p_ex[t])] = -lp
            costs[hm.col(m.mg.q_ex[t])] = -lq
        with hm.temporary_costs(costs):
            return hm.solve()
