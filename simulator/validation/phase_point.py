"""A bus-level operating point on a three-phase feeder (docs/formulation.md §6a).

The DSO's schedules are per bus (loads net of curtailment, exchanges, SVC outputs, as in
:mod:`.operating_point`); on a three-phase network each load scales with its bus's load
(curtailment sheds a bus's loads in proportion) and microgrids and SVCs are balanced over
the phases of their bus.
"""

from __future__ import annotations

import numpy as np

from gridcosim.scenarios.phase_network import PhaseNetwork
from gridcosim.simulator.models.lindistflow_model import NetworkWindow
from gridcosim.simulator.validation.operating_point import OperatingPoint
from gridcosim.simulator.validation.phase_engines.base import (
    BalancedInjection,
    PhaseOperatingPoint,
)


def phase_point(window: NetworkWindow, point: OperatingPoint) -> PhaseOperatingPoint:
    """A bus-level point on a three-phase network: each load scaled with its bus's load."""
    net: PhaseNetwork = window.network  # type: ignore[assignment]
    buses = list(net.bus_ids)
    ratio_p = dict(zip(buses, _ratio(point.load_kw, net.load_p_kw.reindex(buses)), strict=True))
    ratio_q = dict(zip(buses, _ratio(point.load_kvar, net.load_q_kvar.reindex(buses)),
                       strict=True))
    loads = net.loads
    units = [BalancedInjection(e.bus, p, q) for e, p, q in
             zip(window.exchanges, point.mg_kw, point.mg_kvar, strict=True)]
    units += [BalancedInjection(svc.bus, 0.0, q) for svc, q in
              zip(window.svcs, point.svc_kvar, strict=True)]
    return PhaseOperatingPoint(
        loads["p_kw"].to_numpy(float) * loads["bus"].map(ratio_p).to_numpy(float),
        loads["q_kvar"].to_numpy(float) * loads["bus"].map(ratio_q).to_numpy(float),
        balanced=tuple(units), v_ref_pu=window.v_ref_pu)


def _ratio(values: np.ndarray, nominal: object) -> np.ndarray:
    """``values / nominal`` elementwise, 0 where the nominal is 0."""
    base = np.asarray(nominal, dtype=float)
    return np.divide(values, base, out=np.zeros(len(base)), where=base != 0)
