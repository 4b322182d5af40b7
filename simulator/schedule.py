"""Schedules: what a solve returns, the same shape for every method.

Extraction reads the values loaded into the Pyomo variables (by a Pyomo solver, or by
:meth:`simulator.highs_model.HighsModel.load_values`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyomo.environ as pyo

from gridcosim.scenarios.schema import Microgrid
from gridcosim.simulator.messages import RestoredExchange, ScheduleAward, SettlementPrices
from gridcosim.simulator.models.ders import der_models
from gridcosim.simulator.models.microgrid_model import unit_blocks


def value(obj: Any) -> float:
    """Value of a loaded Pyomo variable or expression (0 for an unused variable)."""
    out = pyo.value(obj, exception=False)
    return 0.0 if out is None else float(out)


def _series(var: Any, index: Any) -> tuple[float, ...]:
    return tuple(round(value(var[k]), 9) for k in index)


@dataclass(frozen=True)
class UnitSchedule:
    """Per-slot values of one unit: active and reactive output and its kind's own series.

    The kind's series (a generator's ``on``, a battery's ``e_kwh``, ...) read as
    attributes too: ``unit.on``.
    """

    name: str
    kind: str
    p_kw: tuple[float, ...]
    q_kvar: tuple[float, ...] = ()
    series: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    def __getattr__(self, name: str) -> tuple[float, ...]:
        series = self.__dict__.get("series", {})
        if name in series:
            return series[name]
        raise AttributeError(f"{type(self).__name__} {self.__dict__.get('name')!r} has no "
                             f"{name!r}")

    def to_json_dict(self) -> dict[str, Any]:
        """``name``, ``kind``, ``p_kw``, ``q_kvar`` and the kind's series, flat."""
        return {"name": self.name, "kind": self.kind, "p_kw": self.p_kw, "q_kvar": self.q_kvar,
                **self.series}


@dataclass(frozen=True)
class MicrogridSchedule:
    """A microgrid's schedule: units, curtailment, exchange with the DN and its cost."""

    name: str
    bus: int
    p_ex_kw: tuple[float, ...]
    q_ex_kvar: tuple[float, ...]
    cost_usd: float
    curtail_kw: tuple[float, ...]
    units: tuple[UnitSchedule, ...]

    def of_kind(self, kind: str) -> tuple[UnitSchedule, ...]:
        """The unit schedules of one DER kind, in the scenario's order."""
        return tuple(u for u in self.units if u.kind == kind)

    @property
    def generators(self) -> tuple[UnitSchedule, ...]:
        """The dispatchable generators' schedules."""
        return self.of_kind("generator")

    @property
    def renewables(self) -> tuple[UnitSchedule, ...]:
        """The renewables' schedules."""
        return self.of_kind("renewable")

    @property
    def storage(self) -> tuple[UnitSchedule, ...]:
        """The storage units' schedules."""
        return self.of_kind("storage")

    def to_json_dict(self) -> dict[str, Any]:
        """Exchange, cost, curtailment and the units listed under their schema field."""
        out: dict[str, Any] = {"name": self.name, "bus": self.bus, "p_ex_kw": self.p_ex_kw,
                               "q_ex_kvar": self.q_ex_kvar, "cost_usd": self.cost_usd,
                               "curtail_kw": self.curtail_kw}
        for model in der_models():
            out[model.field] = [u.to_json_dict() for u in self.of_kind(model.kind)]
        return out


@dataclass(frozen=True)
class NetworkSchedule:
    """The DSO's side: substation import, SVCs, curtailment and LinDistFlow voltages."""

    p_sub_kw: tuple[float, ...]
    q_sub_kvar: tuple[float, ...]
    cost_usd: float
    vm_pu: dict[int, tuple[float, ...]]
    q_svc_kvar: tuple[tuple[float, ...], ...]
    curtail_kw: dict[int, tuple[float, ...]]


@dataclass(frozen=True)
class Solution:
    """Result of one window solved by any method.

    Attributes:
        method: ``monolithic`` or ``decomposition``.
        status: ``optimal``, ``not_converged``, ``infeasible``, ...
        objective_usd: Total cost of the reported schedule (NaN without one).
        wall_s: Solve time.
        network: The DSO's schedule (``None`` without one).
        microgrids: Every microgrid's unit schedule. The decomposition's DSO side leaves it
            empty (unit schedules stay with the controllers): :func:`~gridcosim.simulator.
            solve.solve_scenario` fills it for the user from the controllers' awards.
        info: Method statistics (iterations, bounds, cuts, AC reports).
        exchanges: The exchange (and true cost) of each microgrid's reported schedule.
        awards: The decomposition's award per microgrid (which restored schedule).
        prices: The nodal prices the DSO settles each microgrid's adopted exchange at
            (:mod:`~gridcosim.simulator.decomposition.settlement_prices`; filled by the DSO
            agent of a co-simulation, empty otherwise).

    """

    method: str
    status: str
    objective_usd: float
    wall_s: float
    network: NetworkSchedule | None
    microgrids: tuple[MicrogridSchedule, ...]
    info: dict[str, Any] = field(default_factory=dict)
    exchanges: dict[str, RestoredExchange] = field(default_factory=dict)
    awards: dict[str, ScheduleAward] = field(default_factory=dict)
    prices: dict[str, SettlementPrices] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view (the CLI's ``--json`` output)."""
        out: dict[str, Any] = {
            "method": self.method, "status": self.status,
            "objective_usd": self.objective_usd, "wall_s": round(self.wall_s, 4),
            **self.info,
        }
        if self.network is not None:
            net = asdict(self.network)
            net["vm_pu"] = {str(k): v for k, v in self.network.vm_pu.items()}
            net["curtail_kw"] = {str(k): v for k, v in self.network.curtail_kw.items()
                                 if any(abs(x) > 1e-9 for x in v)}
            out["network"] = net
        out["microgrids"] = {mg.name: mg.to_json_dict() for mg in self.microgrids}
        return out


def extract_microgrid(b: pyo.Block, spec: Microgrid) -> MicrogridSchedule:
    """Read a microgrid block (see :mod:`gridcosim.simulator.models.microgrid_model`)."""
    T = list(b.T)
    units = []
    for model, block in unit_blocks(b, spec):
        def read(name: str, _block: pyo.Block = block) -> np.ndarray:
            var = _block.component(name)
            return np.array([[value(var[k, t]) for t in _block.T] for k in _block.K]
                            ).reshape(len(_block.K), len(_block.T))
        for unit_name, series in model.schedules(model.units(spec), read):
            units.append(_unit(unit_name, model.kind, series))
    return MicrogridSchedule(
        name=spec.name, bus=spec.bus,
        p_ex_kw=_series(b.p_ex, T), q_ex_kvar=_series(b.q_ex, T),
        cost_usd=float(value(b.cost_usd)), curtail_kw=_series(b.curtail, T),
        units=tuple(units))


def _unit(name: str, kind: str, series: dict[str, tuple[float, ...]]) -> UnitSchedule:
    own = {k: v for k, v in series.items() if k not in ("p_kw", "q_kvar")}
    return UnitSchedule(name, kind, series["p_kw"], series.get("q_kvar", ()), own)


def extract_network(b: pyo.Block) -> NetworkSchedule:
    """Read a LinDistFlow block (see :mod:`simulator.models.lindistflow_model`)."""
    T = list(b.T)
    return NetworkSchedule(
        p_sub_kw=_series(b.p_sub, T), q_sub_kvar=_series(b.q_sub, T),
        cost_usd=float(value(b.cost_usd)),
        vm_pu={n: tuple(round(max(value(b.v[n, t]), 0.0) ** 0.5, 9) for t in T) for n in b.N},
        q_svc_kvar=tuple(_series(b.q_svc, [(s, t) for t in T]) for s in b.SV),
        curtail_kw={n: _series(b.curtail, [(n, t) for t in T]) for n in b.CN})

