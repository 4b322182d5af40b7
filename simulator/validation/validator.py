"""The DSO's AC network validator (docs/formulation.md §6; seed 001 (A4)-(A6)).

For each slot of a tentative schedule it runs an AC power flow on the scenario's feeder
(:class:`~simulator.validation.feeder.CompiledFeeder`: the pandapower net is built once and
only the injections change) and returns bus voltages, line currents, losses and the
violated safety limits ``u_l > 0``:

* voltage band ``v_min_pu <= |V_n| <= v_max_pu`` at every bus (the substation included);
* branch loading ``|I_l| <= I_max`` where the network data give a rating ``s_max_kva``
  (``I_max = s_max / (sqrt(3) V_base)``). The IEEE 123 data carry no ratings, so there the
  loading list is empty (line currents are still reported). The feeder has no
  transformers (the regulators are not modelled), hence no transformer loading.

The violation of a slot is ``E_t = sum_l max(0, u_l)`` in p.u. (the slack problem (A5)).
A power flow that does not converge gives status ``pf_failed``, never an exception.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import numpy as np
import pandapower as pp
from pandapower.auxiliary import pandapowerNet

from gridcosim.scenarios.network import NetworkData
from gridcosim.simulator.validation.feeder import DEFAULT_MAX_ITERATIONS, CompiledFeeder
from gridcosim.simulator.validation.operating_point import OperatingPoint
from gridcosim.simulator.validation.results import (
    PF_FAILED,
    PF_OK,
    SlotResult,
    ValidationReport,
    Violation,
)
from gridcosim.simulator.validation.sensitivity import (
    injection_gradient,
    jacobian,
    jacobian_sign,
    loading_state_gradient,
)

#: Below this |V| anywhere (or with any violation) the validator checks that the solution
#: lies on the upper branch of the P-V curve.
_CHECK_BRANCH_BELOW_PU = 0.8


class NetworkValidator:
    """AC power flows of operating points on one feeder, with limit checks.

    Args:
        network: The feeder.
        v_ref_pu: Substation voltage.
        v_min_pu: Lower voltage limit.
        v_max_pu: Upper voltage limit.
        mg_buses: PCC bus of every microgrid, in the order of ``OperatingPoint.mg_kw``.
        svc_buses: Bus of every SVC, in the order of ``OperatingPoint.svc_kvar``.
        max_iterations: Newton-Raphson iteration cap per slot.
        warm_start: Start each slot's Newton-Raphson from that slot's previous solution
            (as ``runpp(init="results")``); results agree to the Newton tolerance.
        feeder: A feeder compiled before for the same network, PCCs, SVCs and reference
            voltage (:meth:`sibling`); compiled here if omitted.

    """

    def __init__(self, network: NetworkData, *, v_ref_pu: float, v_min_pu: float,
                 v_max_pu: float, mg_buses: Mapping[str, int], svc_buses: Sequence[int],
                 max_iterations: int = DEFAULT_MAX_ITERATIONS, warm_start: bool = True,
                 feeder: CompiledFeeder | None = None):
        self.feeder = feeder if feeder is not None else CompiledFeeder(
            network, v_ref_pu=v_ref_pu, mg_buses=mg_buses, svc_buses=svc_buses,
            max_iterations=max_iterations)
        self.v_min_pu, self.v_max_pu = float(v_min_pu), float(v_max_pu)
        self.bus_ids = self.feeder.bus_ids
        self.line_labels = self.feeder.line_labels
        self.base_kva = self.feeder.base_kva
        self._rated_lines, self.i_max_ka = _line_ratings(network, self.line_labels)
        self.rated_labels = tuple(self.line_labels[k] for k in self._rated_lines)
        self.power_flows = 0
        self._upper_sign = self._jacobian_sign(self.feeder.v_start)
        self.warm_start = warm_start
        self._previous: dict[int, np.ndarray] = {}

    def sibling(self, *, warm_start: bool) -> NetworkValidator:
        """A validator of the same compiled feeder (no second compile), own warm starts."""
        new = copy.copy(self)
        new.warm_start, new._previous, new.power_flows = warm_start, {}, 0
        return new

    def reset(self) -> None:
        """Forget the warm starts: the next power flows start from the flat start.

        Called at every window, so that a window's AC results do not depend on the
        windows before it (a resumed run equals an uninterrupted one).
        """
        self._previous.clear()

    # ------------------------------------------------------------------ solve
    def solve(self, point: OperatingPoint) -> SlotResult:
        """Run the AC power flow of one slot and check the limits."""
        p_kw, q_kvar = self.feeder.injections(point)
        sbus = self.feeder.sbus(p_kw, q_kvar)
        v, iterations = self.feeder.solve(sbus, self._previous.get(point.slot), self._operable)
        self.power_flows += 1
        if v is None:
            return SlotResult(point.slot, PF_FAILED, iterations, None, None, None, None, None,
                              None)
        vm = np.abs(v[self.feeder.node_of_bus])
        if self.warm_start:
            self._previous[point.slot] = v
        i_ka = self.feeder.line_currents_ka(v)
        loading = i_ka[self._rated_lines] / self.i_max_ka
        s_net = self.feeder.injected_power_pu(v)
        s_sub = (s_net[self.feeder.ref[0]] - sbus[self.feeder.ref[0]]) * self.base_kva
        return SlotResult(
            slot=point.slot, status=PF_OK, iterations=iterations, vm_pu=vm, i_ka=i_ka,
            loading_pu=loading, losses_kw=float(s_net.real.sum() * self.base_kva),
            p_sub_kw=float(s_sub.real), q_sub_kvar=float(s_sub.imag),
            violations=self._violations(vm, loading), voltage=v)

    def validate(self, points: Sequence[OperatingPoint], *, vm_lin_pu: np.ndarray | None = None,
                 tol_pu: float = 0.0) -> ValidationReport:
        """Solve every slot of a schedule.

        Args:
            points: One operating point per slot.
            vm_lin_pu: LinDistFlow voltages of the same schedule (slot x bus), for the
                approximation report.
            tol_pu: Tolerance on ``E_t`` recorded in the report.

        """
        results = tuple(self.solve(p) for p in points)
        return ValidationReport(self.bus_ids, results, vm_lin_pu, tol_pu)

    def _jacobian_sign(self, v: np.ndarray) -> int:
        feeder = self.feeder
        return jacobian_sign(jacobian(feeder.ybus, v, feeder.pv, feeder.pq))

    def _operable(self, v: np.ndarray) -> bool:
        """Whether a converged solution lies on the upper (stable) branch of the P-V curve.

        Newton-Raphson may converge to the low-voltage solution of a heavily loaded
        feeder; there the Jacobian's determinant has the other sign (it vanishes at the
        nose) and voltage sensitivities flip, so cuts would point the wrong way. Such a
        solution is rejected (the next start is tried; if none is accepted the slot is
        ``pf_failed``). Checked only when some |V| is below ``max(v_min_pu, 0.8)``.
        """
        if np.abs(v).min() >= max(self.v_min_pu, _CHECK_BRANCH_BELOW_PU):
            return True
        return self._jacobian_sign(v) == self._upper_sign != 0

    def _violations(self, vm: np.ndarray, loading: np.ndarray) -> tuple[Violation, ...]:
        if vm.min() >= self.v_min_pu and vm.max() <= self.v_max_pu and not np.any(loading > 1):
            return ()
        low = np.flatnonzero(vm < self.v_min_pu)
        high = np.flatnonzero(vm > self.v_max_pu)
        over = np.flatnonzero(loading > 1.0)
        out = [Violation("v_min", self.bus_ids[k], float(vm[k]), self.v_min_pu,
                         float(self.v_min_pu - vm[k])) for k in low]
        out += [Violation("v_max", self.bus_ids[k], float(vm[k]), self.v_max_pu,
                          float(vm[k] - self.v_max_pu)) for k in high]
        out += [Violation("loading", self.rated_labels[k], float(loading[k]), 1.0,
                          float(loading[k] - 1.0)) for k in over]
        return tuple(out)

    # ------------------------------------------------------------ sensitivities
    def violation_gradient(self, result: SlotResult) -> tuple[np.ndarray, np.ndarray]:
        """``dE_t / d(injection)`` at a solved slot, from the AC Jacobian.

        Args:
            result: A converged slot (``result.ok``).

        Returns:
            Per bus id (``bus_ids`` order): the derivative of ``E_t`` with respect to an
            active injection in p.u. per kW and to a reactive injection in p.u. per kvar.
            Buses fused by a closed switch share one node, hence one value.

        """
        feeder, v = self.feeder, result.voltage
        g_vm = np.zeros(feeder.n_nodes)
        g_va = np.zeros(feeder.n_nodes)
        node = feeder.node_of_bus
        for viol in result.violations:
            if viol.kind == "loading":
                k = self.rated_labels.index(viol.element)
                row = int(feeder.line_rows[self._rated_lines[k]])
                d_va, d_vm = loading_state_gradient(feeder.yf, feeder.yt, v, row)
                scale = feeder.i_base_ka[self._rated_lines[k]] / self.i_max_ka[k]
                g_va += scale * d_va
                g_vm += scale * d_vm
            else:
                sign = -1.0 if viol.kind == "v_min" else 1.0
                g_vm[node[self.bus_ids.index(viol.element)]] += sign
        d_p, d_q = injection_gradient(feeder.ybus, v, feeder.pv, feeder.pq, g_va, g_vm)
        return d_p[node] / self.base_kva, d_q[node] / self.base_kva

    # ---------------------------------------------------------------- reference
    def run_pandapower(self, point: OperatingPoint) -> pandapowerNet:
        """Write ``point`` into the net and run a plain ``pandapower.runpp`` (slow reference)."""
        net = self.feeder.apply(point)
        pp.runpp(net, numba=False)
        return net


def _line_ratings(network: NetworkData, labels: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Indices (into ``labels``) of the lines with a rating ``s_max_kva``, and I_max in kA."""
    branches = network.branches
    if "s_max_kva" not in branches.columns:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    s_max = branches["s_max_kva"].reindex(list(labels)).to_numpy(dtype=float)
    rated = np.flatnonzero(np.isfinite(s_max) & (s_max > 0))
    kv = (branches["z_base_kv"].reindex(list(labels)).to_numpy(dtype=float)[rated]
          if "z_base_kv" in branches else float(network.base_kv))
    i_max_ka = s_max[rated] / (np.sqrt(3.0) * kv) / 1000.0
    return rated, i_max_ka
