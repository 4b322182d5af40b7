"""The DSO in the market: checks every clearing on the three-phase network, returns cuts.

It owns the feeder (topology, impedances, where its customers and DERs are connected) and
checks each clearing of the market operator with the power flow of the scenario's cut
model (the three-phase AC power flow, or LinDist3Flow): for each violated limit and slot
it returns one :class:`~simulator.market.messages.MarketCut` in the suppliers' outputs
only (:mod:`simulator.market.network_check`). It records the adopted clearing's AC
voltages on every phase of every bus, whatever the cut model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import mesa
import numpy as np
import pandas as pd

from gridcosim.agents.base import GridAgent, Output, Record
from gridcosim.scenarios.market_schema import CutModel
from gridcosim.scenarios.phase_network import PHASES, PhaseNetwork
from gridcosim.scenarios.schema import AcEngine
from gridcosim.simulator.market.messages import Clearing, MarketCut, MeteredDemand
from gridcosim.simulator.market.network_check import MarketNetworkCheck, SlotCheck
from gridcosim.simulator.market.network_limits import NetworkLimits, SupplierConnection
from gridcosim.simulator.models.lindist3flow import LinDist3Flow


@dataclass(frozen=True)
class CheckTerms:
    """How the DSO checks clearings (from the scenario; nothing about the customers).

    Attributes:
        cut_model: The power flow the check and its cuts use.
        engine: The AC engine.
        tolerance_pu: A limit counts as violated beyond this.

    """

    cut_model: CutModel
    engine: AcEngine
    tolerance_pu: float


class MarketDSOAgent(GridAgent):
    """Validates clearings, cuts violations, records the feeder's per-phase state."""

    RECORDS = (
        Record("phase_bus", "a bus of the feeder, per phase (bus id; NaN on absent phases)", (
            Output("vm_a_pu", "1", "AC voltage magnitude of phase a (adopted clearing)"),
            Output("vm_b_pu", "1", "AC voltage magnitude of phase b"),
            Output("vm_c_pu", "1", "AC voltage magnitude of phase c"),
        )),
        Record("feeder", "the feeder as a whole (feeder)", (
            Output("p_sub_kw", "kW", "AC import at the root bus (demand + losses - DERs)",
                   "into the feeder positive"),
            Output("losses_kw", "kW", "AC line losses"),
            Output("vm_min_pu", "1", "lowest AC bus-phase voltage"),
            Output("vm_max_pu", "1", "highest AC bus-phase voltage"),
            Output("max_violation_pu", "1", "largest AC limit violation (0: none)"),
            Output("ac_converged", "1", "1 the adopted clearing's AC power flow converged"),
        )),
    )
    state_key = "dso"

    def __init__(self, model: mesa.Model, network: PhaseNetwork, limits: NetworkLimits,
                 connections: Sequence[SupplierConnection], terms: CheckTerms):
        super().__init__(model)
        self.network = network
        #: The feeder's LinDist3Flow sensitivities (built on first use, shared).
        self.lindist = LinDist3Flow(network)
        self.check = MarketNetworkCheck(network, connections, limits,
                                        cut_model=terms.cut_model, engine=terms.engine,
                                        tolerance_pu=terms.tolerance_pu, lindist=self.lindist)
        self._ac = self.check if terms.cut_model is CutModel.AC else MarketNetworkCheck(
            network, connections, limits, cut_model=CutModel.AC, engine=terms.engine,
            tolerance_pu=terms.tolerance_pu, lindist=self.lindist)
        self._load_row = {str(n): i for i, n in enumerate(network.loads.index)}
        self._start = 0
        self._adopted: list[SlotCheck] = []
        self._validated: tuple[Clearing | None, MeteredDemand | None, list[SlotCheck]] = (
            None, None, [])
        self.p_sub_kw = self.losses_kw = self.vm_min_pu = self.vm_max_pu = 0.0
        self.max_violation_pu = self.ac_converged = 0.0
        self._vm = pd.Series(dtype=float)

    # ---------------------------------------------------------------- checking
    def open_day(self) -> None:
        """A new day's checks start cold (independent of the days before)."""
        self.check.reset()
        self._ac.reset()

    def load_arrays(self, metered: MeteredDemand) -> tuple[np.ndarray, np.ndarray]:
        """The metered consumption as load arrays (slots × feeder loads, kW and kvar)."""
        slots = len(metered.p_kw[0]) if metered.p_kw else 0
        p, q = np.zeros((slots, len(self._load_row))), np.zeros((slots, len(self._load_row)))
        for name, p_kw, q_kvar in zip(metered.customers, metered.p_kw, metered.q_kvar,
                                      strict=True):
            p[:, self._load_row[name]], q[:, self._load_row[name]] = p_kw, q_kvar
        return p, q

    def validate(self, clearing: Clearing, metered: MeteredDemand
                 ) -> tuple[list[SlotCheck], list[MarketCut]]:
        """Check every slot of a clearing; one cut per violated limit and slot."""
        p, q = self.load_arrays(metered)
        checks, cuts = [], []
        for t in range(p.shape[0]):
            supply = self._supply(clearing, t)
            check = self.check.check_slot(t, p[t], q[t], supply)
            checks.append(check)
            if check.converged and check.violations:
                cuts += self.check.cuts(t, check, p[t], q[t], supply)
        self._validated = (clearing, metered, checks)
        return checks, cuts

    def _supply(self, clearing: Clearing, t: int) -> dict[str, float]:
        return {name: float(values[t]) for name, values in clearing.p_kw}

    def adopt(self, clearing: Clearing, metered: MeteredDemand, start: int) -> None:
        """Keep the adopted clearing's AC state per slot (for the record)."""
        self._start = start
        last_clearing, last_metered, checks = self._validated
        if self._ac is self.check and last_clearing is clearing and last_metered == metered:
            self._adopted = checks  # the AC check of this very clearing: not solved again
            return
        p, q = self.load_arrays(metered)
        self._adopted = [self._ac.check_slot(t, p[t], q[t], self._supply(clearing, t))
                         for t in range(p.shape[0])]

    def adopted_violation_pu(self) -> float:
        """Largest AC violation of the adopted clearing (inf if a power flow failed)."""
        return max((c.max_violation_pu if c.converged else float("inf"))
                   for c in self._adopted) if self._adopted else 0.0

    # ---------------------------------------------------------------- recording
    def commit(self, slot: int) -> None:
        """The slot's AC state of the adopted clearing."""
        check = self._adopted[slot - self._start]
        self._vm = check.vm_pu
        self.p_sub_kw, self.losses_kw = float(check.p_sub_kw), float(check.losses_kw)
        self.vm_min_pu = float(np.nanmin(check.vm_pu)) if check.converged else float("nan")
        self.vm_max_pu = float(np.nanmax(check.vm_pu)) if check.converged else float("nan")
        self.max_violation_pu = float(check.max_violation_pu)
        self.ac_converged = float(check.converged)

    def record_ids(self, record: Record) -> list[str]:
        """Bus ids for ``phase_bus``; ``feeder`` for the feeder."""
        if record.kind == "phase_bus":
            return [str(b) for b in self.network.bus_ids]
        return ["feeder"]

    def record_values(self, record: Record, *, initial: bool = False) -> dict[str, list[float]]:
        """Per-phase voltages of every bus, or the feeder's values."""
        if record.kind != "phase_bus":
            return super().record_values(record, initial=initial)
        return {f"vm_{ph}_pu": self._phase_voltages(ph) for ph in PHASES}

    def _phase_voltages(self, phase: str) -> list[float]:
        buses = list(self.network.bus_ids)
        if self._vm.empty:
            return [float("nan")] * len(buses)
        values = self._vm.xs(phase, level="phase") if phase in set(
            self._vm.index.get_level_values("phase")) else pd.Series(dtype=float)
        return values.reindex(buses).astype(float).tolist()
