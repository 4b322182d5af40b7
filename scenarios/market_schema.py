"""The ``[market]`` table: a transactive energy market with price-based demand response.

Seed 001's market on a three-phase feeder (docs/market.md): the feeder's loads are
price-responsive customers of four classes, a load aggregator sets their personalised
prices, DERs and the upstream microgrid at the root bus sell energy, a market operator
clears the transactions and the DSO checks every clearing on the three-phase network.
Defaults are seed 001's Appendix C values; the parameters not given there (the DERs'
buses, the wind and PV ratings, the non-residential customers and their sizes) are the
scenario's, and ``tem-eulv`` documents its choices.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from gridcosim.scenarios.fields import (
    MAX_UNITS_PER_KIND,
    CapacityKw,
    CostUsdPerKwh,
    CustomerClass,
    Frozen,
    Integer,
    Name,
    PriceUsdPerKwh,
    bounded,
)

#: The phases a market DER may be connected to: three-phase balanced or one phase.
DER_PHASES = ("abc", "a", "b", "c")


class MarketDerKind(StrEnum):
    """What a market DER is: its availability and cost follow from its kind."""

    DISPATCHABLE = "dispatchable"  # 0..p_max_kw at its cost
    WIND = "wind"  # 0..p_max_kw times the wind profile
    PV = "pv"  # 0..p_max_kw times the PV profile


class PricingPolicy(StrEnum):
    """How the load aggregator sets personalised prices (docs/market.md)."""

    FLAT = "flat"  # one price all day: the cap spread evenly
    TIME_OF_USE = "tou"  # the dearest half of the day at the upper price, the rest lower
    PROFIT = "qp"  # the aggregator's profit-maximising prices (exact, HiGHS QPs)


class UtilityCalibration(StrEnum):
    """Which utility parameters the customers have (docs/market.md, calibration)."""

    CALIBRATED = "calibrated"  # beta per customer and slot: the profile is the answer at
    #                            the reference price
    SEED = "seed"  # seed 001's alpha and beta for everyone


class CutModel(StrEnum):
    """What the DSO checks a clearing with, and so what its cuts linearise."""

    AC = "ac"  # the three-phase AC power flow; slopes by forward differences
    LINDIST3FLOW = "lindist3flow"  # LinDist3Flow (exact linear cuts: the centralised optimum)


class MarketDer(Frozen):
    """A distributed energy resource selling into the market."""

    name: Name = Field(description="DER name, unique within the scenario")
    kind: MarketDerKind = Field(description="dispatchable, wind or pv")
    bus: Integer = Field(description="network bus it is connected to (the feeder's bus id)")
    phases: str = Field("abc", description="'abc' (balanced, a third per phase) or one phase")
    p_max_kw: CapacityKw = Field(
        description="largest output (wind, pv: rated output, times the kind's profile)")
    cost_usd_per_kwh: CostUsdPerKwh = Field(0.0, description="marginal generation cost")

    @model_validator(mode="after")
    def _phases(self) -> MarketDer:
        if self.phases not in DER_PHASES:
            raise ValueError(f"phases must be one of {list(DER_PHASES)} (got {self.phases!r})")
        return self


class MarketCustomers(Frozen):
    """The feeder's loads as price-responsive customers."""

    classes: dict[CustomerClass, tuple[Name, ...]] = Field(
        default_factory=dict, description=(
            "load names per class; an unlisted load is residential (its own measured "
            "daily profile); a load of another class follows that class's profile"))
    nominal_kw: dict[CustomerClass, Annotated[float, bounded(0.0, 1e4)]] = Field(
        default_factory=dict, description=(
            "first-day mean consumption of one customer of each non-residential class"))
    utility: UtilityCalibration = Field(
        UtilityCalibration.CALIBRATED, description="utility parameters: calibrated or seed")
    alpha_usd_per_kwh: PriceUsdPerKwh = Field(0.25, description="utility slope alpha")
    beta_usd_per_kwh_per_kw: Annotated[float, bounded(high=10.0, gt=0.0)] = Field(
        0.002, description="utility curvature beta (used with utility = seed)")
    reference_price_usd_per_kwh: PriceUsdPerKwh = Field(
        0.18, description="price at which a calibrated customer consumes its profile")


class Aggregator(Frozen):
    """The load aggregator: personalised prices within bounds and a daily cap."""

    policy: PricingPolicy = Field(PricingPolicy.PROFIT, description="pricing policy")
    price_min_usd_per_kwh: PriceUsdPerKwh = Field(0.12, description="least price")
    price_max_usd_per_kwh: PriceUsdPerKwh = Field(0.24, description="largest price")
    daily_cap_usd: Annotated[float, bounded(high=100.0, gt=0.0)] = Field(
        4.32, description="largest sum of a customer's 24 hourly prices in a day")
    max_rounds: Annotated[int, Field(strict=True, ge=1, le=50)] = Field(
        5, description="pricing rounds per day (re-pricing at the cleared prices)")

    @model_validator(mode="after")
    def _bounds(self) -> Aggregator:
        if self.price_min_usd_per_kwh >= self.price_max_usd_per_kwh:
            raise ValueError(f"price_min_usd_per_kwh ({self.price_min_usd_per_kwh}) must be "
                             f"below price_max_usd_per_kwh ({self.price_max_usd_per_kwh})")
        if self.daily_cap_usd < 24 * self.price_min_usd_per_kwh:
            raise ValueError(f"daily_cap_usd ({self.daily_cap_usd}) is below 24 slots at "
                             f"price_min_usd_per_kwh ({24 * self.price_min_usd_per_kwh:g})")
        return self


class Upstream(Frozen):
    """The upstream microgrid at the root bus: energy at the day's LMP profile."""

    p_max_kw: CapacityKw = Field(250.0, description="transformer limit on the purchase")
    lmp_min_usd_per_kwh: PriceUsdPerKwh = Field(
        0.04, description="each day's lowest LMP (the profile set's price shape is mapped "
        "affinely onto lmp_min..lmp_max, day by day)")
    lmp_max_usd_per_kwh: PriceUsdPerKwh = Field(
        0.224, description="each day's highest LMP (seed 001: the DERs' price ceiling)")

    @model_validator(mode="after")
    def _lmp_range(self) -> Upstream:
        if self.lmp_min_usd_per_kwh >= self.lmp_max_usd_per_kwh:
            raise ValueError(f"lmp_min_usd_per_kwh ({self.lmp_min_usd_per_kwh}) must be below "
                             f"lmp_max_usd_per_kwh ({self.lmp_max_usd_per_kwh})")
        return self


class MarketSpec(Frozen):
    """The transactive energy market (seed 001)."""

    customers: MarketCustomers = Field(MarketCustomers(), description="the customers")
    aggregator: Aggregator = Field(Aggregator(), description="the load aggregator")
    ders: tuple[MarketDer, ...] = Field(
        (), max_length=MAX_UNITS_PER_KIND, description="DERs selling into the market")
    upstream: Upstream = Field(Upstream(), description="the upstream microgrid")
    der_price_max_usd_per_kwh: PriceUsdPerKwh = Field(
        0.224, description="largest selling price a DER is paid")
    line_p_max_pu: Annotated[float, bounded(high=100.0, gt=0.0)] = Field(
        0.5, description="|P| limit per line and phase, p.u. of the per-phase base S_b/3")
    line_q_max_pu: Annotated[float, bounded(high=100.0, gt=0.0)] = Field(
        0.4, description="|Q| limit per line and phase, p.u. of the per-phase base S_b/3")
    cut_model: CutModel = Field(CutModel.AC, description="what the DSO checks clearings with")
    violation_tolerance_pu: Annotated[float, bounded(1e-9, 1e-2)] = Field(
        1e-6, description="a limit counts as violated beyond this (p.u.)")
    max_iterations: Annotated[int, Field(strict=True, ge=1, le=1000)] = Field(
        50, description="market clearings per pricing round before giving up")
