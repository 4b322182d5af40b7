"""The three-phase operating point, power-flow result and engine protocol (§6b).

Sign conventions: loads consume (``load_p_kw`` per row of ``PhaseNetwork.loads``);
injections inject (generator convention). A :class:`BalancedInjection` (DG, microgrid
PCC, SVC) is spread evenly over the phases of its bus (a third on each phase of a
three-phase bus, all of it on a single-phase bus's phase); a :class:`PhaseInjection`
sits on one phase (a single-phase DER or customer export). Capacitors are the network's
shunts, constant impedance (their nominal kvar times |V|²).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from gridcosim.scenarios.phase_network import PhaseNetwork


@dataclass(frozen=True)
class BalancedInjection:
    """A balanced injection, spread evenly over the phases of its bus."""

    bus: int
    p_kw: float
    q_kvar: float


@dataclass(frozen=True)
class PhaseInjection:
    """A single-phase injection at one bus-phase."""

    bus: int
    phase: str
    p_kw: float
    q_kvar: float


@dataclass(frozen=True, eq=False)
class PhaseOperatingPoint:
    """One slot's state of a three-phase network.

    Attributes:
        load_p_kw: Active power of every load, in ``network.loads`` order.
        load_q_kvar: Reactive power of every load, same order.
        balanced: Balanced injections (DGs, PCCs, SVCs).
        single_phase: Single-phase injections.
        v_ref_pu: Slack voltage magnitude (every phase, 0/-120/+120 degrees).

    """

    load_p_kw: np.ndarray
    load_q_kvar: np.ndarray
    balanced: tuple[BalancedInjection, ...] = ()
    single_phase: tuple[PhaseInjection, ...] = ()
    v_ref_pu: float = 1.0

    @classmethod
    def nominal(cls, network: PhaseNetwork, **kwargs: object) -> PhaseOperatingPoint:
        """Loads at their nominal values (other fields from ``kwargs``)."""
        return cls(network.loads["p_kw"].to_numpy(float),
                   network.loads["q_kvar"].to_numpy(float), **kwargs)  # type: ignore[arg-type]

    def injected_kw(self) -> float:
        """Total active injection of the balanced and single-phase units."""
        return float(sum(u.p_kw for u in self.balanced) + sum(u.p_kw for u in self.single_phase))

    def node_injections(self, network: PhaseNetwork) -> pd.DataFrame:
        """Net injection per (bus, phase): units minus wye-equivalent loads, kW and kvar."""
        out = -network.phase_loads(self.load_p_kw, self.load_q_kvar)
        for unit in self.balanced:
            phases = str(network.buses.at[unit.bus, "phases"])
            for phase in phases:
                out.loc[(unit.bus, phase)] += (unit.p_kw / len(phases), unit.q_kvar / len(phases))
        for unit in self.single_phase:
            out.loc[(unit.bus, unit.phase)] += (unit.p_kw, unit.q_kvar)
        return out


@dataclass(frozen=True, eq=False)
class PhaseFlowResult:
    """A three-phase AC power flow.

    Attributes:
        engine: Name of the engine that solved it.
        converged: Whether the engine converged *and* every guard passed.
        message: Why not, when not.
        vm_pu: |V| per (bus, phase) (``network.nodes`` order); NaN when not converged.
        va_deg: Voltage angle per (bus, phase), degrees; NaN when not converged.
        p_sub_kw: Active power into the network at the slack (all phases).
        q_sub_kvar: Reactive power into the network at the slack.
        losses_kw: Active losses in the lines.
        p_flow_kw: Sending-end active flow per (line, phase), when the engine gives it.
        q_flow_kvar: Sending-end reactive flow per (line, phase), when given.

    """

    engine: str
    converged: bool
    message: str
    vm_pu: pd.Series
    va_deg: pd.Series
    p_sub_kw: float = float("nan")
    q_sub_kvar: float = float("nan")
    losses_kw: float = float("nan")
    p_flow_kw: pd.Series | None = field(default=None)
    q_flow_kvar: pd.Series | None = field(default=None)

    @classmethod
    def failed(cls, engine: str, network: PhaseNetwork, message: str) -> PhaseFlowResult:
        """A failed power flow: every value NaN, the reason in ``message``."""
        nan = pd.Series(np.nan, index=pd.MultiIndex.from_tuples(network.nodes,
                                                                 names=["bus", "phase"]))
        return cls(engine, False, message, nan, nan.copy())


class PhaseEngine(Protocol):
    """A three-phase AC power flow on one network, re-solved for many operating points."""

    name: str
    network: PhaseNetwork

    def solve(self, point: PhaseOperatingPoint) -> PhaseFlowResult:
        """The AC power flow of ``point``; a failure is a result, never an exception."""
        ...
