"""Microgrid controller (MC) agent: owns its DERs and local load, answers the DSO privately.

The MC builds its private window from its own DER agents (their forecasts and the state
the last committed slot left), hands it to the engine's responder (in this process or in
its worker), and adopts the unit schedule its responder makes of the DSO's award. In each
slot it runs the plan with the realised conditions: every DER takes its set-point and
says what it cannot give (a renewable short of its forecast), flexible DERs (storage)
cover what they can, and what is left is the exchange deviation the network absorbs.
With the award the DSO sends the MC its own nodal prices for the window
(:class:`~gridcosim.simulator.messages.SettlementPrices`); the MC settles each slot's
metered exchange at them. Nothing here depends on which kinds of DER the microgrid has.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mesa

from gridcosim.agents.base import GridAgent, Output, Record
from gridcosim.agents.der_agent import DerAgent, der_agent_class
from gridcosim.scenarios.schema import Microgrid
from gridcosim.simulator.messages import SettlementPrices
from gridcosim.simulator.models.ders import der_models
from gridcosim.simulator.models.microgrid_model import MicrogridState, MicrogridWindow
from gridcosim.simulator.schedule import MicrogridSchedule, UnitSchedule
from gridcosim.simulator.windows import microgrid_window


@dataclass(frozen=True)
class Settlement:
    """One slot's settlement with the DSO at the nodal prices it sent (paid positive)."""

    nodal_price_usd_per_kwh: float = math.nan
    nodal_price_q_usd_per_kvarh: float = math.nan
    settlement_p_usd: float = math.nan
    settlement_q_usd: float = math.nan

    @property
    def settlement_usd(self) -> float:
        """Active plus reactive settlement."""
        return self.settlement_p_usd + self.settlement_q_usd


@dataclass(frozen=True)
class SlotOutcome:
    """What the MC realised in one slot (its meter at the PCC) and its settlement."""

    p_ex_kw: float
    q_ex_kvar: float
    deviation_kw: float
    cost_usd: float
    curtail_kw: float
    q_deviation_kvar: float = 0.0
    settlement: Settlement = Settlement()


class MicrogridControllerAgent(GridAgent):
    """The controller of one microgrid.

    Args:
        model: The co-simulation.
        spec: The microgrid's units and ratings.

    """

    STATE = ("total_cost_usd",)
    RECORDS = (Record("microgrid", "a microgrid, at its point of common coupling (name)", (
        Output("p_ex_kw", "kW", "realised active exchange", "export to the network positive"),
        Output("q_ex_kvar", "kvar", "realised reactive exchange", "export positive"),
        Output("deviation_kw", "kW", "realised minus planned active exchange"),
        Output("cost_usd", "USD", "the slot's cost: its units and local curtailment "
               "(the settlement with the DSO not included)"),
        Output("nodal_price_usd_per_kwh", "USD/kWh", "the active nodal price the DSO sent for "
               "the slot: what one more kWh exported at the PCC saves the DSO's network LP at "
               "the window's adopted schedule (its slope for more export, also at a kink where "
               "a limit binds exactly; NaN: no valid duals)",
               "positive: the DSO values more export"),
        Output("nodal_price_q_usd_per_kvarh", "USD/kvarh", "the reactive nodal price the DSO "
               "sent for the slot (as nodal_price_usd_per_kwh, per kvarh exported)",
               "positive: the DSO values more reactive export"),
        Output("settlement_p_usd", "USD", "active settlement: nodal_price_usd_per_kwh × "
               "realised p_ex_kw × slot hours", "paid to the microgrid positive"),
        Output("settlement_q_usd", "USD", "reactive settlement: nodal_price_q_usd_per_kvarh × "
               "realised q_ex_kvar × slot hours", "paid to the microgrid positive"),
        Output("settlement_usd", "USD", "settlement_p_usd + settlement_q_usd (reactive "
               "included); the microgrid's net cost is cost_usd − settlement_usd",
               "paid to the microgrid positive"),
    )),)

    def __init__(self, model: mesa.Model, spec: Microgrid):
        super().__init__(model)
        self.spec = spec
        self.ders: list[DerAgent] = [der_agent_class(m.kind)(model, unit)
                                     for m in der_models() for unit in m.units(spec)]
        self.plan: MicrogridSchedule | None = None
        self.plan_start = 0
        self.prices: SettlementPrices | None = None
        self.total_cost_usd = 0.0
        self.last = SlotOutcome(0.0, 0.0, 0.0, 0.0, 0.0)

    @property
    def state_key(self) -> str:
        """``microgrid:<name>``."""
        return f"microgrid:{self.spec.name}"

    @property
    def entity_id(self) -> str:
        """The microgrid's name."""
        return self.spec.name

    def ders_of(self, kind: str) -> list[DerAgent]:
        """The DER agents of one kind, in the scenario's order."""
        return [a for a in self.ders if a.KIND == kind]

    @property
    def generators(self) -> list[DerAgent]:
        """The generator agents."""
        return self.ders_of("generator")

    @property
    def renewables(self) -> list[DerAgent]:
        """The renewable agents."""
        return self.ders_of("renewable")

    @property
    def storage(self) -> list[DerAgent]:
        """The storage agents."""
        return self.ders_of("storage")

    def record_values(self, record: Record, *, initial: bool = False) -> dict[str, list[float]]:
        """The meter of the last slot and its settlement."""
        last, paid = self.last, self.last.settlement
        return {"p_ex_kw": [last.p_ex_kw], "q_ex_kvar": [last.q_ex_kvar],
                "deviation_kw": [last.deviation_kw], "cost_usd": [last.cost_usd],
                "nodal_price_usd_per_kwh": [paid.nodal_price_usd_per_kwh],
                "nodal_price_q_usd_per_kvarh": [paid.nodal_price_q_usd_per_kvarh],
                "settlement_p_usd": [paid.settlement_p_usd],
                "settlement_q_usd": [paid.settlement_q_usd],
                "settlement_usd": [paid.settlement_usd]}

    # ---------------------------------------------------------------- windows
    def window(self, start: int, slots: int) -> MicrogridWindow:
        """The private forecast window of this MC (never handed to the DSO)."""
        series = self.model.series
        state = MicrogridState({a.spec.name: s for a in self.ders if (s := a.window_state())})
        forecasts = {a.spec.name: f for a in self.ders
                     if (f := a.forecast(series, start, slots)) is not None}
        return microgrid_window(self.model.scenario, self.spec, state, start, slots, series,
                                forecasts)

    def decide(self, schedule: MicrogridSchedule, start: int) -> None:
        """Adopt the unit schedule made of the DSO's award for the window at ``start``.

        The window's prices come next (:meth:`receive_prices`); until then its slots
        settle at NaN.
        """
        self.plan, self.plan_start, self.prices = schedule, start, None

    def receive_prices(self, prices: SettlementPrices) -> None:
        """Keep the DSO's message of this microgrid's nodal prices for the adopted window.

        Raises:
            ValueError: If the prices are another microgrid's or another window's.

        """
        if (prices.mg, prices.start_slot) != (self.spec.name, self.plan_start):
            raise ValueError(f"{self.spec.name}: prices of {prices.mg} from slot "
                             f"{prices.start_slot} for the window at {self.plan_start}")
        self.prices = prices

    # ---------------------------------------------------------------- a slot
    def observe(self, slot: int) -> None:
        """Every DER sees the slot's realised conditions."""
        for agent in self.ders:
            agent.observe(slot)

    def commit(self, slot: int) -> None:
        """Run slot ``slot`` of the plan: set-points, shortfalls, covers, costs."""
        k, dt = slot - self.plan_start, self.model.series.slot_hours
        plan = {u.name: u for u in self.plan.units}
        short_p = 0.0
        for agent in self.ders:
            short_p += agent.dispatch(plan[agent.spec.name], k).p_kw
        for agent in self.ders:  # flexible units cover a net shortfall; a surplus is exported
            if short_p <= 0.0:
                break
            short_p = agent.absorb(short_p, dt)
        short_q = sum(_planned_q(plan[a.spec.name], k) - a.q_kvar for a in self.ders)
        curtail = self.plan.curtail_kw[k]
        cost = sum(agent.settle(dt) for agent in self.ders)
        cost += self.model.scenario.curtailment_cost_usd_per_kwh * curtail * dt
        self.total_cost_usd += cost
        p_ex, q_ex = self.plan.p_ex_kw[k] - short_p, self.plan.q_ex_kvar[k] - short_q
        self.last = SlotOutcome(p_ex, q_ex, -short_p, cost, curtail, -short_q,
                                self.settlement(k, p_ex, q_ex, dt))

    def settlement(self, k: int, p_ex_kw: float, q_ex_kvar: float, dt: float) -> Settlement:
        """Slot ``k`` of the window at the DSO's nodal prices: price × realised exchange × Δt."""
        if self.prices is None:
            return Settlement()
        price_p = self.prices.price_usd_per_kwh[k]
        price_q = self.prices.price_q_usd_per_kvarh[k]
        return Settlement(price_p, price_q, price_p * p_ex_kw * dt, price_q * q_ex_kvar * dt)

    def exchange(self) -> tuple[float, float]:
        """The realised exchange at the PCC in the last slot (kW, kvar; export positive)."""
        return self.last.p_ex_kw, self.last.q_ex_kvar

    def meter(self) -> tuple[float, float]:
        """Realised minus planned exchange of the last slot (kW, kvar)."""
        return self.last.deviation_kw, self.last.q_deviation_kvar


def _planned_q(plan: UnitSchedule, k: int) -> float:
    return plan.q_kvar[k] if plan.q_kvar else 0.0
