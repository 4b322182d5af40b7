"""Hand-checkable cases of the microgrid model (simulator/models/microgrid_model.py).

Each case builds schema objects and a :class:`MicrogridWindow` directly, puts
:func:`add_microgrid` on a Pyomo block with an objective chosen to push against one limit,
solves it with :class:`HighsModel` and compares with numbers derived by hand in the
comments. Every MILP schedule is also passed through the independent checker of
:mod:`tests.feasibility`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pyomo.environ as pyo
import pytest
from feasibility import check_microgrid_schedule, renewable_forecast

from gridcosim.scenarios.schema import Generator, Microgrid, Renewable, Storage
from gridcosim.simulator.highs_model import HighsModel
from gridcosim.simulator.models.microgrid_model import (
    MicrogridState,
    MicrogridWindow,
    add_microgrid,
)
from gridcosim.simulator.schedule import MicrogridSchedule, extract_microgrid

ABS = 1e-7


def window(spec: Microgrid, slots: int, *, renewable_kw: Sequence[float] | None = None,
           load_kw: float = 0.0, load_kvar: float = 0.0, rho: float = 0.5,
           state: MicrogridState | None = None) -> MicrogridWindow:
    forecasts = {r.name: np.asarray(renewable_kw if renewable_kw is not None
                                    else [r.forecast_kw] * slots, dtype=float)
                 for r in spec.renewables}
    return MicrogridWindow(
        spec=spec, forecast_kw=forecasts,
        load_kw=np.full(slots, load_kw), load_kvar=np.full(slots, load_kvar), slot_hours=1.0,
        curtailment_cost_usd_per_kwh=rho,
        state=state if state is not None else MicrogridState.initial(spec))


def solve(w: MicrogridWindow, objective: Callable[[pyo.Block], pyo.Expression], *,
          relax: bool = False, fix_p_ex: Sequence[float] | None = None,
          ) -> tuple[pyo.Block, MicrogridSchedule, float]:
    """Solve min ``objective(block)``; return the loaded block, its schedule and objective."""
    m = pyo.ConcreteModel()
    m.mg = pyo.Block()
    add_microgrid(m.mg, w, relax=relax)
    if fix_p_ex is not None:
        fix_by_bounds(m.mg.p_ex, fix_p_ex)
    m.obj = pyo.Objective(expr=objective(m.mg))
    h = HighsModel(m)
    out = h.solve()
    assert out.status == "optimal", out.status
    h.load_values(out)
    return m.mg, extract_microgrid(m.mg, w.spec), out.objective


def fix_by_bounds(var: pyo.Var, values: Sequence[float]) -> None:
    """Fix through the bounds, not ``Var.fix``: HighsModel.load_values erases fixed values
    (see test_highs_model.py::test_load_values_keeps_fixed_variables)."""
    for t, value in enumerate(values):
        var[t].setlb(value)
        var[t].setub(value)


def check(w: MicrogridWindow, sched: MicrogridSchedule) -> list[str]:
    return check_microgrid_schedule(w.spec, sched, renewable_forecast(w), w.load_kw, w.load_kvar,
                                    w.slot_hours, w.curtailment_cost_usd_per_kwh, w.state)


def dg(**kw: object) -> Generator:
    base = {"name": "dg", "cost_usd_per_kwh": 0.05, "startup_cost_usd": 0.0, "p_min_kw": 20.0,
            "p_max_kw": 200.0, "q_min_kvar": -50.0, "q_max_kvar": 50.0,
            "ramp_kw_per_slot": 30.0}
    return Generator(**{**base, **kw})


def microgrid(**kw: object) -> Microgrid:
    base = {"name": "mg", "bus": 7, "pcc_p_max_kw": 1000.0, "pcc_q_max_kvar": 1000.0}
    return Microgrid(**{**base, **kw})


def sell_at(price: float) -> Callable[[pyo.Block], pyo.Expression]:
    """Cost minus revenue of exporting at ``price`` $/kWh (Δt = 1 h)."""
    return lambda b: b.cost_usd - price * sum(b.p_ex[t] for t in b.T)


# ----------------------------------------------------------------------------- ramping
def test_ramp_up_from_initial_state() -> None:
    # DG on at 80 kW, ramp 30 kW/slot, P_max 200. Export pays 1 $/kWh > 0.05 $/kWh cost, so
    # the DG climbs as fast as allowed: 80 + 30 = 110, 110 + 30 = 140, 170 (below 200).
    spec = microgrid(generators=(dg(initial_on=True, initial_p_kw=80.0),))
    w = window(spec, 3)
    b, sched, _ = solve(w, sell_at(1.0))
    assert sched.generators[0].p_kw == pytest.approx((110.0, 140.0, 170.0), abs=ABS)
    assert sched.p_ex_kw == pytest.approx((110.0, 140.0, 170.0), abs=ABS)
    assert sched.generators[0].on == (1, 1, 1)
    # No start-up (already on): cost = 0.05 · (110 + 140 + 170) = 0.05 · 420 = 21.
    assert sched.cost_usd == pytest.approx(21.0, abs=ABS)
    assert check(w, sched) == []


def test_ramp_down_from_initial_state() -> None:
    # DG on at 80 kW, ramp 30, P_min 20; exporting COSTS 1 $/kWh, so the DG drops as fast
    # as allowed: 80 - 30 = 50, 50 - 30 = 20 (= P_min, still on), then 20 -> 0 is a 20 kW
    # step <= 30 so it switches off in slot 3. (It cannot switch off in slot 1: 80 > 30.)
    spec = microgrid(generators=(dg(initial_on=True, initial_p_kw=80.0),))
    w = window(spec, 3)
    _, sched, _ = solve(w, sell_at(-1.0))
    assert sched.generators[0].p_kw == pytest.approx((50.0, 20.0, 0.0), abs=ABS)
    assert sched.generators[0].on == (1, 1, 0)
    assert check(w, sched) == []


# ----------------------------------------------------------------------------- start-up
@pytest.mark.parametrize(("p_ex", "on", "starts", "cost"), [
    # (20, 0, 20): p = 20 needs u = 1 (P_min 10); p_ex = 0 with nothing else forces p = 0 and
    # so u = 0 (p >= P_min u). Two starts: energy 0.1 · 40 = 4, start-ups 2 · 7 = 14 -> 18.
    ((20.0, 0.0, 20.0), (1, 0, 1), (1.0, 0.0, 1.0), 18.0),
    # (20, 20, 20): one start; energy 0.1 · 60 = 6, start-up 7 -> 13.
    ((20.0, 20.0, 20.0), (1, 1, 1), (1.0, 0.0, 0.0), 13.0),
    # (0, 20, 0): one start in slot 2; energy 2, start-up 7 -> 9.
    ((0.0, 20.0, 0.0), (0, 1, 0), (0.0, 1.0, 0.0), 9.0),
])
def test_startup_counted_once_per_start(p_ex: tuple[float, ...], on: tuple[int, ...],
                                        starts: tuple[float, ...], cost: float) -> None:
    # DG initially OFF, SU = 7 $, 0.1 $/kWh, P 10-50, ramp 100 (never binding).
    spec = microgrid(generators=(dg(cost_usd_per_kwh=0.1, startup_cost_usd=7.0, p_min_kw=10.0,
                                    p_max_kw=50.0, ramp_kw_per_slot=100.0),))
    w = window(spec, 3)
    b, sched, obj = solve(w, lambda b: b.cost_usd, fix_p_ex=p_ex)
    assert sched.generators[0].on == on
    assert tuple(pyo.value(b.generator.su[0, t]) for t in b.T) == pytest.approx(starts, abs=ABS)
    assert sched.cost_usd == pytest.approx(cost, abs=ABS)
    assert obj == pytest.approx(cost, abs=ABS)
    assert check(w, sched) == []


def test_startup_after_initially_on_unit_stops() -> None:
    # DG initially ON at 20 kW: p_ex (0, 20) -> off in slot 1 (20 -> 0 within ramp 100),
    # on again in slot 2: that is one start (7 $) plus 0.1 · 20 = 2 -> 9. Being on before
    # the window is not a start.
    spec = microgrid(generators=(dg(cost_usd_per_kwh=0.1, startup_cost_usd=7.0, p_min_kw=10.0,
                                    p_max_kw=50.0, ramp_kw_per_slot=100.0, initial_on=True,
                                    initial_p_kw=20.0),))
    w = window(spec, 2)
    _, sched, _ = solve(w, lambda b: b.cost_usd, fix_p_ex=(0.0, 20.0))
    assert sched.generators[0].on == (0, 1)
    assert sched.cost_usd == pytest.approx(9.0, abs=ABS)
    assert check(w, sched) == []


# ----------------------------------------------------------------------------- storage
def ess(**kw: object) -> Storage:
    base = {"name": "ess", "p_charge_max_kw": 20.0, "p_discharge_max_kw": 20.0,
            "e_min_kwh": 0.0, "e_max_kwh": 100.0, "e_initial_kwh": 50.0, "eta_charge": 0.9,
            "eta_discharge": 0.9}
    return Storage(**{**base, **kw})


def test_storage_energy_balance_with_efficiencies() -> None:
    # Only a battery (E0 = 50, η_ch = η_dis = 0.9): P_ex = p_dis - p_ch.
    # Slot 1: import 10 -> charge 10 kW for 1 h -> E = 50 + 0.9 · 10 = 59.
    # Slot 2: export 9  -> discharge 9 kW       -> E = 59 - 9 / 0.9 = 49.
    spec = microgrid(storage=(ess(),))
    w = window(spec, 2)
    _, sched, _ = solve(w, lambda b: sum(b.storage.e[0, t] for t in b.T), fix_p_ex=(-10.0, 9.0))
    unit = sched.storage[0]
    assert unit.p_charge_kw == pytest.approx((10.0, 0.0), abs=ABS)
    assert unit.p_discharge_kw == pytest.approx((0.0, 9.0), abs=ABS)
    assert unit.e_kwh == pytest.approx((59.0, 49.0), abs=ABS)
    assert check(w, sched) == []


def paid_to_import(b: pyo.Block) -> pyo.Expression:
    """Negative price: every kWh imported earns 1 $ (min Σ P_ex)."""
    return sum(b.p_ex[t] for t in b.T)


def test_no_simultaneous_charge_and_discharge() -> None:
    # A full battery (E0 = E_max = 100, 20/20 kW, η 0.9/0.9) is PAID to import (min Σ P_ex).
    # Charging and discharging at once would burn energy and import while staying full:
    # that is what the mode binary forbids. By hand, with one mode per slot over 2 slots:
    #   discharge d in slot 1 (E -> 100 - d/0.9, P_ex = +d), charge c in slot 2 up to the
    #   room: 0.9 c <= d/0.9, c <= 20. Objective d - c = d - d/0.81 for d <= 16.2 (= 0.81·20),
    #   minimal at d = 16.2, c = 20: objective 16.2 - 20 = -3.8; E = (82, 100).
    spec = microgrid(storage=(ess(e_initial_kwh=100.0),))
    w = window(spec, 2)
    _, sched, obj = solve(w, paid_to_import)
    unit = sched.storage[0]
    for t in range(2):
        assert unit.p_charge_kw[t] * unit.p_discharge_kw[t] == pytest.approx(0.0, abs=1e-9), t
    assert obj == pytest.approx(-3.8, abs=1e-6)
    assert unit.p_discharge_kw == pytest.approx((16.2, 0.0), abs=1e-6)
    assert unit.p_charge_kw == pytest.approx((0.0, 20.0), abs=1e-6)
    assert unit.e_kwh == pytest.approx((82.0, 100.0), abs=1e-6)
    assert check(w, sched) == []
    # The LP relaxation (mode in [0, 1]) does both at once and does better than -3.8: e.g.
    # mode 0.5 in both slots allows 10 kW each way at the same time (0.9·10 - 10/0.9 < 0).
    _, relaxed, relaxed_obj = solve(w, paid_to_import, relax=True)
    both = [min(relaxed.storage[0].p_charge_kw[t], relaxed.storage[0].p_discharge_kw[t])
            for t in range(2)]
    assert relaxed_obj < -3.8 - 1e-3
    assert max(both) > 1e-3


# ----------------------------------------------------------------------------- renewables
def test_renewable_reactive_limit() -> None:
    # pf_min 0.8 -> tan(acos 0.8) = 0.6 / 0.8 = 0.75; at the full forecast of 100 kW,
    # |q| <= 75 kvar. Rewarding export of P and Q: p = 100, q = +75. Rewarding absorption
    # of Q instead: q = -75.
    spec = microgrid(renewables=(Renewable(name="pv", forecast_kw=100.0,
                                           min_power_factor=0.8),))
    w = window(spec, 1)
    _, sched, _ = solve(w, lambda b: -b.p_ex[0] - b.q_ex[0])
    assert sched.renewables[0].p_kw == pytest.approx((100.0,), abs=ABS)
    assert sched.renewables[0].q_kvar == pytest.approx((75.0,), abs=ABS)
    assert sched.q_ex_kvar == pytest.approx((75.0,), abs=ABS)
    assert check(w, sched) == []
    _, sched, _ = solve(w, lambda b: -b.p_ex[0] + b.q_ex[0])
    assert sched.renewables[0].q_kvar == pytest.approx((-75.0,), abs=ABS)
    # At 40 kW (P_ex fixed) the limit shrinks to 0.75 · 40 = 30 kvar.
    _, sched, _ = solve(w, lambda b: -b.q_ex[0], fix_p_ex=(40.0,))
    assert sched.renewables[0].q_kvar == pytest.approx((30.0,), abs=ABS)
    # And the output never exceeds the forecast: asking for 101 kW is infeasible.
    m = pyo.ConcreteModel()
    m.mg = pyo.Block()
    add_microgrid(m.mg, w)
    fix_by_bounds(m.mg.p_ex, (101.0,))
    m.obj = pyo.Objective(expr=m.mg.cost_usd + m.mg.q_ex[0])
    assert HighsModel(m).solve().status == "infeasible"


# ----------------------------------------------------------------------------- relaxation
def test_lp_relaxation_allows_fractional_commitment() -> None:
    # DG P 50-100 (initially off, 0.1 $/kWh, SU 1 $), local load 10 kW, curtailment 1 $/kWh,
    # P_ex fixed at 0. MILP: the DG cannot run at 10 kW (P_min 50) and 50 kW would have
    # nowhere to go, so u = 0 and all 10 kW are curtailed: cost 1 · 10 = 10.
    # LP relaxation: p = 10 with 50 u <= 10 <= 100 u, i.e. u ∈ [0.1, 0.2]; the start-up
    # s >= u makes u = 0.1 cheapest: cost 0.1 · 10 + 1 · 0.1 = 1.1.
    spec = microgrid(generators=(dg(cost_usd_per_kwh=0.1, startup_cost_usd=1.0, p_min_kw=50.0,
                                    p_max_kw=100.0, ramp_kw_per_slot=100.0),),
                     local_load_kw=10.0)
    w = window(spec, 1, load_kw=10.0, rho=1.0)
    _, sched, obj = solve(w, lambda b: b.cost_usd, fix_p_ex=(0.0,))
    assert obj == pytest.approx(10.0, abs=ABS)
    assert sched.generators[0].on == (0,)
    assert sched.curtail_kw == pytest.approx((10.0,), abs=ABS)
    assert check(w, sched) == []

    b, relaxed, relaxed_obj = solve(w, lambda b: b.cost_usd, relax=True, fix_p_ex=(0.0,))
    assert relaxed_obj == pytest.approx(1.1, abs=ABS)
    assert pyo.value(b.generator.u[0, 0]) == pytest.approx(0.1, abs=ABS)
    assert relaxed.generators[0].p_kw == pytest.approx((10.0,), abs=ABS)
    assert relaxed.curtail_kw == pytest.approx((0.0,), abs=ABS)
    # The extracted schedule rounds u to 0, so the independent checker flags p > P_max·u.
    assert any("outside" in p for p in check(w, relaxed))


def test_compiled_rows_list_the_units_before_the_pcc_balance() -> None:
    """The order HiGHS sees (its vertex choice in degenerate subproblems follows it).

    The DER kinds' rows come first, kind by kind, then the PCC balance rows: the order the
    models had before the DER kinds became plugins, which the benchmarks' iteration counts
    depend on (README, decomposition table).
    """
    spec = microgrid(generators=(dg(),), storage=(ess(),))
    m = pyo.ConcreteModel()
    m.mg = pyo.Block()
    add_microgrid(m.mg, window(spec, 3, load_kw=5.0))
    m.obj = pyo.Objective(expr=m.mg.cost_usd)
    rows = HighsModel(m)._row  # row index per constraint (id), in compiled order
    order = sorted(m.component_data_objects(pyo.Constraint, active=True),
                   key=lambda c: rows[id(c)])
    owners = [c.parent_block().local_name for c in order]
    balance = [i for i, o in enumerate(owners) if o == "pcc"]
    assert balance == list(range(len(owners) - 6, len(owners)))
    assert owners.index("storage") > owners.index("generator")
