"""Scenario definitions and network data for gridcosim.

A scenario is a TOML file (or a built-in name) validated into a frozen
:class:`Scenario`; every problem is reported at once in a :class:`ScenarioError` whose
messages name the field path and the bad value::

    from gridcosim.scenarios import load_scenario
    scenario = load_scenario("ieee123-nmg")

Network data sets live in ``scenarios/data`` and are read by :mod:`scenarios.network`
(imported on demand; it needs pandas). Importing this package pulls in neither pandas,
pandapower nor pyomo.
"""

from gridcosim.scenarios.errors import ScenarioError
from gridcosim.scenarios.loader import builtin_names, load_scenario, scenario_from_dict
from gridcosim.scenarios.schema import Scenario

__all__ = ["Scenario", "ScenarioError", "builtin_names", "load_scenario", "scenario_from_dict"]
