"""Pin HiGHS's conventions as seen through :class:`simulator.highs_model.HighsModel`.

docs/formulation.md §9: the row dual is d objective / d rhs of a minimisation, so a binding ``>=``
row has a positive dual and a binding ``<=`` row a negative one. The decomposition's cuts
rely on this sign, so it is pinned here on problems solvable by hand.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
import pytest

from gridcosim.simulator.highs_model import HighsModel
from gridcosim.simulator.warm_basis import WarmBasis


def max_x_up_to_3() -> tuple[pyo.ConcreteModel, HighsModel]:
    """``min -x s.t. x <= 3, x >= 0`` (row ``c``), compiled."""
    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(0, None))
    m.c = pyo.Constraint(expr=m.x <= 3)
    m.obj = pyo.Objective(expr=-m.x)
    return m, HighsModel(m)


def test_dual_of_binding_ge_row_is_positive() -> None:
    # min x s.t. x >= 2: x* = 2, objective 2; raising the rhs by h raises it by h -> +1.
    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(0, None))
    m.c = pyo.Constraint(expr=m.x >= 2)
    m.obj = pyo.Objective(expr=m.x)
    h = HighsModel(m)
    out = h.solve()
    assert out.status == "optimal"
    assert out.objective == pytest.approx(2.0, abs=1e-9)
    assert h.value(out, m.x) == pytest.approx(2.0, abs=1e-9)
    assert out.row_dual[h.row(m.c)] == pytest.approx(1.0, abs=1e-9)


def test_dual_of_binding_le_row_is_negative() -> None:
    # min -x s.t. x <= 3: x* = 3, objective -3; raising the rhs by h lowers it by h -> -1.
    m, h = max_x_up_to_3()
    out = h.solve()
    assert out.status == "optimal"
    assert out.objective == pytest.approx(-3.0, abs=1e-9)
    assert out.row_dual[h.row(m.c)] == pytest.approx(-1.0, abs=1e-9)


def elastic_model(p: float) -> pyo.ConcreteModel:
    """min x + 3 (s⁺ + s⁻) s.t. x - s⁺ + s⁻ == p, 1 <= x <= 5 (the coupling-row form of §9).

    By hand: F(p) = 1 + 3 (1 - p) for p <= 1 (x = 1, s⁺ = 1 - p), dual -3;
             F(p) = p              for 1 <= p <= 5 (x = p), dual +1;
             F(p) = 5 + 3 (p - 5) for p >= 5 (x = 5, s⁻ = p - 5), dual +3.
    """
    m = pyo.ConcreteModel()
    m.p = pyo.Param(initialize=p, mutable=True)
    m.x = pyo.Var(bounds=(1, 5))
    m.s_plus = pyo.Var(bounds=(0, None))
    m.s_minus = pyo.Var(bounds=(0, None))
    m.couple = pyo.Constraint(expr=m.x - m.s_plus + m.s_minus == m.p)
    m.obj = pyo.Objective(expr=m.x + 3 * (m.s_plus + m.s_minus))
    return m


@pytest.mark.parametrize(("p", "objective", "x", "dual"), [
    (0.0, 4.0, 1.0, -3.0),   # F = 1 + 3·(1 - 0)
    (3.0, 3.0, 3.0, 1.0),    # F = 3
    (7.0, 11.0, 5.0, 3.0),   # F = 5 + 3·(7 - 5)
])
def test_equality_row_refresh_and_dual(p: float, objective: float, x: float,
                                       dual: float) -> None:
    m = elastic_model(2.0)
    h = HighsModel(m)
    first = h.solve()
    assert h.value(first, m.x) == pytest.approx(2.0, abs=1e-9)

    def solve_at(value: float) -> tuple[float, float, float]:
        m.p.set_value(value)
        h.refresh_rows([m.couple])
        out = h.solve()
        assert out.status == "optimal"
        return out.objective, h.value(out, m.x), out.row_dual[h.row(m.couple)]

    obj, x_val, row_dual = solve_at(p)
    assert obj == pytest.approx(objective, abs=1e-9)
    assert x_val == pytest.approx(x, abs=1e-9)
    assert row_dual == pytest.approx(dual, abs=1e-9)
    # The dual is the derivative of the optimal value w.r.t. p (central difference; every
    # p above is at least 1 away from a kink at 1 or 5).
    step = 1e-3
    f_up, _, _ = solve_at(p + step)
    f_down, _, _ = solve_at(p - step)
    assert (f_up - f_down) / (2 * step) == pytest.approx(row_dual, abs=1e-6)


def test_refresh_rows_keeps_constant_offset() -> None:
    # Constants on the body side move into the rhs: x + 4 >= p  <=>  x >= p - 4.
    m = pyo.ConcreteModel()
    m.p = pyo.Param(initialize=6.0, mutable=True)
    m.x = pyo.Var(bounds=(0, None))
    m.c = pyo.Constraint(expr=m.x + 4 >= m.p)
    m.obj = pyo.Objective(expr=m.x)
    h = HighsModel(m)
    assert h.solve().objective == pytest.approx(2.0, abs=1e-9)   # x = 6 - 4
    m.p.set_value(10.0)
    h.refresh_rows([m.c])
    assert h.solve().objective == pytest.approx(6.0, abs=1e-9)   # x = 10 - 4


def test_mip_returns_objective_bound() -> None:
    # min x + y, 2x + 2y >= 3, x, y integer >= 0: x + y >= 1.5 -> 2 (LP relaxation: 1.5).
    m = pyo.ConcreteModel()
    m.x = pyo.Var(domain=pyo.NonNegativeIntegers)
    m.y = pyo.Var(domain=pyo.NonNegativeIntegers)
    m.c = pyo.Constraint(expr=2 * m.x + 2 * m.y >= 3)
    m.obj = pyo.Objective(expr=m.x + m.y)
    h = HighsModel(m)
    assert h.is_mip
    out = h.solve()
    assert out.status == "optimal"
    assert out.objective == pytest.approx(2.0, abs=1e-9)
    assert out.bound is not None
    assert out.bound <= out.objective + 1e-9
    assert out.bound == pytest.approx(2.0, abs=1e-6)
    assert out.row_dual is None
    relaxed = HighsModel(m, relax_integrality=True)
    assert not relaxed.is_mip
    assert relaxed.solve().objective == pytest.approx(1.5, abs=1e-9)


def test_infeasible_lp_and_mip_report_status() -> None:
    # 0 <= x <= 1 and x >= 2: infeasible, as an LP and with x integer.
    for domain in (pyo.Reals, pyo.Integers):
        m = pyo.ConcreteModel()
        m.x = pyo.Var(bounds=(0, 1), domain=domain)
        m.c = pyo.Constraint(expr=m.x >= 2)
        m.obj = pyo.Objective(expr=m.x)
        out = HighsModel(m).solve()
        assert out.status == "infeasible", domain
        assert not out.has_solution
        assert out.objective is None and out.row_dual is None


def test_infeasible_after_refresh_then_feasible_again() -> None:
    # The warm-started instance recovers after an infeasible solve: x ∈ [0, 1], x >= p.
    m = pyo.ConcreteModel()
    m.p = pyo.Param(initialize=0.5, mutable=True)
    m.x = pyo.Var(bounds=(0, 1))
    m.c = pyo.Constraint(expr=m.x >= m.p)
    m.obj = pyo.Objective(expr=m.x)
    h = HighsModel(m)
    assert h.solve().objective == pytest.approx(0.5, abs=1e-9)
    m.p.set_value(2.0)
    h.refresh_rows([m.c])
    assert h.solve().status == "infeasible"
    m.p.set_value(0.25)
    h.refresh_rows([m.c])
    out = h.solve()
    assert out.status == "optimal"
    assert out.objective == pytest.approx(0.25, abs=1e-9)


def test_add_row_and_binary_column_then_resolve() -> None:
    # Start: min -x, x <= 3, x >= 0 -> x = 3, objective -3 (an LP with a dual).
    m, h = max_x_up_to_3()
    out = h.solve()
    assert out.objective == pytest.approx(-3.0, abs=1e-9)
    assert not h.is_mip and out.row_dual is not None
    # Add a binary y with cost 0.5 and the row x - 2 y <= 0 (x only up to 2 when y = 1):
    # y = 0 -> x = 0, objective 0; y = 1 -> x = 2, objective -2 + 0.5 = -1.5. Optimum -1.5.
    y = h.add_col(0.5, 0.0, 1.0, integer=True)
    row = h.add_row([h.col(m.x), y], [1.0, -2.0], -np.inf, 0.0)
    assert (h.num_cols, h.num_rows) == (2, 2)
    assert row == 1 and h.is_mip
    out = h.solve()
    assert out.status == "optimal"
    assert out.objective == pytest.approx(-1.5, abs=1e-9)
    assert out.x[y] == pytest.approx(1.0, abs=1e-9)
    assert h.value(out, m.x) == pytest.approx(2.0, abs=1e-9)
    assert out.bound == pytest.approx(-1.5, abs=1e-6)
    # Raise y's cost above 2: switching on no longer pays (-2 + 2.5 > 0) -> y = 0, x = 0.
    h.highs.changeColCost(y, 2.5)
    out = h.solve()
    assert out.objective == pytest.approx(0.0, abs=1e-9)
    assert out.x[y] == pytest.approx(0.0, abs=1e-9)
    # Fixing y = 1 through its bounds forces the expensive option: -2 + 2.5 = 0.5.
    h.set_col_bounds(y, 1.0, 1.0)
    assert h.solve().objective == pytest.approx(0.5, abs=1e-9)


def test_maximise_objective_is_reported_negated() -> None:
    # HighsModel documents "one minimised objective": a maximise objective is compiled as
    # min -f, so x is right but the reported objective is -f. Pinned so a caller notices.
    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(0, 5))
    m.obj = pyo.Objective(expr=m.x, sense=pyo.maximize)
    h = HighsModel(m)
    out = h.solve()
    assert h.value(out, m.x) == pytest.approx(5.0, abs=1e-9)
    assert out.objective == pytest.approx(-5.0, abs=1e-9)


def test_load_values_keeps_fixed_variables() -> None:
    # The standard-form compiler turns a Pyomo-fixed variable into a constant (no HiGHS
    # column); load_values must then leave its value alone. min x s.t. x - y >= 0, y fixed
    # at 3: x = 3, and y must still read 3 after loading the solution.
    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(0, None))
    m.y = pyo.Var()
    m.y.fix(3.0)
    m.c = pyo.Constraint(expr=m.x - m.y >= 0)
    m.obj = pyo.Objective(expr=m.x)
    h = HighsModel(m)
    out = h.solve()
    assert out.objective == pytest.approx(3.0, abs=1e-9)
    h.load_values(out)
    assert pyo.value(m.x) == pytest.approx(3.0, abs=1e-9)
    assert m.y.value == 3.0, (
        "BUG simulator/highs_model.py HighsModel.load_values: every variable without a "
        "HiGHS column is set to None, including Pyomo-fixed variables (compiled as "
        f"constants); y was fixed at 3.0 and now reads {m.y.value!r}, so extracted "
        "schedules report 0 for fixed quantities (e.g. a fixed P_ex)")


def test_time_limit_holds_per_solve_not_over_the_instance_life() -> None:
    """HiGHS (before 2.0) compares ``time_limit`` with its run time summed over every run.

    A model re-solved many times (the master within a long window) must not hit a limit
    meant for one solve once the sum passes it: each cold solve here takes well under the
    limit, and together they take several times it.
    """
    m = pyo.ConcreteModel()
    m.I = pyo.RangeSet(0, 1499)
    m.x = pyo.Var(m.I, bounds=(0.0, 10.0))
    m.c = pyo.Constraint(m.I, rule=lambda m, i: m.x[i] + m.x[(i + 1) % 1500] >= 1.0 + (i % 7))
    m.obj = pyo.Objective(expr=sum((1 + i % 5) * m.x[i] for i in m.I))
    hm = HighsModel(m)
    limit_s = 0.02
    statuses = []
    while hm.highs.getRunTime() < 5 * limit_s:
        hm.reset()  # the same HiGHS instance, solved from scratch again: its clock runs on
        statuses.append(hm.solve(time_limit_s=limit_s).status)
        assert len(statuses) < 10_000
    assert len(statuses) > 5 and set(statuses) == {"optimal"}
    hm.reset()
    assert hm.solve().status == "optimal"  # no limit


def test_slot_columns_equal_one_lookup_per_index() -> None:
    """``slot_columns`` gives, per key, the columns ``col(var[key, t])`` in slot order."""
    m = pyo.ConcreteModel()
    m.K = pyo.Set(initialize=["b", "a", "c"], ordered=True)  # not sorted: index order kept
    m.T = pyo.RangeSet(0, 3)
    m.E = pyo.Set(initialize=[])
    m.x = pyo.Var(m.K, m.T, bounds=(0, 1))
    m.y = pyo.Var(m.E, m.T, bounds=(0, 1))
    m.z = pyo.Var(m.K, m.K, m.T, bounds=(0, 1))
    m.obj = pyo.Objective(expr=sum(m.x.values()) + sum(m.z.values()))
    m.c = pyo.Constraint(expr=m.x["c", 3] + m.z["a", "b", 0] >= 0.5)
    hm = HighsModel(m)
    found = hm.slot_columns(m.x)
    assert list(found) == ["b", "a", "c"]
    for k in m.K:
        assert found[k].tolist() == [hm.col(m.x[k, t]) for t in m.T]
    assert hm.slot_columns(m.y) == {}
    pairs = hm.slot_columns(m.z)
    assert pairs[("a", "b")].tolist() == [hm.col(m.z["a", "b", t]) for t in m.T]
    assert len(pairs) == 9


def random_lp(seed: int) -> pyo.ConcreteModel:
    """14 boxed columns (4 fixed), 4 equality and 3 ``<=`` rows, random costs."""
    rng = np.random.default_rng(seed)
    n = 14
    m = pyo.ConcreteModel()
    m.J = pyo.RangeSet(0, n - 1)
    lo = rng.uniform(-2, 0, n)
    hi = lo + rng.uniform(0.5, 3, n)
    hi[:4] = lo[:4]
    m.x = pyo.Var(m.J, bounds=lambda _, j: (lo[j], hi[j]))
    a = rng.normal(size=(7, n)) * (rng.uniform(size=(7, n)) < 0.6)
    c = rng.normal(size=n)
    m.eq = pyo.Constraint(range(4), rule=lambda _, i: sum(a[i, j] * m.x[j] for j in m.J)
                          == 0.1 * i)
    m.le = pyo.Constraint(range(4, 7), rule=lambda _, i: sum(a[i, j] * m.x[j] for j in m.J)
                          <= 0.5)
    m.obj = pyo.Objective(expr=sum(c[j] * m.x[j] for j in m.J))
    return m


def test_basis_read_in_bulk_equals_highs_get_basis() -> None:
    """The optimal basis read from basic indices, solution and bounds is HiGHS's own.

    Seed 9 covers every branch of the rule: fixed columns and equality rows at both
    statuses (by the sign of their duals), columns at each bound, basic rows.
    """
    hm = HighsModel(random_lp(9))
    assert hm.solve().status == "optimal"
    fast = hm._basis_at_optimum()
    ref = WarmBasis.from_highs(hm.highs.getBasis())
    assert fast is not None and hm.basis() is not None
    assert set(ref.col_status[:4].tolist()) == {0, 2}  # fixed: kLower and kUpper
    assert set(ref.row_status[:4].tolist()) == {0, 2}  # equalities: kLower and kUpper
    assert {0, 1, 2} <= set(ref.col_status.tolist()) and 1 in ref.row_status
    np.testing.assert_array_equal(fast.col_status, ref.col_status)
    np.testing.assert_array_equal(fast.row_status, ref.row_status)
    np.testing.assert_array_equal(hm.basis().row_status, ref.row_status)


def test_basis_after_a_change_is_read_from_highs() -> None:
    """After a bound change the solution is stale: the basis comes from ``getBasis``."""
    m = random_lp(9)
    hm = HighsModel(m)
    hm.solve()
    hm.set_cols_bounds([hm.col(m.x[5])], -1.0, 1.0)
    assert hm._basis_at_optimum() is None
    ref = WarmBasis.from_highs(hm.highs.getBasis())
    np.testing.assert_array_equal(hm.basis().col_status, ref.col_status)
