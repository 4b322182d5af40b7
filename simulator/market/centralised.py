r"""The centralised reference clearing of seed 001 (Proposition 3).

One LP over the whole window, as if the market operator knew the network:

.. math::
    \min \sum_t \sum_s c_{s,t}\, p_{s,t}\, \Delta t \quad \text{s.t.} \quad
    \sum_s p_{s,t} = \sum_{loads} P_t \;(\lambda_t), \quad
    \underline p_{s,t} \le p_{s,t} \le \overline p_{s,t}, \quad
    c_{l,t} + \sum_{s \in DER} G_{l,s}\, p_{s,t} \le 0,

the market balance lossless, the suppliers the DERs and the upstream microgrid (its offer
is 0 to its capacity at the LMP), the network rows every limit of
:class:`~gridcosim.simulator.market.network_limits.LinearLimits` (LinDist3Flow: the
:math:`w` band on every bus-phase, :math:`|P|`, :math:`|Q|` on every line-phase). A row
that holds at every corner of the slot's offer box holds on all of it (it is affine) and is
left out, which changes nothing (``screen=False`` keeps every row, for checking). The
clearing price is the balance's dual per kWh.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import highspy
import numpy as np

from gridcosim.scenarios.phase_network import PhaseNetwork
from gridcosim.simulator.highs_instance import INF, STATUS, quiet_highs
from gridcosim.simulator.market.messages import UPSTREAM, SupplyOffer
from gridcosim.simulator.market.network_limits import (
    LinearLimits,
    NetworkLimits,
    SupplierConnection,
)
from gridcosim.simulator.models.lindist3flow import LinDist3Flow

#: HiGHS options of the reference LP.
LP_OPTIONS = {"threads": 1, "random_seed": 0, "primal_feasibility_tolerance": 1e-9,
              "dual_feasibility_tolerance": 1e-9}


@dataclass(frozen=True)
class CentralisedResult:
    """The centralised clearing.

    Attributes:
        status: HiGHS's model status (``optimal``, ``infeasible``, ...).
        cost_usd: Cost of the clearing at the offers' costs (NaN unless optimal).
        p_kw: Each supplier's output per slot (empty unless optimal).
        clearing_price_usd_per_kwh: The balance's dual per slot (NaN unless optimal).
        wall_s: Time to build and solve the LP.
        network_rows: Network rows in the LP (after screening).

    """

    status: str
    cost_usd: float
    p_kw: Mapping[str, np.ndarray]
    clearing_price_usd_per_kwh: np.ndarray
    wall_s: float
    network_rows: int = 0


@dataclass(frozen=True)
class _Rows:
    """Rows in CSR form: bounds, starts, column indices, values."""

    lower: np.ndarray
    upper: np.ndarray
    starts: np.ndarray
    index: np.ndarray
    value: np.ndarray


def centralised_clearing(network: PhaseNetwork, connections: Sequence[SupplierConnection],
                         limits: NetworkLimits, offers: Sequence[SupplyOffer],
                         load_p_kw: np.ndarray, load_q_kvar: np.ndarray,
                         slot_hours: float = 1.0, *, lindist: LinDist3Flow | None = None,
                         screen: bool = True) -> CentralisedResult:
    """Solve the centralised clearing LP.

    Args:
        network: The network.
        connections: Where the DERs are (each offer other than the upstream's needs one).
        limits: The network limits.
        offers: Every supplier's offer (:data:`UPSTREAM` for the upstream microgrid).
        load_p_kw: Consumption per slot and load (slots × ``network.loads``).
        load_q_kvar: Reactive consumption, same shape.
        slot_hours: Slot length.
        lindist: A LinDist3Flow model of ``network`` to reuse.
        screen: Leave out the network rows that hold over the whole offer box.

    Returns:
        The clearing (a status other than ``optimal`` when the LP has no optimum).

    Raises:
        ValueError: An offer names a supplier that is not connected, or the offers' and
            loads' slot counts differ.

    """
    tick = time.perf_counter()
    ders = _ders(connections, offers)
    p, q = np.atleast_2d(load_p_kw), np.atleast_2d(load_q_kvar)
    linear = LinearLimits(network, ders, limits, lindist=lindist)
    lo, hi, cost = _offer_arrays(offers, p.shape[0])
    der_cols = np.array([i for i, o in enumerate(offers) if o.supplier != UPSTREAM], int)
    columns = np.arange(p.shape[0])[:, None] * len(offers) + der_cols[None, :]
    rows = _network_rows(linear, (p, q), lo[der_cols], hi[der_cols], columns, screen)
    highs = quiet_highs(LP_OPTIONS)
    highs.addVars(lo.size, lo.T.ravel(), hi.T.ravel())
    highs.changeColsCost(lo.size, np.arange(lo.size, dtype=np.int32),
                         cost.T.ravel() * slot_hours)
    _add_rows(highs, _balance_rows(p.sum(axis=1), len(offers)))
    _add_rows(highs, rows)
    run = highs.run()
    result = _result(highs, run, offers, p.shape[0], slot_hours, len(rows.lower))
    return replace(result, wall_s=time.perf_counter() - tick)


def _ders(connections: Sequence[SupplierConnection], offers: Sequence[SupplyOffer]
          ) -> list[SupplierConnection]:
    """The connections of the offering DERs, in offer order."""
    where = {c.name: c for c in connections}
    missing = [o.supplier for o in offers if o.supplier != UPSTREAM and o.supplier not in where]
    if missing:
        raise ValueError(f"offers from suppliers that are not connected: {missing}")
    return [where[o.supplier] for o in offers if o.supplier != UPSTREAM]


def _offer_arrays(offers: Sequence[SupplyOffer], slots: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least and largest output and cost, suppliers × slots."""
    arrays = [np.array([getattr(o, f) for o in offers], float).reshape(len(offers), -1)
              for f in ("p_min_kw", "p_max_kw", "cost_usd_per_kwh")]
    if any(a.shape[1] != slots for a in arrays):
        raise ValueError(f"offers cover {arrays[0].shape[1]} slots, the loads {slots}")
    return arrays[0], arrays[1], arrays[2]


def _network_rows(linear: LinearLimits, load: tuple[np.ndarray, np.ndarray], lo: np.ndarray,
                  hi: np.ndarray, columns: np.ndarray, screen: bool) -> _Rows:
    """``G p_t <= -c_t`` per slot (slot-major); ``columns``: the DERs' LP columns per slot."""
    g, offset = linear.slope, linear.offset(*load)  # rows × DERs, rows × slots
    worst = np.maximum(g, 0.0) @ hi - np.maximum(-g, 0.0) @ lo  # max of G p over the box
    keep = (offset + worst > 0.0) | (not screen)
    slot, row = np.nonzero(keep.T)
    starts = np.arange(len(row), dtype=np.int32) * g.shape[1]
    return _Rows(np.full(len(row), -INF), -offset[row, slot], starts,
                 columns[slot].ravel().astype(np.int32), g[row].ravel())


def _balance_rows(demand_kw: np.ndarray, n_suppliers: int) -> _Rows:
    """``sum_s p_{s,t} = demand_t`` per slot."""
    slots = len(demand_kw)
    return _Rows(demand_kw.astype(float), demand_kw.astype(float),
                 np.arange(slots, dtype=np.int32) * n_suppliers,
                 np.arange(slots * n_suppliers, dtype=np.int32), np.ones(slots * n_suppliers))


def _add_rows(highs: Any, rows: _Rows) -> None:
    """Add ``rows`` to the LP."""
    if len(rows.lower):
        highs.addRows(len(rows.lower), rows.lower, rows.upper, len(rows.index), rows.starts,
                      rows.index, rows.value)


def _result(highs: Any, run: Any, offers: Sequence[SupplyOffer], slots: int,
            slot_hours: float, network_rows: int) -> CentralisedResult:
    """The LP's outcome as a :class:`CentralisedResult` (``wall_s`` 0)."""
    status = "error" if run == highspy.HighsStatus.kError else \
        STATUS.get(highs.getModelStatus(), "error")
    if status != "optimal":
        return CentralisedResult(status, float("nan"), {}, np.full(slots, np.nan), 0.0,
                                 network_rows)
    solution = highs.getSolution()
    x = np.asarray(solution.col_value).reshape(slots, len(offers))
    price = np.asarray(solution.row_dual)[:slots] / slot_hours
    p_kw = {o.supplier: x[:, i].copy() for i, o in enumerate(offers)}
    return CentralisedResult(status, float(highs.getInfo().objective_function_value), p_kw,
                             price, 0.0, network_rows)
