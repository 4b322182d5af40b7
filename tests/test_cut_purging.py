"""Cut purging (``cut_purge_age``, docs/formulation.md §4) keeps the loop exact.

Every optimum is checked against the monolithic MILP, with and without purging; the
purged master's rows are counted at every master solve.
"""

from __future__ import annotations

import pytest
from test_decomposition import MODES, VARIANTS

from gridcosim.scenarios.network import NetworkData
from gridcosim.scenarios.schema import Scenario
from gridcosim.simulator.decomposition.controller_pool import make_pool
from gridcosim.simulator.decomposition.loop import Decomposition
from gridcosim.simulator.decomposition.master_problem import MasterSolution
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.simulator.schedule import Solution
from gridcosim.simulator.solve import solve_scenario
from gridcosim.simulator.windows import microgrid_window, network_window

REL = 1e-6
AGE = 3  # small, so that cuts are parked and put back many times in short runs


class CountingDecomposition(Decomposition):
    """The loop, recording the master's cut rows after every master solve."""

    def solve_master(self) -> MasterSolution:
        sol = super().solve_master()
        self.kept_rows = [*getattr(self, "kept_rows", []), self.master.pool.kept]
        return sol


def solve(scenario: Scenario, network: NetworkData, settings: DecompositionSettings
          ) -> tuple[Solution, CountingDecomposition]:
    pool = make_pool([microgrid_window(scenario, mg) for mg in scenario.microgrids], settings)
    try:
        dec = CountingDecomposition(network_window(scenario, network, pool.bounds()), pool,
                                    settings)
        return dec.run(), dec
    finally:
        pool.close()


def rel_diff(a: float, b: float) -> float:
    return abs(a - b) / max(1.0, abs(b))


def test_purging_keeps_the_optimum_and_bounds_the_master(base: Scenario,
                                                         network: NetworkData) -> None:
    """Benders cuts alone on the stressed case (the network binds; 40 iterations): the
    same optimum with and without purging, and the purged master's cut rows stop
    growing while the full master's grow with every iteration (branching variants: the
    slow test below)."""
    scenario = VARIANTS["stressed"].build(base)
    ref = solve_scenario(scenario, "monolithic")
    full, full_dec = solve(scenario, network, DecompositionSettings(price_signals=False))
    purged, dec = solve(scenario, network,
                        DecompositionSettings(price_signals=False, cut_purge_age=AGE))
    for sol in (full, purged):
        assert sol.status == "optimal", sol.info
        assert rel_diff(sol.objective_usd, ref.objective_usd) <= REL
        assert sol.info["lower_bound_usd"] <= ref.objective_usd * (1 + 1e-9)
    pool = dec.master.pool
    assert pool.dropped > 0 and full_dec.master.pool.dropped == 0
    added = purged.info["cuts"]["unified"] + purged.info["cuts"]["lagrangian"]
    assert pool.kept + pool.parked == added
    rows = dec.kept_rows
    half = len(rows) // 2
    assert max(rows[half:]) <= max(rows[:half])  # bounded: no growth in the second half
    assert rows[-1] <= added / 2
    full_rows = full_dec.kept_rows
    assert full_rows[-1] > max(full_rows[:half])  # without purging the master only grows


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("name", list(VARIANTS))
def test_purged_loop_equals_monolithic_on_every_variant(
        name: str, mode: str, base: Scenario, network: NetworkData) -> None:
    scenario = VARIANTS[name].build(base)
    ref = solve_scenario(scenario, "monolithic")
    for age in (0, AGE):
        settings = DecompositionSettings(price_signals=MODES[mode].price_signals,
                                         cut_purge_age=age)
        sol, _ = solve(scenario, network, settings)
        assert sol.status == "optimal", (age, sol.info)
        assert rel_diff(sol.objective_usd, ref.objective_usd) <= REL, (age, sol.info)
