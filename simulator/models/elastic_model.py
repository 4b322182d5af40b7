r"""Microgrid i's elastic subproblem: the unified LP (§3a) and the restoration MILP (§3b).

Both measure how far the master's proposal :math:`\hat x = (\hat P, \hat Q, \hat\eta)` is
from what microgrid i can run, with the proposal entering as mutable parameters:

.. math::
    F(\hat x) = \min \sum_t w_P (s^+_{P,t} + s^-_{P,t}) + w_Q (s^+_{Q,t} + s^-_{Q,t})
                 + w_\eta s_\eta \\
    \text{s.t.}\quad P^{ex}_t - s^+_{P,t} + s^-_{P,t} = \hat P_t \quad (\pi_{P,t}),\qquad
    Q^{ex}_t - s^+_{Q,t} + s^-_{Q,t} = \hat Q_t \quad (\pi_{Q,t}) \\
    C - s_\eta \le \hat\eta \quad (\pi_\eta),\qquad s \ge 0,\qquad
    \text{microgrid model (§3)}

* ``relax=True``: the LP relaxation, :math:`F_D`. The row duals are
  :math:`\partial F_D / \partial \hat x` (HiGHS convention, pinned by a test), so the unified
  Benders cut is :math:`F_D + \pi_P (P - \hat P) + \pi_Q (Q - \hat Q) + \pi_\eta(\eta -
  \hat\eta) \le 0`.
* ``relax=False``: the full MILP, :math:`F_F = \min \Delta_i(x, \hat x)`, the weighted
  L1 distance from :math:`\hat x` to the nearest point the microgrid can run (the slacks
  are :math:`|P - \hat P|` etc. at the optimum). Take :math:`F_F` from the MILP's dual
  bound when it feeds a cut (docs/formulation.md §9).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyomo.environ as pyo

from gridcosim.simulator.models.microgrid_model import MicrogridWindow, add_microgrid


@dataclass(frozen=True)
class ElasticWeights:
    """Weights of the elastic slacks: per kW, per kvar and per $ (any positive values)."""

    p: float = 1.0
    q: float = 1.0
    eta: float = 0.1


def build_elastic(w: MicrogridWindow, weights: ElasticWeights, *, relax: bool) -> pyo.ConcreteModel:
    """Build the unified LP (``relax=True``) or the restoration MILP (``relax=False``)."""
    m = pyo.ConcreteModel(name=f"elastic_{w.spec.name}")
    m.mg = pyo.Block()
    add_microgrid(m.mg, w, relax=relax)
    T = m.mg.T
    m.p_hat = pyo.Param(T, mutable=True, initialize=0.0)
    m.q_hat = pyo.Param(T, mutable=True, initialize=0.0)
    m.eta_hat = pyo.Param(mutable=True, initialize=0.0)
    add_elastic_coupling_constraints(m)
    m.obj = pyo.Objective(expr=sum(
        weights.p * (m.sp_plus[t] + m.sp_minus[t]) + weights.q * (m.sq_plus[t] + m.sq_minus[t])
        for t in T) + weights.eta * m.s_eta)
    return m


def add_elastic_coupling_constraints(m: pyo.ConcreteModel) -> None:
    """Coupling rows with elastic slacks: exchange equals the proposal, cost within eta."""
    T = m.mg.T
    for name in ("sp_plus", "sp_minus", "sq_plus", "sq_minus"):
        setattr(m, name, pyo.Var(T, bounds=(0.0, None)))
    m.s_eta = pyo.Var(bounds=(0.0, None))
    m.couple_p = pyo.Constraint(T, rule=lambda m, t: (
        m.mg.p_ex[t] - m.sp_plus[t] + m.sp_minus[t] == m.p_hat[t]))
    m.couple_q = pyo.Constraint(T, rule=lambda m, t: (
        m.mg.q_ex[t] - m.sq_plus[t] + m.sq_minus[t] == m.q_hat[t]))
    m.couple_eta = pyo.Constraint(expr=m.mg.cost_usd - m.s_eta <= m.eta_hat)
