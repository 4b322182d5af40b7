r"""Renewable units: output up to the forecast, reactive power within a power factor.

.. math::
    0 \le p_{r,t} \le \hat P_{r,t},\qquad |q_{r,t}| \le p_{r,t} \tan(\arccos pf_r)

The forecast :math:`\hat P_{r,t}` is the unit's nominal output times the scenario's
profile of its kind (PV, wind; ``generic`` follows the per-slot multipliers or PV). The
output costs nothing; spilling is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyomo.environ as pyo

from gridcosim.simulator.models.ders.base import DerModel, Series, Values, rounded, unit_index


class RenewableModel(DerModel):
    """The renewables' part of a microgrid model (block ``renewable``)."""

    kind, field, order = "renewable", "renewables", 20
    reactive = "q"

    def forecast_kw(self, unit: Any, series: Any, span: slice) -> np.ndarray:
        """Nominal output times the profile of the unit's kind (or the unit's file series)."""
        return series.unit_kw(unit.name, unit.forecast_kw, series.renewables[unit.kind], span)

    def build(self, b: pyo.Block, units: Sequence[Any], w: Any, relax: bool) -> None:
        """Output within the forecast, reactive output within the power factor."""
        unit_index(b, units, range(w.slots))
        forecast = {(k, t): float(w.forecast_kw[r.name][t]) for k, r in enumerate(units)
                    for t in range(w.slots)}
        b.p = pyo.Var(b.K, b.T, bounds=lambda b, k, t: (0.0, forecast[k, t]))
        b.q = pyo.Var(b.K, b.T)
        tan = [_tan(r) for r in units]
        b.q_max = pyo.Constraint(b.K, b.T, rule=lambda b, k, t: b.q[k, t] <= tan[k] * b.p[k, t])
        b.q_min = pyo.Constraint(b.K, b.T,
                                 rule=lambda b, k, t: b.q[k, t] >= -tan[k] * b.p[k, t])

    def p_injection(self, b: pyo.Block, t: int) -> Any:
        """Total renewable output in slot ``t``."""
        return sum(b.p[k, t] for k in b.K)

    def load_window(self, b: pyo.Block, units: Sequence[Any], w: Any) -> None:
        """The new forecasts as output bounds."""
        for (k, t), var in b.p.items():
            var.setub(float(w.forecast_kw[units[k].name][t]))

    def window_vars(self, b: pyo.Block) -> list[Any]:
        """The outputs (bounded by the forecasts)."""
        return list(b.p.values())

    def reactive_range(self, units: Sequence[Any], values: Values
                       ) -> tuple[np.ndarray, np.ndarray]:
        """``±tan(acos pf) p`` at the scheduled output."""
        reach = np.array([_tan(r) for r in units])[:, None] * values("p")
        return -reach, reach

    def schedules(self, units: Sequence[Any], values: Values) -> list[tuple[str, Series]]:
        """Output and reactive output of every renewable."""
        p, q = values("p"), values("q")
        return [(r.name, {"p_kw": rounded(p[k]), "q_kvar": rounded(q[k])})
                for k, r in enumerate(units)]


def _tan(unit: Any) -> float:
    return math.tan(math.acos(unit.min_power_factor))


MODEL = RenewableModel()
