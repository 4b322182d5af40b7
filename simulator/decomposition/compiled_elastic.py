"""Microgrid i's elastic model compiled for the loop: the unified LP or the restoration MILP.

Both compile the same Pyomo model (:func:`simulator.models.elastic.build_elastic`), with
and without integrality, into persistent HiGHS instances; the loop then only sets the
proposal's right-hand sides, swaps objective coefficients (price responses, economic
restoration) and re-loads the window data rows between windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyomo.environ as pyo
from pyomo.repn import generate_standard_repn

from simulator.highs_model import LP_RESOLVE_OPTIONS, HighsModel, SolveOutcome
from simulator.messages import PriceSignal, RestoredExchange
from simulator.models.elastic import binary_vars


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

    def __init__(self, model: pyo.ConcreteModel, *, relax: bool):
        self.model = model
        self.hm = HighsModel(model, relax_integrality=relax,
                             options=LP_RESOLVE_OPTIONS if relax else None)
        m = self.model
        self.rows_p = [m.couple_p[t] for t in m.mg.T]
        self.rows_q = [m.couple_q[t] for t in m.mg.T]
        self.binary_cols = [self.hm.col(v) for v in binary_vars(m)]
        self._cost = self._read_cost_terms()

    def reload(self) -> None:
        """Re-read the window data rows and bounds after the Pyomo block was re-loaded."""
        b, hm = self.model.mg, self.hm
        rows = [*b.p_balance.values(), *b.q_balance.values(),
                *(b.startup[g, 0] for g in b.G), *(b.ramp[g, 0] for g in b.G),
                *(b.energy[s, 0] for s in b.S)]
        hm.refresh_rows(rows)
        bounded = [*b.p_r.values(), *b.curtail.values()]
        hm.set_cols_bounds([hm.col(v) for v in bounded], [v.lb for v in bounded],
                           [v.ub for v in bounded])

    def solve_at(self, x: Point) -> SolveOutcome:
        """Solve at the proposal ``x`` (its values become the coupling right-hand sides)."""
        m = self.model
        for t in m.mg.T:
            m.p_hat[t] = x.p_kw[t]
            m.q_hat[t] = x.q_kvar[t]
        m.eta_hat = x.eta_usd
        self.hm.set_rhs([*self.rows_p, *self.rows_q, m.couple_eta],
                        [*x.p_kw, *x.q_kvar, x.eta_usd])
        return self.hm.solve()

    def exchange(self, out: SolveOutcome) -> RestoredExchange:
        """The exchange of a solution and the microgrid's true cost of it."""
        m, hm = self.model, self.hm
        return RestoredExchange(
            p_kw=tuple(hm.value(out, m.mg.p_ex[t]) for t in m.mg.T),
            q_kvar=tuple(hm.value(out, m.mg.q_ex[t]) for t in m.mg.T),
            cost_usd=float(sum(out.x[j] * c for j, c in self._cost_terms())))

    def _cost_terms(self) -> list[tuple[int, float]]:
        """(column, coefficient) of the microgrid's cost expression."""
        return self._cost

    def _read_cost_terms(self) -> list[tuple[int, float]]:
        repn = generate_standard_repn(self.model.mg.cost_usd.expr)
        if repn.constant:
            raise ValueError("microgrid cost expression with a constant term")
        return [(self.hm.col(v), float(c))
                for v, c in zip(repn.linear_vars, repn.linear_coefs, strict=True)]

    def price_response(self, signal: PriceSignal) -> tuple[SolveOutcome, float] | None:
        """Minimise ``C − Σ λ_P P_ex − Σ λ_Q Q_ex`` with the exchange free.

        The elastic slacks and ``s_eta`` cost nothing, so the coupling rows never bind
        whatever x̂ they hold; the MG's own cost terms carry the objective.
        Returns the outcome and its proven lower bound (``None`` without a solution).
        """
        hm, m = self.hm, self.model
        slacks = [m.sp_plus, m.sp_minus, m.sq_plus, m.sq_minus]
        costs = {hm.col(v): 0.0 for comp in slacks for v in comp.values()}
        costs[hm.col(m.s_eta)] = 0.0
        costs.update(dict(self._cost_terms()))
        for t, lp, lq in zip(m.mg.T, signal.p_usd_per_kw, signal.q_usd_per_kvar, strict=True):
            costs[hm.col(m.mg.p_ex[t])] = -lp
            costs[hm.col(m.mg.q_ex[t])] = -lq
        with hm.temporary_costs(costs):
            out = hm.solve()
        if not out.has_solution or out.status != "optimal":
            return None
        return out, float(out.bound)
