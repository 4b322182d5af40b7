"""The market simulation: seed 001's transactive energy market, one day per window.

Each :meth:`MarketSimulation.step` is one hourly slot. At the start of every day the
agents run the market loop (:meth:`MarketSimulation.clear_day`, docs/market.md):

1. the customers enrol with the load aggregator (band and utility for the day);
2. the aggregator prices them against its expected purchase cost (first the LMP);
3. the customers answer with their demand; the aggregator bids the total;
4. the market operator clears; the DSO checks the clearing on the three-phase network
   and returns one cut per violated limit and slot; re-clear until no violation;
5. if the clearing's prices change what the aggregator would charge, it re-prices
   (back to 3, with the cuts dropped: they were made for the old demand), until its
   prices settle or ``max_rounds``.

The adopted clearing is then executed slot by slot: every agent commits its slot
(consumption, output, money) and the recorder writes it. Days are independent (the
aggregator's price cap is daily), so a window is a day and is committed whole.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from gridcosim.agents.dso import WindowReport
from gridcosim.agents.load_aggregator import LoadAggregatorAgent
from gridcosim.agents.market_dso import CheckTerms, MarketDSOAgent
from gridcosim.agents.market_operator import MarketOperatorAgent
from gridcosim.agents.market_supplier import MarketDerAgent, SupplierAgent, UpstreamMicrogridAgent
from gridcosim.agents.price_responsive_customer import PriceResponsiveCustomer
from gridcosim.scenarios.digest import data_digest
from gridcosim.scenarios.market_series import MarketSeries, market_series
from gridcosim.scenarios.network import network_for
from gridcosim.scenarios.phase_network import PhaseNetwork
from gridcosim.scenarios.schema import Scenario
from gridcosim.simulator.checkpoint import CheckpointedModel
from gridcosim.simulator.cosim import RunFailure, RunSettings, RunSettingsError
from gridcosim.simulator.decomposition.cut_families import CutFamily
from gridcosim.simulator.market.messages import MeteredDemand
from gridcosim.simulator.market.network_limits import NetworkLimits, SupplierConnection
from gridcosim.simulator.status import RunStatus, WindowStatus

#: Slots of a market day.
DAY_SLOTS = 24
#: Prices closer than this ($/kWh) count as unchanged between pricing rounds.
PRICE_TOLERANCE = 1e-9


class MarketSimulation(CheckpointedModel):
    """Customers, load aggregator, suppliers, market operator and DSO on one clock.

    Args:
        scenario: A validated scenario with a ``[market]`` table.
        settings: Run settings (a market is day-ahead: horizon and commit are one day; it
            has no noise and its cuts follow ``[market] cut_model``).
        recorder: Optional callable ``recorder(model, slot)`` after every slot, with
            ``recorder.window(model, report)`` after every day's market.

    """

    def __init__(self, scenario: Scenario, settings: RunSettings | None = None,
                 recorder: object | None = None):
        settings = _market_settings(settings or RunSettings())
        super().__init__(rng=settings.seed)
        if scenario.market is None:
            raise ValueError("MarketSimulation needs a scenario with a [market] table")
        self.scenario, self.settings, self.recorder = scenario, settings, recorder
        self.market = scenario.market
        network, self.series = self.read_inputs(scenario, settings)
        #: What the run reads, as read (a resumed run must read the same: :mod:`.digest`).
        self.input_digest = data_digest(network, self.series)
        self.horizon = DAY_SLOTS
        self.total_slots = settings.slots or self.series.slots
        if self.total_slots > self.series.slots:
            raise RunSettingsError(f"slots ({self.total_slots}) exceed the "
                                   f"{self.series.slots} slots the scenario's series cover")
        self.status, self.failure = RunStatus.RUNNING, None
        self.reports: list[WindowReport] = []
        self._make_agents(network)

    def _make_agents(self, network: PhaseNetwork) -> None:
        series, market = self.series, self.market
        for k, name in enumerate(series.customers):
            PriceResponsiveCustomer(self, name, series.classes[k], series.p0_kw[k],
                                    float(series.q_per_p[k]), market.customers)
        self.aggregator = LoadAggregatorAgent(self, market.aggregator)
        for der in market.ders:
            MarketDerAgent(self, der, series.available_kw[der.name])
        UpstreamMicrogridAgent(self, market.upstream.p_max_kw, series.lmp_usd_per_kwh)
        names = [s.name for s in self.suppliers]
        self.operator = MarketOperatorAgent(self, names, DAY_SLOTS,
                                            market.der_price_max_usd_per_kwh)
        spec = self.scenario.network
        limits = NetworkLimits(spec.v_min_pu, spec.v_max_pu, spec.v_ref_pu,
                               market.line_p_max_pu, market.line_q_max_pu)
        self.dso = MarketDSOAgent(
            self, network, limits, [SupplierConnection(d.name, d.bus, d.phases)
                                    for d in market.ders],
            CheckTerms(market.cut_model, spec.ac_engine, market.violation_tolerance_pu))

    # ------------------------------------------------------------------ the agents
    @property
    def customers(self) -> list[PriceResponsiveCustomer]:
        """The customers, in the feeder's load order."""
        return list(self.agents_by_type[PriceResponsiveCustomer])

    @property
    def suppliers(self) -> list[SupplierAgent]:
        """The DERs (scenario order), then the upstream microgrid."""
        return [*self.agents_by_type.get(MarketDerAgent, []),
                *self.agents_by_type[UpstreamMicrogridAgent]]

    # ------------------------------------------------------------------ a slot
    def step(self) -> None:
        """One slot: the day's market at its first slot, then every agent commits."""
        t = self.steps - 1
        if t % DAY_SLOTS == 0 and not self.clear_day(t):
            self.status, self.running = RunStatus.FAILED, False
            return
        for agent in (*self.customers, *self.suppliers, self.aggregator, self.operator,
                      self.dso):
            agent.commit(t)
        if self.steps >= self.total_slots:
            self.status, self.running = RunStatus.FINISHED, False
        if self.recorder is not None:
            self.recorder(self, t)

    def window_complete(self, slot: int) -> bool:
        """Whether ``slot`` ends its day (or the run): a checkpoint follows."""
        return (slot + 1) % DAY_SLOTS == 0 or slot + 1 >= self.total_slots

    # ------------------------------------------------------------------ a day
    def clear_day(self, start: int) -> bool:
        """Run the market loop for the day from ``start`` and adopt its clearing.

        Returns False (with :attr:`failure` set) if the day has no clearing to adopt.
        """
        tick = time.perf_counter()
        status = self.price_day(start)
        report = self._report(start, status, time.perf_counter() - tick)
        self.reports.append(report)
        if self.recorder is not None:
            self.recorder.window(self, report)
        if status in (WindowStatus.INFEASIBLE, WindowStatus.POWER_FLOW_FAILED):
            self.failure = RunFailure(start, f"market day status {status}: "
                                      + _failure_text(status))
            return False
        self._adopt(self.aggregator.metered(), start)
        return True

    def price_day(self, start: int) -> WindowStatus:
        """Steps 1-5 for the day from ``start`` (nothing adopted yet): the day's status."""
        self.aggregator.enrol({c.name: c.contract(start, DAY_SLOTS) for c in self.customers},
                              start)
        self.operator.open_window([s.offer(start, DAY_SLOTS) for s in self.suppliers], start)
        self.dso.open_day()
        return self._price_rounds(start)

    def _price_rounds(self, start: int) -> WindowStatus:
        """Steps 2-5: price, respond, clear with cuts; re-price until the prices settle."""
        lmp = self.series.lmp_usd_per_kwh[start:start + DAY_SLOTS]
        quote = self.aggregator.quote(lmp)
        for _ in range(self.market.aggregator.max_rounds):
            status = self.clear_round(self._respond(quote, start))
            if status is not WindowStatus.OPTIMAL:
                return status
            clearing = self.operator.outcome.clearing  # type: ignore[union-attr]
            new = self.aggregator.quote(np.asarray(clearing.clearing_price_usd_per_kwh))
            if _same_prices(new, quote):
                return WindowStatus.OPTIMAL
            quote = new
        return WindowStatus.PRICES_NOT_SETTLED

    def _respond(self, quote: dict[str, np.ndarray], start: int) -> MeteredDemand:
        """Step 3: the customers answer the announced prices; the aggregator bids."""
        by_name = {c.name: c for c in self.customers}
        responses = [by_name[m.customer].respond(m, start)
                     for m in self.aggregator.announce(quote)]
        self.operator.new_round(self.aggregator.bid(responses))
        return self.aggregator.metered()

    def clear_round(self, metered: MeteredDemand) -> WindowStatus:
        """Step 4: clear, check, cut, re-clear until the DSO finds no violation."""
        for _ in range(self.market.max_iterations):
            outcome = self.operator.clear()
            if outcome.clearing is None:
                return WindowStatus.INFEASIBLE
            checks, cuts = self.dso.validate(outcome.clearing, metered)
            if not all(c.converged for c in checks):
                return WindowStatus.POWER_FLOW_FAILED
            if not cuts:
                return WindowStatus.OPTIMAL
            self.operator.add_cuts(cuts)
        return WindowStatus.NOT_CONVERGED

    def _adopt(self, metered: MeteredDemand, start: int) -> None:
        """Every agent takes the adopted clearing: awards, prices, the network record."""
        clearing = self.operator.adopt()
        prices = self.operator.selling_prices()
        for supplier in self.suppliers:
            supplier.award(clearing, prices[supplier.name], start)
        self.aggregator.settle_window(clearing.clearing_price_usd_per_kwh)
        self.dso.adopt(clearing, metered, start)

    def _report(self, start: int, status: WindowStatus, wall_s: float) -> WindowReport:
        outcome = self.operator.outcome
        cost = (outcome.clearing.cost_usd if outcome is not None and outcome.clearing
                is not None else float("nan"))
        return WindowReport(start, DAY_SLOTS, str(status), self.operator.window_clearings,
                            {str(CutFamily.MARKET): self.operator.window_cuts},
                            float("nan"), cost, wall_s)

    def run(self) -> str:
        """Step until the end (or a failed day); return the run status."""
        while self.running:
            self.step()
        return self.status

    def close(self) -> None:
        """Nothing to release (the interface of :class:`~simulator.cosim.CoSimulation`)."""
        return None

    @staticmethod
    def read_inputs(scenario: Scenario, settings: RunSettings
                    ) -> tuple[PhaseNetwork, MarketSeries]:
        """The feeder and the series a market run of ``scenario`` reads (any settings)."""
        del settings  # a market's windows are days, whatever the run settings
        network = network_for(scenario)
        if not isinstance(network, PhaseNetwork):
            raise RunSettingsError("a market runs on a three-phase feeder")
        return network, market_series(scenario, network)


def _market_settings(settings: RunSettings) -> RunSettings:
    """A market's run settings: one-day windows committed whole; no noise, no AC flag."""
    if settings.noise:
        raise RunSettingsError("noise does not apply to a market scenario (its customers "
                               "consume what they answer)")
    if settings.ac_cuts:
        raise RunSettingsError("--ac does not apply to a market scenario: the DSO's cuts "
                               "follow [market] cut_model")
    return replace(settings, horizon=DAY_SLOTS, commit=DAY_SLOTS)


def _same_prices(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return all(np.max(np.abs(a[n] - b[n]), initial=0.0) <= PRICE_TOLERANCE for n in a)


def _failure_text(status: WindowStatus) -> str:
    if status is WindowStatus.INFEASIBLE:
        return "the market cannot serve the responded demand within the network's limits"
    return "a three-phase power flow of a clearing failed"
