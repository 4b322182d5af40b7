"""Which three-phase engine runs a network: the scenario's choice, or the one that can."""

from __future__ import annotations

from gridcosim.scenarios.errors import ScenarioError
from gridcosim.scenarios.phase_network import PhaseNetwork
from gridcosim.scenarios.schema import AcEngine
from gridcosim.simulator.validation.phase_engines.base import PhaseEngine


def pandapower_can_model(network: PhaseNetwork) -> bool:
    """Whether ``runpp_3ph`` can represent the network (§6b).

    Its lines are always three-phase and carry sequence impedances (so their phase
    matrices must be circulant), and only three-phase shunts are honoured; a feeder with
    single- or two-phase laterals, untransposed lines or single-phase capacitors needs
    OpenDSS (:func:`~.pandapower_engine.network_problems` lists what it cannot model).
    """
    from gridcosim.simulator.validation.phase_engines.pandapower_engine import network_problems

    return not network_problems(network)


def resolve_engine(network: PhaseNetwork, choice: AcEngine) -> AcEngine:
    """``choice``, with ``auto`` resolved by where the feeder came from.

    A pandapower net runs on pandapower's ``runpp_3ph`` (the design card's engine) when it
    can model it; a feeder read from OpenDSS files, or one ``runpp_3ph`` cannot model,
    on OpenDSS (also about 100 times faster on the European LV feeder).
    """
    choice = AcEngine(choice)
    if choice is AcEngine.AUTO:
        pandapower = network.source_format == "pandapower" and pandapower_can_model(network)
        return AcEngine.PANDAPOWER if pandapower else AcEngine.OPENDSS
    return choice


def phase_engine(network: PhaseNetwork, choice: AcEngine = AcEngine.AUTO) -> PhaseEngine:
    """A built engine for ``network`` (a pandapower engine rejects what it cannot model)."""
    if resolve_engine(network, choice) is AcEngine.PANDAPOWER:
        from gridcosim.simulator.validation.phase_engines.pandapower_engine import (
            PandapowerPhaseEngine,
            network_problems,
        )

        problems = network_problems(network)
        if problems:
            raise ScenarioError([
                f"network.ac_engine: pandapower's runpp_3ph cannot model {network.name!r} "
                f"({len(problems)} elements, e.g. {problems[0]}); use \"auto\" or \"opendss\" "
                f"(got 'pandapower')"])
        return PandapowerPhaseEngine(network)
    from gridcosim.simulator.validation.phase_engines.opendss_engine import OpenDSSPhaseEngine

    return OpenDSSPhaseEngine(network)
