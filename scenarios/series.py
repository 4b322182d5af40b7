"""The scenario's time series as DataFrames: price, class load shapes, renewable shapes.

Two sources give the same shape of result:

* per-slot multipliers (``[profiles]``, seed 000): every bus load and every renewable
  follows one multiplier column;
* a shipped multi-day profile set (``[timeseries]``): bus loads follow their customer
  class, renewables their kind (PV or wind; ``generic`` follows PV), the price the set's
  price shape. Loads and renewables are scaled to peak 1 over the run, the price to mean 1.

Customer classes of load buses not listed in the scenario are assigned by bus id:
last digit 0-5 residential, 6-7 commercial, 8 industrial, 9 agricultural.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from gridcosim.scenarios.network import NetworkData
from gridcosim.scenarios.schema import Scenario

CLASSES = ("residential", "commercial", "industrial", "agricultural")
KINDS = ("pv", "wind", "generic")
_DIGIT_CLASS = {**dict.fromkeys(range(6), "residential"), 6: "commercial", 7: "commercial",
                8: "industrial", 9: "agricultural"}


@dataclass(frozen=True, eq=False)
class ScenarioSeries:
    """Per-slot series of a scenario (index: slot number from 0).

    Attributes:
        price_usd_per_kwh: Utility price per slot.
        load: Load multiplier per customer class (columns :data:`CLASSES`).
        renewables: Renewable multiplier per kind (columns :data:`KINDS`).
        bus_class: Customer class of every load bus.
        slot_hours: Slot length.

    """

    price_usd_per_kwh: pd.Series
    load: pd.DataFrame
    renewables: pd.DataFrame
    bus_class: dict[int, str]
    slot_hours: float

    @property
    def slots(self) -> int:
        """Number of slots covered."""
        return len(self.price_usd_per_kwh)


def default_bus_class(bus: int) -> str:
    """The documented default class of a load bus (by the last digit of its id)."""
    return _DIGIT_CLASS[bus % 10]


def _bus_classes(scenario: Scenario, network: NetworkData) -> dict[int, str]:
    listed = {}
    if scenario.timeseries is not None:
        for cls, buses in scenario.timeseries.customer_classes.items():
            listed.update(dict.fromkeys(buses, cls))
    load_buses = [int(b) for b in network.load_p_kw.index if network.load_p_kw[b] > 0]
    return {b: listed.get(b, default_bus_class(b)) for b in load_buses}


def _from_multipliers(scenario: Scenario) -> tuple[pd.Series, pd.DataFrame, pd.DataFrame]:
    prof = scenario.profiles
    idx = pd.RangeIndex(len(prof.price), name="slot")
    price = pd.Series(prof.price, index=idx, dtype=float) * prof.price_usd_per_kwh
    load = pd.DataFrame({c: prof.load for c in CLASSES}, index=idx, dtype=float)
    res = pd.DataFrame({k: prof.renewables for k in KINDS}, index=idx, dtype=float)
    return price, load, res


def _from_profile_set(scenario: Scenario, lookahead_slots: int
                      ) -> tuple[pd.Series, pd.DataFrame, pd.DataFrame]:
    from gridcosim.scenarios.profiles import load_profile_set, slots_available, window

    ts = scenario.timeseries
    slot_hours = scenario.horizon.slot_hours
    start = int(round(ts.start_day * 24 / slot_hours))
    run = scenario.total_slots
    profile_set = load_profile_set(ts.profile_set)
    extra = max(0, min(lookahead_slots, slots_available(profile_set, slot_hours) - start - run))
    frame = window(profile_set, start, run + extra, slot_hours)
    frame = frame.reset_index(drop=True).rename_axis("slot")
    scale = frame.iloc[:run]  # the run's own days set the scale, not the lookahead
    load = frame[list(CLASSES)] / scale[list(CLASSES)].max()
    res = pd.DataFrame({"pv": frame["pv"] / scale["pv"].max(),
                        "wind": frame["wind"] / scale["wind"].max()})
    res["generic"] = res["pv"]
    price = frame["price"] / scale["price"].mean() * ts.price_usd_per_kwh
    return price.rename("price_usd_per_kwh"), load, res


def scenario_series(scenario: Scenario, network: NetworkData | None = None,
                    lookahead_slots: int = 0) -> ScenarioSeries:
    """The scenario's price, load and renewable series over all its slots.

    Args:
        scenario: A validated scenario.
        network: Its network (without it the bus classes are left empty, enough for a
            microgrid's window).
        lookahead_slots: Forecast slots wanted after the scenario's last slot (for the
            windows of a rolling horizon near the end of a run). A profile set gives as
            many as its data hold after the run's days, scaled like the run's days;
            per-slot multipliers give none.

    """
    if scenario.timeseries is None:
        price, load, res = _from_multipliers(scenario)
    else:
        price, load, res = _from_profile_set(scenario, lookahead_slots)
    classes = _bus_classes(scenario, network) if network is not None else {}
    return ScenarioSeries(price, load, res, classes, scenario.horizon.slot_hours)
