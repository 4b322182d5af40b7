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

from dataclasses import dataclass, field

import mesa
import numpy as np

from gridcosim.agents.customer import CustomerAgent
from gridcosim.agents.dso import DSOAgent
from gridcosim.agents.microgrid import MicrogridControllerAgent
from gridcosim.agents.price import PriceSignalAgent
from gridcosim.scenarios.network import NetworkData, load_network
from gridcosim.scenarios.schema import Scenario
from gridcosim.scenarios.series import ScenarioSeries, scenario_series
from gridcosim.simulator.decomposition.pool import make_pool
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.scenarios.errors import GridcosimError
from gridcosim.simulator.windows import bus_loads


class RunSettingsError(GridcosimError, ValueError):
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


class CoSimulation(mesa.Model):
    """DSO, microgrid controllers, DERs, customers and the price signal on one clock.

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
        network: NetworkData = load_network(scenario.network.source)
        self.horizon = settings.horizon or scenario.horizon.slots
        if settings.horizon is not None and settings.horizon < 1:
            raise RunSettingsError(f"horizon ({settings.horizon}) must be at least 1")
        # forecasts reach past the run's last slot where the profile data allow, so the
        # last windows keep their length H (no end-of-world effect on storage, same models)
        self.series: ScenarioSeries = scenario_series(scenario, network, self.horizon - 1)
        self.total_slots = min(settings.slots or scenario.total_slots, self.series.slots)
        if not 1 <= settings.commit <= self.horizon:
            raise RunSettingsError(
                f"commit ({settings.commit}) must be in 1..horizon ({self.horizon})")
        self.slot = 0
        self.status = "running"
        self.dso = DSOAgent(self, scenario, network, self.series, settings.decomposition,
                            ac_cuts=settings.ac_cuts)
        self.prices = PriceSignalAgent(self, self.series.price_usd_per_kwh)
        self.microgrids = [MicrogridControllerAgent(self, mg) for mg in scenario.microgrids]
        self.customers = self._customers(network)
        self._pool = None

    def _customers(self, network: NetworkData) -> list[CustomerAgent]:
        p_kw, q_kvar = bus_loads(self.scenario, network, self.series, 0, self.series.slots)
        return [CustomerAgent(self, bus, self.series.bus_class[bus], p_kw.loc[bus].to_numpy(),
                              q_kvar.loc[bus].to_numpy()) for bus in sorted(self.series.bus_class)]

    # ------------------------------------------------------------------ planning
    def _replan(self) -> bool:
        """Coordinate the window starting at the current slot; False if it failed."""
        slots = min(self.horizon, self.series.slots - self.slot)
        windows = [mc.window(self.scenario, self.series, self.slot, slots)
                   for mc in self.microgrids]
        if self._pool is None:
            self._pool = make_pool(windows, self.settings.decomposition)
        else:
            self._pool.load(windows)
        solution = self.dso.coordinate(self._pool, self.slot, slots)
        if self.recorder is not None:
            self.recorder.window(self, self.dso.reports[-1])
        if solution.network is None:
            return False
        by_name = {s.name: s for s in solution.microgrids}
        for mc in self.microgrids:
            mc.decide(by_name[mc.spec.name], self.slot)
        return True

    # ------------------------------------------------------------------ clock
    def step(self) -> None:
        """Advance one slot (re-planning first when the committed slots are used up)."""
        if self.slot >= self.total_slots:
            self.running = False
            return
        if (self.slot - self.dso.plan_start) % self.settings.commit == 0 or self.dso.plan is None:
            if not self._replan():
                self.status = f"failed_at_slot_{self.slot}"
                self.running = False
                return
        self._execute_slot()
        if self.recorder is not None:
            self.recorder(self, self.slot)
        self.slot += 1
        if self.slot >= self.total_slots:
            self.status = "finished"
            self.running = False

    def _execute_slot(self) -> None:
        t, dt, noise = self.slot, self.series.slot_hours, self.settings.noise
        load_dev = np.zeros(2)  # realised minus forecast load (kW, kvar)
        curtail = self.dso.plan.curtail_kw
        k = t - self.dso.plan_start
        for c in self.customers:
            realised = c.observe(t, noise)
            load_dev += (realised - float(c.profile_kw[t]), c.q_kvar - float(c.profile_kvar[t]))
            c.commit(curtail.get(c.bus, (0.0,) * (k + 1))[k], dt)
        ex_dev = np.zeros(2)  # realised minus planned exchanges (kW, kvar)
        for mc in self.microgrids:
            forecast = np.array([r.forecast_kw * self.series.renewables[r.kind].iloc[t]
                                 for r in mc.spec.renewables])
            out = mc.commit(t, forecast, noise, dt)
            ex_dev += (out.deviation_kw, out.q_deviation_kvar)
        self.substation_p_kw, self.substation_q_kvar, self.substation_cost_usd = (
            self.dso.commit(t, *load_dev, *ex_dev))

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
