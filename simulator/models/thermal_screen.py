r"""Exact screen of the thermal rows: keep only the polygon sides a branch flow can reach.

LinDistFlow is lossless, so the flow into bus n is the sum of what lies at and below n
(docs/formulation.md §2):

.. math::
    P_l = \sum_{m \in sub(n)} \big(P^L_m - c_m - \textstyle\sum_{i@m} P^{ex}_i\big), \qquad
    Q_l = \sum_{m \in sub(n)} \big(Q^L_m - \tfrac{Q^L_m}{P^L_m} c_m
          - \textstyle\sum_{i@m} Q^{ex}_i - \sum_{s@m} q_s - Q^{cap}_m v_m\big)

Every term lies in an interval known before any solve: the bus loads over all the slots a
model will ever be loaded with (:class:`LoadRange`, curtailment ``0 <= c <= P^L``
included), the exchange bounds the microgrids publish, the SVC limits and the voltage
limits of ``v``. Summing the intervals over the subtree gives a box
:math:`[\underline P_l, \overline P_l] \times [\underline Q_l, \overline Q_l]` that holds
every feasible flow. A polygon side :math:`\cos a\,P + \sin a\,Q \le S \cos(\pi/8)` whose
largest left side over that box is at most its right side can never bind and is dropped:
the screened model has exactly the same feasible set (and optimum) as the full one. Cuts
appended later only shrink the feasible set, so a dropped side stays redundant.

The screen depends on the window only through its shape (network, exchange bounds, SVCs,
voltage limits: :func:`~gridcosim.simulator.models.lindistflow_model.same_shape`) and
the run's load range, so a model built once stays exact for every window of the run, and
a resumed run builds the same rows as an uninterrupted one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from gridcosim.scenarios.network import NetworkData

if TYPE_CHECKING:
    from gridcosim.simulator.models.lindistflow_model import NetworkWindow

#: The polygon's side angles ``a_k = k π/4`` and its right-hand side factor cos(π/8).
SIDE_ANGLES = tuple(k * math.pi / 4 for k in range(8))
SIDE_RHS_FACTOR = math.cos(math.pi / 8)
#: A side is dropped only if its largest left side is below the right side by this much
#: (relative): floating-point sums of thousands of bounds never decide a near-binding side.
SCREEN_MARGIN = 1e-9


@dataclass(frozen=True, eq=False)
class LoadRange:
    """Per-bus range of the net load a bus draws, over a set of slots (kW, kvar).

    The net load of a curtailable bus (nominal load > 0) is ``P^L - c`` and
    ``Q^L - pf c`` with ``0 <= c <= P^L``: each slot's segment between no and full
    curtailment is in the range.

    Attributes:
        buses: Bus ids, the arrays' order.
        p_min_kw: Smallest net active load per bus.
        p_max_kw: Largest net active load per bus.
        q_min_kvar: Smallest net reactive load per bus.
        q_max_kvar: Largest net reactive load per bus.

    """

    buses: tuple[int, ...]
    p_min_kw: np.ndarray
    p_max_kw: np.ndarray
    q_min_kvar: np.ndarray
    q_max_kvar: np.ndarray

    @classmethod
    def of(cls, network: NetworkData, load_kw: pd.DataFrame, load_kvar: pd.DataFrame
           ) -> LoadRange:
        """The range of bus loads given as DataFrames (bus x slot), curtailment included."""
        buses = tuple(network.bus_ids)
        p = load_kw.reindex(list(buses)).to_numpy(dtype=float)
        q = load_kvar.reindex(list(buses)).to_numpy(dtype=float)
        p_nom = network.load_p_kw.reindex(list(buses)).to_numpy(dtype=float)
        q_nom = network.load_q_kvar.reindex(list(buses)).to_numpy(dtype=float)
        curtailable = p_nom > 0
        pf = np.divide(q_nom, p_nom, out=np.zeros_like(p_nom), where=curtailable)
        p_cut = np.where(curtailable[:, None], 0.0, p)  # fully curtailed
        q_cut = q - pf[:, None] * (p - p_cut)
        return cls(buses, np.minimum(p, p_cut).min(axis=1), np.maximum(p, p_cut).max(axis=1),
                   np.minimum(q, q_cut).min(axis=1), np.maximum(q, q_cut).max(axis=1))

    def covers(self, other: LoadRange) -> bool:
        """Whether every bus's range of ``other`` lies within this one's."""
        return (self.buses == other.buses
                and bool(np.all(other.p_min_kw >= self.p_min_kw))
                and bool(np.all(other.p_max_kw <= self.p_max_kw))
                and bool(np.all(other.q_min_kvar >= self.q_min_kvar))
                and bool(np.all(other.q_max_kvar <= self.q_max_kvar)))


def window_load_range(w: NetworkWindow) -> LoadRange:
    """The load range a model built for ``w`` is screened with (the run's, else ``w``'s)."""
    if w.load_range is not None:
        return w.load_range
    return w.own_load_range


def bus_intervals(w: NetworkWindow, loads: LoadRange) -> np.ndarray:
    """Interval of every bus's net withdrawal, rows ``(p_lo, p_hi, q_lo, q_hi)`` per bus.

    Loads (with curtailment), minus the microgrids' exchanges, SVC outputs and the
    capacitor injection ``Q^cap v`` over ``v`` in ``[V_min², V_max²]``; rows in
    ``loads.buses`` order.
    """
    net = w.network
    index = {bus: k for k, bus in enumerate(loads.buses)}
    out = np.column_stack([loads.p_min_kw, loads.p_max_kw, loads.q_min_kvar, loads.q_max_kvar])
    for e in w.exchanges:
        out[index[e.bus]] -= (e.p_max_kw, e.p_min_kw, e.q_max_kvar, e.q_min_kvar)
    for s in w.svcs:
        out[index[s.bus], 2:] -= (s.q_max_kvar, s.q_min_kvar)
    cap = net.shunt_q_kvar.reindex(list(loads.buses)).to_numpy(dtype=float)
    ends = np.outer(cap, (w.v_min_pu**2, w.v_max_pu**2))
    out[:, 2] -= ends.max(axis=1)
    out[:, 3] -= ends.min(axis=1)
    return out


def flow_intervals(w: NetworkWindow, loads: LoadRange) -> dict[int, np.ndarray]:
    """Box ``(P_lo, P_hi, Q_lo, Q_hi)`` of the flow into every non-root bus (kW, kvar)."""
    net = w.network
    sums = {bus: row for bus, row in zip(loads.buses, bus_intervals(w, loads), strict=True)}
    for bus in reversed(net.bus_ids):  # children before parents
        if bus != net.root_bus:
            sums[net.parent[bus]] = sums[net.parent[bus]] + sums[bus]
    return {bus: box for bus, box in sums.items() if bus != net.root_bus}


def side_can_bind(box: np.ndarray, angle: float, s_max_kva: float) -> bool:
    """Whether ``cos a P + sin a Q <= S cos(π/8)`` can bind for a flow in ``box``."""
    c, s = math.cos(angle), math.sin(angle)
    largest = max(c * box[0], c * box[1]) + max(s * box[2], s * box[3])
    rhs = s_max_kva * SIDE_RHS_FACTOR
    return largest > rhs - SCREEN_MARGIN * max(1.0, rhs)


def branch_ratings(w: NetworkWindow) -> dict[int, float]:
    """Rating ``s_max_kva`` of the branch into each non-root bus that has one (kVA)."""
    br, net = w.network.branches, w.network
    if "s_max_kva" not in br.columns:
        return {}
    rating = br["s_max_kva"].astype(float)
    out = {bus: float(rating[net.branch_of[bus]]) for bus in net.bus_ids if bus != net.root_bus}
    return {bus: s for bus, s in out.items() if np.isfinite(s) and s > 0}


def binding_sides(w: NetworkWindow) -> list[tuple[int, int]]:
    """The thermal rows worth keeping: ``(bus, side k)`` whose side ``a_k`` can bind.

    Sides on rated branches, in bus order, screened with :func:`window_load_range`.
    """
    ratings = branch_ratings(w)
    if not ratings:
        return []
    boxes = flow_intervals(w, window_load_range(w))
    return [(bus, k) for bus, s_max in ratings.items()
            for k, angle in enumerate(SIDE_ANGLES) if side_can_bind(boxes[bus], angle, s_max)]


def rated_sides(w: NetworkWindow) -> list[tuple[int, int]]:
    """Every side of every rated branch, ``(bus, side k)`` in bus order (no screen)."""
    return [(bus, k) for bus in branch_ratings(w) for k in range(len(SIDE_ANGLES))]
