r"""Curtailable loads: a load under an interruptible-supply contract inside a microgrid.

Unit :math:`l` has a demand forecast :math:`D_{l,t}` (its nominal demand times its
customer class's load shape). The controller may curtail up to a contracted fraction
:math:`f_l` of it, at a price :math:`c_l` per curtailed kWh; the reactive demand follows
the served power at the unit's power factor:

.. math::
    s_{l,t} + x_{l,t} = D_{l,t},\qquad 0 \le x_{l,t} \le f_l D_{l,t},\qquad
    q_{l,t} = -\tan(\arccos pf_l)\, s_{l,t}

with served power :math:`s \ge 0` and curtailment :math:`x`. The unit injects
:math:`-s_{l,t}` and :math:`q_{l,t}` into the PCC balance and costs
:math:`\sum_t c_l x_{l,t} \Delta t`. Its reactive power is fixed by its active schedule,
so its reactive range at a fixed schedule is a single point.

This kind is also the worked example of adding a DER kind (docs/extending.md): this
module, :mod:`gridcosim.agents.curtailable_load` and the schema's
:class:`~gridcosim.scenarios.schema.CurtailableLoad` are all it takes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyomo.environ as pyo

from gridcosim.simulator.models.ders.base import DerModel, Series, Values, rounded, unit_index


class CurtailableLoadModel(DerModel):
    """The curtailable loads' part of a microgrid model (block ``curtailable_load``)."""

    kind, field, order = "curtailable_load", "curtailable_loads", 40
    reactive = "q"

    def forecast_kw(self, unit: Any, series: Any, span: slice) -> np.ndarray:
        """Nominal demand times its class's load shape (or the unit's file series)."""
        return series.unit_kw(unit.name, unit.demand_kw, series.load[unit.load_class], span)

    def build(self, b: pyo.Block, units: Sequence[Any], w: Any, relax: bool) -> None:
        """Demand split into served and curtailed power; reactive demand follows served."""
        unit_index(b, units, range(w.slots))
        b.demand_kw = pyo.Param(b.K, b.T, mutable=True, initialize=0.0)
        b.served = pyo.Var(b.K, b.T, bounds=(0.0, None))
        b.curtailed = pyo.Var(b.K, b.T, bounds=(0.0, None))
        b.q = pyo.Var(b.K, b.T)
        tan = [_tan(u) for u in units]
        b.demand = pyo.Constraint(b.K, b.T, rule=lambda b, k, t: (
            b.served[k, t] + b.curtailed[k, t] == b.demand_kw[k, t]))
        b.reactive_demand = pyo.Constraint(b.K, b.T, rule=lambda b, k, t: (
            b.q[k, t] + tan[k] * b.served[k, t] == 0.0))
        self.load_window(b, units, w)

    def p_injection(self, b: pyo.Block, t: int) -> Any:
        """Minus the served demand in slot ``t``."""
        return -sum(b.served[k, t] for k in b.K)

    def cost(self, b: pyo.Block, w: Any) -> Any:
        """The contracted price of every curtailed kWh."""
        units = self.units(w.spec)
        return sum(units[k].curtail_cost_usd_per_kwh * b.curtailed[k, t] * w.slot_hours
                   for k in b.K for t in b.T)

    def cost_bound(self, units: Sequence[Any], w: Any) -> float:
        """The largest curtailment all window long."""
        return sum(u.curtail_cost_usd_per_kwh * u.max_curtail_fraction * w.slot_hours
                   * float(np.sum(w.forecast_kw[u.name])) for u in units)

    def load_window(self, b: pyo.Block, units: Sequence[Any], w: Any) -> None:
        """The new demand forecasts: the demand rows and the curtailment bounds."""
        demand = {(k, t): float(w.forecast_kw[u.name][t]) for k, u in enumerate(units)
                  for t in range(w.slots)}
        b.demand_kw.store_values(demand, check=False)
        for (k, t), var in b.curtailed.items():
            var.setub(units[k].max_curtail_fraction * demand[k, t])

    def window_rows(self, b: pyo.Block) -> list[Any]:
        """The demand rows (their right-hand side is the forecast)."""
        return list(b.demand.values())

    def window_vars(self, b: pyo.Block) -> list[Any]:
        """The curtailments (bounded by the contracted share of the forecast)."""
        return list(b.curtailed.values())

    def reactive_range(self, units: Sequence[Any], values: Values
                       ) -> tuple[np.ndarray, np.ndarray]:
        """The single point ``-tan(acos pf) s`` at the scheduled served power."""
        q = -np.array([_tan(u) for u in units])[:, None] * values("served")
        return q, q

    def schedules(self, units: Sequence[Any], values: Values) -> list[tuple[str, Series]]:
        """Injection (minus the served power), reactive injection and curtailment."""
        served, q, curtailed = values("served"), values("q"), values("curtailed")
        return [(u.name, {"p_kw": rounded(-served[k]), "q_kvar": rounded(q[k]),
                          "curtailed_kw": rounded(curtailed[k])}) for k, u in enumerate(units)]


def _tan(unit: Any) -> float:
    return math.tan(math.acos(unit.power_factor))


MODEL = CurtailableLoadModel()
