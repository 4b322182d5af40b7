"""The scenario's ``[network]`` base_kva / base_kv take effect (and base_kva not on physics)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gridcosim.scenarios.loader import load_scenario, scenario_from_dict
from gridcosim.scenarios.network import BASE_KV, BASE_KVA, load_network, network_for
from gridcosim.scenarios.schema import Scenario
from gridcosim.simulator.schedule import Solution
from gridcosim.simulator.solve import solve_scenario
from gridcosim.simulator.windows import network_window

REL = 1e-6


def on_base(scenario: Scenario, **base: float) -> Scenario:
    """The scenario with other ``[network]`` base values, validated again."""
    data = scenario.model_dump()
    data["network"].update(base)
    return scenario_from_dict(data)


@pytest.fixture(scope="module")
def seed() -> Scenario:
    return load_scenario("ieee123-nmg")


@pytest.fixture(scope="module")
def solved(seed: Scenario) -> dict[float, Solution]:
    """Monolithic optimum with its AC check on a 1000 kVA and a 500 kVA base."""
    return {kva: solve_scenario(on_base(seed, base_kva=kva), "monolithic", ac=True)
            for kva in (1000.0, 500.0)}


def lines(scenario: Scenario) -> Any:
    branches = network_for(scenario).branches
    return branches[branches["kind"] == "line"]


def test_default_base_is_the_data_sets(seed: Scenario) -> None:
    network = network_for(seed)
    assert (network.base_kva, network.base_kv) == (BASE_KVA, BASE_KV) == (1000.0, 4.16)
    reference = load_network("ieee123")
    np.testing.assert_array_equal(network.branches["r_pu"], reference.branches["r_pu"])


def test_base_kv_scales_impedances_by_the_squared_ratio(seed: Scenario) -> None:
    base, high = lines(seed), lines(on_base(seed, base_kv=12.47))
    factor = (4.16 / 12.47) ** 2
    np.testing.assert_allclose(high["r_pu"], base["r_pu"] * factor, rtol=1e-12)
    np.testing.assert_allclose(high["x_pu"], base["x_pu"] * factor, rtol=1e-12)
    np.testing.assert_array_equal(high["r_ohm"], base["r_ohm"])


def test_base_kva_scales_impedances_linearly(seed: Scenario) -> None:
    base, half = lines(seed), lines(on_base(seed, base_kva=500.0))
    np.testing.assert_allclose(half["r_pu"], base["r_pu"] * 0.5, rtol=1e-12)
    assert network_for(on_base(seed, base_kva=500.0)).z_base_ohm == pytest.approx(2 * 17.3056)


def test_network_window_puts_any_network_on_the_scenarios_base(seed: Scenario) -> None:
    scenario = on_base(seed, base_kva=500.0, base_kv=12.47)
    plain = load_network(seed.network.source)  # e.g. cosim's load_network(source)
    first, second = (network_window(scenario, plain, []) for _ in range(2))
    assert (first.network.base_kva, first.network.base_kv) == (500.0, 12.47)
    assert first.network is second.network  # models built for one window stay reusable
    assert network_window(seed, plain, []).network is plain


def test_base_kva_does_not_change_the_optimum(solved: dict[float, Solution]) -> None:
    a, b = solved[1000.0], solved[500.0]
    assert a.status == b.status == "optimal"
    assert b.objective_usd == pytest.approx(a.objective_usd, rel=REL)


def test_base_kva_does_not_change_the_ac_voltages(solved: dict[float, Solution]) -> None:
    vm_a = solved[1000.0].info["ac"]["final"]["vm_pu"]
    vm_b = solved[500.0].info["ac"]["final"]["vm_pu"]
    assert vm_a.keys() == vm_b.keys()
    for bus, values in vm_a.items():
        np.testing.assert_allclose(vm_b[bus], values, rtol=0, atol=1e-6, err_msg=bus)


def test_base_kv_changes_the_voltage_drops(seed: Scenario,
                                           solved: dict[float, Solution]) -> None:
    high = solve_scenario(on_base(seed, base_kv=12.47), "monolithic", ac=True)
    low_kv = np.array(list(solved[1000.0].info["ac"]["final"]["vm_pu"].values()), dtype=float)
    high_kv = np.array(list(high.info["ac"]["final"]["vm_pu"].values()), dtype=float)
    assert np.abs(1.0 - high_kv).max() < 0.5 * np.abs(1.0 - low_kv).max()
