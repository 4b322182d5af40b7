"""Solve one window of a scenario by the monolithic reference or the decomposition."""

from __future__ import annotations

import dataclasses
from typing import Literal

from gridcosim.scenarios.network import network_for
from gridcosim.scenarios.schema import Scenario
from gridcosim.scenarios.series import scenario_series
from gridcosim.simulator.decomposition.controller_pool import ResponderPool, make_pool
from gridcosim.simulator.decomposition.loop import Decomposition, Validator
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.simulator.models.monolithic_model import solve_monolithic
from gridcosim.simulator.schedule import Solution
from gridcosim.simulator.status import ExitCode
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
    network = network_for(scenario)
    series = scenario_series(scenario, network)  # once: read and scaled for every window
    mg_windows = [microgrid_window(scenario, mg, series=series) for mg in scenario.microgrids]
    if method == "monolithic":
        bounds = [published_bounds(w) for w in mg_windows]
        window = network_window(scenario, network, bounds, series=series)
        solution = solve_monolithic(window, mg_windows)
        if ac:
            from gridcosim.simulator.validation.ac_loop import ac_check_info

            solution.info["ac"] = ac_check_info(window, solution, scenario.network.ac_engine)
        return solution
    pool = make_pool(mg_windows, settings)
    try:
        window = network_window(scenario, network, pool.bounds(), series=series)
        if ac:
            from gridcosim.simulator.validation.ac_loop import ac_decomposition

            solution = ac_decomposition(window, pool, settings,
                                        scenario.network.ac_engine).run()
        else:
            solution = Decomposition(window, pool, settings, validator).run()
        return with_unit_schedules(solution, pool)
    finally:
        pool.close()


def with_unit_schedules(solution: Solution, pool: ResponderPool) -> Solution:
    """The decomposition's solution with every microgrid's unit schedule filled in.

    This is the user's output, not the DSO's: each controller turns its own award into
    its unit schedule (:meth:`ResponderPool.schedules`). Call it before the pool closes.
    """
    schedules = pool.schedules(list(solution.awards.values()))
    return dataclasses.replace(solution, microgrids=tuple(schedules))


def solve_exit_code(solution: Solution) -> ExitCode:
    """The command line's exit code for a solve (:class:`ExitCode`).

    ``optimal`` is 0, unless an AC check (``--ac``) has power flows that did not converge
    (4); ``not_converged`` (a cap reached, best runnable schedule reported) is 4; anything
    without a schedule (``infeasible``, a time limit without a solution, ...) is 3.
    """
    ac = solution.info.get("ac") or {}
    failed = (ac.get("final") or {}).get("power_flows_failed", 0)
    if solution.status == "optimal":
        return ExitCode.DEGRADED if failed else ExitCode.OK
    if solution.status == "not_converged" and solution.network is not None:
        return ExitCode.DEGRADED
    return ExitCode.FAILED
