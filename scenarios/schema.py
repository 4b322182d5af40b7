"""Typed, frozen, validated description of a gridcosim case.

A :class:`Scenario` is everything a run needs besides the network data files: base values
and limits, the curtailment cost, SVCs, microgrids with their units, the price / load /
renewable profiles and the horizon. Units are in the field names (kW, kvar, kWh, $,
hours, p.u.). Field-level checks live on the models; cross-field checks (profile lengths,
bus existence, duplicate names) live in :mod:`scenarios.checks` so that every problem of a
file can be reported at once. Every number must be finite and within the named limits
below; every name follows :data:`NAME_RULE`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

# ---------------------------------------------------------------------------------------
# Limits. Every number must be finite (TOML allows ``inf`` and ``nan``; both are rejected)
# and inside these documented bounds: far beyond anything a distribution-feeder study uses,
# yet small enough that the MILP / LP coefficients stay well inside the solvers' numerical
# range (HiGHS treats 1e20 as infinite; costs times powers times slot lengths must not get
# near that).

#: Largest magnitude of any active (kW) or reactive (kvar) power: 1 GW.
MAX_POWER_KW = 1e6
#: Largest stored energy (kWh): 10 GWh.
MAX_ENERGY_KWH = 1e7
#: Largest energy price or generation cost ($/kWh); market offer caps are ~5 $/kWh.
MAX_COST_USD_PER_KWH = 1e3
#: Largest curtailment cost ($/MWh), the same 1e3 $/kWh.
MAX_CURTAILMENT_COST_USD_PER_MWH = 1e6
#: Largest start-up cost of a generator ($).
MAX_STARTUP_COST_USD = 1e6
#: Largest per-slot profile multiplier (of a nominal price, load or forecast).
MAX_MULTIPLIER = 1e3
#: Smallest storage efficiency and renewable power factor: 1 / eta and tan(acos(pf)) are
#: coefficients of the models (at most 100 here).
MIN_EFFICIENCY = 0.01
MIN_POWER_FACTOR = 0.01
#: Largest ``network.load_scale``.
MAX_LOAD_SCALE = 100.0
#: Range of the power base (kVA) and of the line-to-line voltage base (kV).
MIN_BASE_KVA, MAX_BASE_KVA = 1.0, 1e6
MIN_BASE_KV, MAX_BASE_KV = 0.1, 500.0
#: Range of the slot length (hours): one minute to one day.
MIN_SLOT_HOURS, MAX_SLOT_HOURS = 1.0 / 60.0, 24.0
#: Longest optimisation window (slots): one day of one-minute slots; the MILP grows linearly.
MAX_HORIZON_SLOTS = 1440
#: Longest run and latest start day of a ``[timeseries]`` scenario (days), before the
#: profile set's own length is checked.
MAX_DAYS = 366
#: Most microgrids per scenario, and units of one kind per microgrid.
MAX_MICROGRIDS = 1000
MAX_UNITS_PER_KIND = 100
#: Longest name (scenario, microgrid, unit, data set).
MAX_NAME_CHARS = 64

#: Names become file-name stems (``<name>.h5``), HDF5 entity ids and JSON keys: 1 to 64
#: characters of ASCII letters, digits and ``_ - . +``, starting with a letter or digit.
NAME_RULE = (f"must be 1-{MAX_NAME_CHARS} characters of ASCII letters, digits and _ - . +,"
             " starting with a letter or digit")
_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.+-]{{0,{MAX_NAME_CHARS - 1}}}")


def _check_name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(NAME_RULE)
    return value


def _check_slot_hours(value: float) -> float:
    if not MIN_SLOT_HOURS - 1e-12 <= value <= MAX_SLOT_HOURS:
        raise ValueError(f"must be between 1 minute ({MIN_SLOT_HOURS:.6g} h) and"
                         f" {MAX_SLOT_HOURS:g} h")
    return value


def _bounded(low: float | None = None, high: float | None = None, *, gt: float | None = None,
             lt: float | None = None) -> Any:
    """Constraints of a number field: strict (no bools, no strings) and within bounds.

    Finiteness comes from the models' ``allow_inf_nan=False``.
    """
    return Field(strict=True, ge=low, le=high, gt=gt, lt=lt)


Name = Annotated[str, Field(strict=True, description=NAME_RULE), AfterValidator(_check_name)]
Integer = Annotated[int, Field(strict=True)]
PowerKw = Annotated[float, _bounded(-MAX_POWER_KW, MAX_POWER_KW)]
CapacityKw = Annotated[float, _bounded(high=MAX_POWER_KW, gt=0.0)]
NonNegativeKw = Annotated[float, _bounded(0.0, MAX_POWER_KW)]
CapacityKwh = Annotated[float, _bounded(high=MAX_ENERGY_KWH, gt=0.0)]
NonNegativeKwh = Annotated[float, _bounded(0.0, MAX_ENERGY_KWH)]
CostUsdPerKwh = Annotated[float, _bounded(0.0, MAX_COST_USD_PER_KWH)]
PriceUsdPerKwh = Annotated[float, _bounded(high=MAX_COST_USD_PER_KWH, gt=0.0)]
Efficiency = Annotated[float, _bounded(MIN_EFFICIENCY, 1.0)]
PowerFactor = Annotated[float, _bounded(MIN_POWER_FACTOR, 1.0)]
Multiplier = Annotated[float, _bounded(0.0, MAX_MULTIPLIER)]
Profile = Annotated[tuple[Multiplier, ...], Field(min_length=1, max_length=MAX_HORIZON_SLOTS)]
CustomerClass = Literal["residential", "commercial", "industrial", "agricultural"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class NetworkSpec(_Frozen):
    """The distribution network: data set, base values and voltage limits.

    The base values take effect: the branch impedances in p.u. are computed from the data
    set's ohms with ``z_base = base_kv**2 * 1000 / base_kva`` and the AC model runs at
    ``base_kv``. ``base_kva`` only changes the per-unit scaling (not the physics);
    ``base_kv`` is the feeder's nominal voltage, so it changes the voltage drops.
    """

    source: Name = Field("ieee123", description="built-in network data set name")
    base_kva: Annotated[float, _bounded(MIN_BASE_KVA, MAX_BASE_KVA)] = 1000.0
    base_kv: Annotated[float, _bounded(MIN_BASE_KV, MAX_BASE_KV)] = 4.16
    v_ref_pu: Annotated[float, _bounded(gt=0.8, lt=1.2)] = 1.0
    v_min_pu: Annotated[float, _bounded(gt=0.5, lt=1.5)] = 0.9
    v_max_pu: Annotated[float, _bounded(gt=0.5, lt=1.5)] = 1.1
    load_scale: Annotated[float, _bounded(high=MAX_LOAD_SCALE, gt=0.0)] = Field(
        1.0, description="factor on every bus load of the data set (not microgrid loads)")

    @model_validator(mode="after")
    def _band(self) -> NetworkSpec:
        if self.v_min_pu >= self.v_max_pu:
            raise ValueError(f"v_min_pu ({self.v_min_pu}) must be below v_max_pu ({self.v_max_pu})")
        if not self.v_min_pu <= self.v_ref_pu <= self.v_max_pu:
            raise ValueError(f"v_ref_pu ({self.v_ref_pu}) must lie inside [v_min_pu, v_max_pu]")
        return self


class SVC(_Frozen):
    """A static var compensator owned by the DSO."""

    bus: Integer
    q_min_kvar: PowerKw
    q_max_kvar: PowerKw

    @model_validator(mode="after")
    def _range(self) -> SVC:
        if self.q_min_kvar > self.q_max_kvar:
            raise ValueError(
                f"q_min_kvar ({self.q_min_kvar}) exceeds q_max_kvar ({self.q_max_kvar})"
            )
        return self


class Unit(_Frozen):
    """A unit inside a microgrid (every kind of DER derives from it)."""

    name: Name


class Generator(Unit):
    """A dispatchable generator with on/off commitment, start-up cost and ramp limit."""

    name: Name
    cost_usd_per_kwh: CostUsdPerKwh
    startup_cost_usd: Annotated[float, _bounded(0.0, MAX_STARTUP_COST_USD)] = 0.0
    p_min_kw: NonNegativeKw
    p_max_kw: CapacityKw
    q_min_kvar: PowerKw
    q_max_kvar: PowerKw
    ramp_kw_per_slot: CapacityKw
    initial_on: Annotated[bool, Field(strict=True)] = False
    initial_p_kw: NonNegativeKw = 0.0

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


class Renewable(Unit):
    """A renewable unit: output up to its forecast, reactive power limited by a power factor."""

    name: Name
    kind: Literal["pv", "wind", "generic"] = Field(
        "generic", description="profile shape with [timeseries] (generic follows pv); with"
        " [profiles] every renewable follows profiles.renewables, so only generic is allowed")
    forecast_kw: NonNegativeKw
    min_power_factor: PowerFactor


class Storage(Unit):
    """A battery with charge / discharge limits, energy limits and efficiencies."""

    name: Name
    p_charge_max_kw: CapacityKw
    p_discharge_max_kw: CapacityKw
    e_min_kwh: NonNegativeKwh
    e_max_kwh: CapacityKwh
    e_initial_kwh: NonNegativeKwh
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

    name: Name
    bus: Integer
    pcc_p_max_kw: CapacityKw = Field(description="published |P_ex| rating at the PCC")
    pcc_q_max_kvar: CapacityKw = Field(description="published |Q_ex| rating at the PCC")
    local_load_kw: NonNegativeKw = 0.0
    local_load_kvar: NonNegativeKw = 0.0
    generators: tuple[Generator, ...] = Field((), max_length=MAX_UNITS_PER_KIND)
    renewables: tuple[Renewable, ...] = Field((), max_length=MAX_UNITS_PER_KIND)
    storage: tuple[Storage, ...] = Field((), max_length=MAX_UNITS_PER_KIND)
    local_load_class: CustomerClass = Field(
        "residential", description="load shape of the local load with [timeseries]; with"
        " [profiles] every load follows profiles.load, so only the default is allowed")

    @classmethod
    def unit_fields(cls) -> list[str]:
        """The fields that list units (``generators``, ``renewables``, ...), in order."""
        return [name for name, info in cls.model_fields.items()
                if _unit_type(info.annotation) is not None]

    def units(self) -> list[Unit]:
        """Every unit of the microgrid, field by field."""
        return [u for name in self.unit_fields() for u in getattr(self, name)]


def _unit_type(annotation: object) -> type | None:
    """The unit class of a ``tuple[SomeUnit, ...]`` annotation, else ``None``."""
    args = getattr(annotation, "__args__", ())
    if getattr(annotation, "__origin__", None) is tuple and args and isinstance(args[0], type):
        return args[0] if issubclass(args[0], Unit) else None
    return None


class Profiles(_Frozen):
    """Per-slot multipliers of nominal values (price, bus and local loads, renewables)."""

    price_usd_per_kwh: PriceUsdPerKwh = Field(0.11, description="nominal utility price")
    price: Profile
    load: Profile
    renewables: Profile


class Timeseries(_Frozen):
    """Multi-day profiles from a shipped profile set (instead of per-slot multipliers).

    Bus loads follow the shape of their customer class, renewables the shape of their
    kind, the utility price the set's price shape (times ``price_usd_per_kwh``).
    Loads and renewables are scaled so that their peak over the run equals the nominal
    value; the price shape so that its mean is 1. ``start_day + days`` must fit in the
    profile set (14 days for ``simbench_2weeks``).
    """

    profile_set: Name = "simbench_2weeks"
    start_day: Annotated[int, Field(strict=True, ge=0, lt=MAX_DAYS)] = 0
    days: Annotated[int, Field(strict=True, gt=0, le=MAX_DAYS)] = 7
    price_usd_per_kwh: PriceUsdPerKwh = 0.11
    customer_classes: dict[CustomerClass, tuple[Integer, ...]] = Field(
        default_factory=dict,
        description="load buses per class, each bus at most once; unlisted load buses are"
        " assigned by bus id (scenarios/series.py)")


class Horizon(_Frozen):
    """Length of the optimisation horizon (one window for `solve`).

    With ``[timeseries]`` the slot length must divide a day and be one the hourly profiles
    can be resampled to: 1, 2, 3, 4, 6, 8, 12 or 24 hours, or 1/k of an hour (k = 2..60),
    and ``slots`` must not exceed the run's slots. With ``[profiles]`` any length from one
    minute to one day works.
    """

    slots: Annotated[int, Field(strict=True, gt=0, le=MAX_HORIZON_SLOTS)] = 6
    slot_hours: Annotated[float, _bounded(), AfterValidator(_check_slot_hours)] = 1.0


class Scenario(_Frozen):
    """A complete, validated gridcosim case."""

    name: Name = Field(description=f"also the default output file stem; {NAME_RULE}")
    description: Annotated[str, Field(strict=True)] = ""
    network: NetworkSpec = NetworkSpec()
    curtailment_cost_usd_per_mwh: Annotated[
        float, _bounded(0.0, MAX_CURTAILMENT_COST_USD_PER_MWH)] = 500.0
    svcs: tuple[SVC, ...] = Field((), max_length=MAX_UNITS_PER_KIND)
    microgrids: tuple[Microgrid, ...] = Field(max_length=MAX_MICROGRIDS)
    profiles: Profiles | None = None
    timeseries: Timeseries | None = None
    horizon: Horizon = Horizon()

    @field_validator("microgrids")
    @classmethod
    def _some_microgrid(cls, microgrids: tuple[Microgrid, ...]) -> tuple[Microgrid, ...]:
        if not microgrids:
            raise ValueError("at least one microgrid is needed for the DSO-microgrid"
                             " coordination")
        return microgrids

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
