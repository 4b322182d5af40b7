r"""The market operator's clearing LP (seed 001 (A1)-(A3) with the DSO's cuts).

For one market window of T slots, suppliers s (the DERs and the upstream microgrid):

.. math::
    \min \sum_{t,s} c_{s,t} p_{s,t} \Delta t \quad
    \text{s.t.}\quad \sum_s p_{s,t} = D_t,\quad
    \underline p_{s,t} \le p_{s,t} \le \bar p_{s,t},\quad
    \sum_s a_{k,s} p_{s,t_k} \le b_k \;\; \forall \text{cuts } k

The operator knows the offers, the demand to serve and the cuts: no bus, phase or line.
The model is built once per set of suppliers and window length; a new day changes
bounds, costs and the demand in bulk, and cuts are rows appended (and dropped when the
demand they were made for changes).

Equal-cost offers (wind and PV both at 0 $/kWh) would leave the split between them to
the simplex vertex; the operator's rule is a tie-break of ``TIE_BREAK_USD_PER_KWH`` per
position in the offer list (:func:`tie_broken_costs`; far below any real cost
difference, and above HiGHS's dual tolerance, which a smaller one would fall under: the
split would then again follow the vertex), so every reported dispatch is unique. The
centralised reference clears with the same rule. Reported costs use the offers' own
costs.

Prices: the clearing price of slot t is the balance row's dual per kWh (what one more kWh
of demand would cost, cuts included); a supplier's marginal value is its cost minus its
reduced cost per kWh (its LMP-like personalised price: above its cost when the cuts or
its limit hold it back).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from gridcosim.simulator.highs_instance import INF, STATUS, quiet_highs
from gridcosim.simulator.market.messages import Clearing, MarketCut, SupplyOffer

#: Cost added per position in the offer list to break ties between equal offers ($/kWh).
TIE_BREAK_USD_PER_KWH = 1e-6
#: HiGHS options of the clearing LP.
LP_OPTIONS = {"threads": 1, "random_seed": 0, "presolve": "off"}


def tie_broken_costs(offers: Sequence[SupplyOffer]) -> list[SupplyOffer]:
    """The offers with the operator's tie-break added to their costs (offer order)."""
    return [replace(o, cost_usd_per_kwh=tuple(c + k * TIE_BREAK_USD_PER_KWH
                                              for c in o.cost_usd_per_kwh))
            for k, o in enumerate(offers)]


@dataclass(frozen=True, eq=False)
class ClearingOutcome:
    """One solve of the clearing LP.

    Attributes:
        status: HiGHS's model status (``optimal``, ``infeasible``, ...).
        clearing: The transactions (``None`` without a solution).
        marginal_value_usd_per_kwh: Per supplier, its marginal value per slot.
        cut_duals: Dual of every cut row (``$`` per unit of the cut; <= 0 where binding).

    """

    status: str
    clearing: Clearing | None
    marginal_value_usd_per_kwh: dict[str, np.ndarray]
    cut_duals: np.ndarray


class ClearingModel:
    """The market operator's LP over one window.

    Args:
        suppliers: Supplier names (DERs and ``UPSTREAM``), in the order of their offers.
        slots: Slots per window.
        slot_hours: Slot length.

    """

    def __init__(self, suppliers: Sequence[str], slots: int, slot_hours: float = 1.0):
        self.suppliers, self.slots, self.slot_hours = tuple(suppliers), int(slots), slot_hours
        self._highs = quiet_highs(LP_OPTIONS)
        n = len(self.suppliers) * self.slots
        self._highs.addVars(n, np.zeros(n), np.zeros(n))
        self._cost = np.zeros(n)
        self._lp_cost = np.zeros(n)
        self._add_balance_rows()
        self._cuts = 0

    def col(self, supplier: str, slot: int) -> int:
        """Column of a supplier's output in a slot."""
        return self.suppliers.index(supplier) * self.slots + slot

    def _add_balance_rows(self) -> None:
        n_s = len(self.suppliers)
        for t in range(self.slots):
            idx = np.array([k * self.slots + t for k in range(n_s)], dtype=np.int32)
            self._highs.addRow(0.0, 0.0, n_s, idx, np.ones(n_s))

    def set_offers(self, offers: Sequence[SupplyOffer]) -> None:
        """Bounds and costs of every column from the suppliers' offers (in bulk)."""
        by_name = {o.supplier: o for o in offers}
        if set(by_name) != set(self.suppliers):
            raise ValueError(f"offers from {sorted(by_name)}, expected {sorted(self.suppliers)}")
        ordered = [by_name[s] for s in self.suppliers]
        lo = np.concatenate([o.p_min_kw for o in ordered])
        hi = np.concatenate([o.p_max_kw for o in ordered])
        cost = np.concatenate([o.cost_usd_per_kwh for o in ordered])
        if lo.size != self._cost.size or hi.size != lo.size or cost.size != lo.size:
            raise ValueError(f"offers must cover {self.slots} slots each")
        idx = np.arange(lo.size, dtype=np.int32)
        self._cost = cost * self.slot_hours
        self._lp_cost = np.concatenate([o.cost_usd_per_kwh for o in tie_broken_costs(ordered)]
                                       ) * self.slot_hours
        self._highs.changeColsBounds(lo.size, idx, lo, hi)
        self._highs.changeColsCost(lo.size, idx, self._lp_cost)

    def set_demand(self, p_kw: Sequence[float]) -> None:
        """The demand to serve per slot (the balance rows' right-hand sides)."""
        demand = np.asarray(p_kw, dtype=float)
        idx = np.arange(self.slots, dtype=np.int32)
        self._highs.changeRowsBounds(self.slots, idx, demand, demand)

    @property
    def cut_count(self) -> int:
        """Cut rows in the model."""
        return self._cuts

    def add_cuts(self, cuts: Sequence[MarketCut]) -> None:
        """Append the DSO's cuts as rows."""
        for cut in cuts:
            names = [s for s, _ in cut.coefficients]
            idx = np.array([self.col(s, cut.slot) for s in names], dtype=np.int32)
            coef = np.array([a for _, a in cut.coefficients], dtype=float)
            self._highs.addRow(-INF, float(cut.bound), len(idx), idx, coef)
            self._cuts += 1

    def drop_cuts(self) -> None:
        """Remove every cut row (the demand they were made for has changed)."""
        if self._cuts:
            rows = np.arange(self.slots, self.slots + self._cuts, dtype=np.int32)
            self._highs.deleteRows(self._cuts, rows)
            self._cuts = 0

    def solve(self) -> ClearingOutcome:
        """Clear the market; the outcome carries the prices the settlement uses."""
        self._highs.run()
        status = STATUS.get(self._highs.getModelStatus(), str(self._highs.getModelStatus()))
        info = self._highs.getInfo()
        if status != "optimal" or info.primal_solution_status != 2:
            return ClearingOutcome(status, None, {}, np.zeros(0))
        return self._outcome(status, self._highs.getSolution())

    def _outcome(self, status: str, sol: object) -> ClearingOutcome:
        x = np.asarray(sol.col_value, dtype=float)  # type: ignore[attr-defined]
        row_dual = np.asarray(sol.row_dual, dtype=float)  # type: ignore[attr-defined]
        col_dual = np.asarray(sol.col_dual, dtype=float)  # type: ignore[attr-defined]
        shape = (len(self.suppliers), self.slots)
        p = x.reshape(shape)
        marginal = (self._lp_cost - col_dual).reshape(shape) / self.slot_hours
        clearing = Clearing(
            tuple((s, tuple(np.round(p[k], 9).tolist())) for k, s in enumerate(self.suppliers)),
            float(self._cost @ x),
            tuple((row_dual[: self.slots] / self.slot_hours).tolist()))
        return ClearingOutcome(status, clearing,
                               {s: marginal[k] for k, s in enumerate(self.suppliers)},
                               row_dual[self.slots:])
