"""The time series of a market scenario: customers' profiles, DER availability, the LMP.

Rules (docs/market.md):

* A **residential** customer (a feeder load not listed under another class) follows its
  own measured daily profile (the feeder's load shape, 1-minute data, hourly means) times
  its nominal power. Day ``d`` of the run scales that day by the profile set's
  residential level: the mean of day ``d``'s residential shape over the mean of the run's
  first day (so the first day is the measurement itself).
* A customer of another **class** follows that class's shape from the profile set,
  scaled so that its first-day mean is the class's ``nominal_kw``.
* Reactive consumption keeps each load's power factor.
* **Wind** and **PV** DERs may produce up to ``p_max_kw`` times their kind's shape (per
  unit of the profile's annual peak); a dispatchable DER up to ``p_max_kw``.
* The upstream microgrid's **LMP** maps each day's price shape affinely onto
  ``[lmp_min, lmp_max]``: the dearest hour of every day costs ``lmp_max_usd_per_kwh``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gridcosim.scenarios.market_schema import MarketDerKind, MarketSpec
from gridcosim.scenarios.phase_network import PhaseNetwork
from gridcosim.scenarios.profiles import load_profile_set, scaled_to_nominal, window
from gridcosim.scenarios.schema import Scenario

HOURS_PER_DAY = 24


@dataclass(frozen=True, eq=False)
class MarketSeries:
    """Everything a market run knows in advance, slot by slot (hourly).

    Attributes:
        customers: The customers (feeder load names, in the feeder's order).
        classes: Each customer's class.
        p0_kw: Original (forecast) consumption, customers × slots.
        q_per_p: Each customer's reactive over active consumption.
        available_kw: Per DER name, its largest output per slot.
        lmp_usd_per_kwh: The upstream microgrid's price per slot.
        slot_hours: Slot length (hourly).

    """

    customers: tuple[str, ...]
    classes: tuple[str, ...]
    p0_kw: np.ndarray
    q_per_p: np.ndarray
    available_kw: dict[str, np.ndarray]
    lmp_usd_per_kwh: np.ndarray
    slot_hours: float = 1.0

    @property
    def slots(self) -> int:
        """Slots the series cover."""
        return int(self.p0_kw.shape[1])


def market_series(scenario: Scenario, network: PhaseNetwork) -> MarketSeries:
    """The series of a validated market scenario on its feeder."""
    market, ts = scenario.market, scenario.timeseries
    if market is None or ts is None:
        raise ValueError("market_series needs a scenario with [market] and [timeseries]")
    frame = window(load_profile_set(ts.profile_set), ts.start_day * HOURS_PER_DAY,
                   ts.days * HOURS_PER_DAY).reset_index(drop=True)
    classes = customer_classes(market, network)
    p0 = np.vstack([_original_kw(network, name, cls, market, frame)
                    for name, cls in classes.items()])
    loads = network.loads
    q_per_p = np.divide(loads["q_kvar"].to_numpy(float), loads["p_kw"].to_numpy(float),
                        out=np.zeros(len(loads)), where=loads["p_kw"].to_numpy(float) > 0)
    return MarketSeries(tuple(classes), tuple(classes.values()), p0, q_per_p,
                        {d.name: _available_kw(d.kind, d.p_max_kw, frame) for d in market.ders},
                        daily_lmp(frame["price"].to_numpy(float), market))


def customer_classes(market: MarketSpec, network: PhaseNetwork) -> dict[str, str]:
    """Each feeder load's class (residential unless listed), in the feeder's order."""
    listed = {name: cls for cls, names in market.customers.classes.items() for name in names}
    return {str(name): listed.get(str(name), "residential") for name in network.loads.index}


def _original_kw(network: PhaseNetwork, name: str, cls: str, market: MarketSpec,
                 frame: pd.DataFrame) -> np.ndarray:
    if cls != "residential":
        nominal = market.customers.nominal_kw[cls]  # type: ignore[index]
        return scaled_to_nominal(frame[cls], HOURS_PER_DAY, nominal).to_numpy(float)
    levels = residential_day_levels(frame)
    return np.tile(measured_profile_kw(network, name), len(levels) // HOURS_PER_DAY) * levels


def measured_profile_kw(network: PhaseNetwork, name: str) -> np.ndarray:
    """A load's measured daily profile as hourly means, kW (its nominal times its shape)."""
    nominal = float(network.loads.at[name, "p_kw"])
    if network.load_shapes is None or name not in network.load_shapes:
        return np.full(HOURS_PER_DAY, nominal)
    minutes = network.load_shapes[name].to_numpy(float)
    return nominal * minutes.reshape(HOURS_PER_DAY, -1).mean(axis=1)


def residential_day_levels(frame: pd.DataFrame) -> np.ndarray:
    """Per slot, its day's residential level relative to the run's first day."""
    daily = frame["residential"].to_numpy(float).reshape(-1, HOURS_PER_DAY).mean(axis=1)
    return np.repeat(daily / daily[0], HOURS_PER_DAY)


def _available_kw(kind: MarketDerKind, p_max_kw: float, frame: pd.DataFrame) -> np.ndarray:
    if kind is MarketDerKind.DISPATCHABLE:
        return np.full(len(frame), p_max_kw)
    return p_max_kw * np.clip(frame[str(kind)].to_numpy(float), 0.0, 1.0)


def daily_lmp(price_shape: np.ndarray, market: MarketSpec) -> np.ndarray:
    """Each day's price shape mapped onto ``[lmp_min, lmp_max]`` ($/kWh per slot)."""
    up = market.upstream
    days = price_shape.reshape(-1, HOURS_PER_DAY)
    low, high = days.min(axis=1, keepdims=True), days.max(axis=1, keepdims=True)
    unit = np.divide(days - low, high - low, out=np.ones_like(days), where=high > low)
    return (up.lmp_min_usd_per_kwh
            + (up.lmp_max_usd_per_kwh - up.lmp_min_usd_per_kwh) * unit).ravel()
