r"""The DSO's network check of a market clearing and its per-limit feasibility cuts.

Seed 001, Appendix A: for a clearing (each supplier's output per slot) the DSO solves each
slot's power flow with the metered consumption, the DERs as injections (active power only)
and the upstream microgrid as the slack at the root (:math:`V_{ref}`; it supplies demand
plus losses minus the DERs). For every limit :math:`u_l \le 0` of
:mod:`~gridcosim.simulator.market.network_limits` with :math:`u_l(\hat x) >` the tolerance
it sends one :class:`~gridcosim.simulator.market.messages.MarketCut`

.. math::
    u_l(\hat x) + \sum_s \frac{\partial u_l}{\partial p_s}(p_s - \hat p_s) \le 0
    \iff \sum_s a_s p_s \le b, \quad a_s = \frac{\partial u_l}{\partial p_s},\;
    b = \sum_s a_s \hat p_s - u_l(\hat x),

over the DERs (the slack's coefficient is 0: it is not an injection). A cut names only the
slot and the kind of limit, never a bus, phase or line. Two models (:class:`CutModel`):

* ``ac``: the three-phase AC power flow (OpenDSS or pandapower's ``runpp_3ph``, chosen as
  :func:`~gridcosim.simulator.validation.phase_engines.select.resolve_engine` does), the
  voltage rows on :math:`|V|` (p.u.); slopes by forward differences, one re-solve per DER
  with its output raised by ``slope_step_kw`` (a failed re-solve: a backward step, then
  the LinDist3Flow slope). A power flow that fails is a result (``converged`` False with
  the engine's reason), never an exception.
* ``lindist3flow``: LinDist3Flow itself (docs/formulation.md §6a), the voltage rows on
  :math:`w = |V|^2` (p.u.², bounds squared), lossless flows; the model is affine, so a cut
  is exactly the violated constraint.

Line flows are in p.u. of the per-phase base :math:`S_b/3`. Cuts come in the order of
:attr:`SlotCheck.violations`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from gridcosim.scenarios.market_schema import CutModel
from gridcosim.scenarios.phase_network import PhaseNetwork
from gridcosim.scenarios.schema import AcEngine
from gridcosim.simulator.market.messages import UPSTREAM, LimitKind, MarketCut
from gridcosim.simulator.market.network_limits import (
    LimitRows,
    LinearLimits,
    NetworkLimits,
    SupplierConnection,
    injection_matrix,
    line_phases,
)
from gridcosim.simulator.models.lindist3flow import LinDist3Flow
from gridcosim.simulator.validation.phase_engines.base import (
    BalancedInjection,
    PhaseEngine,
    PhaseFlowResult,
    PhaseInjection,
    PhaseOperatingPoint,
)
from gridcosim.simulator.validation.phase_engines.select import phase_engine, resolve_engine

__all__ = ["CutModel", "LimitViolation", "MarketNetworkCheck", "NetworkLimits", "SlotCheck",
           "SupplierConnection"]


@dataclass(frozen=True)
class LimitViolation:
    r"""One violated limit (the DSO's own record: it names the element).

    Attributes:
        kind: Which kind of limit.
        element: ``(bus, phase)`` of a voltage limit, ``(line, phase)`` of a flow limit.
        u_pu: :math:`u_l(\hat x) > 0` (p.u.; p.u.² for LinDist3Flow's voltage rows).
        row: The limit's position in the DSO's limit list (:class:`LimitRows`).

    """

    kind: LimitKind
    element: tuple[int | str, str]
    u_pu: float
    row: int


@dataclass(frozen=True)
class SlotCheck:
    """The network check of one slot of a clearing.

    Attributes:
        slot: Slot within the market window.
        converged: Whether the power flow gave a finite solution.
        message: Why not, when not.
        vm_pu: |V| per (bus, phase), ``network.nodes`` order (NaN when not converged).
        max_violation_pu: Largest :math:`u_l` (0 when every limit holds, ``inf`` when the
            power flow failed).
        violations: Every limit with :math:`u_l` above the tolerance, in row order.
        p_sub_kw: The upstream microgrid's output (the slack's import, losses included).
        losses_kw: Active line losses (0 for the lossless LinDist3Flow).

    """

    slot: int
    converged: bool
    message: str
    vm_pu: pd.Series
    max_violation_pu: float
    violations: tuple[LimitViolation, ...]
    p_sub_kw: float
    losses_kw: float

    @property
    def feasible(self) -> bool:
        """Converged with every limit within the tolerance."""
        return self.converged and not self.violations


class MarketNetworkCheck:
    """The DSO's check of clearings on one network (models built once, reused per call).

    Args:
        network: The three-phase network.
        connections: Every DER that can sell (not the upstream microgrid).
        limits: The network limits.
        cut_model: ``ac`` or ``lindist3flow``.
        engine: The AC engine (``ac`` only).
        tolerance_pu: A limit is violated when :math:`u_l` exceeds this.
        slope_step_kw: Forward-difference step of the AC slopes.
        lindist: A LinDist3Flow model of ``network`` to reuse.

    """

    def __init__(self, network: PhaseNetwork, connections: Sequence[SupplierConnection],
                 limits: NetworkLimits, *, cut_model: CutModel = CutModel.AC,
                 engine: AcEngine = AcEngine.AUTO, tolerance_pu: float = 1e-6,
                 slope_step_kw: float = 1.0, lindist: LinDist3Flow | None = None) -> None:
        self.network, self.limits = network, limits
        self.connections = tuple(connections)
        self.names = tuple(c.name for c in self.connections)
        self.cut_model = CutModel(cut_model)
        self.tolerance_pu, self.slope_step_kw = tolerance_pu, slope_step_kw
        self._lindist = lindist
        self._index = pd.MultiIndex.from_tuples(network.nodes, names=["bus", "phase"])
        self._flow_index = pd.MultiIndex.from_tuples(line_phases(network),
                                                     names=["line", "phase"])
        if self.cut_model is CutModel.AC:
            injection_matrix(network, self.connections)  # rejects what the network lacks
            self.rows = LimitRows(network, limits, squared=False)
            self._engine_choice = engine
            self.engine = _flow_engine(network, engine)
        else:
            self.rows = self.linear.rows

    def reset(self) -> None:
        """A fresh AC engine (about 0.15 s on the European LV feeder).

        An engine warm-starts each solve from the last one and keeps the elements it
        added; a fresh one makes the next results independent of what was solved before,
        so that a run resumed at a day boundary equals an uninterrupted one.
        """
        if self.cut_model is CutModel.AC:
            self.engine = _flow_engine(self.network, self._engine_choice)

    @cached_property
    def linear(self) -> LinearLimits:
        """The LinDist3Flow limits (the ``lindist3flow`` model; AC slopes' last resort)."""
        return LinearLimits(self.network, self.connections, self.limits, lindist=self._lindist)

    def _der_kw(self, supply_kw: Mapping[str, float]) -> np.ndarray:
        """The DERs' outputs in connection order (0 where absent; the upstream ignored)."""
        unknown = set(supply_kw) - set(self.names) - {UPSTREAM}
        if unknown:
            raise ValueError(f"suppliers {sorted(unknown)} are not connected to the network")
        return np.array([float(supply_kw.get(name, 0.0)) for name in self.names])

    # ------------------------------------------------------------------ the check
    def check_slot(self, slot: int, load_p_kw: np.ndarray, load_q_kvar: np.ndarray,
                   supply_kw: Mapping[str, float]) -> SlotCheck:
        """Solve one slot and list its violated limits.

        Args:
            slot: Slot within the market window.
            load_p_kw: Every load's consumption (``network.loads`` order).
            load_q_kvar: Every load's reactive consumption.
            supply_kw: Each DER's output (the upstream's, if given, is ignored: it is
                the slack).

        Returns:
            The check; a failed power flow is ``converged`` False, not an exception.

        """
        der = self._der_kw(supply_kw)
        p, q = np.asarray(load_p_kw, float), np.asarray(load_q_kvar, float)
        if self.cut_model is CutModel.AC:
            return self._check_ac(slot, p, q, der)
        return self._check_linear(slot, p, q, der)

    def _check_ac(self, slot: int, p: np.ndarray, q: np.ndarray, der: np.ndarray) -> SlotCheck:
        result = self.engine.solve(self._point(p, q, der))
        u = self._ac_values(result)
        if u is None:
            return self._failed(slot, result.message or "the engine gave no line flows or "
                                "non-finite values")
        return self._slot_check(slot, u, result.vm_pu, result.p_sub_kw, result.losses_kw)

    def _check_linear(self, slot: int, p: np.ndarray, q: np.ndarray,
                      der: np.ndarray) -> SlotCheck:
        u = self.linear.offset(p, q) + self.linear.slope @ der
        w = self.linear.squared_voltages(p, q, der)
        if not (np.all(np.isfinite(u)) and np.all(np.isfinite(w))):
            return self._failed(slot, "the operating point is not finite")
        vm = pd.Series(np.sqrt(np.maximum(w, 0.0)), index=self._index)
        return self._slot_check(slot, u, vm, float(p.sum() - der.sum()), 0.0)

    def _point(self, p: np.ndarray, q: np.ndarray, der: np.ndarray) -> PhaseOperatingPoint:
        """The engine's operating point: loads, the DERs as P-only injections."""
        balanced, single = [], []
        for c, kw in zip(self.connections, der, strict=True):
            if len(c.phases) == 1:
                single.append(PhaseInjection(c.bus, c.phases, float(kw), 0.0))
            else:
                balanced.append(BalancedInjection(c.bus, float(kw), 0.0))
        return PhaseOperatingPoint(p, q, tuple(balanced), tuple(single), self.limits.v_ref_pu)

    def _ac_values(self, result: PhaseFlowResult) -> np.ndarray | None:
        """:math:`u` of every row of a converged AC result (``None`` if it is not usable)."""
        if not result.converged or result.p_flow_kw is None or result.q_flow_kvar is None:
            return None
        p_flow, q_flow = result.p_flow_kw, result.q_flow_kvar
        if not p_flow.index.equals(self._flow_index):
            p_flow, q_flow = p_flow.reindex(self._flow_index), q_flow.reindex(self._flow_index)
        u = self.rows.values(result.vm_pu.to_numpy(float), p_flow.to_numpy(float),
                             q_flow.to_numpy(float))
        return u if np.all(np.isfinite(u)) else None

    def _slot_check(self, slot: int, u: np.ndarray, vm: pd.Series, p_sub_kw: float,
                    losses_kw: float) -> SlotCheck:
        rows = np.flatnonzero(u > self.tolerance_pu)
        violations = tuple(LimitViolation(self.rows.kinds[r], self.rows.elements[r],
                                          float(u[r]), int(r)) for r in rows)
        return SlotCheck(slot, True, "", vm, max(float(u.max()), 0.0), violations,
                         float(p_sub_kw), float(losses_kw))

    def _failed(self, slot: int, message: str) -> SlotCheck:
        nan = pd.Series(np.nan, index=self._index)
        return SlotCheck(slot, False, message, nan, math.inf, (), math.nan, math.nan)

    def check_window(self, load_p_kw: np.ndarray, load_q_kvar: np.ndarray,
                     supply_kw: Mapping[str, np.ndarray]) -> list[SlotCheck]:
        """:meth:`check_slot` of every slot (loads slots × loads, outputs per slot)."""
        return [self.check_slot(t, load_p_kw[t], load_q_kvar[t],
                                {name: float(np.asarray(kw)[t]) for name, kw in supply_kw.items()})
                for t in range(np.shape(load_p_kw)[0])]

    # ------------------------------------------------------------------ the cuts
    def cuts(self, slot: int, check: SlotCheck, load_p_kw: np.ndarray,
             load_q_kvar: np.ndarray, supply_kw: Mapping[str, float]) -> list[MarketCut]:
        """One cut per violated limit of ``check`` (the slot's arguments as for the check).

        Raises:
            ValueError: ``check`` did not converge (there is nothing to linearise).

        """
        if not check.converged:
            raise ValueError(f"slot {slot}: no cuts from a failed power flow ({check.message})")
        if not check.violations:
            return []
        der = self._der_kw(supply_kw)
        rows = np.array([v.row for v in check.violations])
        slopes = self._slopes(rows, check, np.asarray(load_p_kw, float),
                              np.asarray(load_q_kvar, float), der)
        return [self._cut(slot, v, a, der) for v, a in zip(check.violations, slopes, strict=True)]

    def _cut(self, slot: int, violation: LimitViolation, a: np.ndarray,
             der: np.ndarray) -> MarketCut:
        coefficients = tuple((name, float(g)) for name, g in zip(self.names, a, strict=True)
                             if g != 0.0)
        return MarketCut(slot, violation.kind, coefficients,
                         float(a @ der - violation.u_pu), violation.u_pu)

    def _slopes(self, rows: np.ndarray, check: SlotCheck, p: np.ndarray, q: np.ndarray,
                der: np.ndarray) -> np.ndarray:
        r""":math:`\partial u / \partial p_s` of the rows (rows × DERs)."""
        if self.cut_model is CutModel.LINDIST3FLOW:
            return self.linear.slope[rows]
        u_hat = np.array([v.u_pu for v in check.violations])
        out = np.empty((len(rows), len(self.names)))
        for s in range(len(self.names)):
            out[:, s] = self._ac_slope(rows, u_hat, s, p, q, der)
        failed = np.isnan(out)
        if failed.any():
            out[failed] = self._linear_ac_slopes(rows, check.vm_pu)[failed]
        return out

    def _ac_slope(self, rows: np.ndarray, u_hat: np.ndarray, s: int, p: np.ndarray,
                  q: np.ndarray, der: np.ndarray) -> np.ndarray:
        """Forward difference in DER ``s`` (backward if that fails; NaN if both do)."""
        for step in (self.slope_step_kw, -self.slope_step_kw):
            moved = der.copy()
            moved[s] += step
            u = self._ac_values(self.engine.solve(self._point(p, q, moved)))
            if u is not None:
                return (u[rows] - u_hat) / step
        return np.full(len(rows), np.nan)

    def _linear_ac_slopes(self, rows: np.ndarray, vm_pu: pd.Series) -> np.ndarray:
        r"""LinDist3Flow's slopes in the AC rows' units: :math:`\partial|V| = \partial w/2|V|`."""
        slope = self.linear.slope[rows].copy()
        n = len(self.network.nodes)
        voltage = rows < 2 * n
        vm = vm_pu.to_numpy(float)[rows[voltage] % n]
        slope[voltage] /= 2.0 * vm[:, None]
        return slope


def _flow_engine(network: PhaseNetwork, choice: AcEngine) -> PhaseEngine:
    """The AC engine, with the line flows the flow limits need."""
    if resolve_engine(network, choice) is AcEngine.OPENDSS:
        from gridcosim.simulator.validation.phase_engines.opendss_engine import (
            OpenDSSPhaseEngine,
        )

        return OpenDSSPhaseEngine(network, line_flows=True)
    return phase_engine(network, choice)  # runpp_3ph's results always carry the flows
