"""Typed, frozen, validated description of a gridcosim case (a scenario file's tables).

A :class:`Scenario` is everything a run needs besides the network data files: base values
and limits, the curtailment cost, SVCs, microgrids with their units
(:mod:`gridcosim.scenarios.units`), the price / load / renewable profiles and the
horizon. Units are in the field names (kW, kvar, kWh, $, hours, p.u.). Field-level checks
live on the models; cross-field checks (profile lengths, bus existence, duplicate names)
live in :mod:`gridcosim.scenarios.checks` so that every problem of a file can be reported
at once. Every number must be finite and within the limits of
:mod:`gridcosim.scenarios.fields`; every name follows its ``NAME_RULE``. The scenario
format reference (``docs/scenario_format.md``) is generated from these classes.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from gridcosim.scenarios.fields import (
    MAX_BASE_KV,
    MAX_BASE_KVA,
    MAX_CURTAILMENT_COST_USD_PER_MWH,
    MAX_DAYS,
    MAX_HORIZON_SLOTS,
    MAX_LOAD_SCALE,
    MAX_MICROGRIDS,
    MAX_UNITS_PER_KIND,
    MIN_BASE_KV,
    MIN_BASE_KVA,
    NAME_RULE,
    BusRef,
    CapacityKw,
    CustomerClass,
    Frozen,
    Integer,
    Name,
    NonNegativeKw,
    PowerKw,
    PriceUsdPerKwh,
    Profile,
    bounded,
    check_slot_hours,
    scenario_dir,
    timeseries_only,
)
from gridcosim.scenarios.market_schema import MarketSpec
from gridcosim.scenarios.network_sources import PhaseModel, parse_source, resolve_path
from gridcosim.scenarios.timeseries_schema import (
    ColumnName,
    SeriesColumn,
    check_time_zone,
    resolve_file,
)
from gridcosim.scenarios.units import CurtailableLoad, Generator, Renewable, Storage, Unit

__all__ = ["SVC", "CurtailableLoad", "Generator", "Horizon", "Microgrid", "NetworkSpec",
           "Profiles", "Renewable", "Scenario", "Storage", "Timeseries", "Unit"]


class AcEngine(StrEnum):
    """The AC power-flow engine of a three-phase network (docs/formulation.md §6b)."""

    AUTO = "auto"  # pandapower runpp_3ph where it can model the feeder, else OpenDSS
    PANDAPOWER = "pandapower"
    OPENDSS = "opendss"


class NetworkSpec(Frozen):
    """The distribution network: where it comes from, base values and voltage limits.

    ``source`` is a built-in data set name (``"ieee123"``), ``"pandapower:<case>"`` (a
    ``pandapower.networks`` case such as ``case33bw``), ``"simbench:<code>"`` (needs the
    ``simbench`` extra), or the path of a pandapower JSON file (``*.json``) or an OpenDSS
    master file (``*.dss``), relative to the scenario file. Buses are referenced by the
    source's own numbering: the pandapower bus index; an OpenDSS bus's integer name (or
    its name as a string). docs/networks.md describes what is read from each source.

    The base values take effect: the branch impedances in p.u. are computed from the
    source's ohms with ``z_base = kv**2 * 1000 / base_kva``, ``kv`` the voltage level of
    the branch. ``base_kva`` only changes the per-unit scaling (not the physics);
    ``base_kv`` is the feeder's nominal voltage: left out, the source's own (4.16 kV for
    ``ieee123``, the root bus's nominal voltage of a pandapower or OpenDSS source).
    """

    source: Annotated[str, Field(strict=True, max_length=4096)] = Field(
        "ieee123", description="built-in name, pandapower:<case>, simbench:<code>, or a "
        ".json (pandapower) or .dss (OpenDSS) file relative to the scenario file")
    base_kva: Annotated[float, bounded(MIN_BASE_KVA, MAX_BASE_KVA)] = Field(
        1000.0, description="power base of the per-unit system")
    base_kv: Annotated[float, bounded(MIN_BASE_KV, MAX_BASE_KV)] | None = Field(
        None, description="line-to-line voltage base, the feeder's nominal voltage (left "
        "out: the source's own)")
    phases: PhaseModel = Field(
        PhaseModel.BALANCED, description="reading of a pandapower or SimBench source: "
        "balanced (LinDistFlow) or three-phase (LinDist3Flow); OpenDSS files and the "
        "shipped three-phase feeders are always three-phase")
    root_bus: Annotated[str, Field(strict=True, min_length=1, max_length=256)] | None = Field(
        None, description="OpenDSS bus name of the substation (slack) bus; left out: the "
        "bus of Vsource.source")
    v_ref_pu: Annotated[float, bounded(gt=0.8, lt=1.2)] = Field(
        1.0, description="voltage held at the substation (root) bus")
    v_min_pu: Annotated[float, bounded(gt=0.5, lt=1.5)] = Field(
        0.9, description="lowest allowed bus voltage")
    v_max_pu: Annotated[float, bounded(gt=0.5, lt=1.5)] = Field(
        1.1, description="highest allowed bus voltage")
    load_scale: Annotated[float, bounded(high=MAX_LOAD_SCALE, gt=0.0)] = Field(
        1.0, description="factor on every bus load of the data set (not microgrid loads)")
    ac_engine: AcEngine = Field(
        AcEngine.AUTO, description=(
            "three-phase AC power-flow engine: auto takes pandapower's runpp_3ph for a "
            "feeder read from a pandapower net it can model (every line three-phase and "
            "transposed, only three-phase capacitors) and OpenDSS otherwise (feeders read "
            "from OpenDSS files); balanced networks always use pandapower's balanced power "
            "flow"))

    @field_validator("source")
    @classmethod
    def _source(cls, value: str, info: ValidationInfo) -> str:
        parse_source(value)  # raises ValueError with the reason
        return resolve_path(value, scenario_dir(info))

    @model_validator(mode="after")
    def _band(self) -> NetworkSpec:
        if self.v_min_pu >= self.v_max_pu:
            raise ValueError(f"v_min_pu ({self.v_min_pu}) must be below v_max_pu ({self.v_max_pu})")
        if not self.v_min_pu <= self.v_ref_pu <= self.v_max_pu:
            raise ValueError(f"v_ref_pu ({self.v_ref_pu}) must lie inside [v_min_pu, v_max_pu]")
        return self


class SVC(Frozen):
    """A static var compensator owned by the DSO."""

    bus: BusRef = Field(description="network bus it is connected to (id, or name as a string)")
    q_min_kvar: PowerKw = Field(description="least reactive output (absorbing when negative)")
    q_max_kvar: PowerKw = Field(description="largest reactive output")

    @model_validator(mode="after")
    def _range(self) -> SVC:
        if self.q_min_kvar > self.q_max_kvar:
            raise ValueError(
                f"q_min_kvar ({self.q_min_kvar}) exceeds q_max_kvar ({self.q_max_kvar})"
            )
        return self


class Microgrid(Frozen):
    """A microgrid behind one point of common coupling (PCC), run by its own controller."""

    name: Name = Field(description="microgrid name, unique within the scenario")
    bus: BusRef = Field(
        description="network bus of its point of common coupling (id, or name as a string)")
    pcc_p_max_kw: CapacityKw = Field(description="published |P_ex| rating at the PCC")
    pcc_q_max_kvar: CapacityKw = Field(description="published |Q_ex| rating at the PCC")
    local_load_kw: NonNegativeKw = Field(
        0.0, description="nominal local active load behind the PCC (times the load shape)")
    local_load_kvar: NonNegativeKw = Field(
        0.0, description="nominal local reactive load (times the load shape)")
    local_load_class: CustomerClass = timeseries_only(
        "residential", "load shape of the local load with [timeseries]")
    generators: tuple[Generator, ...] = Field(
        (), max_length=MAX_UNITS_PER_KIND, description="dispatchable generators")
    renewables: tuple[Renewable, ...] = Field(
        (), max_length=MAX_UNITS_PER_KIND, description="renewable units")
    storage: tuple[Storage, ...] = Field(
        (), max_length=MAX_UNITS_PER_KIND, description="batteries")
    curtailable_loads: tuple[CurtailableLoad, ...] = Field(
        (), max_length=MAX_UNITS_PER_KIND, description="loads under interruptible contracts")

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


class Profiles(Frozen):
    """Per-slot multipliers of nominal values (price, bus and local loads, renewables)."""

    price_usd_per_kwh: PriceUsdPerKwh = Field(0.11, description="nominal utility price")
    price: Profile = Field(description="multiplier of price_usd_per_kwh per slot")
    load: Profile = Field(
        description="multiplier of every bus load and microgrid load per slot")
    renewables: Profile = Field(description="multiplier of every renewable forecast per slot")


class Timeseries(Frozen):
    """Multi-day time series: a shipped profile set, or a CSV / Parquet file of your own.

    With a profile set (the default, ``simbench_2weeks``) bus loads follow the shape of
    their customer class, renewables the shape of their kind, the utility price the set's
    price shape (times ``price_usd_per_kwh``). Loads and renewables are scaled so that
    their peak over the run equals the nominal value; the price shape so that its mean is
    1. ``start_day + days`` must fit in the profile set (14 days for ``simbench_2weeks``).

    With ``file`` the series come from a table with a timestamp column (path relative to
    the scenario file); each ``[[timeseries.columns]]`` entry maps one column to the price,
    a customer class, a bus, a microgrid unit, a microgrid's local load or a renewable
    kind, as a multiplier or an absolute value, taken as given (not rescaled). What no
    column drives stays at its nominal value. ``profile_set`` and ``start_day`` do not
    apply; the run starts at ``start`` and covers ``days`` days. Resampling, time zones
    and missing values: docs/timeseries.md.
    """

    profile_set: Name = Field("simbench_2weeks", description="shipped profile set")
    start_day: Annotated[int, Field(strict=True, ge=0, lt=MAX_DAYS)] = Field(
        0, description="first day of the set the run uses")
    days: Annotated[int, Field(strict=True, gt=0, le=MAX_DAYS)] = Field(
        7, description="days the run covers")
    price_usd_per_kwh: PriceUsdPerKwh = Field(
        0.11, description="mean utility price (times the set's price shape); with a file,"
        " the price without a price column and the base of a price multiplier column")
    customer_classes: dict[CustomerClass, tuple[Integer, ...]] = Field(
        default_factory=dict,
        description="load buses per class, each bus at most once; an unlisted load bus"
        " gets its class from the last digit of its id: 0-5 residential, 6-7 commercial,"
        " 8 industrial, 9 agricultural")
    file: Path | None = Field(
        None, description="CSV or Parquet time-series file (.csv, .parquet, .pq), relative"
        " to the scenario file, instead of a profile set")
    time_column: ColumnName = Field("time", description="the file's timestamp column")
    time_zone: Annotated[str, Field(strict=True), AfterValidator(check_time_zone)] = Field(
        "UTC", description="IANA zone of naive timestamps (aware ones are converted to it)"
        " and of the recorded time coordinate")
    start: datetime | None = Field(
        None, description="ISO timestamp of the run's first slot, a timestamp of the file"
        " (naive: in time_zone); left out: the file's first")
    columns: tuple[SeriesColumn, ...] = Field(
        (), max_length=10_000, description="what the file's columns drive")

    @field_validator("file")
    @classmethod
    def _file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else resolve_file(value, scenario_dir(info))

    @model_validator(mode="after")
    def _one_source(self) -> Timeseries:
        # fields away from their defaults (a dumped scenario lists every field)
        fields = type(self).model_fields
        changed = [f for f in ("time_column", "time_zone", "start", "columns", "profile_set",
                               "start_day") if getattr(self, f) != fields[f].default]
        if self.file is None:
            wrong = [f for f in changed if f not in ("profile_set", "start_day")]
            if wrong:
                raise ValueError(f"{', '.join(wrong)} only apply with a time-series file")
        else:
            wrong = [f for f in changed if f in ("profile_set", "start_day")]
            if wrong:
                raise ValueError(f"{', '.join(wrong)} do not apply with a time-series file")
            if not self.columns:
                raise ValueError("a time-series file needs at least one [[timeseries.columns]]")
        return self


class Horizon(Frozen):
    """Length of the optimisation horizon (one window for `solve`).

    With ``[timeseries]`` the slot length must divide a day and be one the hourly profiles
    can be resampled to: 1, 2, 3, 4, 6, 8, 12 or 24 hours, or 1/k of an hour (k = 2..60),
    and ``slots`` must not exceed the run's slots; with a time-series file it must divide
    a day and be a whole multiple or a whole fraction of the file's sampling interval.
    With ``[profiles]`` any length from one minute to one day works.
    """

    slots: Annotated[int, Field(strict=True, gt=0, le=MAX_HORIZON_SLOTS)] = Field(
        6, description="slots of one optimisation window (the whole run with [profiles])")
    slot_hours: Annotated[float, bounded(), AfterValidator(check_slot_hours)] = Field(
        1.0, description="slot length, from one minute to one day")


class Scenario(Frozen):
    """A complete, validated gridcosim case."""

    name: Name = Field(description=f"also the default output file stem; {NAME_RULE}")
    description: Annotated[str, Field(strict=True)] = Field("", description="free text")
    network: NetworkSpec = Field(NetworkSpec(), description="the distribution network")
    curtailment_cost_usd_per_mwh: Annotated[
        float, bounded(0.0, MAX_CURTAILMENT_COST_USD_PER_MWH)] = Field(
        500.0, description="cost rho of curtailing load, at any bus or microgrid")
    svcs: tuple[SVC, ...] = Field(
        (), max_length=MAX_UNITS_PER_KIND, description="the DSO's static var compensators")
    microgrids: tuple[Microgrid, ...] = Field(
        (), max_length=MAX_MICROGRIDS,
        description="the networked microgrids, at least one unless the scenario is a market")
    market: MarketSpec | None = Field(
        None, description="a transactive energy market (seed 001) instead of microgrids")
    profiles: Profiles | None = Field(
        None, description="per-slot multipliers (give this or [timeseries])")
    timeseries: Timeseries | None = Field(
        None, description="multi-day profile set or time-series file (give this or"
        " [profiles])")
    horizon: Horizon = Field(Horizon(), description="the optimisation window")

    @model_validator(mode="after")
    def _one_time_source(self) -> Scenario:
        if (self.profiles is None) == (self.timeseries is None):
            raise ValueError("give exactly one of [profiles] (per-slot multipliers) or "
                             "[timeseries] (multi-day profile set or time-series file)")
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
