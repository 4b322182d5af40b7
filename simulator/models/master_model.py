r"""The DSO's master problem (docs/formulation.md §2, seed 000's (9a)-(9c)).

.. math::
    \min\ \sum_t \Delta t [\lambda_t P^{sub}_t + \rho \sum_n c_{n,t}] + \sum_i \eta_i
    \quad\text{s.t. LinDistFlow (§2)},\quad 0 \le \eta_i \le \bar\eta_i

:math:`\eta_i` estimates microgrid i's cost; :math:`\bar\eta_i` is the bound it publishes
(needed for big-M values; the lower bound 0 is valid because microgrid costs are
non-negative, docs/formulation.md §9). The model starts without cuts (seed Step 1); the
decomposition appends unified cuts, restoration cuts, branch selectors and AC cuts to
its compiled HiGHS instance and never rebuilds it within the window.
"""

from __future__ import annotations

import pyomo.environ as pyo

from gridcosim.simulator.models.lindistflow_model import NetworkWindow, add_network


def build_master(w: NetworkWindow) -> pyo.ConcreteModel:
    """Build the master for window ``w`` (no cuts)."""
    m = pyo.ConcreteModel(name="master")
    m.net = pyo.Block()
    add_network(m.net, w)
    eta_ub = {e.mg: e.eta_ub_usd for e in w.exchanges}
    m.eta = pyo.Var(m.net.MG, bounds=lambda m, i: (0.0, eta_ub[i]))
    m.obj = pyo.Objective(expr=m.net.cost_usd + sum(m.eta[i] for i in m.net.MG))
    return m



def slot_variables(m: pyo.ConcreteModel, slot: int) -> dict[tuple[str, str | int], pyo.Var]:
    """The master's variables of one slot an AC feasibility cut may use, by key.

    Keys: ``("p_ex", mg)``, ``("q_ex", mg)``, ``("q_svc", s)``, ``("curtail", bus)``.
    """
    net = m.net
    out: dict[tuple[str, str | int], pyo.Var] = {}
    out.update({("p_ex", i): net.p_ex[i, slot] for i in net.MG})
    out.update({("q_ex", i): net.q_ex[i, slot] for i in net.MG})
    out.update({("q_svc", s): net.q_svc[s, slot] for s in net.SV})
    out.update({("curtail", n): net.curtail[n, slot] for n in net.CN})
    return out
