"""``gridcosim solve`` for a market scenario: its first day, by the loop or centrally.

``decomposition`` runs the market loop of :class:`~simulator.market_sim.MarketSimulation`
for day one (prices, responses, clearings with the DSO's cuts) and also reports the
centralised LinDist3Flow optimum on the loop's final demand (seed 001 Proposition 3):
with ``cut_model = "lindist3flow"`` the two must agree; with AC cuts their difference is
what the AC physics costs beyond the linearised model. ``monolithic`` reports the
centralised problem alone (on the demand of the aggregator's first prices, at the LMP).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from gridcosim.scenarios.schema import Scenario
from gridcosim.simulator.market.centralised import CentralisedResult, centralised_clearing
from gridcosim.simulator.market.clearing import ClearingOutcome, tie_broken_costs
from gridcosim.simulator.market.messages import Clearing, MeteredDemand
from gridcosim.simulator.market.network_limits import NetworkLimits, SupplierConnection
from gridcosim.simulator.market_sim import DAY_SLOTS, MarketSimulation
from gridcosim.simulator.status import ExitCode, WindowStatus


@dataclass(frozen=True)
class MarketDayResult:
    """What a market day's solve found (JSON-ready).

    Attributes:
        method: ``decomposition`` (the market loop) or ``monolithic`` (centralised).
        status: The day's status (``optimal``, ``not_converged``, ...).
        cost_usd: Cost of serving the day's demand.
        centralised_cost_usd: The centralised LinDist3Flow optimum on the same demand.
        relative_difference: ``(cost - centralised) / centralised``.
        iterations: Market clearings (all pricing rounds).
        rounds: Pricing rounds.
        cuts: DSO cuts added.
        max_violation_pu: Largest AC limit violation of the adopted clearing.
        demand_kw: Responded demand per slot.
        supply_kw: Per supplier, its output per slot.
        wall_s: Time spent.

    """

    method: str
    status: str
    cost_usd: float
    centralised_cost_usd: float
    relative_difference: float
    iterations: int
    rounds: int
    cuts: int
    max_violation_pu: float
    demand_kw: tuple[float, ...]
    supply_kw: dict[str, tuple[float, ...]] = field(default_factory=dict)
    wall_s: float = 0.0

    def to_json_dict(self) -> dict[str, Any]:
        """The result as plain data."""
        return asdict(self)


class CentralisedMarket(MarketSimulation):
    """The same market with each clearing the centralised LinDist3Flow LP (no cuts).

    The pricing rounds are the market loop's; only step 4 differs: the operator's clearing
    is replaced by :func:`~simulator.market.centralised.centralised_clearing` on the
    round's demand (the reference of seed 001 Proposition 3).
    """

    def clear_round(self, metered: MeteredDemand) -> WindowStatus:
        """Step 4, centrally: one LP with the network's linearised limits inside."""
        result = centralised(self, self.dso.load_arrays(metered))
        self.operator.window_clearings += 1
        if result.status != WindowStatus.OPTIMAL:
            self.operator.outcome = ClearingOutcome(result.status, None, {}, np.zeros(0))
            return WindowStatus.INFEASIBLE
        supply = tuple((s, tuple(np.asarray(p, dtype=float).tolist()))
                       for s, p in result.p_kw.items())
        clearing = Clearing(supply, result.cost_usd,
                            tuple(np.asarray(result.clearing_price_usd_per_kwh).tolist()))
        self.operator.outcome = ClearingOutcome(result.status, clearing, {}, np.zeros(0))
        return WindowStatus.OPTIMAL


def solve_market_day(scenario: Scenario, method: str = "decomposition") -> MarketDayResult:
    """Solve the first day of a market scenario (see the module docstring)."""
    tick = time.perf_counter()
    model = (CentralisedMarket if method == "monolithic" else MarketSimulation)(scenario)
    status = model.price_day(0)
    clearing = model.operator.outcome.clearing if model.operator.outcome else None
    demand, loads = _final_demand(model)
    central = centralised(model, loads)
    cost = clearing.cost_usd if clearing is not None else float("nan")
    violation = float("nan")
    if clearing is not None and method != "monolithic":
        model.dso.adopt(clearing, model.aggregator.metered(), 0)
        violation = model.dso.adopted_violation_pu()
    return MarketDayResult(
        method, str(status), cost, central.cost_usd,
        (cost - central.cost_usd) / central.cost_usd, model.operator.window_clearings,
        model.operator.window_rounds, model.operator.window_cuts, violation,
        tuple(demand.tolist()),
        {} if clearing is None else {s: tuple(p) for s, p in clearing.p_kw},
        time.perf_counter() - tick)


def _final_demand(model: MarketSimulation) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """The aggregator's last responded demand: total per slot, and per feeder load."""
    p, q = model.dso.load_arrays(model.aggregator.metered())
    return p.sum(axis=1), (p, q)


def centralised(model: MarketSimulation, loads: tuple[np.ndarray, np.ndarray]
                ) -> CentralisedResult:
    """The centralised LinDist3Flow clearing of ``model``'s day on the given loads."""
    market, spec = model.market, model.scenario.network
    limits = NetworkLimits(spec.v_min_pu, spec.v_max_pu, spec.v_ref_pu,
                           market.line_p_max_pu, market.line_q_max_pu)
    connections = [SupplierConnection(d.name, d.bus, d.phases) for d in market.ders]
    offers = [s.offer(model.operator.window_start, DAY_SLOTS) for s in model.suppliers]
    result = centralised_clearing(model.dso.network, connections, limits,
                                  tie_broken_costs(offers), *loads, model.series.slot_hours,
                                  lindist=model.dso.lindist)
    if result.status != WindowStatus.OPTIMAL:
        return result
    true_cost = sum(float(np.dot(o.cost_usd_per_kwh, result.p_kw[o.supplier])) for o in offers)
    return replace(result, cost_usd=true_cost * model.series.slot_hours)


def market_exit_code(result: MarketDayResult) -> ExitCode:
    """0 for an optimal day, 4 for a degraded one (adopted), 3 for a day with no clearing."""
    if result.status == WindowStatus.OPTIMAL:
        return ExitCode.OK
    if result.status in (WindowStatus.NOT_CONVERGED, WindowStatus.PRICES_NOT_SETTLED):
        return ExitCode.DEGRADED
    return ExitCode.FAILED
