"""The master's cut pool (:mod:`simulator.decomposition.cut_pool`) on small LPs.

The reference is scipy's ``linprog`` on the LP with every cut, built independently of the
HiGHS model the pool edits.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
import pytest
from scipy.optimize import linprog

from gridcosim.simulator.decomposition.cut_pool import Cut, CutPool
from gridcosim.simulator.highs_instance import INF, LP_RESOLVE_OPTIONS
from gridcosim.simulator.highs_model import HighsModel

N = 6  # variables of the toy master


def toy_model() -> tuple[HighsModel, list[int]]:
    """``min Σ x`` over the box ``[-10, 10]^N`` (the cuts come on top)."""
    m = pyo.ConcreteModel()
    m.I = pyo.RangeSet(0, N - 1)
    m.x = pyo.Var(m.I, bounds=(-10.0, 10.0))
    m.obj = pyo.Objective(expr=sum(m.x[i] for i in m.I))
    m.box = pyo.Constraint(expr=sum(m.x[i] for i in m.I) >= -1e3)  # one compiled row
    hm = HighsModel(m, options=LP_RESOLVE_OPTIONS)
    return hm, [hm.col(m.x[i]) for i in m.I]


def random_cuts(rng: np.random.Generator, cols: list[int], n: int) -> list[Cut]:
    """``a·x ≥ b`` cuts with positive ``a`` (they bound ``Σ x`` from below)."""
    cuts = []
    for _ in range(n):
        a = rng.uniform(0.1, 2.0, size=N)
        cuts.append(Cut(np.array(cols, dtype=np.int32), a, float(rng.uniform(-20, 5)), INF))
    return cuts


def reference(cuts: list[Cut], cost: np.ndarray) -> float:
    """The LP with every cut, by scipy (``-a·x ≤ -b``)."""
    a_ub = np.array([-c.coefs for c in cuts])
    b_ub = np.array([-c.lb for c in cuts])
    res = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=[(-10.0, 10.0)] * N, method="highs")
    assert res.status == 0
    return float(res.fun)


def solve_with_pool(hm: HighsModel, pool: CutPool) -> float:
    """What the master does: solve, put violated parked cuts back, solve again, age."""
    while True:
        out = hm.solve()
        assert out.status == "optimal"
        if not pool.restore_violated(out.x):
            break
    pool.after_solve(out.x)
    return float(out.objective)


def test_pool_keeps_the_optimum_of_the_lp_with_every_cut() -> None:
    rng = np.random.default_rng(7)
    hm, cols = toy_model()
    pool = CutPool(hm, age_limit=2)
    cuts: list[Cut] = []
    for step in range(30):
        new = random_cuts(rng, cols, 5)
        cuts += new
        for cut in new:
            pool.add(cut)
        cost = rng.uniform(0.2, 1.5, size=N)  # a new objective each step moves the optimum
        hm.set_costs(cols, cost)
        value = solve_with_pool(hm, pool)
        assert value == pytest.approx(reference(cuts, cost), rel=1e-7, abs=1e-7), step
    assert pool.dropped > 0 and pool.readded > 0
    assert pool.kept + pool.parked == len(cuts)
    rows, _, _ = hm.compiled_shape
    assert hm.num_rows == rows + pool.kept


def test_kept_rows_are_the_kept_cuts_after_deletions() -> None:
    """Row indices move up when earlier rows are deleted: the pool's map follows them."""
    rng = np.random.default_rng(3)
    hm, cols = toy_model()
    pool = CutPool(hm, age_limit=1)
    for cut in random_cuts(rng, cols, 40):
        pool.add(cut)
    solve_with_pool(hm, pool)
    assert pool.dropped > 0
    for row, cut in zip(pool._rows, pool._kept.cuts, strict=True):
        _, _, lo, hi, _ = hm.highs.getRows(1, np.array([row], dtype=np.int32))
        _, _, index, value = hm.highs.getRowsEntries(1, np.array([row], dtype=np.int32))
        assert (lo[0], hi[0]) == (cut.lb, cut.ub)
        got = dict(zip(index.tolist(), value.tolist(), strict=True))
        assert got == pytest.approx(dict(zip(cut.cols.tolist(), cut.coefs.tolist(),
                                             strict=True)))


def test_age_limit_zero_keeps_every_cut() -> None:
    rng = np.random.default_rng(5)
    hm, cols = toy_model()
    pool = CutPool(hm, age_limit=0)
    for _ in range(10):
        for cut in random_cuts(rng, cols, 5):
            pool.add(cut)
        solve_with_pool(hm, pool)
    assert (pool.kept, pool.parked, pool.dropped) == (50, 0, 0)
