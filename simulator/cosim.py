"""The co-simulation model: Mesa agents stepping through slots on a rolling horizon.

Each :meth:`CoSimulation.step` is one slot. At a re-planning point (every ``commit``
slots) the DSO coordinates a window of ``horizon`` slots with the microgrid controllers
(the decomposition); the first ``commit`` slots of it are then executed one per step:
customers and renewables draw their realised values (seeded noise), each microgrid
controller runs its plan and absorbs renewable shortfalls with storage, the DSO's
substation absorbs the rest, and every agent updates its state, which is the next
window's initial condition. ``commit = 1`` is a receding horizon, ``commit = horizon``
day-ahead scheduling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import mesa
import numpy as np

from gridcosim.agents.customer import CustomerAgent
from gridcosim.agents.dso import DSOAgent
from gridcosim.agents.microgrid_controller import MicrogridControllerAgent
from gridcosim.scenarios.digest import data_digest
from gridcosim.scenarios.errors import InputError
from gridcosim.scenarios.network import NetworkData, network_for
from gridcosim.scenarios.phase_network import PhaseNetwork
from gridcosim.scenarios.schema import Scenario
from gridcosim.scenarios.series import ScenarioSeries, scenario_series
from gridcosim.simulator.checkpoint import CheckpointedModel
from gridcosim.simulator.decomposition.controller_pool import make_pool
from gridcosim.simulator.decomposition.controller_warm_start import ControllerWarmStart
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.simulator.status import RunStatus
from gridcosim.simulator.windows import bus_multipliers


class RunSettingsError(InputError):
    """Run settings that cannot drive a run (the CLI reports them without a traceback)."""


@dataclass(frozen=True)
class RunSettings:
    """How a co-simulation run is driven.

    Attributes:
        slots: Slots to simulate (``None``: everything the scenario's series cover).
        horizon: Window length H (``None``: the scenario's ``horizon.slots``).
        commit: Slots K committed per window (1: receding horizon; H: day-ahead).
        seed: Seed of the model's one random generator.
        noise: Relative standard deviation of realised loads and renewables (0: none).
        ac_cuts: Add AC feasibility cuts until each window's plan is AC-feasible (the AC
            voltages of the plan are recorded either way).
        decomposition: Settings of the DSO–microgrid iteration.

    """

    slots: int | None = None
    horizon: int | None = None
    commit: int = 1
    seed: int = 0
    noise: float = 0.0
    ac_cuts: bool = False
    decomposition: DecompositionSettings = field(default_factory=DecompositionSettings)

    def __post_init__(self) -> None:
        problems = []
        for name in ("slots", "horizon"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or value < 1):
                problems.append(f"{name} must be at least 1 (got {value})")
        if self.commit < 1:
            problems.append(f"commit must be at least 1 (got {self.commit})")
        if self.seed < 0:
            problems.append(f"seed must be a non-negative integer (got {self.seed})")
        if not (math.isfinite(self.noise) and 0.0 <= self.noise <= 1.0):
            problems.append(f"noise must be a relative standard deviation in [0, 1] "
                            f"(got {self.noise})")
        if problems:
            raise RunSettingsError("; ".join(problems))


@dataclass(frozen=True)
class RunFailure:
    """Why a run stopped before its end.

    Attributes:
        slot: The slot whose window could not be coordinated (or that was executing).
        reason: What happened, for the user.

    """

    slot: int
    reason: str
    output_error: bool = False


class CoSimulation(CheckpointedModel):
    """DSO, microgrid controllers with their DERs, and customers on one clock.

    One Mesa step is one slot; Mesa's step counter is the clock (:attr:`slot`).

    Args:
        scenario: A validated scenario.
        settings: Run settings.
        recorder: Optional callable ``recorder(model, slot)`` called after every slot and
            ``recorder.window(model, report)`` after every coordinated window.

    """

    def __init__(self, scenario: Scenario, settings: RunSettings | None = None,
                 recorder: object | None = None):
        settings = settings or RunSettings()
        super().__init__(rng=settings.seed)
        self.scenario, self.settings, self.recorder = scenario, settings, recorder
        self.horizon = settings.horizon or scenario.horizon.slots
        network, self.series = self.read_inputs(scenario, settings)
        #: What the run reads, as read (a resumed run must read the same: :mod:`.digest`).
        self.input_digest = data_digest(network, self.series)
        self.total_slots = self._run_slots(settings)
        self.status = RunStatus.RUNNING
        self.failure: RunFailure | None = None
        self.dso = DSOAgent(self, scenario, network, self.series, settings.decomposition,
                            ac_cuts=settings.ac_cuts)
        for mg in scenario.microgrids:
            MicrogridControllerAgent(self, mg)
        buses = list(network.bus_ids)
        multipliers = bus_multipliers(scenario, network, self.series,
                                      slice(0, self.series.slots))
        for bus in sorted(self.series.bus_class):
            CustomerAgent(self, bus, self.series.bus_class[bus], float(network.load_p_kw[bus]),
                          float(network.load_q_kvar[bus]), multipliers[buses.index(bus)])
        self._pool = None
        self._warm: list[ControllerWarmStart] | None = None

    @staticmethod
    def read_inputs(scenario: Scenario, settings: RunSettings
                    ) -> tuple[NetworkData | PhaseNetwork, ScenarioSeries]:
        """The network and the series a run of ``scenario`` reads.

        The forecasts reach past the run's last slot where the profile data allow, so the
        last windows keep their length H (no end-of-world effect on storage, same models).
        """
        network = network_for(scenario)
        horizon = settings.horizon or scenario.horizon.slots
        return network, scenario_series(scenario, network, horizon - 1)

    def snapshot(self) -> dict[str, Any]:
        """The state at a window boundary, with the controllers' warm starts.

        The controllers' bases are where their next window's LPs start: stored so that a
        resumed run starts them exactly where this run does.
        """
        state = super().snapshot()
        warm = self._pool.warm_starts() if self._pool is not None else []
        state["controllers"] = [w.to_json() for w in warm]
        return state

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`snapshot` (before the first step of a fresh model)."""
        super().restore(state)
        found = state.get("controllers") or []
        self._warm = [ControllerWarmStart.from_json(w) for w in found] or None

    def _run_slots(self, settings: RunSettings) -> int:
        """Slots to simulate; checks the horizon and the commit length against the data."""
        available = min(self.scenario.total_slots, self.series.slots)
        if self.horizon > self.series.slots:
            raise RunSettingsError(f"horizon ({self.horizon}) exceeds the {self.series.slots} "
                                   f"slots the scenario's series cover")
        if settings.slots is not None and settings.slots > available:
            raise RunSettingsError(
                f"slots ({settings.slots}) exceed the {available} slots the scenario's "
                f"series cover ({available * self.scenario.horizon.slot_hours / 24:g} days)")
        if not 1 <= settings.commit <= self.horizon:
            raise RunSettingsError(
                f"commit ({settings.commit}) must be in 1..horizon ({self.horizon})")
        return settings.slots or available

    # ------------------------------------------------------------------ the agents
    @property
    def microgrids(self) -> mesa.agent.AgentSet:
        """The microgrid controllers (a Mesa AgentSet, in scenario order)."""
        return self.agents_by_type[MicrogridControllerAgent]

    @property
    def customers(self) -> mesa.agent.AgentSet:
        """The customers, one per load bus (a Mesa AgentSet, by bus id)."""
        return self.agents_by_type.get(CustomerAgent, mesa.agent.AgentSet([], random=self.random))

    # ------------------------------------------------------------------ a slot
    def step(self) -> None:
        """One slot, as its phases: coordinate (at a re-planning point), observe, commit."""
        t = self.steps - 1  # Mesa counted this step already
        if self.dso.replan_due(t, self.settings.commit) and not self._coordinate(t):
            self.status, self.running = RunStatus.FAILED, False
            return
        self.customers.do("observe", t)
        self.microgrids.do("observe", t)
        load_deviation = np.sum([c.meter(t) for c in self.customers], axis=0)
        self.customers.do("commit", t)
        self.microgrids.do("commit", t)
        exchange_deviation = np.sum([mc.meter() for mc in self.microgrids], axis=0)
        served = {c.bus: (c.p_kw, c.q_kvar) for c in self.customers}
        exchanges = {mc.spec.name: mc.exchange() for mc in self.microgrids}
        self.dso.commit(t, tuple(load_deviation), tuple(exchange_deviation),
                        served_kw=served, exchanges=exchanges)
        if self.steps >= self.total_slots:
            self.status, self.running = RunStatus.FINISHED, False
        if self.recorder is not None:
            self.recorder(self, t)

    def _coordinate(self, start: int) -> bool:
        """Seed 000's window: the DSO coordinates, the controllers and customers adopt it.

        Returns False (with :attr:`failure` set) if the window has no schedule.
        """
        slots = min(self.horizon, self.series.slots - start)
        windows = [mc.window(start, slots) for mc in self.microgrids]
        if self._pool is None:
            self._pool = make_pool(windows, self.settings.decomposition)
            if self._warm is not None:  # a resumed run: its checkpoint's warm starts
                self._pool.load(windows, self._warm)
        else:  # the controllers' LPs start from their last window's bases, moved on
            self._pool.load(windows)
        self._warm = None
        solution = self.dso.coordinate(self._pool, start, slots)
        if self.recorder is not None:
            self.recorder.window(self, self.dso.reports[-1])
        if solution.network is None:
            self.failure = RunFailure(start, _failure_reason(solution))
            return False
        # each controller turns its award into its unit schedule; the DSO never sees it.
        # With the award each controller gets its own settlement prices, no other's.
        schedules = self._pool.schedules([solution.awards[mc.spec.name] for mc in self.microgrids])
        for mc, schedule in zip(self.microgrids, schedules, strict=True):
            mc.decide(schedule, start)
            if mc.spec.name in solution.prices:
                mc.receive_prices(solution.prices[mc.spec.name])
        for customer in self.customers:
            customer.decide(self.dso.curtailment_kw(customer.bus), start)
        return True

    def window_complete(self, slot: int) -> bool:
        """Whether slot ``slot`` completed its window's committed slots.

        After it the model's state is a checkpoint (:meth:`snapshot`): the next step
        re-plans from it.
        """
        committed = slot + 1 - self.dso.plan_start
        return committed % self.settings.commit == 0 or slot + 1 >= self.total_slots

    def run(self) -> str:
        """Step until the end (or a failed window); return the run status."""
        try:
            while self.running:
                self.step()
        finally:
            self.close()
        return self.status

    def close(self) -> None:
        """Release the microgrid workers."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def _failure_reason(solution: Any) -> str:
    """Why a window has no schedule, for the user (names microgrids, not their data)."""
    text = f"window status {solution.status}"
    infeasible = solution.info.get("infeasible_microgrids")
    if infeasible:
        text += (f": microgrid {', '.join(infeasible)} can run no schedule in this window "
                 f"(its own constraints conflict)")
    elif solution.status == "infeasible":
        text += ": the network cannot serve the window within its limits"
    elif solution.status == "not_converged":
        text += ": no runnable schedule found within the iteration or time limit"
    return text
