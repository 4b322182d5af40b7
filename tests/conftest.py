"""Fixtures shared by several test modules: the seed scenario and the IEEE 123 network."""

from __future__ import annotations

import pytest

from gridcosim.scenarios.loader import load_scenario
from gridcosim.scenarios.network import NetworkData, load_network
from gridcosim.scenarios.schema import Scenario


@pytest.fixture(scope="session")
def base() -> Scenario:
    """Seed 000's scenario (``ieee123-nmg``)."""
    return load_scenario("ieee123-nmg")


@pytest.fixture(scope="session")
def network() -> NetworkData:
    """The IEEE 123-bus network data every built-in scenario uses."""
    return load_network("ieee123")
