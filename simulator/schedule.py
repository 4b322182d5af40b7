"""Schedules: what a solve returns, the same shape for every method.

Extraction reads the values loaded into the Pyomo variables (by a Pyomo solver, or by
:meth:`simulator.highs_model.HighsModel.load_values`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pyomo.environ as pyo

from gridcosim.scenarios.schema import Microgrid
from gridcosim.simulator.messages import RestoredExchange, ScheduleAward


def value(obj: Any) -> float:
    """Value of a loaded Pyomo variable or expression (0 for an unused variable)."""
    out = pyo.value(obj, exception=False)
    return 0.0 if out is None else float(out)


def _series(var: Any, index: Any) -> tuple[float, ...]:
    return tuple(round(value(var[k]), 9) for k in index)


@dataclass(frozen=True)
class UnitSchedule:
    """Per-slot values of one unit (only the fields that apply are filled)."""

    name: str
    p_kw: tuple[float, ...]
    q_kvar: tuple[float, ...] = ()
    on: tuple[int, ...] = ()
    p_charge_kw: tuple[float, ...] = ()
    p_discharge_kw: tuple[float, ...] = ()
    e_kwh: tuple[float, ...] = ()


@dataclass(frozen=True)
class MicrogridSchedule:
    """A microgrid's schedule: units, curtailment, exchange with the DN and its cost."""

    name: str
    bus: int
    p_ex_kw: tuple[float, ...]
    q_ex_kvar: tuple[float, ...]
    cost_usd: float
    curtail_kw: tuple[float, ...]
    generators: tuple[UnitSchedule, ...]
    renewables: tuple[UnitSchedule, ...]
    storage: tuple[UnitSchedule, ...]


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
        out["microgrids"] = {mg.name: asdict(mg) for mg in self.microgrids}
        return out


def extract_microgrid(b: pyo.Block, spec: Microgrid) -> MicrogridSchedule:
    """Read a microgrid block (see :mod:`simulator.models.microgrid_model`)."""
    T = list(b.T)
    gens = tuple(UnitSchedule(
        name=g.name, p_kw=_series(b.p_g, [(k, t) for t in T]),
        q_kvar=_series(b.q_g, [(k, t) for t in T]),
        on=tuple(int(round(value(b.u[k, t]))) for t in T)) for k, g in enumerate(spec.generators))
    res = tuple(UnitSchedule(
        name=r.name, p_kw=_series(b.p_r, [(k, t) for t in T]),
        q_kvar=_series(b.q_r, [(k, t) for t in T])) for k, r in enumerate(spec.renewables))
    ess = tuple(_storage(b, k, s.name, T) for k, s in enumerate(spec.storage))
    return MicrogridSchedule(
        name=spec.name, bus=spec.bus,
        p_ex_kw=_series(b.p_ex, T), q_ex_kvar=_series(b.q_ex, T),
        cost_usd=float(value(b.cost_usd)), curtail_kw=_series(b.curtail, T),
        generators=gens, renewables=res, storage=ess)


def _storage(b: pyo.Block, k: int, name: str, T: list[int]) -> UnitSchedule:
    ch = _series(b.p_ch, [(k, t) for t in T])
    dis = _series(b.p_dis, [(k, t) for t in T])
    return UnitSchedule(name=name, p_kw=tuple(d - c for c, d in zip(ch, dis, strict=True)),
                        p_charge_kw=ch, p_discharge_kw=dis,
                        e_kwh=_series(b.e, [(k, t) for t in T]))


def extract_network(b: pyo.Block) -> NetworkSchedule:
    """Read a LinDistFlow block (see :mod:`simulator.models.lindistflow_model`)."""
    T = list(b.T)
    return NetworkSchedule(
        p_sub_kw=_series(b.p_sub, T), q_sub_kvar=_series(b.q_sub, T),
        cost_usd=float(value(b.cost_usd)),
        vm_pu={n: tuple(round(max(value(b.v[n, t]), 0.0) ** 0.5, 9) for t in T) for n in b.N},
        q_svc_kvar=tuple(_series(b.q_svc, [(s, t) for t in T]) for s in b.SV),
        curtail_kw={n: _series(b.curtail, [(n, t) for t in T]) for n in b.CN})

