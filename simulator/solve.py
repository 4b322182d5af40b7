"""Solve one window of a scenario by the monolithic reference or the decomposition."""

from __future__ import annotations

from typing import Literal

from gridcosim.scenarios.network import load_network
from gridcosim.scenarios.schema import Scenario
from gridcosim.simulator.decomposition.loop import Decomposition, Validator
from gridcosim.simulator.decomposition.pool import make_pool
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.simulator.models.monolithic import solve_monolithic
from gridcosim.simulator.schedule import Solution
from gridcosim.simulator.windows import microgrid_window, network_window, published_bounds

Method = Literal["monolithic", "decomposition"]


def solve_scenario(scenario: Scenario, method: Method = "decomposition",
                   settings: DecompositionSettings | None = None,
                   validator: Validator | None = None, *, ac: bool = False) -> Solution:
    """Solve the scenario's first window (its whole horizon) by ``method``.

    Args:
        scenario: A validated scenario.
        method: ``monolithic`` (reference MILP) or ``decomposition``.
        settings: Decomposition settings (ignored by the monolithic method).
        validator: Optional network validator for the decomposition (AC cuts).
        ac: Validate with AC power flows (:mod:`simulator.validation`): the decomposition
            adds AC feasibility cuts until the schedule is AC-feasible; the monolithic
            method only reports the AC check of its schedule in ``info["ac"]``.

    """
    settings = settings or DecompositionSettings()
    network = load_network(scenario.network.source)
    mg_windows = [microgrid_window(scenario, mg) for mg in scenario.microgrids]
    if method == "monolithic":
        bounds = [published_bounds(w) for w in mg_windows]
        window = network_window(scenario, network, bounds)
        solution = solve_monolithic(window, mg_windows)
        if ac:
            from gridcosim.simulator.validation.ac_loop import ac_check_info

            solution.info["ac"] = ac_check_info(window, solution)
        return solution
    pool = make_pool(mg_windows, settings)
    try:
        window = network_window(scenario, network, pool.bounds())
        if ac:
            from gridcosim.simulator.validation.ac_loop import ac_decomposition

            return ac_decomposition(window, pool, settings).run()
        return Decomposition(window, pool, settings, validator).run()
    finally:
        pool.close()
