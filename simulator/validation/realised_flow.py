"""The AC power flow of each executed slot's realised state (docs/formulation.md §6).

After a slot is executed the DSO knows what its meters saw: every bus's served load (the
realised consumption less the curtailment), every microgrid's realised exchange at its
PCC, and its SVCs' outputs. :class:`RealisedPowerFlow` runs the AC power flow of that
state — balanced, or per phase on a three-phase feeder — from a flat start every time (a
resumed run equals an uninterrupted one), so the realised substation import includes the
losses the lossless plan leaves out. A power flow that fails is a result
(``converged=False``), recorded as such.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from gridcosim.scenarios.phase_network import PhaseNetwork
from gridcosim.scenarios.schema import AcEngine
from gridcosim.simulator.models.lindistflow_model import NetworkWindow
from gridcosim.simulator.validation.ac_cuts import window_validator
from gridcosim.simulator.validation.operating_point import OperatingPoint
from gridcosim.simulator.validation.phase_cuts import PhaseValidator
from gridcosim.simulator.validation.phase_engines.select import phase_engine
from gridcosim.simulator.validation.validator import NetworkValidator


@dataclass(frozen=True, eq=False)
class RealisedSlot:
    """The AC power flow of one executed slot.

    Attributes:
        slot: Slot index of the run.
        converged: Whether the power flow converged (and passed its engine's checks).
        p_sub_kw: Realised active import at the substation (NaN if not converged).
        q_sub_kvar: Realised reactive import (NaN if not converged).
        losses_kw: Active losses (NaN if not converged).
        vm_pu: |V| per bus (per node ``"bus.phase"`` on a three-phase feeder); NaN if
            not converged.

    """

    slot: int
    converged: bool
    p_sub_kw: float
    q_sub_kvar: float
    losses_kw: float
    vm_pu: np.ndarray


class RealisedPowerFlow:
    """AC power flows of realised slots on one feeder (built once per run).

    Args:
        window: A window of the run (its feeder, PCCs, SVCs and reference voltage).
        engine: The three-phase engine choice (ignored on a balanced feeder).
        like: The run's window validator: its compiled balanced feeder is shared.

    """

    def __init__(self, window: NetworkWindow, engine: AcEngine = AcEngine.AUTO, *,
                 like: NetworkValidator | PhaseValidator | None = None):
        self.window = window
        net = window.network
        if isinstance(net, PhaseNetwork):
            self.validator = PhaseValidator(window, phase_engine(net, engine))
        elif isinstance(like, NetworkValidator):  # the same feeder, compiled once
            self.validator = like.sibling(warm_start=False)
        else:
            self.validator = window_validator(window, warm_start=False)
        self.columns = tuple(self.validator.bus_ids)

    def solve(self, slot: int, served_kw: Mapping[int, tuple[float, float]],
              exchanges: Mapping[str, tuple[float, float]],
              svc_kvar: tuple[float, ...]) -> RealisedSlot:
        """The power flow of slot ``slot``'s realised state.

        Args:
            slot: Slot index (for the record).
            served_kw: (kW, kvar) served per load bus; buses not listed draw nothing.
            exchanges: Realised (kW, kvar) exchange per microgrid (export positive).
            svc_kvar: Every SVC's output (the window's SVC order).

        """
        buses = list(self.window.network.bus_ids)
        p = np.array([served_kw.get(b, (0.0, 0.0))[0] for b in buses], dtype=float)
        q = np.array([served_kw.get(b, (0.0, 0.0))[1] for b in buses], dtype=float)
        names = [e.mg for e in self.window.exchanges]
        point = OperatingPoint(0, p, q, tuple(exchanges[m][0] for m in names),
                               tuple(exchanges[m][1] for m in names), tuple(svc_kvar))
        result = self.validator.solve(point)
        nan = float("nan")
        if not result.ok:
            return RealisedSlot(slot, False, nan, nan, nan, np.full(len(self.columns), nan))
        return RealisedSlot(slot, True, float(result.p_sub_kw), float(result.q_sub_kvar),
                            float(result.losses_kw), np.asarray(result.vm_pu, dtype=float))
