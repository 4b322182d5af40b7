r"""AC feasibility cuts (docs/formulation.md §6; seed 001 (A5)-(A12), Step 7 of the loop).

:class:`ACCutGenerator` is a :data:`simulator.decomposition.loop.Validator`: given the
tentative schedule (the DSO's network schedule and every microgrid's exchange) it runs the
AC power flow of every slot and, for each slot with :math:`E_t > \varepsilon_{AC}`, adds to
the master

.. math::
    E_t + \sum_k \frac{\partial E_t}{\partial x_k}(x_{k,t} - \hat x_{k,t}) \le -m

over the slot's transaction variables (exchanges P and Q, SVC outputs, curtailment; the
DSO has no DERs of its own: microgrid DERs act through their exchange). The slack
problem's dual (A9)-(A10) puts :math:`y_l = 1` on every violated limit, so
:math:`\partial E_t/\partial x = \sum_{l\,\text{violated}} \partial u_l/\partial x`, from the
AC Jacobian (default) or LinDistFlow's path sensitivities (B8)-(B11) (voltage terms; branch
loading terms always come from the Jacobian). Injection derivatives map to master
variables as: exchange P/Q and SVC Q are injections at their bus; curtailing ``c`` kW at
bus n removes ``c`` kW and ``c·Q^L_n/P^L_n`` kvar of load, i.e. adds both as injections.

A power flow that does not converge is a violation too: with no solved point there is no
Jacobian, so the cut asks the LinDistFlow-linearised mean bus voltage to rise by
``failed_step_pu`` (a cut "towards lower loading"); the next validation tells whether that
was enough. If no variable can move (all bounds reached) the cut makes the master
infeasible and the loop stops with status ``infeasible``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Literal

import numpy as np

from gridcosim.simulator.decomposition.master_problem import MasterProblem
from gridcosim.simulator.models.lindistflow_model import NetworkWindow
from gridcosim.simulator.schedule import NetworkSchedule
from gridcosim.simulator.validation.cut import ACFeasibilityCut, VariableKey
from gridcosim.simulator.validation.operating_point import (
    Exchange,
    OperatingPoint,
    load_power_factors,
    operating_points,
)
from gridcosim.simulator.validation.results import SlotResult, ValidationReport
from gridcosim.simulator.validation.sensitivity import lindistflow_voltage_sensitivities
from gridcosim.simulator.validation.validator import NetworkValidator

Sensitivity = Literal["jacobian", "lindistflow"]


def window_validator(window: NetworkWindow, **kwargs: object) -> NetworkValidator:
    """A :class:`NetworkValidator` for the window's feeder, band, PCCs and SVCs."""
    return NetworkValidator(
        window.network, v_ref_pu=window.v_ref_pu, v_min_pu=window.v_min_pu,
        v_max_pu=window.v_max_pu, mg_buses={e.mg: e.bus for e in window.exchanges},
        svc_buses=[s.bus for s in window.svcs], **kwargs)


class ACCutGenerator:
    """Validate tentative schedules with AC power flows and cut off the violating ones.

    Args:
        validator: The AC validator of the window's feeder (see :func:`window_validator`).
        window: The DSO's window (loads, PCCs, SVCs, band).
        tol_pu: ``epsilon_AC``: a slot is accepted when ``E_t <= tol_pu``.
        margin_pu: Right-hand side margin ``m`` of every cut (0: the seed's cut). The
            default aims 1e-5 p.u. inside the band, so that the accepted schedule lies
            inside it rather than up to ``tol_pu`` outside (cost: +0.3 $ of 3900 $ on
            ieee123-nmg-stressed).
        sensitivity: ``jacobian`` (AC, default) or ``lindistflow`` (seed 001 (B8)-(B11)).
        failed_step_pu: Mean-voltage rise a cut asks for after a failed power flow.

    """

    def __init__(self, validator: NetworkValidator, window: NetworkWindow, *,
                 tol_pu: float = 1e-6, margin_pu: float = 1e-5,
                 sensitivity: Sensitivity = "jacobian", failed_step_pu: float = 0.01):
        self.validator, self.window = validator, window
        self.tol_pu, self.margin_pu = tol_pu, margin_pu
        self.sensitivity, self.failed_step_pu = sensitivity, failed_step_pu
        self._ratio = load_power_factors(window)
        self._row = {bus: k for k, bus in enumerate(validator.bus_ids)}
        self._ldf: tuple[np.ndarray, np.ndarray] | None = None
        self.history: list[tuple[ValidationReport, tuple[ACFeasibilityCut, ...]]] = []

    # ---------------------------------------------------------------- validate
    def check(self, schedule: NetworkSchedule, exchanges: Mapping[str, Exchange],
              slots: Sequence[int] | None = None) -> ValidationReport:
        """AC results of a schedule's slots (no cut), with its LinDistFlow voltages.

        ``slots``: only these slots, in this order (the report's ``slots`` then follow
        it); ``None``: every slot.
        """
        points = operating_points(self.window, schedule, exchanges)
        if slots is not None:
            points = [points[t] for t in slots]
        return self._validate(points, schedule)

    def _validate(self, points: list[OperatingPoint],
                  schedule: NetworkSchedule) -> ValidationReport:
        vm_lin = np.array([[schedule.vm_pu[b][p.slot] for b in self.validator.bus_ids]
                           for p in points]) if schedule.vm_pu else None
        return self.validator.validate(points, vm_lin_pu=vm_lin, tol_pu=self.tol_pu)

    def validate(self, schedule: NetworkSchedule, exchanges: Mapping[str, Exchange]
                 ) -> tuple[ValidationReport, tuple[ACFeasibilityCut, ...]]:
        """Validate; return the report and one cut per violating (or failed) slot."""
        points = operating_points(self.window, schedule, exchanges)
        report = self._validate(points, schedule)
        cuts = tuple(self.cut(r, points[r.slot], schedule)
                     for r in report.slots if not r.feasible(self.tol_pu))
        self.history.append((report, cuts))
        return report, cuts

    def __call__(self, master: MasterProblem, schedule: NetworkSchedule,
                 exchanges: Mapping[str, Exchange]) -> int:
        """Validate; add the cuts to ``master``; return how many were added."""
        _, cuts = self.validate(schedule, exchanges)
        for cut in cuts:
            master.add_ac_cut(cut)
        return len(cuts)

    @property
    def last_report(self) -> ValidationReport | None:
        """The report of the last validation (``None`` before the first)."""
        return self.history[-1][0] if self.history else None

    @property
    def last_cuts(self) -> tuple[ACFeasibilityCut, ...]:
        """The cuts added by the last validation."""
        return self.history[-1][1] if self.history else ()

    # --------------------------------------------------------------------- cut
    def cut(self, result: SlotResult, point: OperatingPoint,
            schedule: NetworkSchedule) -> ACFeasibilityCut:
        """The AC feasibility cut of one violating (or failed) slot."""
        if not result.ok:
            d_p, d_q = self._failed_gradient()
            e_pu, source = self.failed_step_pu, "pf_failed"
        else:
            d_p, d_q = self.injection_gradient(result)
            e_pu, source = float(result.violation_pu), "violation"
        terms = self._terms(d_p, d_q, point, schedule)
        return ACFeasibilityCut(
            slot=result.slot, e_pu=e_pu,
            coefficients=tuple((key, coef) for key, coef, _ in terms),
            x_hat=tuple((key, x) for key, _, x in terms),
            margin_pu=self.margin_pu, source=source)

    def injection_gradient(self, result: SlotResult) -> tuple[np.ndarray, np.ndarray]:
        """``dE_t / d(injection)`` per bus (p.u. per kW, per kvar) at a solved slot."""
        if self.sensitivity == "jacobian":
            return self.validator.violation_gradient(result)
        dv_dp, dv_dq = self._lindistflow(result.vm_pu)
        weight = np.zeros(len(self.validator.bus_ids))
        for v in result.violations:
            if v.kind != "loading":
                weight[self._row[v.element]] += -1.0 if v.kind == "v_min" else 1.0
        d_p, d_q = weight @ dv_dp, weight @ dv_dq
        if any(v.kind == "loading" for v in result.violations):
            only_loading = _only_loading(result)
            j_p, j_q = self.validator.violation_gradient(only_loading)
            d_p, d_q = d_p + j_p, d_q + j_q
        return d_p, d_q

    def _failed_gradient(self) -> tuple[np.ndarray, np.ndarray]:
        """Gradient of ``-mean_n |V_n|`` (LinDistFlow at 1 p.u.): more injection, less load."""
        dv_dp, dv_dq = self._lindistflow(None)
        return -dv_dp.mean(axis=0), -dv_dq.mean(axis=0)

    def _lindistflow(self, vm_pu: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if self._ldf is None:
            self._ldf = lindistflow_voltage_sensitivities(self.window.network)
        dv_dp, dv_dq = self._ldf
        if vm_pu is None:
            return dv_dp, dv_dq
        return dv_dp / vm_pu[:, None], dv_dq / vm_pu[:, None]

    def _terms(self, d_p: np.ndarray, d_q: np.ndarray, point: OperatingPoint,
               schedule: NetworkSchedule) -> list[tuple[VariableKey, float, float]]:
        """(key, dE/dx, x̂) for every transaction variable of the slot with dE/dx != 0."""
        row, t = self._row, point.slot
        terms: list[tuple[VariableKey, float, float]] = []
        for i, e in enumerate(self.window.exchanges):
            terms.append((("p_ex", e.mg), float(d_p[row[e.bus]]), point.mg_kw[i]))
            terms.append((("q_ex", e.mg), float(d_q[row[e.bus]]), point.mg_kvar[i]))
        for s, svc in enumerate(self.window.svcs):
            terms.append((("q_svc", s), float(d_q[row[svc.bus]]), point.svc_kvar[s]))
        for bus, ratio in self._ratio.items():
            coef = float(d_p[row[bus]] + ratio * d_q[row[bus]])
            terms.append((("curtail", bus), coef, float(schedule.curtail_kw[bus][t])))
        return [term for term in terms if term[1] != 0.0]


def _only_loading(result: SlotResult) -> SlotResult:
    """A copy of ``result`` that keeps only its loading violations."""
    return replace(result, violations=tuple(v for v in result.violations
                                            if v.kind == "loading"))
