r"""Batteries: charge or discharge (a mode binary), energy balance with efficiencies.

.. math::
    0 \le p^{ch}_{e,t} \le P^{ch}_e b_{e,t},\quad
    0 \le p^{dis}_{e,t} \le P^{dis}_e (1 - b_{e,t}) \\
    E_{e,t} = E_{e,t-1} + \eta^{ch} p^{ch}_{e,t} \Delta t - p^{dis}_{e,t}\Delta t/\eta^{dis},
    \quad E^{min}_e \le E_{e,t} \le E^{max}_e

The injection into the balance is :math:`p^{dis} - p^{ch}`; energy is end-of-slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyomo.environ as pyo

from gridcosim.simulator.models.ders.base import DerModel, Series, Values, rounded, unit_index


class StorageModel(DerModel):
    """The storage units' part of a microgrid model (block ``storage``)."""

    kind, field, order = "storage", "storage", 30
    binaries = ("mode",)

    def initial_state(self, unit: Any) -> dict[str, float]:
        """Stored energy before the first slot."""
        return {"e_kwh": float(unit.e_initial_kwh)}

    def build(self, b: pyo.Block, units: Sequence[Any], w: Any, relax: bool) -> None:
        """Charge/discharge limits with a mode binary and the energy balance."""
        unit_index(b, units, range(w.slots))
        dt = w.slot_hours
        b.e_0 = pyo.Param(b.K, mutable=True, initialize=0.0)
        self.load_window(b, units, w)
        b.mode = pyo.Var(b.K, b.T, domain=pyo.UnitInterval if relax else pyo.Binary)
        b.p_ch = pyo.Var(b.K, b.T, bounds=(0.0, None))
        b.p_dis = pyo.Var(b.K, b.T, bounds=(0.0, None))
        b.e = pyo.Var(b.K, b.T, bounds=lambda b, k, t: (units[k].e_min_kwh, units[k].e_max_kwh))
        b.ch_max = pyo.Constraint(b.K, b.T, rule=lambda b, k, t: (
            b.p_ch[k, t] <= units[k].p_charge_max_kw * b.mode[k, t]))
        b.dis_max = pyo.Constraint(b.K, b.T, rule=lambda b, k, t: (
            b.p_dis[k, t] <= units[k].p_discharge_max_kw * (1 - b.mode[k, t])))

        def energy(b: pyo.Block, k: int, t: int) -> Any:
            s = units[k]
            flow = s.eta_charge * b.p_ch[k, t] * dt - b.p_dis[k, t] * dt / s.eta_discharge
            if t == 0:  # the initial energy is a parameter: keep it on the right-hand side
                return b.e[k, 0] - flow == b.e_0[k]
            return b.e[k, t] == b.e[k, t - 1] + flow

        b.energy = pyo.Constraint(b.K, b.T, rule=energy)

    def p_injection(self, b: pyo.Block, t: int) -> Any:
        """Net discharge of every battery in slot ``t``."""
        return sum(b.p_dis[k, t] - b.p_ch[k, t] for k in b.K)

    def load_window(self, b: pyo.Block, units: Sequence[Any], w: Any) -> None:
        """The new initial energy."""
        b.e_0.store_values({k: w.state.of(s.name)["e_kwh"] for k, s in enumerate(units)})

    def window_rows(self, b: pyo.Block) -> list[Any]:
        """The slot-0 energy balance (it reads the initial energy)."""
        return [b.energy[k, 0] for k in b.K]

    def schedules(self, units: Sequence[Any], values: Values) -> list[tuple[str, Series]]:
        """Net output (discharge positive), charge, discharge and end-of-slot energy."""
        ch, dis, e = values("p_ch"), values("p_dis"), values("e")
        return [(s.name, {"p_kw": rounded(dis[k] - ch[k]), "p_charge_kw": rounded(ch[k]),
                          "p_discharge_kw": rounded(dis[k]), "e_kwh": rounded(e[k])})
                for k, s in enumerate(units)]


MODEL = StorageModel()
