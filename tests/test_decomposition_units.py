"""Unit tests of the decomposition's parts: branch tree, branch and bound, cuts, master.

* :class:`~simulator.decomposition.controller_branching.BranchTree`: fixings, split errors.
* :func:`~simulator.decomposition.master_branch_and_bound.branch_and_bound` on small knapsacks
  against brute force.
* Unified cuts (docs/formulation.md §3a): valid at every MILP-feasible point (seed 000, Theorem 1)
  and with the dual sign of §9 (π = ∂F_D/∂x̂), checked by finite differences.
* :class:`~simulator.decomposition.master_problem.MasterProblem`: a unified cut added at the root
  holds at the next master solution.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pyomo.environ as pyo
import pytest

from gridcosim.scenarios.network import load_network
from gridcosim.scenarios.schema import Scenario
from gridcosim.simulator.decomposition.controller_branching import BranchTree
from gridcosim.simulator.decomposition.controller_responder import MicrogridResponder, cut_value
from gridcosim.simulator.decomposition.controller_subproblems import Point
from gridcosim.simulator.decomposition.master_branch_and_bound import branch_and_bound
from gridcosim.simulator.decomposition.master_problem import MasterProblem
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.simulator.highs_model import HighsModel
from gridcosim.simulator.messages import (
    Accept,
    ExchangeProposal,
    KeySource,
    RestoredExchange,
    ScheduleKey,
    UnifiedCut,
)
from gridcosim.simulator.models.microgrid_model import MicrogridWindow
from gridcosim.simulator.windows import microgrid_window, network_window, published_bounds

EPS = 1e-7

# ---------------------------------------------------------------------------- BranchTree


def test_branch_tree_fixings_along_a_path() -> None:
    tree = BranchTree()
    assert tree.size == 1 and tree.leaves == [0] and tree.fixings(0) == {}
    a0, a1 = tree.split(0, 3)
    assert (a0, a1) != (0, 0) and len({0, a0, a1}) == 3
    b0, b1 = tree.split(a1, 5)
    c0, c1 = tree.split(b0, 1)
    assert tree.size == 7
    assert sorted(tree.leaves) == sorted([a0, b1, c0, c1])
    assert tree.fixings(a0) == {3: 0.0}
    assert tree.fixings(a1) == {3: 1.0}
    assert tree.fixings(b1) == {3: 1.0, 5: 1.0}
    assert tree.fixings(b0) == {3: 1.0, 5: 0.0}
    assert tree.fixings(c0) == {3: 1.0, 5: 0.0, 1: 0.0}
    assert tree.fixings(c1) == {3: 1.0, 5: 0.0, 1: 1.0}
    # the same binary may be split on again in another subtree
    d0, d1 = tree.split(a0, 5)
    assert tree.fixings(d1) == {3: 0.0, 5: 1.0}
    assert len({0, a0, a1, b0, b1, c0, c1, d0, d1}) == tree.size == 9


def test_branch_tree_split_errors() -> None:
    tree = BranchTree()
    c0, c1 = tree.split(0, 2)
    with pytest.raises(ValueError, match="not a leaf"):
        tree.split(0, 4)
    with pytest.raises(ValueError, match="already fixed"):
        tree.split(c1, 2)
    g0, _ = tree.split(c1, 7)
    with pytest.raises(ValueError, match="already fixed"):
        tree.split(g0, 2)  # fixed two levels up
    with pytest.raises(ValueError, match="not a leaf"):
        tree.split(c1, 8)
    assert tree.size == 5 and c0 in tree.leaves


# ---------------------------------------------------------------------------- branch and bound


def knapsack(values: list[float], weights: list[list[float]], caps: list[float]
             ) -> tuple[pyo.ConcreteModel, HighsModel, list[int]]:
    """``max Σ v x`` s.t. ``W x ≤ cap``, x binary, compiled with its binaries relaxed."""
    n = len(values)
    m = pyo.ConcreteModel()
    m.I = pyo.RangeSet(0, n - 1)
    m.x = pyo.Var(m.I, within=pyo.Binary)
    m.cap = pyo.Constraint(range(len(caps)), rule=lambda m, r: (
        sum(weights[r][i] * m.x[i] for i in m.I) <= caps[r]))
    m.obj = pyo.Objective(expr=-sum(values[i] * m.x[i] for i in m.I))
    hm = HighsModel(m, relax_integrality=True)
    return m, hm, [hm.col(m.x[i]) for i in m.I]


def brute_force(values: list[float], weights: list[list[float]], caps: list[float],
                allowed: list[float]) -> float:
    best = math.inf
    for x in itertools.product((0, 1), repeat=len(values)):
        if any(xi > a for xi, a in zip(x, allowed, strict=True)):
            continue
        if all(sum(w * xi for w, xi in zip(row, x, strict=True)) <= cap + 1e-12
               for row, cap in zip(weights, caps, strict=True)):
            best = min(best, -sum(v * xi for v, xi in zip(values, x, strict=True)))
    return best


KNAPSACKS = [
    ([10.0, 13.0, 7.0, 8.0], [[5.0, 7.0, 4.0, 3.0]], [10.0], [1.0, 1.0, 1.0, 1.0]),
    ([10.0, 13.0, 7.0, 8.0], [[5.0, 7.0, 4.0, 3.0]], [13.0], [1.0, 1.0, 1.0, 1.0]),
    ([6.0, 5.0, 5.0, 4.0], [[4.0, 3.0, 3.0, 2.5]], [6.5], [1.0, 1.0, 1.0, 1.0]),
    ([9.0, 7.0, 6.0, 5.0], [[6.0, 5.0, 4.0, 3.0], [2.0, 4.0, 5.0, 3.0]], [10.0, 8.0],
     [1.0, 1.0, 1.0, 1.0]),
    # item 1 switched off outside the search (upper bound 0)
    ([10.0, 13.0, 7.0, 8.0], [[5.0, 7.0, 4.0, 3.0]], [10.0], [1.0, 0.0, 1.0, 1.0]),
]


@pytest.mark.parametrize(("values", "weights", "caps", "allowed"), KNAPSACKS)
def test_branch_and_bound_matches_brute_force(values: list[float], weights: list[list[float]],
                                              caps: list[float], allowed: list[float]) -> None:
    _, hm, cols = knapsack(values, weights, caps)
    upper = dict(zip(cols, allowed, strict=True))
    for col, ub in upper.items():
        hm.set_col_bounds(col, 0.0, ub)
    lp = hm.solve()
    expected = brute_force(values, weights, caps, allowed)
    res = branch_and_bound(hm, cols, upper)
    assert res.status == "optimal"
    assert res.objective == pytest.approx(expected, abs=1e-9)
    assert res.bound == pytest.approx(expected, abs=1e-9)
    x = res.incumbent.x[cols]
    assert np.allclose(x, np.round(x), atol=1e-6)
    assert np.all(np.round(x) <= np.array(allowed))
    assert all(np.dot(row, np.round(x)) <= cap + 1e-9 for row, cap in zip(weights, caps,
                                                                           strict=True))
    assert lp.objective <= expected + 1e-9
    # the column bounds are restored: the LP relaxation is back
    assert hm.solve().objective == pytest.approx(lp.objective, abs=1e-9)
    # a start assignment (e.g. the last incumbent) changes nothing but the path
    start = {c: float(v) for c, v in zip(cols, np.round(x), strict=True)}
    again = branch_and_bound(hm, cols, upper, start=start)
    assert again.status == "optimal"
    assert again.objective == pytest.approx(expected, abs=1e-9)


def test_branch_and_bound_branches_when_the_relaxation_is_fractional() -> None:
    values, weights, caps, allowed = KNAPSACKS[0]
    _, hm, cols = knapsack(values, weights, caps)
    lp = hm.solve()
    assert not np.allclose(lp.x[cols], np.round(lp.x[cols]), atol=1e-6)
    res = branch_and_bound(hm, cols, dict.fromkeys(cols, 1.0))
    assert res.nodes > 1
    assert res.objective > lp.objective + 1e-6  # the integer optimum is strictly worse


def test_branch_and_bound_node_limit_keeps_a_valid_bound() -> None:
    values, weights, caps, allowed = KNAPSACKS[3]
    _, hm, cols = knapsack(values, weights, caps)
    expected = brute_force(values, weights, caps, allowed)
    res = branch_and_bound(hm, cols, dict.fromkeys(cols, 1.0), node_limit=1)
    assert res.status == "node_limit"
    assert res.nodes == 1
    assert res.bound <= expected + 1e-9


def test_branch_and_bound_reports_integer_infeasibility() -> None:
    """x0 + x1 = 1 and x0 = x1: the LP has (1/2, 1/2), no binary point exists."""
    m = pyo.ConcreteModel()
    m.x = pyo.Var([0, 1], within=pyo.Binary)
    m.sum = pyo.Constraint(expr=m.x[0] + m.x[1] == 1)
    m.same = pyo.Constraint(expr=m.x[0] - m.x[1] == 0)
    m.obj = pyo.Objective(expr=m.x[0])
    hm = HighsModel(m, relax_integrality=True)
    assert hm.solve().status == "optimal"
    cols = [hm.col(m.x[0]), hm.col(m.x[1])]
    res = branch_and_bound(hm, cols, dict.fromkeys(cols, 1.0))
    assert res.status == "infeasible"
    assert res.incumbent is None and res.objective == math.inf


# ---------------------------------------------------------------------------- unified cuts


@pytest.fixture(scope="module")
def windows(base: Scenario) -> list[MicrogridWindow]:
    return [microgrid_window(base, mg) for mg in base.microgrids]


class Proposer:
    """Builds proposals with fresh keys for one responder."""

    def __init__(self, responder: MicrogridResponder):
        self.responder, self.made = responder, 0

    def __call__(self, p: tuple[float, ...], q: tuple[float, ...], eta: float,
                 leaf: int = 0) -> ExchangeProposal:
        self.made += 1
        return ExchangeProposal(self.responder.name, ScheduleKey(KeySource.PROPOSAL, self.made),
                                leaf, tuple(map(float, p)), tuple(map(float, q)), float(eta))

    def respond(self, p: tuple[float, ...], q: tuple[float, ...], eta: float) -> object:
        """The answer alone (the bookkeeping is tested elsewhere)."""
        return self.responder.respond(self(p, q, eta), EPS).response


def feasible_points(responder: MicrogridResponder, rng: np.random.Generator, n: int
                    ) -> list[RestoredExchange]:
    """MILP-feasible exchanges: the restoration MILP's nearest point to random targets.

    Each is confirmed by the responder itself: proposed with eta = its cost, it is
    accepted.
    """
    b, slots = responder.bounds(), responder.window.slots
    propose = Proposer(responder)
    out = []
    for _ in range(n):
        target = Point(tuple(rng.uniform(b.p_min_kw, b.p_max_kw, slots)),
                       tuple(rng.uniform(b.q_min_kvar, b.q_max_kvar, slots)),
                       float(rng.uniform(0.0, b.eta_ub_usd)))
        mip = responder.milp.solve_at(target)
        assert mip.has_solution
        ex = responder.milp.exchange(mip)
        reply = propose.respond(ex.p_kw, ex.q_kvar, ex.cost_usd + 1e-9)
        assert isinstance(reply, Accept), reply
        out.append(reply.restored)
    return out


@pytest.mark.parametrize("k", range(6))
def test_unified_cut_never_cuts_off_a_runnable_exchange(
        windows: list[MicrogridWindow], k: int) -> None:
    """Seed 000, Theorem 1: F_D(x̂) + π·(x − x̂) ≤ 0 at every MILP-feasible x."""
    w = windows[k]
    responder = MicrogridResponder(w, DecompositionSettings())
    rng = np.random.default_rng(100 + k)
    points = feasible_points(responder, rng, 6)
    b, slots = responder.bounds(), w.slots
    propose = Proposer(responder)
    cuts: list[UnifiedCut] = [c for c in responder.initial_cuts() if isinstance(c, UnifiedCut)]
    for _ in range(12):
        scale = rng.choice([0.3, 1.0, 2.0])
        reply = propose.respond(
            tuple(rng.uniform(b.p_min_kw, b.p_max_kw, slots) * scale),
            tuple(rng.uniform(b.q_min_kvar, b.q_max_kvar, slots) * scale),
            float(rng.uniform(0.0, b.eta_ub_usd) * rng.choice([0.0, 0.2, 1.0])))
        if isinstance(reply, UnifiedCut):
            x_hat = Point(reply.p_hat_kw, reply.q_hat_kvar, reply.eta_hat_usd)
            assert reply.f > EPS
            assert cut_value(reply, x_hat) == pytest.approx(reply.f)  # x̂ is cut off
            cuts.append(reply)
    assert len(cuts) >= 10
    for cut in cuts:
        assert cut.leaf == 0 and cut.mg == w.spec.name
        for ex in points:
            x = Point(ex.p_kw, ex.q_kvar, ex.cost_usd)
            assert cut_value(cut, x) <= 1e-6 * (1.0 + abs(cut.f)), (cut, ex)
            # a larger eta is as feasible (π_eta ≤ 0)
            higher = Point(ex.p_kw, ex.q_kvar, ex.cost_usd + 10.0)
            assert cut_value(cut, higher) <= 1e-6 * (1.0 + abs(cut.f))


@pytest.fixture(scope="module")
def mg7(windows: list[MicrogridWindow]) -> MicrogridResponder:
    return MicrogridResponder(windows[0], DecompositionSettings())


def f_d(propose: Proposer, p: list[float], q: list[float], eta: float) -> UnifiedCut:
    reply = propose.respond(tuple(p), tuple(q), eta)
    assert isinstance(reply, UnifiedCut), reply
    return reply


@pytest.mark.parametrize(("side", "slot"), [(+1, 0), (+1, 3), (-1, 2), (-1, 5)])
def test_unified_cut_dual_is_the_derivative_in_p(mg7: MicrogridResponder, side: int,
                                                 slot: int) -> None:
    """Far beyond the PCC rating F_D grows by w_P per kW: π_P = +w_P above, −w_P below."""
    propose = Proposer(mg7)
    b, slots = mg7.bounds(), mg7.window.slots
    weights = DecompositionSettings().weights
    p = [0.0] * slots
    p[slot] = side * 3.0 * b.p_max_kw
    q = [0.0] * slots
    eta = b.eta_ub_usd
    h = 0.5
    here = f_d(propose, p, q, eta)
    up = f_d(propose, [x + h * (t == slot) for t, x in enumerate(p)], q, eta)
    down = f_d(propose, [x - h * (t == slot) for t, x in enumerate(p)], q, eta)
    forward, backward = (up.f - here.f) / h, (here.f - down.f) / h
    assert forward == pytest.approx(backward, abs=1e-7)  # linear here: non-degenerate
    assert here.pi_p[slot] == pytest.approx(forward, abs=1e-6)
    assert here.pi_p[slot] == pytest.approx(side * weights.p, abs=1e-9)


def test_unified_cut_dual_is_the_derivative_in_q(mg7: MicrogridResponder) -> None:
    propose = Proposer(mg7)
    b, slots = mg7.bounds(), mg7.window.slots
    p, q = [0.0] * slots, [0.0] * slots
    q[1] = 2.0 * b.q_max_kvar
    eta, h = b.eta_ub_usd, 0.5
    here = f_d(propose, p, q, eta)
    up = f_d(propose, p, [x + h * (t == 1) for t, x in enumerate(q)], eta)
    assert here.pi_q[1] == pytest.approx((up.f - here.f) / h, abs=1e-6)
    assert here.pi_q[1] > 0


def test_unified_cut_dual_is_the_derivative_in_eta(mg7: MicrogridResponder) -> None:
    """With only the cost row active, F_D falls by w_eta per $ of eta (π_eta = −w_eta)."""
    propose = Proposer(mg7)
    b, slots = mg7.bounds(), mg7.window.slots
    weights = DecompositionSettings().weights
    # an export that needs the DG in every slot, at a cost estimate of 0 $
    target = Point((60.0,) * slots, (0.0,) * slots, b.eta_ub_usd)
    ex = mg7.milp.exchange(mg7.milp.solve_at(target))
    assert ex.cost_usd > 1.0
    p, q = list(ex.p_kw), list(ex.q_kvar)
    h = 0.25
    here = f_d(propose, p, q, 0.0)
    up = f_d(propose, p, q, h)
    down = f_d(propose, p, q, -h)
    forward, backward = (up.f - here.f) / h, (here.f - down.f) / h
    assert forward == pytest.approx(backward, abs=1e-7)
    assert here.pi_eta == pytest.approx(forward, abs=1e-6)
    assert here.pi_eta == pytest.approx(-weights.eta, abs=1e-9)


# ---------------------------------------------------------------------------- master


def test_master_satisfies_the_unified_cuts_it_was_given(base: Scenario,
                                                        windows: list[MicrogridWindow]
                                                        ) -> None:
    responders = {w.spec.name: MicrogridResponder(w, DecompositionSettings())
                  for w in windows}
    window = network_window(base, load_network(base.network.source),
                            [published_bounds(w) for w in windows])
    master = MasterProblem(window)
    cuts: list[UnifiedCut] = []
    lower = -math.inf
    for _ in range(6):
        sol = master.solve()
        assert sol.status == "optimal" and sol.integral
        assert sol.lower_bound >= lower - 1e-9 * max(1.0, abs(lower))  # cuts only tighten
        lower = sol.lower_bound
        x = {p.mg: Point(p.p_kw, p.q_kvar, p.eta_usd) for p in sol.proposals}
        assert sorted(x) == sorted(responders)
        for cut in cuts:  # every cut added so far holds at the new solution
            assert cut_value(cut, x[cut.mg]) <= 1e-6 * (1.0 + abs(cut.f)), cut
        new = []
        for proposal in sol.proposals:
            assert proposal.leaf == 0
            reply = responders[proposal.mg].respond(proposal, EPS).response
            if isinstance(reply, UnifiedCut):
                assert cut_value(reply, x[proposal.mg]) > EPS  # it cuts off x̂
                new.append(reply)
        assert new, "the first masters should not be accepted by every microgrid"
        before = master.cut_counts["unified"]
        for cut in new:
            master.add_unified_cut(cut)
        assert master.cut_counts["unified"] == before + len(new)
        cuts += new
    assert lower > 0.0
