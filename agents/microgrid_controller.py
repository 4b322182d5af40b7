"""Microgrid controller (MC) agent: owns its DERs and local load, answers the DSO privately.

The MC builds its window from its own agents' state (DG status and last output, storage
energy), hands that private window to the engine's responder (in this process or in its
worker), and when a window is committed writes the set-points back to its DERs. In real
time it absorbs the difference between forecast and realised renewables with storage and
local curtailment, within the agreed exchange; what it cannot absorb is recorded as the
exchange deviation.
"""

from __future__ import annotations

from dataclasses import dataclass

import mesa
import numpy as np

from gridcosim.agents.base import GridAgent
from gridcosim.agents.der import GeneratorAgent, RenewableAgent, StorageAgent
from gridcosim.scenarios.schema import Microgrid, Scenario
from gridcosim.scenarios.series import ScenarioSeries
from gridcosim.simulator.models.microgrid_model import MicrogridState, MicrogridWindow
from gridcosim.simulator.schedule import MicrogridSchedule
from gridcosim.simulator.windows import microgrid_window


@dataclass(frozen=True)
class SlotOutcome:
    """What the MC realised in one slot."""

    p_ex_kw: float
    q_ex_kvar: float
    deviation_kw: float
    cost_usd: float
    curtail_kw: float
    q_deviation_kvar: float = 0.0


class MicrogridControllerAgent(GridAgent):
    """The controller of one microgrid."""

    STATE = ("cost_usd",)

    def __init__(self, model: mesa.Model, spec: Microgrid):
        super().__init__(model)
        self.spec = spec
        self.generators = [GeneratorAgent(model, g) for g in spec.generators]
        self.renewables = [RenewableAgent(model, r) for r in spec.renewables]
        self.storage = [StorageAgent(model, e) for e in spec.storage]
        self.plan: MicrogridSchedule | None = None
        self.plan_start = 0
        self.cost_usd = 0.0
        self.last = SlotOutcome(0.0, 0.0, 0.0, 0.0, 0.0)

    @property
    def state_key(self) -> str:
        """``microgrid:<name>``."""
        return f"microgrid:{self.spec.name}"

    def state(self) -> MicrogridState:
        """The initial condition of the next window, read from the DER agents."""
        return MicrogridState(
            dg_on=tuple(g.on for g in self.generators),
            dg_p_kw=tuple(g.p_kw for g in self.generators),
            e_kwh=tuple(s.e_kwh for s in self.storage))

    def window(self, scenario: Scenario, series: ScenarioSeries, start: int,
               slots: int) -> MicrogridWindow:
        """The private forecast window of this MC (never handed to the DSO)."""
        return microgrid_window(scenario, self.spec, self.state(), start, slots, series)

    def decide(self, schedule: MicrogridSchedule, start: int) -> None:
        """Adopt the schedule the decomposition settled on for the window starting at ``start``."""
        self.plan, self.plan_start = schedule, start

    def commit(self, slot: int, forecast_kw: np.ndarray, noise: float,
               slot_hours: float) -> SlotOutcome:
        """Run slot ``slot`` of the plan with realised renewables; update the DERs."""
        k = slot - self.plan_start
        plan = self.plan
        shortfall = q_shortfall = 0.0
        for r, agent, f in zip(plan.renewables, self.renewables, forecast_kw, strict=True):
            avail = agent.observe(float(f), noise)
            p = min(r.p_kw[k], avail)
            q = r.q_kvar[k] if r.p_kw[k] == 0 else r.q_kvar[k] * p / r.p_kw[k]  # same pf
            shortfall += r.p_kw[k] - p
            q_shortfall += r.q_kvar[k] - q
            agent.commit(p, q, slot_hours)
        cost = sum(agent.commit(bool(g.on[k]), g.p_kw[k], g.q_kvar[k], slot_hours)
                   for g, agent in zip(plan.generators, self.generators, strict=True))
        shortfall = self._cover_with_storage(plan, k, shortfall, slot_hours)
        curtail = plan.curtail_kw[k]
        cost += self.model.scenario.curtailment_cost_usd_per_kwh * curtail * slot_hours
        self.cost_usd += cost
        self.last = SlotOutcome(plan.p_ex_kw[k] - shortfall, plan.q_ex_kvar[k] - q_shortfall,
                                -shortfall, cost, curtail, -q_shortfall)
        return self.last

    def _cover_with_storage(self, plan: MicrogridSchedule, k: int, shortfall: float,
                            slot_hours: float) -> float:
        """Discharge more (or charge less) to cover a renewable shortfall; return the rest.

        Earlier covers of the same plan leave less energy than planned, so the planned
        discharge is capped at what the stored energy still allows; the cap adds to the
        shortfall.
        """
        for s, agent in zip(plan.storage, self.storage, strict=True):
            limit = agent.max_discharge_kw(slot_hours)
            planned = min(s.p_kw[k], limit)
            shortfall += s.p_kw[k] - planned
            extra = min(shortfall, max(0.0, limit - planned))
            agent.commit(planned + extra, slot_hours)
            shortfall -= extra
        return shortfall
