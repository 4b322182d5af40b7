"""Typed, frozen, validated description of a gridcosim case.

A :class:`Scenario` is everything a run needs besides the network data files: base values
and limits, the curtailment cost, SVCs, microgrids with their units, the price / load /
renewable profiles and the horizon. Units are in the field names (kW, kvar, kWh, $,
hours, p.u.). Field-level checks live on the models; cross-field checks (profile lengths,
bus existence, duplicate names) live in :mod:`scenarios.checks` so that every problem of a
file can be reported at once.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

NonNegative = Annotated[float, Field(ge=0.0)]
Positive = Annotated[float, Field(gt=0.0)]
Efficiency = Annotated[float, Field(gt=0.0, le=1.0)]
PowerFactor = Annotated[float, Field(gt=0.0, le=1.0)]
Multiplier = Annotated[float, Field(ge=0.0)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NetworkSpec(_Frozen):
    """The distribution network: data set, base values and voltage limits."""

    source: str = Field("ieee123", description="built-in network data set name")
    base_kva: Positive = 1000.0
    base_kv: Positive = 4.16
    v_ref_pu: Annotated[float, Field(gt=0.8, lt=1.2)] = 1.0
    v_min_pu: Annotated[float, Field(gt=0.5, lt=1.5)] = 0.9
    v_max_pu: Annotated[float, Field(gt=0.5, lt=1.5)] = 1.1
    load_scale: Positive = 1.0

    @model_validator(mode="after")
    def _band(self) -> NetworkSpec:
        if self.v_min_pu >= self.v_max_pu:
            raise ValueError(f"v_min_pu ({self.v_min_pu}) must be below v_max_pu ({self.v_max_pu})")
        if not self.v_min_pu <= self.v_ref_pu <= self.v_max_pu:
            raise ValueError(f"v_ref_pu ({self.v_ref_pu}) must lie inside [v_min_pu, v_max_pu]")
        return self


class SVC(_Frozen):
    """A static var compensator owned by the DSO."""

    bus: int
    q_min_kvar: float
    q_max_kvar: float

    @model_validator(mode="after")
    def _range(self) -> SVC:
        if self.q_min_kvar > self.q_max_kvar:
            raise ValueError(
                f"q_min_kvar ({self.q_min_kvar}) exceeds q_max_kvar ({self.q_max_kvar})"
            )
        return self


class Generator(_Frozen):
    """A dispatchable generator with on/off commitment, start-up cost and ramp limit."""

    name: str
    cost_usd_per_kwh: NonNegative
    startup_cost_usd: NonNegative = 0.0
    p_min_kw: NonNegative
    p_max_kw: Positive
    q_min_kvar: float
    q_max_kvar: float
    ramp_kw_per_slot: Positive
    initial_on: bool = False
    initial_p_kw: NonNegative = 0.0

    @model_validator(mode="after")
    def _limits(self) -> Generator:
        if self.p_min_kw > self.p_max_kw:
            raise ValueError(f"p_min_kw ({self.p_min_kw}) exceeds p_max_kw ({self.p_max_kw})")
        if self.q_min_kvar > self.q_max_kvar:
            raise ValueError(
                f"q_min_kvar ({self.q_min_kvar}) exceeds q_max_kvar ({self.q_max_kvar})"
            )
        if not self.initial_on and self.initial_p_kw != 0.0:
            raise ValueError(
                f"initial_p_kw ({self.initial_p_kw}) must be 0 when initial_on is false"
            )
        if self.initial_on and not self.p_min_kw <= self.initial_p_kw <= self.p_max_kw:
            raise ValueError(f"initial_p_kw ({self.initial_p_kw}) outside [p_min_kw, p_max_kw]")
        return self


class Renewable(_Frozen):
    """A renewable unit: output up to its forecast, reactive power limited by a power factor."""

    name: str
    kind: Literal["pv", "wind", "generic"] = "generic"
    forecast_kw: NonNegative
    min_power_factor: PowerFactor


class Storage(_Frozen):
    """A battery with charge / discharge limits, energy limits and efficiencies."""

    name: str
    p_charge_max_kw: Positive
    p_discharge_max_kw: Positive
    e_min_kwh: NonNegative
    e_max_kwh: Positive
    e_initial_kwh: NonNegative
    eta_charge: Efficiency
    eta_discharge: Efficiency

    @model_validator(mode="after")
    def _energy(self) -> Storage:
        if self.e_min_kwh > self.e_max_kwh:
            raise ValueError(f"e_min_kwh ({self.e_min_kwh}) exceeds e_max_kwh ({self.e_max_kwh})")
        if not self.e_min_kwh <= self.e_initial_kwh <= self.e_max_kwh:
            raise ValueError(
                f"e_initial_kwh ({self.e_initial_kwh}) outside [e_min_kwh, e_max_kwh]"
                f" = [{self.e_min_kwh}, {self.e_max_kwh}]"
            )
        return self


class Microgrid(_Frozen):
    """A microgrid behind one point of common coupling (PCC), run by its own controller."""

    name: str
    bus: int
    pcc_p_max_kw: Positive = Field(description="published |P_ex| rating at the PCC")
    pcc_q_max_kvar: Positive = Field(description="published |Q_ex| rating at the PCC")
    local_load_kw: NonNegative = 0.0
    local_load_kvar: NonNegative = 0.0
    generators: tuple[Generator, ...] = ()
    renewables: tuple[Renewable, ...] = ()
    storage: tuple[Storage, ...] = ()
    local_load_class: CustomerClass = "residential"


class Profiles(_Frozen):
    """Per-slot multipliers of nominal values (price, bus and local loads, renewables)."""

    price_usd_per_kwh: Positive = Field(0.11, description="nominal utility price")
    price: tuple[Multiplier, ...]
    load: tuple[Multiplier, ...]
    renewables: tuple[Multiplier, ...]


CustomerClass = Literal["residential", "commercial", "industrial", "agricultural"]


class Timeseries(_Frozen):
    """Multi-day profiles from a shipped profile set (instead of per-slot multipliers).

    Bus loads follow the shape of their customer class, renewables the shape of their
    kind, the utility price the set's price shape (times ``profiles_price_usd_per_kwh``).
    Loads and renewables are scaled so that their peak over the run equals the nominal
    value; the price shape so that its mean is 1.
    """

    profile_set: str = "simbench_2weeks"
    start_day: Annotated[int, Field(ge=0)] = 0
    days: Annotated[int, Field(gt=0)] = 7
    price_usd_per_kwh: Positive = 0.11
    customer_classes: dict[CustomerClass, tuple[int, ...]] = Field(
        default_factory=dict,
        description="buses per class; unlisted load buses are assigned by bus id (docs)")


class Horizon(_Frozen):
    """Length of the optimisation horizon (one window for `solve`)."""

    slots: Annotated[int, Field(gt=0)] = 6
    slot_hours: Positive = 1.0


class Scenario(_Frozen):
    """A complete, validated gridcosim case."""

    name: str
    description: str = ""
    network: NetworkSpec = NetworkSpec()
    curtailment_cost_usd_per_mwh: NonNegative = 500.0
    svcs: tuple[SVC, ...] = ()
    microgrids: tuple[Microgrid, ...]
    profiles: Profiles | None = None
    timeseries: Timeseries | None = None
    horizon: Horizon = Horizon()

    @model_validator(mode="after")
    def _one_time_source(self) -> Scenario:
        if (self.profiles is None) == (self.timeseries is None):
            raise ValueError("give exactly one of [profiles] (per-slot multipliers) or "
                             "[timeseries] (multi-day profile set)")
        return self

    @property
    def total_slots(self) -> int:
        """Slots the scenario's time series cover."""
        if self.timeseries is not None:
            return int(round(self.timeseries.days * 24 / self.horizon.slot_hours))
        return self.horizon.slots

    @property
    def curtailment_cost_usd_per_kwh(self) -> float:
        """Curtailment cost rho in $/kWh."""
        return self.curtailment_cost_usd_per_mwh / 1000.0
