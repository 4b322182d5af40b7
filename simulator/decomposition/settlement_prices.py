"""The nodal prices the DSO settles each microgrid's adopted exchange at.

At the end of a window the DSO re-solves its network LP with every microgrid's active and
reactive exchange fixed at the adopted schedule (the reactive value it picked within the
schedule's band; the band itself dropped). A microgrid's nodal price in slot t is what one
more kWh (kvarh) exported at its PCC in that slot is worth to the network LP: the LP's
slope for more export, in $ per kW over the slot, divided by the slot length. It includes
the energy price and whatever binding voltage, line-rating or AC-cut rows add.

Where no network limit binds, the slope is unique: minus the fixed column's reduced cost
(the energy price). Where one binds it may bind exactly at the adopted schedule (the
decomposition's optimum often sits there): the LP value then has a kink, its duals are
not unique and the one HiGHS returns depends on its solve history. The DSO then takes
the slope just right of the kink: the reduced cost with the exchange raised by
:data:`PROBE_KW`. The network LP is separable by slot, so one probe per microgrid and
kind (P, Q) raises the exchange in every slot at once. The prices thus depend on the
adopted schedule only, whether or not price rounds ran.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from gridcosim.simulator.decomposition.network_evaluator import NetworkEvaluator
from gridcosim.simulator.messages import RestoredExchange, SettlementPrices

#: Probe step (kW or kvar) of the slope for more export at a degenerate vertex.
PROBE_KW = 1e-3
#: Per microgrid: active and reactive marginal values, per slot ($ per kW over the slot).
Values = dict[str, list[list[float]]]


def settlement_prices(evaluator: NetworkEvaluator, exchanges: Mapping[str, RestoredExchange],
                      start_slot: int, slot_hours: float) -> dict[str, SettlementPrices]:
    """Each microgrid's nodal prices at the adopted exchanges ($/kWh, $/kvarh per slot).

    Args:
        evaluator: The window's network LP (with the AC cuts it holds, if any).
        exchanges: The adopted exchange of every microgrid (``Solution.exchanges``).
        start_slot: The window's first slot (carried in the messages).
        slot_hours: The slot length.

    Returns:
        One :class:`SettlementPrices` per microgrid; NaN prices if the LP at the adopted
        exchanges is not optimal or has no valid duals.

    """
    fixed = {mg: RestoredExchange(ex.p_kw, ex.q_kvar, ex.cost_usd)
             for mg, ex in exchanges.items()}
    values = export_values(evaluator, fixed)
    prices = {}
    for mg, ex in fixed.items():
        p, q = values[mg] if values is not None else ([math.nan] * len(ex.p_kw),) * 2
        prices[mg] = SettlementPrices(mg, start_slot, _per_hour(p, slot_hours),
                                      _per_hour(q, slot_hours))
    return prices


def export_values(evaluator: NetworkEvaluator, fixed: Mapping[str, RestoredExchange]
                  ) -> Values | None:
    """The network LP's slope for more export of every exchange, per slot ($ per kW).

    ``None`` if the LP at ``fixed`` is not optimal or has no valid duals.
    """
    out = evaluator.evaluate(fixed)
    values = evaluator.marginal_values(out) if out.status == "optimal" else None
    if values is None:
        return None
    result = {mg: [list(p), list(q)] for mg, (p, q) in values.items()}
    if evaluator.limits_active(out):
        for mg in fixed:
            for k in (0, 1):
                probed = _probe(evaluator, fixed, mg, k)
                if probed is not None:  # else keep the duals: valid marginal values
                    result[mg][k] = list(probed)
    return result


def _probe(evaluator: NetworkEvaluator, fixed: Mapping[str, RestoredExchange], mg: str,
           k: int) -> tuple[float, ...] | None:
    """The marginal values of ``mg``'s exchange ``k`` (0: P, 1: Q), raised in every slot.

    The LP is evaluated with that exchange :data:`PROBE_KW` higher (``None``: not optimal).
    """
    ex = fixed[mg]
    pq = [ex.p_kw, ex.q_kvar]
    pq[k] = tuple(v + PROBE_KW for v in pq[k])
    out = evaluator.evaluate({**fixed, mg: RestoredExchange(pq[0], pq[1], 0.0)})
    values = evaluator.marginal_values(out) if out.status == "optimal" else None
    return None if values is None else values[mg][k]


def _per_hour(values: list[float], slot_hours: float) -> tuple[float, ...]:
    """$ per kW over a slot -> $ per kWh (``+ 0.0`` turns a -0.0 into 0.0)."""
    return tuple(v / slot_hours + 0.0 for v in values)
