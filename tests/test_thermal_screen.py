"""The exact screen of the thermal rows (simulator/models/thermal_screen.py).

References independent of the screen: the subtree of each branch from networkx on the
branch table, and scipy's ``linprog`` for the largest left side of every polygon side,
per slot over the model's own variables (curtailment, exchanges, SVCs, voltages) and over
the box of the run's load ranges; the optimum of the model with every side kept.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import networkx as nx
import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest
from scipy.optimize import linprog

from gridcosim.scenarios.loader import load_scenario
from gridcosim.scenarios.network import NetworkData, network_for
from gridcosim.scenarios.schema import Scenario
from gridcosim.simulator.decomposition.network_models import NetworkModels
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.simulator.models import lindistflow_model, monolithic_model
from gridcosim.simulator.models.lindistflow_model import NetworkWindow, same_shape
from gridcosim.simulator.models.monolithic_model import solve_monolithic
from gridcosim.simulator.models.thermal_screen import LoadRange, binding_sides
from gridcosim.simulator.windows import microgrid_window, network_window, published_bounds

REPO = Path(__file__).resolve().parents[1]
RATING_KVA = 1200.0  # the substation lines carry more, the laterals' ends less
RHS = math.cos(math.pi / 8)


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_scenario("case33bw-3mg")


@pytest.fixture(scope="module")
def rated(scenario: Scenario) -> NetworkData:
    """case33bw with every third branch rated ``RATING_KVA`` (the others unrated)."""
    net = network_for(scenario)
    branches = net.branches.copy()
    branches["s_max_kva"] = np.nan
    branches.loc[branches.index[::3], "s_max_kva"] = RATING_KVA
    return dataclasses.replace(net, branches=branches)


def window(scenario: Scenario, network: NetworkData, start: int = 0,
           slots: int | None = None) -> NetworkWindow:
    bounds = [published_bounds(microgrid_window(scenario, mg)) for mg in scenario.microgrids]
    return network_window(scenario, network, bounds, start, slots)


def every_side(w: NetworkWindow) -> list[tuple[int, int]]:
    """The unscreened rows: all eight sides of every rated branch."""
    net = w.network
    rating = net.branches["s_max_kva"]
    return [(n, k) for n in net.bus_ids if n != net.root_bus
            and np.isfinite(rating[net.branch_of[n]]) and rating[net.branch_of[n]] > 0
            for k in range(8)]


def subtrees(net: NetworkData) -> dict[int, set[int]]:
    """Buses at and below every non-root bus (networkx on the branch table)."""
    tree = nx.DiGraph([(int(r.from_bus), int(r.to_bus)) for r in net.branches.itertuples()])
    return {n: nx.descendants(tree, n) | {n} for n in tree.nodes if n != net.root_bus}


def largest_side(w: NetworkWindow, below: set[int], angle: float,
                 p_kw: dict[int, tuple[float, float]], q_kvar: dict[int, tuple[float, float]],
                 coupled_pf: dict[int, float] | None) -> float:
    """LP max of ``cos a P + sin a Q`` of the flow into a subtree.

    Variables per bus of the subtree: curtailment ``c`` (``p_kw`` gives the load and its
    range), exchanges, SVC outputs, ``v``. With ``coupled_pf`` the reactive load falls
    with the curtailment at the bus's power factor (the model's own coupling, one slot);
    without, P and Q loads move independently in their ranges (the run's box).
    """
    cols: list[tuple[float, float, float, float]] = []  # (coef P, coef Q, lo, hi)
    const_p = const_q = 0.0
    net = w.network
    for m in below:
        lo, hi = p_kw[m]
        if coupled_pf is not None:
            const_p, const_q = const_p + hi, const_q + q_kvar[m][1]
            if m in coupled_pf:  # curtailment c in [0, P]
                cols.append((-1.0, -coupled_pf[m], 0.0, hi))
        else:
            cols += [(1.0, 0.0, lo, hi), (0.0, 1.0, *q_kvar[m])]
        cap = float(net.shunt_q_kvar.get(m, 0.0))
        cols.append((0.0, -cap, w.v_min_pu**2, w.v_max_pu**2))
    for e in w.exchanges:
        if e.bus in below:
            cols += [(-1.0, 0.0, e.p_min_kw, e.p_max_kw), (0.0, -1.0, e.q_min_kvar, e.q_max_kvar)]
    for s in w.svcs:
        if s.bus in below:
            cols.append((0.0, -1.0, s.q_min_kvar, s.q_max_kvar))
    c, s = math.cos(angle), math.sin(angle)
    obj = np.array([-(c * a + s * b) for a, b, _, _ in cols])
    res = linprog(obj, bounds=[(lo, hi) for *_, lo, hi in cols], method="highs")
    assert res.status == 0
    return -res.fun + c * const_p + s * const_q


def per_slot_reach(w: NetworkWindow, all_loads: tuple, sides: set[tuple[int, int]]
                   ) -> set[tuple[int, int]]:
    """Of ``sides``, those whose left side exceeds the right side at a feasible point of a slot."""
    net = w.network
    p_all, q_all = all_loads
    pf = {n: float(net.load_q_kvar[n] / net.load_p_kw[n])
          for n in net.bus_ids if net.load_p_kw[n] > 0}
    below, out = subtrees(net), set()
    for n, k in sides:
        for t in p_all.columns:
            p = {m: (float(p_all.at[m, t]),) * 2 for m in below[n]}
            q = {m: (float(q_all.at[m, t]),) * 2 for m in below[n]}
            if largest_side(w, below[n], k * math.pi / 4, p, q, pf) > RATING_KVA * RHS:
                out.add((n, k))
                break
    return out


def run_box(w: NetworkWindow, all_loads: tuple) -> tuple[dict, dict]:
    """Each bus's range of net load over the run's slots, no to full curtailment."""
    net = w.network
    p_all, q_all = all_loads
    p_box, q_box = {}, {}
    for m in net.bus_ids:
        p_ends, q_ends = [], []
        for t in p_all.columns:
            p, q = float(p_all.at[m, t]), float(q_all.at[m, t])
            p_ends.append(p)
            q_ends.append(q)
            if net.load_p_kw[m] > 0:  # curtailable: down to nothing, at its power factor
                p_ends.append(0.0)
                q_ends.append(q - float(net.load_q_kvar[m] / net.load_p_kw[m]) * p)
        p_box[m], q_box[m] = (min(p_ends), max(p_ends)), (min(q_ends), max(q_ends))
    return p_box, q_box


def box_reach(w: NetworkWindow, all_loads: tuple) -> set[tuple[int, int]]:
    """Sides whose left side exceeds the right side somewhere in the box of the ranges."""
    p, q = run_box(w, all_loads)
    rated = {n for n, _ in every_side(w)}
    return {(n, k) for n, below in subtrees(w.network).items() if n in rated for k in range(8)
            if largest_side(w, below, k * math.pi / 4, p, q, None) > RATING_KVA * RHS}


def test_screen_keeps_exactly_the_sides_the_box_reaches(scenario: Scenario,
                                                        rated: NetworkData) -> None:
    w = window(scenario, rated, 0, 3)  # the first half of the run ...
    whole = window(scenario, rated)  # ... screened with the run's six slots
    kept = set(binding_sides(w))
    loads = (whole.load_kw, whole.load_kvar)
    assert kept == box_reach(w, loads)
    dropped = set(every_side(w)) - kept
    assert not per_slot_reach(w, loads, dropped)  # no side that can bind is dropped
    assert per_slot_reach(w, loads, kept) and len(kept) < len(dropped)  # a real screen


def test_range_covers_each_slot_of_the_run(scenario: Scenario, rated: NetworkData) -> None:
    run = window(scenario, rated).load_range
    for start in range(scenario.total_slots):
        w = window(scenario, rated, start, 1)
        assert run.covers(LoadRange.of(rated, w.load_kw, w.load_kvar))
    w = window(scenario, rated, 0, 3)
    louder = dataclasses.replace(w, load_kw=w.load_kw * 1.5, load_kvar=w.load_kvar * 1.5)
    assert not run.covers(LoadRange.of(rated, louder.load_kw, louder.load_kvar))


def rated_33bus(tmp_path: Path) -> Scenario:
    """case33bw-3mg with a 3.29 MVA rating on the substation line that binds."""
    net = pn.case33bw()
    net.line.at[0, "max_i_ka"] = 0.15
    pp.to_json(net, str(tmp_path / "rated.json"))
    text = (REPO / "scenarios" / "builtin" / "case33bw-3mg.toml").read_text(encoding="utf-8")
    text = text.replace('source = "pandapower:case33bw"', 'source = "rated.json"')
    (tmp_path / "rated.toml").write_text(text.replace("v_min_pu = 0.95", "v_min_pu = 0.9"),
                                         encoding="utf-8")
    return load_scenario(tmp_path / "rated.toml")


def monolithic_usd(scenario: Scenario, network: NetworkData | None = None) -> float:
    mgs = [microgrid_window(scenario, mg) for mg in scenario.microgrids]
    w = network_window(scenario, network or network_for(scenario),
                       [published_bounds(m) for m in mgs])
    sol = solve_monolithic(w, mgs)
    assert sol.status == "optimal"
    return sol.objective_usd


def test_screened_optimum_is_the_unscreened_one_where_a_rating_binds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = rated_33bus(tmp_path)
    full_usd = monolithic_usd(scenario)  # the reference keeps every side
    built: list[int] = []

    def screened(b, w, **_) -> None:  # noqa: ANN001
        lindistflow_model.add_network(b, w)
        built.append(len(b.TH))

    monkeypatch.setattr(monolithic_model, "add_network", screened)
    assert monolithic_usd(scenario) == pytest.approx(full_usd, rel=1e-9)
    assert 0 < built[0] < len(every_side(window(scenario, network_for(scenario))))
    monkeypatch.undo()
    free = network_for(scenario)
    free = dataclasses.replace(free, branches=free.branches.assign(s_max_kva=np.nan))
    assert monolithic_usd(scenario, free) < full_usd - 1.0  # the rating binds


def network_lp_usd(models: NetworkModels, w: NetworkWindow) -> float:
    """The network LP at zero exchange (the evaluator's objective)."""
    from gridcosim.simulator.messages import RestoredExchange

    zero = (0.0,) * w.slots
    out = models.evaluator.evaluate({e.mg: RestoredExchange(zero, zero, 0.0)
                                     for e in w.exchanges})
    assert out.status == "optimal"
    return float(out.objective)


def test_reloaded_screen_holds_in_a_later_window(scenario: Scenario, rated: NetworkData,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    tight = dataclasses.replace(rated, branches=rated.branches.assign(s_max_kva=900.0))
    first, later = window(scenario, tight, 0, 3), window(scenario, tight, 3, 3)
    settings = DecompositionSettings()
    models = NetworkModels.for_window(first, settings)
    assert same_shape(first, later)
    reloaded = NetworkModels.for_window(later, settings, previous=models)
    assert reloaded is models
    screened_usd = network_lp_usd(reloaded, later)
    monkeypatch.setattr(lindistflow_model, "binding_sides", every_side)
    assert network_lp_usd(NetworkModels.for_window(later, settings), later) == pytest.approx(
        screened_usd, rel=1e-9)
    louder = dataclasses.replace(later, load_kw=later.load_kw * 1.5)
    assert not same_shape(first, louder)  # loads beyond the screen's range: a new model
