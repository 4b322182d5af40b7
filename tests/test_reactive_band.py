"""Reactive bands: the PCC reactive range of a runnable schedule at unchanged cost.

References are independent of the code under test: the band by a fresh Pyomo model of the
microgrid (``add_microgrid``) with the schedule's commitments, storage modes, renewable
outputs, curtailment and active exchange fixed, min/max ``q_ex[t]`` solved by
``pyomo.contrib.solver``'s HiGHS; re-dispatched schedules by :mod:`tests.feasibility`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyomo.environ as pyo
import pytest
from feasibility import check_microgrid_schedule, renewable_forecast
from pyomo.contrib.solver.common.results import TerminationCondition
from pyomo.contrib.solver.solvers.highs import Highs

from gridcosim.scenarios import variants
from gridcosim.scenarios.errors import SolverError
from gridcosim.scenarios.network import NetworkData
from gridcosim.scenarios.schema import Scenario
from gridcosim.simulator.decomposition.controller_responder import MicrogridResponder
from gridcosim.simulator.decomposition.network_evaluator import NetworkEvaluator
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.simulator.messages import (
    START_KEY,
    Accept,
    KeySource,
    PriceSignal,
    RestoredExchange,
    ScheduleKey,
)
from gridcosim.simulator.models.master_model import build_master
from gridcosim.simulator.models.microgrid_model import MicrogridWindow, add_microgrid
from gridcosim.simulator.schedule import MicrogridSchedule
from gridcosim.simulator.windows import microgrid_window, network_window, published_bounds

KINDS = ("price", "start")  # the answer to the utility price; initial_cuts' schedule (tag 0)


def runnable(w: MicrogridWindow, kind: str
             ) -> tuple[MicrogridResponder, ScheduleKey, RestoredExchange]:
    """A fresh responder, the key of one of its runnable schedules and that exchange."""
    r = MicrogridResponder(w, DecompositionSettings())
    if kind == "start":
        accept = r.initial_cuts(False)[0]
        assert isinstance(accept, Accept)
        return r, START_KEY, accept.restored
    lp = tuple(float(x) for x in np.asarray(w.price_usd_per_kwh) * w.slot_hours)
    key = ScheduleKey(KeySource.PRICE, 1)
    resp = r.respond_to_price(PriceSignal(w.spec.name, key, lp, (0.0,) * w.slots))
    assert resp is not None
    return r, key, resp.restored


@pytest.fixture(scope="module")
def windows(base: Scenario) -> list[MicrogridWindow]:
    return [microgrid_window(base, mg) for mg in base.microgrids]


def reference_band(w: MicrogridWindow, s: MicrogridSchedule) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of ``q_ex[t]`` per slot with the schedule's active side fixed."""
    m = pyo.ConcreteModel()
    m.mg = pyo.Block()
    add_microgrid(m.mg, w)
    b = m.mg
    for t in b.T:
        b.p_ex[t].fix(s.p_ex_kw[t])
        b.curtail[t].fix(s.curtail_kw[t])
        for g in b.generator.K:
            b.generator.u[g, t].fix(s.generators[g].on[t])
        for r in b.renewable.K:
            b.renewable.p[r, t].fix(s.renewables[r].p_kw[t])
        for e in b.storage.K:
            b.storage.mode[e, t].fix(1 if s.storage[e].p_charge_kw[t] > 0 else 0)
    lo, hi = np.zeros(w.slots), np.zeros(w.slots)
    for t in b.T:
        for sense, out in ((pyo.minimize, lo), (pyo.maximize, hi)):
            m.del_component("obj")
            m.obj = pyo.Objective(expr=b.q_ex[t], sense=sense)
            res = Highs().solve(m, load_solutions=False, threads=1,
                                raise_exception_on_nonoptimal_result=False)
            assert res.termination_condition == TerminationCondition.convergenceCriteriaSatisfied
            out[t] = res.incumbent_objective
    return lo, hi


def problems(w: MicrogridWindow, s: MicrogridSchedule) -> list[str]:
    return check_microgrid_schedule(w.spec, s, renewable_forecast(w), w.load_kw, w.load_kvar,
                                    w.slot_hours, w.curtailment_cost_usd_per_kwh, w.state)


def active_side(s: MicrogridSchedule) -> np.ndarray:
    """Everything of a schedule but its reactive outputs (the exchange included)."""
    parts = [s.p_ex_kw, s.curtail_kw, *(g.p_kw for g in s.generators),
             *(g.on for g in s.generators), *(r.p_kw for r in s.renewables),
             *(e.p_charge_kw for e in s.storage), *(e.p_discharge_kw for e in s.storage)]
    return np.concatenate([np.asarray(p, dtype=float) for p in parts])


@pytest.mark.parametrize("kind", KINDS)
def test_band_equals_lp_reference(windows: list[MicrogridWindow], kind: str) -> None:
    for w in windows:
        r, tag, ex = runnable(w, kind)
        s = r.schedule(tag)
        lo, hi, q = (np.asarray(v) for v in (ex.q_min_kvar, ex.q_max_kvar, ex.q_kvar))
        assert len(lo) == len(hi) == w.slots, (w.spec.name, kind)
        np.testing.assert_allclose(q, s.q_ex_kvar, atol=1e-6)
        assert np.all(lo <= q) and np.all(q <= hi), (w.spec.name, kind)
        ref_lo, ref_hi = reference_band(w, s)
        np.testing.assert_allclose(lo, ref_lo, atol=1e-6, rtol=0, err_msg=w.spec.name)
        np.testing.assert_allclose(hi, ref_hi, atol=1e-6, rtol=0, err_msg=w.spec.name)


@pytest.mark.parametrize("kind", KINDS)
def test_redispatch_within_band_keeps_active_schedule_and_cost(
        windows: list[MicrogridWindow], kind: str) -> None:
    for w in windows:
        _, tag, ex = runnable(w, kind)
        lo, hi = np.asarray(ex.q_min_kvar), np.asarray(ex.q_max_kvar)
        for name, q in (("mid", (lo + hi) / 2), ("min", lo), ("max", hi),
                        ("3/4", 0.25 * lo + 0.75 * hi)):
            r, tag, _ = runnable(w, kind)
            before = r.schedule(tag)
            moved = r.schedule(tag, tuple(float(v) for v in q))
            key = (w.spec.name, kind, name)
            np.testing.assert_allclose(moved.q_ex_kvar, q, atol=1e-5, rtol=0, err_msg=str(key))
            np.testing.assert_allclose(moved.p_ex_kw, before.p_ex_kw, atol=1e-6, rtol=0)
            assert moved.cost_usd == pytest.approx(before.cost_usd, abs=1e-6), key
            np.testing.assert_allclose(active_side(moved), active_side(before), atol=1e-6,
                                       rtol=0, err_msg=str(key))
            assert problems(w, moved) == [], key


@pytest.mark.parametrize("kind", KINDS)
def test_reactive_exchange_outside_band_is_refused(
        windows: list[MicrogridWindow], kind: str) -> None:
    accepted = []
    for w in windows:
        for t in range(w.slots):
            r, tag, ex = runnable(w, kind)
            q = list(ex.q_kvar)
            q[t] = ex.q_max_kvar[t] + 10.0
            try:
                s = r.schedule(tag, tuple(q))
            except SolverError:
                continue
            accepted.append((w.spec.name, t, ex.q_max_kvar[t], s.q_ex_kvar[t]))
    assert accepted == [], "q = band max + 10 kvar accepted (mg, slot, band max, q given)"


@pytest.mark.parametrize("stress", [False, True])
def test_evaluator_band_lowers_network_cost_and_chosen_q_runs(
        base: Scenario, network: NetworkData, windows: list[MicrogridWindow],
        stress: bool) -> None:
    scenario = variants.stressed(base) if stress else base  # stressed: reactive has value
    bounds = [published_bounds(w) for w in windows]
    ev = NetworkEvaluator(build_master(network_window(scenario, network, bounds)))
    answers = {w.spec.name: runnable(w, "price") for w in windows}
    banded = {mg: ex for mg, (_, _, ex) in answers.items()}
    fixed = {mg: replace(ex, q_min_kvar=(), q_max_kvar=()) for mg, ex in banded.items()}
    out_fixed = ev.evaluate(fixed)
    out_band = ev.evaluate(banded)
    assert out_fixed.status == out_band.status == "optimal"
    assert out_band.objective <= out_fixed.objective + 1e-9 * max(1.0, abs(out_fixed.objective))
    if stress:  # the voltage band binds: reactive support within the bands lowers the cost
        assert out_band.objective < out_fixed.objective - 1.0
    chosen = ev.with_reactive(banded, out_band)
    by_name = {w.spec.name: w for w in windows}
    for mg, ex in chosen.items():
        assert ex.p_kw == banded[mg].p_kw and ex.cost_usd == banded[mg].cost_usd, mg
        q = np.asarray(ex.q_kvar)
        assert np.all(q >= np.asarray(ex.q_min_kvar) - 1e-6), mg
        assert np.all(q <= np.asarray(ex.q_max_kvar) + 1e-6), mg
        r, tag, _ = answers[mg]  # the loop's last step: the controller runs the chosen Q
        s = r.schedule(tag, ex.q_kvar)
        np.testing.assert_allclose(s.q_ex_kvar, q, atol=1e-5, rtol=0, err_msg=mg)
        assert s.cost_usd == pytest.approx(ex.cost_usd, abs=1e-6), mg
        assert problems(by_name[mg], s) == [], mg
