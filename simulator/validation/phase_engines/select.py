"""Which three-phase engine runs a network: the scenario's choice, or the one that can."""

from __future__ import annotations

from gridcosim.scenarios.phase_network import PhaseNetwork
from gridcosim.scenarios.schema import AcEngine
from gridcosim.simulator.validation.phase_engines.base import PhaseEngine


def pandapower_can_model(network: PhaseNetwork) -> bool:
    """Whether ``runpp_3ph`` can represent the network (§6b).

    Its lines are always three-phase and its shunts are not modelled in the three-phase
    power flow, so a feeder with single- or two-phase laterals or capacitors needs OpenDSS.
    """
    return bool((network.lines["phases"] == "abc").all()) and network.shunts.empty


def resolve_engine(network: PhaseNetwork, choice: AcEngine) -> AcEngine:
    """``choice``, with ``auto`` resolved: pandapower where it can model, else OpenDSS."""
    if choice is AcEngine.AUTO:
        return AcEngine.PANDAPOWER if pandapower_can_model(network) else AcEngine.OPENDSS
    return choice


def phase_engine(network: PhaseNetwork, choice: AcEngine = AcEngine.AUTO) -> PhaseEngine:
    """A built engine for ``network`` (a pandapower engine rejects what it cannot model)."""
    if resolve_engine(network, choice) is AcEngine.PANDAPOWER:
        from gridcosim.simulator.validation.phase_engines.pandapower_engine import (
            PandapowerPhaseEngine,
        )

        return PandapowerPhaseEngine(network)
    from gridcosim.simulator.validation.phase_engines.opendss_engine import OpenDSSPhaseEngine

    return OpenDSSPhaseEngine(network)
