r"""Per-phase AC validation and AC feasibility cuts on three-phase feeders (§6, §6a).

:class:`PhaseValidator` runs a three-phase engine (OpenDSS or ``runpp_3ph``) on every slot
of a tentative schedule and checks the voltage band on every bus-phase; its report is the
balanced validator's :class:`~simulator.validation.results.ValidationReport`, with the
nodes ``"bus.phase"`` in place of buses. :class:`PhaseCutGenerator` is the loop's validator
(the interface of :class:`~simulator.validation.ac_cuts.ACCutGenerator`): for each slot
with :math:`E_t = \sum_l \max(0, u_l) > \varepsilon_{AC}` it adds

.. math::
    E_t + \sum_k \frac{\partial E_t}{\partial x_k}(x_{k,t} - \hat x_{k,t}) \le -m

over the slot's transaction variables (exchanges P and Q, SVC outputs, curtailment). The
slopes come from the AC engine itself, by forward differences of every bus-phase voltage
in each variable (``sensitivity="ac"``, default: LinDist3Flow's slopes are up to 30 % off on
IEEE 123's loaded phases, docs/three_phase.md), or from §6a's LinDist3Flow sensitivities
(``"lindist3flow"``). A power flow that fails is a violation whose cut asks the linearised
mean voltage to rise by ``failed_step_pu``, as on balanced feeders.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from gridcosim.simulator.models.lindist3flow import LinDist3Flow
from gridcosim.simulator.models.lindistflow_model import NetworkWindow
from gridcosim.simulator.schedule import NetworkSchedule
from gridcosim.simulator.validation.ac_cuts import ACCutGenerator
from gridcosim.simulator.validation.cut import ACFeasibilityCut, VariableKey
from gridcosim.simulator.validation.operating_point import (
    OperatingPoint,
)
from gridcosim.simulator.validation.phase_engines.base import PhaseEngine
from gridcosim.simulator.validation.phase_point import phase_point
from gridcosim.simulator.validation.results import (
    PF_FAILED,
    PF_OK,
    SlotResult,
    ValidationReport,
    Violation,
)

PhaseSensitivity = Literal["ac", "lindist3flow"]
#: Forward-difference step of the AC slopes, kW or kvar.
FD_STEP = 1.0


class PhaseValidator:
    """Per-phase AC power flows of a window's slots, with the voltage band on every phase."""

    def __init__(self, window: NetworkWindow, engine: PhaseEngine):
        self.window, self.engine = window, engine
        net = window.network
        self.bus_ids = tuple(f"{b}.{p}" for b, p in net.nodes)  # the report's columns
        self.power_flows = 0

    def reset(self) -> None:
        """Start the next power flow from the engine's flat start (as the balanced one)."""
        reset = getattr(self.engine, "reset", None)
        if reset is not None:
            reset()

    def flow(self, point: OperatingPoint) -> np.ndarray | None:
        """|V| per node of a bus-level point (``None`` if the power flow failed)."""
        result = self.engine.solve(phase_point(self.window, point))
        self.power_flows += 1
        return result.vm_pu.to_numpy() if result.converged else None

    def solve(self, point: OperatingPoint) -> SlotResult:
        """One slot: engine result and per-phase band violations."""
        result = self.engine.solve(phase_point(self.window, point))
        self.power_flows += 1
        if not result.converged:
            return SlotResult(point.slot, PF_FAILED, 0, None, None, None, None, None, None)
        vm = result.vm_pu.to_numpy()
        return SlotResult(point.slot, PF_OK, 0, vm, None, None, result.losses_kw,
                          result.p_sub_kw, result.q_sub_kvar, self._violations(vm))

    def _violations(self, vm: np.ndarray) -> tuple[Violation, ...]:
        lo, hi = self.window.v_min_pu, self.window.v_max_pu
        out = [Violation("v_min", self.bus_ids[k], float(vm[k]), lo, float(lo - vm[k]))
               for k in np.flatnonzero(vm < lo)]
        out += [Violation("v_max", self.bus_ids[k], float(vm[k]), hi, float(vm[k] - hi))
                for k in np.flatnonzero(vm > hi)]
        return tuple(out)

    def validate(self, points: Sequence[OperatingPoint], *, vm_lin_pu: np.ndarray | None = None,
                 tol_pu: float = 0.0) -> ValidationReport:
        """Solve every slot of a schedule."""
        return ValidationReport(self.bus_ids, tuple(self.solve(p) for p in points),
                                vm_lin_pu, tol_pu)


class PhaseCutGenerator(ACCutGenerator):
    """Validate tentative schedules per phase and cut off the violating ones.

    The balanced generator's loop (:class:`~simulator.validation.ac_cuts.ACCutGenerator`:
    ``check``, ``validate``, the history) on a :class:`PhaseValidator`; only the cut's
    slopes differ.

    Args:
        validator: The window's :class:`PhaseValidator`.
        window: The DSO's window.
        tol_pu: ``epsilon_AC``.
        margin_pu: Right-hand side margin of every cut.
        sensitivity: ``ac`` (engine forward differences) or ``lindist3flow``.
        failed_step_pu: Mean-voltage rise asked for after a failed power flow.

    """

    def __init__(self, validator: PhaseValidator, window: NetworkWindow, *,
                 tol_pu: float = 1e-6, margin_pu: float = 1e-5,
                 sensitivity: PhaseSensitivity = "ac", failed_step_pu: float = 0.01):
        super().__init__(validator, window, tol_pu=tol_pu,  # type: ignore[arg-type]
                         margin_pu=margin_pu, failed_step_pu=failed_step_pu)
        self.sensitivity = sensitivity  # type: ignore[assignment]
        self._linear = LinDist3Flow(window.network)

    def cut(self, result: SlotResult, point: OperatingPoint,
            schedule: NetworkSchedule) -> ACFeasibilityCut:
        """The cut of one violating (or failed) slot."""
        terms = self._slot_terms(point, schedule)
        if result.ok:
            weight = self._weights(result)
            slopes = weight @ self._slopes(point, result.vm_pu, [k for k, _ in terms])
            e_pu, source = float(result.violation_pu), "violation"
        else:
            slopes = -self._linear_slopes(np.ones(len(self.validator.bus_ids)),
                                          [k for k, _ in terms]).mean(axis=0)
            e_pu, source = self.failed_step_pu, "pf_failed"
        kept = [(key, float(g), x) for (key, x), g in zip(terms, slopes, strict=True) if g != 0.0]
        return ACFeasibilityCut(result.slot, e_pu, tuple((k, g) for k, g, _ in kept),
                                tuple((k, x) for k, _, x in kept), self.margin_pu, source)

    def _weights(self, result: SlotResult) -> np.ndarray:
        """dE/d|V| per node: −1 at a v_min violation, +1 at a v_max one."""
        row = {label: k for k, label in enumerate(self.validator.bus_ids)}
        weight = np.zeros(len(row))
        for v in result.violations:
            weight[row[v.element]] += -1.0 if v.kind == "v_min" else 1.0
        return weight

    def _slot_terms(self, point: OperatingPoint, schedule: NetworkSchedule
               ) -> list[tuple[VariableKey, float]]:
        """(key, x̂) of every transaction variable of the slot."""
        t = point.slot
        terms: list[tuple[VariableKey, float]] = []
        for i, e in enumerate(self.window.exchanges):
            terms += [(("p_ex", e.mg), point.mg_kw[i]), (("q_ex", e.mg), point.mg_kvar[i])]
        terms += [(("q_svc", s), point.svc_kvar[s]) for s in range(len(self.window.svcs))]
        terms += [(("curtail", bus), float(schedule.curtail_kw[bus][t]) if bus in
                   schedule.curtail_kw else 0.0) for bus in self._ratio]
        return terms

    def _slopes(self, point: OperatingPoint, vm: np.ndarray, keys: list[VariableKey]
                ) -> np.ndarray:
        """d|V_node|/dx_k (nodes × keys)."""
        if self.sensitivity == "lindist3flow":
            return self._linear_slopes(vm, keys)
        out = np.zeros((len(keys), len(vm)))
        for k, key in enumerate(keys):
            moved = self.validator.flow(self._moved(point, key, FD_STEP))
            out[k] = 0.0 if moved is None else (moved - vm) / FD_STEP
        return out.T

    def _moved(self, point: OperatingPoint, key: VariableKey, step: float) -> OperatingPoint:
        """``point`` with transaction variable ``key`` raised by ``step``."""
        kind, which = key
        mg = [e.mg for e in self.window.exchanges]
        fields = {"mg_kw": list(point.mg_kw), "mg_kvar": list(point.mg_kvar),
                  "svc_kvar": list(point.svc_kvar)}
        if kind == "p_ex":
            fields["mg_kw"][mg.index(which)] += step
        elif kind == "q_ex":
            fields["mg_kvar"][mg.index(which)] += step
        elif kind == "q_svc":
            fields["svc_kvar"][int(which)] += step
        else:
            row = list(self.window.network.bus_ids).index(int(which))
            p, q = point.load_kw.copy(), point.load_kvar.copy()
            p[row] -= step
            q[row] -= step * self._ratio[int(which)]
            return OperatingPoint(point.slot, p, q, point.mg_kw, point.mg_kvar, point.svc_kvar)
        return OperatingPoint(point.slot, point.load_kw, point.load_kvar,
                              tuple(fields["mg_kw"]), tuple(fields["mg_kvar"]),
                              tuple(fields["svc_kvar"]))

    def _linear_slopes(self, vm: np.ndarray, keys: list[VariableKey]) -> np.ndarray:
        """§6a's d|V|/dx at voltages ``vm`` (nodes × keys)."""
        lin, net = self._linear, self.window.network
        bus_of = {e.mg: e.bus for e in self.window.exchanges}
        svc_bus = [s.bus for s in self.window.svcs]
        out = np.zeros((len(vm), len(keys)))
        for k, (kind, which) in enumerate(keys):
            bus = bus_of[which] if kind in ("p_ex", "q_ex") else (
                svc_bus[int(which)] if kind == "q_svc" else int(which))
            phases = str(net.buses.at[bus, "phases"])
            cols = [lin.position[(bus, p)] for p in phases]
            if kind == "p_ex":
                dw = lin.dw_dp[:, cols].sum(axis=1) / len(phases)
            elif kind in ("q_ex", "q_svc"):
                dw = lin.dw_dq[:, cols].sum(axis=1) / len(phases)
            else:
                shares = net.load_shares
                dw = sum(shares.at[(bus, p), "p"] * lin.dw_dp[:, lin.position[(bus, p)]]
                         + shares.at[(bus, p), "q"] * self._ratio[bus]
                         * lin.dw_dq[:, lin.position[(bus, p)]] for p in phases)
            out[:, k] = dw / (2.0 * vm)
        return out
