r"""Dispatchable generators: commitment, start-up, P/Q limits, ramping.

For unit g (commitment :math:`u_{g,t} \in \{0,1\}`, start-up :math:`s_{g,t}`; index 0 of
the initial state is the slot before the window):

.. math::
    s_{g,t} \ge u_{g,t} - u_{g,t-1},\quad s_{g,t} \le u_{g,t},\quad
    s_{g,t} \le 1 - u_{g,t-1},\quad 0 \le s_{g,t} \le 1 \\
    P^{min}_g u_{g,t} \le p_{g,t} \le P^{max}_g u_{g,t},\quad
    Q^{min}_g u_{g,t} \le q_{g,t} \le Q^{max}_g u_{g,t},\quad
    |p_{g,t} - p_{g,t-1}| \le R_g

Cost :math:`\sum_t c_g p_{g,t} \Delta t + SU_g s_{g,t}`. The two upper bounds on
:math:`s` make the start-up exactly :math:`\max(0, u_t - u_{t-1})` for binary
commitments even where the objective does not price it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyomo.environ as pyo

from gridcosim.simulator.models.ders.base import DerModel, Series, Values, rounded, unit_index


class GeneratorModel(DerModel):
    """The generators' part of a microgrid model (block ``generator``)."""

    kind, field, order = "generator", "generators", 10
    binaries = ("u",)
    reactive = "q"

    def initial_state(self, unit: Any) -> dict[str, float]:
        """Commitment and output before the first slot."""
        return {"on": float(unit.initial_on), "p_kw": float(unit.initial_p_kw)}

    def build(self, b: pyo.Block, units: Sequence[Any], w: Any, relax: bool) -> None:
        """Commitment, start-up, P/Q limits and ramping of every generator."""
        unit_index(b, units, range(w.slots))
        b.on_0 = pyo.Param(b.K, mutable=True, initialize=0.0)
        b.p_0 = pyo.Param(b.K, mutable=True, initialize=0.0)
        self._store(b, units, w)
        b.u = pyo.Var(b.K, b.T, domain=pyo.UnitInterval if relax else pyo.Binary)
        b.su = pyo.Var(b.K, b.T, bounds=(0, 1))
        b.p = pyo.Var(b.K, b.T)
        b.q = pyo.Var(b.K, b.T)
        _add_startup(b)
        _add_limits(b, units)
        _add_ramp(b, units)

    def _store(self, b: pyo.Block, units: Sequence[Any], w: Any) -> None:
        b.on_0.store_values({k: w.state.of(g.name)["on"] for k, g in enumerate(units)})
        b.p_0.store_values({k: w.state.of(g.name)["p_kw"] for k, g in enumerate(units)})

    def p_injection(self, b: pyo.Block, t: int) -> Any:
        """Total generator output in slot ``t``."""
        return sum(b.p[k, t] for k in b.K)

    def cost(self, b: pyo.Block, w: Any) -> Any:
        """Energy and start-up costs."""
        units = self.units(w.spec)
        return sum(units[k].cost_usd_per_kwh * b.p[k, t] * w.slot_hours
                   + units[k].startup_cost_usd * b.su[k, t] for k in b.K for t in b.T)

    def cost_bound(self, units: Sequence[Any], w: Any) -> float:
        """Full output all window long and a start every other slot."""
        return sum(g.cost_usd_per_kwh * g.p_max_kw * w.slot_hours * w.slots
                   + g.startup_cost_usd * math.ceil(w.slots / 2) for g in units)

    def load_window(self, b: pyo.Block, units: Sequence[Any], w: Any) -> None:
        """The new initial commitment and output."""
        self._store(b, units, w)

    def window_rows(self, b: pyo.Block) -> list[Any]:
        """The slot-0 start-up and ramp rows (they read the initial state)."""
        return [*(b.startup[k, 0] for k in b.K), *(b.startup_off[k, 0] for k in b.K),
                *(b.ramp[k, 0] for k in b.K)]

    def reactive_range(self, units: Sequence[Any], values: Values
                       ) -> tuple[np.ndarray, np.ndarray]:
        """``[Q_min u, Q_max u]`` at the schedule's (rounded) commitments."""
        u = np.round(values("u"))
        lo = np.array([g.q_min_kvar for g in units])[:, None] * u
        hi = np.array([g.q_max_kvar for g in units])[:, None] * u
        return lo, hi

    def schedules(self, units: Sequence[Any], values: Values) -> list[tuple[str, Series]]:
        """Output, reactive output and commitment (0/1) of every generator."""
        p, q, u = values("p"), values("q"), np.round(values("u"))
        return [(g.name, {"p_kw": rounded(p[k]), "q_kvar": rounded(q[k]),
                          "on": tuple(int(v) for v in u[k])}) for k, g in enumerate(units)]


def _add_startup(b: pyo.Block) -> None:
    def startup(b: pyo.Block, k: int, t: int) -> Any:
        if t == 0:  # the initial commitment is a parameter: keep it on the bound side
            return b.su[k, 0] - b.u[k, 0] >= -b.on_0[k]
        return b.su[k, t] >= b.u[k, t] - b.u[k, t - 1]

    def started_off(b: pyo.Block, k: int, t: int) -> Any:
        if t == 0:
            return b.su[k, 0] <= 1 - b.on_0[k]
        return b.su[k, t] <= 1 - b.u[k, t - 1]

    b.startup = pyo.Constraint(b.K, b.T, rule=startup)
    b.startup_on = pyo.Constraint(b.K, b.T, rule=lambda b, k, t: b.su[k, t] <= b.u[k, t])
    b.startup_off = pyo.Constraint(b.K, b.T, rule=started_off)


def _add_limits(b: pyo.Block, units: Sequence[Any]) -> None:
    b.p_min = pyo.Constraint(
        b.K, b.T, rule=lambda b, k, t: b.p[k, t] >= units[k].p_min_kw * b.u[k, t])
    b.p_max = pyo.Constraint(
        b.K, b.T, rule=lambda b, k, t: b.p[k, t] <= units[k].p_max_kw * b.u[k, t])
    b.q_min = pyo.Constraint(
        b.K, b.T, rule=lambda b, k, t: b.q[k, t] >= units[k].q_min_kvar * b.u[k, t])
    b.q_max = pyo.Constraint(
        b.K, b.T, rule=lambda b, k, t: b.q[k, t] <= units[k].q_max_kvar * b.u[k, t])


def _add_ramp(b: pyo.Block, units: Sequence[Any]) -> None:
    def ramp(b: pyo.Block, k: int, t: int) -> Any:
        r = units[k].ramp_kw_per_slot
        if t == 0:
            return pyo.inequality(b.p_0[k] - r, b.p[k, 0], b.p_0[k] + r)
        return pyo.inequality(-r, b.p[k, t] - b.p[k, t - 1], r)

    b.ramp = pyo.Constraint(b.K, b.T, rule=ramp)


MODEL = GeneratorModel()
