"""The network LP's first basis: its power-flow solution's (``power_flow_basis``).

Reference: the same LP solved from scratch (HiGHS presolve and dual simplex, as a window
without a basis started before). From the power-flow basis the LP must reach the same
optimum; where no limit binds at the evaluated exchanges the basis is already optimal
(0 simplex iterations), where limits bind the dual simplex moves on from it. The basis is
square (one basic column or row per row) on the balanced and the three-phase models, and
refused (``None``) once rows were appended. About 10 s on 2 cores.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest

from gridcosim.scenarios.loader import load_scenario
from gridcosim.scenarios.network import network_for
from gridcosim.simulator.collector import collector_paused
from gridcosim.simulator.decomposition.network_evaluator import NetworkEvaluator
from gridcosim.simulator.decomposition.power_flow_basis import power_flow_basis
from gridcosim.simulator.messages import RestoredExchange
from gridcosim.simulator.models.master_model import build_master
from gridcosim.simulator.windows import microgrid_window, network_window, published_bounds


def evaluator_of(name: str) -> NetworkEvaluator:
    scenario = load_scenario(name)
    bounds = [published_bounds(microgrid_window(scenario, mg)) for mg in scenario.microgrids]
    return NetworkEvaluator(build_master(network_window(scenario, network_for(scenario), bounds)))


def at_exchange(ev: NetworkEvaluator, p_kw: float) -> dict[str, RestoredExchange]:
    slots = len(next(iter(ev._cols.values()))[0])
    return {mg: RestoredExchange((p_kw,) * slots, (0.0,) * slots, 0.0) for mg in ev._cols}


def solve_both(ev: NetworkEvaluator, exchanges: dict[str, RestoredExchange]
               ) -> tuple[float, float, int]:
    """Objective cold, objective from the power-flow basis, and the latter's iterations."""
    ev.hm.reset()
    cold = ev.evaluate(exchanges)
    basis = power_flow_basis(ev.hm, ev.model.net)
    assert basis is not None
    ev.hm.reset(basis)
    warm = ev.evaluate(exchanges)
    assert cold.status == warm.status == "optimal"
    return cold.objective, warm.objective, ev.hm.highs.getInfo().simplex_iteration_count


def limit_margin_pu(ev: NetworkEvaluator, exchanges: dict[str, RestoredExchange],
                    name: str) -> float:
    """The lowest voltage above the scenario's lower limit (0: the limit binds)."""
    x = ev.evaluate(exchanges).x
    lowest = np.sqrt(np.min(x[np.concatenate(list(ev._schedule_cols["v"].values()))]))
    return float(lowest - load_scenario(name).network.v_min_pu)


def test_basis_is_optimal_where_no_limit_binds() -> None:
    ev = evaluator_of("ieee123-nmg")
    exchanges = at_exchange(ev, 0.0)
    cold, warm, iterations = solve_both(ev, exchanges)
    assert warm == pytest.approx(cold, rel=1e-10)
    assert iterations == 0
    assert limit_margin_pu(ev, exchanges, "ieee123-nmg") > 1e-3  # the premise: none binds


def test_binding_limits_reach_the_cold_optimum() -> None:
    ev = evaluator_of("case33bw-3mg")  # the lower voltage limit binds at the feeder's end
    exchanges = at_exchange(ev, 0.0)
    cold, warm, iterations = solve_both(ev, exchanges)
    assert warm == pytest.approx(cold, rel=1e-10)
    assert iterations > 0  # the basis was not optimal: curtailment or SVCs had to move
    assert limit_margin_pu(ev, exchanges, "case33bw-3mg") == pytest.approx(0.0, abs=1e-9)


def test_three_phase_model_has_a_square_basis_and_the_cold_optimum() -> None:
    ev = evaluator_of("ieee123-nmg-3ph")
    basis = power_flow_basis(ev.hm, ev.model.net)
    assert basis is not None
    rows = ev.hm.num_rows
    assert int((basis.col_status == 1).sum() + (basis.row_status == 1).sum()) == rows
    cold, warm, _ = solve_both(ev, at_exchange(ev, 0.0))
    assert warm == pytest.approx(cold, rel=1e-10)


def test_no_basis_once_rows_were_appended() -> None:
    ev = evaluator_of("case33bw-3mg")
    ev.add_cut(0, [("p_ex", next(iter(ev._cols)))], [1.0], 1e6)
    assert power_flow_basis(ev.hm, ev.model.net) is None


def test_collector_paused_restores_the_collector_state() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
