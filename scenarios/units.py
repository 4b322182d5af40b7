"""The units a microgrid may hold, one table per DER kind (``[[microgrids.<field>]]``).

Each kind is a :class:`Unit` subclass listed by a field of
:class:`~gridcosim.scenarios.schema.Microgrid`; its model and agent modules read the
fields declared here (:mod:`gridcosim.simulator.models.ders`, :mod:`gridcosim.agents`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from gridcosim.scenarios.fields import (
    MAX_STARTUP_COST_USD,
    CapacityKw,
    CapacityKwh,
    CostUsdPerKwh,
    CustomerClass,
    Efficiency,
    Frozen,
    Name,
    NonNegativeKw,
    NonNegativeKwh,
    PowerFactor,
    PowerKw,
    bounded,
    timeseries_only,
)


class Unit(Frozen):
    """A unit inside a microgrid (every kind of DER derives from it)."""

    name: Name = Field(description="unit name, unique within the scenario")


class Generator(Unit):
    """A dispatchable generator with on/off commitment, start-up cost and ramp limit."""

    cost_usd_per_kwh: CostUsdPerKwh = Field(description="energy cost of its output")
    startup_cost_usd: Annotated[float, bounded(0.0, MAX_STARTUP_COST_USD)] = Field(
        0.0, description="cost of each off-to-on transition")
    p_min_kw: NonNegativeKw = Field(description="least active output when on")
    p_max_kw: CapacityKw = Field(description="largest active output")
    q_min_kvar: PowerKw = Field(description="least reactive output when on")
    q_max_kvar: PowerKw = Field(description="largest reactive output when on")
    ramp_kw_per_slot: CapacityKw = Field(
        description="largest change of output between slots, start-up and shut-down included;"
        " at least p_min_kw")
    initial_on: Annotated[bool, Field(strict=True)] = Field(
        False, description="committed in the slot before the first")
    initial_p_kw: NonNegativeKw = Field(
        0.0, description="output in the slot before the first (0 when off)")

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

    kind: Literal["pv", "wind", "generic"] = timeseries_only(
        "generic", "profile shape with [timeseries] (generic follows pv)")
    forecast_kw: NonNegativeKw = Field(
        description="nominal available output (times the profile)")
    min_power_factor: PowerFactor = Field(
        description="|q| <= p tan(acos pf): the reactive capability at output p")


class Storage(Unit):
    """A battery with charge / discharge limits, energy limits and efficiencies."""

    p_charge_max_kw: CapacityKw = Field(description="largest charging power")
    p_discharge_max_kw: CapacityKw = Field(description="largest discharging power")
    e_min_kwh: NonNegativeKwh = Field(description="least stored energy")
    e_max_kwh: CapacityKwh = Field(description="largest stored energy")
    e_initial_kwh: NonNegativeKwh = Field(description="stored energy before the first slot")
    eta_charge: Efficiency = Field(description="charging efficiency")
    eta_discharge: Efficiency = Field(description="discharging efficiency")

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


class CurtailableLoad(Unit):
    """A load under an interruptible-supply contract: part of it may be curtailed, at a price."""

    demand_kw: NonNegativeKw = Field(description="nominal demand (times the load shape)")
    load_class: CustomerClass = timeseries_only(
        "residential", "load shape followed with [timeseries]")
    power_factor: PowerFactor = Field(1.0, description="of the served demand (lagging)")
    max_curtail_fraction: Annotated[float, bounded(0.0, 1.0)] = Field(
        description="largest share of the demand that may be curtailed in a slot")
    curtail_cost_usd_per_kwh: CostUsdPerKwh = Field(description="paid per curtailed kWh")
