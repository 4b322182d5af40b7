"""gridcosim: agent-based co-simulation of DSO-coordinated microgrids, DERs and customers.

This file is the root of the one import package the project installs, ``gridcosim``;
``pyproject.toml`` maps it to the repository root, so the folders ``scenarios/``,
``simulator/``, ``agents/`` and ``outputs/`` are its subpackages ``gridcosim.scenarios``,
``gridcosim.simulator``, ``gridcosim.agents`` and ``gridcosim.outputs``.

The scripting API (``docs/scripting.md``) is importable from here; the names load on
first use, so ``import gridcosim`` alone pulls in no solver::

    import gridcosim
    scenario = gridcosim.load_scenario("ieee123-nmg")
    solution = gridcosim.solve_scenario(scenario, "decomposition")
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_API = {
    "load_scenario": "gridcosim.scenarios.loader",
    "scenario_from_dict": "gridcosim.scenarios.loader",
    "builtin_names": "gridcosim.scenarios.loader",
    "Scenario": "gridcosim.scenarios.schema",
    "GridcosimError": "gridcosim.scenarios.errors",
    "ScenarioError": "gridcosim.scenarios.errors",
    "CoSimulation": "gridcosim.simulator.cosim",
    "RunSettings": "gridcosim.simulator.cosim",
    "DecompositionSettings": "gridcosim.simulator.decomposition.settings",
    "solve_scenario": "gridcosim.simulator.solve",
    "run_scenario": "gridcosim.simulator.runner",
    "run_sweep": "gridcosim.simulator.sweep",
    "read": "gridcosim.outputs.reader",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first use (PEP 562)."""
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'gridcosim' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
