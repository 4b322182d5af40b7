"""The nodal prices the DSO sends each microgrid and each microgrid's settlement at them.

Every check reads the recorded trajectory back (:func:`gridcosim.outputs.read`) and
compares it with references computed here, independently of the DSO's code: a fresh
Pyomo LinDistFlow LP with the exchanges fixed by equality rows at the recorded schedule,
solved through ``pyomo.contrib.solver``'s HiGHS, whose cost is differenced by ±1 kW
(kvar) of one microgrid in one slot. Runs: the seed case day-ahead (one 6-slot window)
and its stressed variant (voltage limits bind), with and without price rounds, and a
noisy receding run resumed from its checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pyomo.environ as pyo
import pytest
from pyomo.contrib.solver.solvers.highs import Highs

from gridcosim.agents.microgrid_controller import MicrogridControllerAgent
from gridcosim.outputs import Trajectory, read
from gridcosim.scenarios import variants
from gridcosim.scenarios.network import NetworkData
from gridcosim.scenarios.schema import Scenario
from gridcosim.simulator.cosim import CoSimulation, RunSettings
from gridcosim.simulator.decomposition.network_evaluator import NetworkEvaluator
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.simulator.decomposition.settlement_prices import settlement_prices
from gridcosim.simulator.messages import ExchangeBounds, RestoredExchange, SettlementPrices
from gridcosim.simulator.models.lindistflow_model import add_network
from gridcosim.simulator.models.master_model import build_master
from gridcosim.simulator.recording import Recorder
from gridcosim.simulator.windows import network_window

TOL = 1e-6
STEP_KW = 1.0
FORBIDDEN_WORDS = ("generator", "dg", "storage", "ess", "renewable", "soc", "commit", "unit")


class Run(typing.NamedTuple):
    scenario: Scenario
    model: CoSimulation
    tr: Trajectory
    sent: list[SettlementPrices]  # every price message a controller received


def simulate(scenario: Scenario, path: Path, settings: RunSettings) -> Run:
    """A recorded co-simulation; the price messages are captured on their way in."""
    sent: list[SettlementPrices] = []
    receive = MicrogridControllerAgent.receive_prices

    def spy(self: MicrogridControllerAgent, prices: SettlementPrices) -> None:
        sent.append(prices)
        receive(self, prices)

    model = CoSimulation(scenario, settings)
    recorder = Recorder(path, model)
    model.recorder = recorder
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(MicrogridControllerAgent, "receive_prices", spy)
        try:
            assert model.run() == "finished"
        finally:
            recorder.close()
    return Run(scenario, model, read(path), sent)


@pytest.fixture(scope="module", params=["seed", "stressed", "stressed-no-price-rounds"])
def day_ahead(request: pytest.FixtureRequest, base: Scenario,
              tmp_path_factory: pytest.TempPathFactory) -> Run:
    scenario = base if request.param == "seed" else variants.stressed(base)
    settings = RunSettings(horizon=6, commit=6, decomposition=DecompositionSettings(
        price_signals=not request.param.endswith("no-price-rounds")))
    return simulate(scenario, tmp_path_factory.mktemp("prices") / "run.h5", settings)


# ------------------------------------------------------------------ the reference LP
class ReferenceLP:
    """The DSO's network LP (LinDistFlow, substation energy and curtailment cost) with
    every exchange fixed by an equality row at a mutable value (the exchange variables
    themselves unbounded)."""

    def __init__(self, scenario: Scenario, network: NetworkData, run: Run):
        bounds = [ExchangeBounds(mg.name, mg.bus, -1e4, 1e4, -1e4, 1e4, 0.0)
                  for mg in scenario.microgrids]
        self.window = network_window(scenario, network, bounds, 0, run.tr.slots,
                                     run.model.series)
        m = self.m = pyo.ConcreteModel()
        m.net = pyo.Block()
        add_network(m.net, self.window)
        for var in (*m.net.p_ex.values(), *m.net.q_ex.values()):
            var.setlb(None)
            var.setub(None)
        g = run.tr.groups["microgrid"]
        p, q = g["p_ex_kw"].to_numpy(), g["q_ex_kvar"].to_numpy()
        self.names = list(g["p_ex_kw"].columns)
        col = {n: j for j, n in enumerate(self.names)}
        m.fp = pyo.Param(m.net.MG, m.net.T, mutable=True, initialize=lambda _, i, t: p[t, col[i]])
        m.fq = pyo.Param(m.net.MG, m.net.T, mutable=True, initialize=lambda _, i, t: q[t, col[i]])
        m.cp = pyo.Constraint(m.net.MG, m.net.T, rule=lambda m, i, t: (
            m.net.p_ex[i, t] == m.fp[i, t]))
        m.cq = pyo.Constraint(m.net.MG, m.net.T, rule=lambda m, i, t: (
            m.net.q_ex[i, t] == m.fq[i, t]))
        m.obj = pyo.Objective(expr=m.net.cost_usd)
        self.solver = Highs()
        self.f0 = self.cost()
        self._prices: dict[tuple[str, float], np.ndarray] = {}

    def cost(self) -> float:
        res = self.solver.solve(self.m, load_solutions=False, threads=1)
        assert res.incumbent_objective is not None
        return float(res.incumbent_objective)

    def worth_usd_per_kwh(self, kind: str, mg: str, t: int, step: float) -> float:
        """What ``step`` kW (kvar) more export of ``mg`` in slot t saves, per kWh (kvarh)."""
        param = (self.m.fp if kind == "p" else self.m.fq)[mg, t]
        value = pyo.value(param)
        param.set_value(value + step)
        try:
            return (self.f0 - self.cost()) / (step * self.window.slot_hours)
        finally:
            param.set_value(value)

    def prices(self, kind: str, step: float = STEP_KW) -> np.ndarray:
        """The (slot, microgrid) table of :meth:`worth_usd_per_kwh` (computed once)."""
        if (kind, step) not in self._prices:
            self._prices[kind, step] = np.array([
                [self.worth_usd_per_kwh(kind, mg, t, step) for mg in self.names]
                for t in range(self.window.slots)])
        return self._prices[kind, step]


@pytest.fixture(scope="module")
def reference(day_ahead: Run, network: NetworkData) -> ReferenceLP:
    return ReferenceLP(day_ahead.scenario, network, day_ahead)


def recorded(run: Run, var: str) -> pd.DataFrame:
    return run.tr.frame("microgrid", var)


# ------------------------------------------------------------------ (a) the prices
def test_recorded_prices_are_the_lp_value_of_one_more_kwh_exported(
        day_ahead: Run, reference: ReferenceLP) -> None:
    for kind, var in (("p", "nodal_price_usd_per_kwh"), ("q", "nodal_price_q_usd_per_kvarh")):
        got = recorded(day_ahead, var)[reference.names].to_numpy()
        np.testing.assert_allclose(got, reference.prices(kind), rtol=0, atol=TOL, err_msg=kind)


def test_stressed_schedule_sits_at_a_kink_and_the_price_is_the_slope_for_more_export(
        day_ahead: Run, reference: ReferenceLP) -> None:
    """Where a voltage limit binds exactly at the adopted schedule, the last kWh exported
    is worth more than the next one: the LP's duals are not unique there, and the price
    recorded is the value of the next kWh (checked above), not the last."""
    if day_ahead.scenario.name == "ieee123-nmg":
        pytest.skip("no network limit binds in the seed case")
    last = reference.prices("p", -STEP_KW)
    got = recorded(day_ahead, "nodal_price_usd_per_kwh")[reference.names].to_numpy()
    assert np.all(last >= got - TOL)  # the LP value is convex in the exchange
    assert np.max(last - got) > 1e-2


def test_prices_do_not_depend_on_the_lps_solve_history(
        day_ahead: Run, reference: ReferenceLP) -> None:
    """A network LP last solved left of the adopted schedule (1 kW less export everywhere)
    may hand back the duals of the left side of a kink; the prices stay the same."""
    g = day_ahead.tr.groups["microgrid"]
    exchanges = {mg: RestoredExchange(tuple(g["p_ex_kw"][mg]), tuple(g["q_ex_kvar"][mg]), 0.0)
                 for mg in reference.names}
    evaluator = NetworkEvaluator(build_master(reference.window))
    left = {mg: dataclasses.replace(ex, p_kw=tuple(p - STEP_KW for p in ex.p_kw))
            for mg, ex in exchanges.items()}
    assert evaluator.evaluate(left).status == "optimal"
    prices = settlement_prices(evaluator, exchanges, 0, reference.window.slot_hours)
    got = np.array([prices[mg].price_usd_per_kwh for mg in reference.names]).T
    np.testing.assert_allclose(got, reference.prices("p"), rtol=0, atol=TOL)
    got_q = np.array([prices[mg].price_q_usd_per_kvarh for mg in reference.names]).T
    np.testing.assert_allclose(got_q, reference.prices("q"), rtol=0, atol=TOL)


def test_settlement_at_the_last_solve_narrowed_is_not_solved_again(
        day_ahead: Run, reference: ReferenceLP) -> None:
    """The settlement right after the price round that found the schedule fixes the
    reactive exchanges the round chose within their bands: that LP is not solved again,
    and its answer is what a network LP solved afresh at the fixed exchanges gives."""
    g = day_ahead.tr.groups["microgrid"]
    band = {mg: RestoredExchange(
        tuple(g["p_ex_kw"][mg]), tuple(g["q_ex_kvar"][mg]), 0.0,
        tuple(q - 30.0 for q in g["q_ex_kvar"][mg]), tuple(q + 30.0 for q in g["q_ex_kvar"][mg]))
        for mg in reference.names}
    evaluator = NetworkEvaluator(build_master(reference.window))
    out = evaluator.evaluate(band)
    assert out.status == "optimal"
    chosen = evaluator.with_reactive(band, out)
    fixed = {mg: RestoredExchange(ex.p_kw, ex.q_kvar, 0.0) for mg, ex in chosen.items()}
    state = evaluator.hm.state
    assert evaluator.evaluate(fixed) is out and evaluator.hm.state == state  # no solve
    fresh = NetworkEvaluator(build_master(reference.window)).evaluate(fixed)
    assert fresh.objective == pytest.approx(out.objective, rel=1e-12)
    got, want = evaluator.marginal_values(out), evaluator.marginal_values(fresh)
    for mg in reference.names:
        np.testing.assert_allclose(np.array(got[mg]), np.array(want[mg]), rtol=0, atol=1e-9)
    # a reactive value outside what the last solve chose is solved for
    moved = {**fixed, reference.names[0]: dataclasses.replace(
        fixed[reference.names[0]], q_kvar=tuple(q + 1.0 for q in fixed[reference.names[0]].q_kvar))}
    assert evaluator.evaluate(moved) is not out and evaluator.hm.state != state


# ------------------------------------------------------------------ (b) the settlement
def test_settlement_is_price_times_exchange_times_slot_hours(day_ahead: Run) -> None:
    dt = day_ahead.model.series.slot_hours
    p = recorded(day_ahead, "nodal_price_usd_per_kwh") * recorded(day_ahead, "p_ex_kw") * dt
    q = (recorded(day_ahead, "nodal_price_q_usd_per_kvarh")
         * recorded(day_ahead, "q_ex_kvar") * dt)
    pd.testing.assert_frame_equal(recorded(day_ahead, "settlement_p_usd"), p, rtol=1e-12)
    pd.testing.assert_frame_equal(recorded(day_ahead, "settlement_q_usd"), q, rtol=1e-12)
    pd.testing.assert_frame_equal(recorded(day_ahead, "settlement_usd"), p + q, rtol=1e-12)
    assert np.isfinite(recorded(day_ahead, "settlement_usd").to_numpy()).all()


def test_units_in_the_file(day_ahead: Run) -> None:
    with h5py.File(day_ahead.model.recorder.path, "r") as f:
        units = {v: f["microgrid"][v].attrs["units"] for v in (
            "nodal_price_usd_per_kwh", "nodal_price_q_usd_per_kvarh", "settlement_usd")}
    assert units == {"nodal_price_usd_per_kwh": "USD/kWh",
                     "nodal_price_q_usd_per_kvarh": "USD/kvarh", "settlement_usd": "USD"}


# ------------------------------------------------------------------ (c) sanity references
def test_unconstrained_network_prices_every_microgrid_at_the_utility_price(
        day_ahead: Run) -> None:
    price = recorded(day_ahead, "nodal_price_usd_per_kwh")
    utility = day_ahead.tr.frame("substation", "price_usd_per_kwh")["substation"]
    if day_ahead.scenario.name == "ieee123-nmg":
        for mg in price.columns:
            np.testing.assert_allclose(price[mg], utility, rtol=0, atol=1e-12)
        assert np.abs(recorded(day_ahead, "nodal_price_q_usd_per_kvarh").to_numpy()).max() == 0
    else:  # the binding voltage band separates the microgrids' prices
        spread = (price.max(axis=1) - price.min(axis=1)).to_numpy()
        assert spread.max() > 1e-2
        assert (price.to_numpy() > utility.to_numpy()[:, None] + 1e-2).any()


# ------------------------------------------------------------------ (d) the message
def test_price_message_carries_coupling_quantities_only(day_ahead: Run) -> None:
    assert SettlementPrices.__dataclass_params__.frozen
    hints = typing.get_type_hints(SettlementPrices)
    assert hints == {"mg": str, "start_slot": int, "price_usd_per_kwh": tuple[float, ...],
                     "price_q_usd_per_kvarh": tuple[float, ...]}
    for name in hints:
        assert not [w for w in FORBIDDEN_WORDS if w in name.lower()], name
    names = {mc.spec.name for mc in day_ahead.model.microgrids}
    private = {u.name for mg in day_ahead.scenario.microgrids for u in (
        *mg.generators, *mg.renewables, *mg.storage)}
    assert len(day_ahead.sent) == len(names)  # one window, one message per controller
    for msg in day_ahead.sent:
        assert type(msg) is SettlementPrices and msg.mg in names and msg.start_slot == 0
        assert msg.mg not in private
        for values in (msg.price_usd_per_kwh, msg.price_q_usd_per_kvarh):
            assert len(values) == 6 and all(type(v) is float and math.isfinite(v)
                                            for v in values)
        with pytest.raises(dataclasses.FrozenInstanceError):
            msg.mg = "other"  # type: ignore[misc]


def test_each_controller_keeps_only_its_own_prices(day_ahead: Run) -> None:
    sent = {msg.mg: msg for msg in day_ahead.sent}
    for mc in day_ahead.model.microgrids:
        kept = [v for v in vars(mc).values() if isinstance(v, SettlementPrices)]
        assert kept == [sent[mc.spec.name]]
        other = next(m for m in sent.values() if m.mg != mc.spec.name)
        with pytest.raises(ValueError, match="prices of"):
            mc.receive_prices(other)
        with pytest.raises(ValueError, match="for the window at 0"):
            mc.receive_prices(dataclasses.replace(sent[mc.spec.name], start_slot=3))


# ------------------------------------------------------------------ resume
def _rows(model: CoSimulation, slots: int) -> list[list[tuple[float, ...]]]:
    """Per slot and controller: realised exchange, deviation, prices and settlements."""
    rows = []
    for _ in range(slots):
        model.step()
        rows.append([(mc.last.p_ex_kw, mc.last.q_ex_kvar, mc.last.deviation_kw,
                      *dataclasses.astuple(mc.last.settlement)) for mc in model.microgrids])
    return rows


def test_resumed_run_sends_and_settles_the_same(base: Scenario) -> None:
    """A noisy receding run of the stressed case (windows of 3 slots, K = 3) resumed from
    its checkpoint after the first window settles the second exactly as the uninterrupted
    run; every slot settles its realised (metered) exchange, not the planned one."""
    settings = RunSettings(horizon=3, commit=3, noise=0.05, seed=3)
    scenario = variants.stressed(base)
    whole, resumed = CoSimulation(scenario, settings), CoSimulation(scenario, settings)
    try:
        rows = _rows(whole, 3)
        assert whole.window_complete(2)
        resumed.restore(whole.snapshot())
        rows += _rows(whole, 3)
        assert _rows(resumed, 3) == rows[3:]
    finally:
        whole.close()
        resumed.close()
    p, q, deviation, price_p, price_q, paid_p, paid_q = np.array(rows).transpose(2, 0, 1)
    assert np.abs(deviation).max() > 1e-3  # noise: realised differs from the plan
    dt = scenario.horizon.slot_hours
    np.testing.assert_allclose(paid_p, price_p * p * dt, rtol=1e-12, atol=0)
    np.testing.assert_allclose(paid_q, price_q * q * dt, rtol=1e-12, atol=0)
    assert np.isfinite(price_p).all() and np.isfinite(price_q).all()
