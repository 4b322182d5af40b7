"""The scenario's time series as DataFrames: price, class load shapes, renewable shapes.

Three sources give the same shape of result:

* per-slot multipliers (``[profiles]``, seed 000): every bus load and every renewable
  follows one multiplier column;
* a shipped multi-day profile set (``[timeseries]``): bus loads follow their customer
  class, renewables their kind (PV or wind; ``generic`` follows PV), the price the set's
  price shape. Loads and renewables are scaled to peak 1 over the run, the price to mean 1;
* a time-series file (``[timeseries] file``, :mod:`gridcosim.scenarios.timeseries_files`):
  its columns drive the price, class and kind shapes (taken as given; what no column
  drives stays at 1, the price at ``price_usd_per_kwh``) and may override single bus
  loads, microgrid units and local loads (:class:`LoadOverride`).

Every source with dates has a :class:`TimeOrigin` (:func:`time_origin`): the start of the
run's first slot and its time zone, which the recorder writes as the time coordinate.

Customer classes of load buses not listed in the scenario are assigned by bus id:
last digit 0-5 residential, 6-7 commercial, 8 industrial, 9 agricultural.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gridcosim.scenarios.network import NetworkData
from gridcosim.scenarios.schema import Microgrid, Scenario
from gridcosim.scenarios.timeseries_schema import SeriesColumn, SeriesQuantity, SeriesTarget

CLASSES = ("residential", "commercial", "industrial", "agricultural")
KINDS = ("pv", "wind", "generic")
_DIGIT_CLASS = {**dict.fromkeys(range(6), "residential"), 6: "commercial", 7: "commercial",
                8: "industrial", 9: "agricultural"}


@dataclass(frozen=True, eq=False)
class LoadOverride:
    """One load's or unit's own series from a time-series file (instead of a shape).

    Attributes:
        values: One value per slot (kW, or a multiplier of the nominal kW).
        quantity: :attr:`SeriesQuantity.KW` or :attr:`SeriesQuantity.MULTIPLIER`.

    """

    values: np.ndarray
    quantity: SeriesQuantity

    def kw(self, nominal_kw: float, span: slice) -> np.ndarray:
        """Active power over ``span``: the values, or ``nominal_kw`` times them."""
        values = self.values[span]
        return values.copy() if self.quantity is SeriesQuantity.KW else nominal_kw * values

    def multiplier(self, nominal_kw: float, span: slice) -> np.ndarray:
        """Multiplier of ``nominal_kw`` over ``span`` (kW divided by it; 0 if it is 0)."""
        values = self.values[span]
        if self.quantity is SeriesQuantity.MULTIPLIER:
            return values.copy()
        if nominal_kw > 0:
            return values / nominal_kw
        return np.zeros_like(values)


@dataclass(frozen=True, eq=False)
class ScenarioSeries:
    """Per-slot series of a scenario (index: slot number from 0).

    Attributes:
        price_usd_per_kwh: Utility price per slot.
        load: Load multiplier per customer class (columns :data:`CLASSES`).
        renewables: Renewable multiplier per kind (columns :data:`KINDS`).
        bus_class: Customer class of every load bus.
        slot_hours: Slot length.
        bus_loads: Buses whose load a time-series file gives (instead of their class
            shape, ``load_scale`` for kW and any measured load shape).
        unit_loads: Renewables and curtailable loads (by unit name) whose forecast a file
            gives (instead of their kind's or class's shape).
        local_loads: Microgrids (by name) whose local load a file gives.

    """

    price_usd_per_kwh: pd.Series
    load: pd.DataFrame
    renewables: pd.DataFrame
    bus_class: dict[int, str]
    slot_hours: float
    bus_loads: Mapping[int, LoadOverride] = field(default_factory=dict)
    unit_loads: Mapping[str, LoadOverride] = field(default_factory=dict)
    local_loads: Mapping[str, LoadOverride] = field(default_factory=dict)

    @property
    def slots(self) -> int:
        """Number of slots covered."""
        return len(self.price_usd_per_kwh)

    def unit_kw(self, name: str, nominal_kw: float, shape: pd.Series, span: slice
                ) -> np.ndarray:
        """A unit's forecast over ``span``: its file series, else nominal times ``shape``."""
        override = self.unit_loads.get(name)
        if override is None:
            return nominal_kw * shape.to_numpy()[span]
        return override.kw(nominal_kw, span)

    def local_load(self, mg: Microgrid, span: slice) -> tuple[np.ndarray, np.ndarray]:
        """A microgrid's local load (kW, kvar) over ``span``.

        Nominal values times the class shape, or the file's series; the reactive load keeps
        the nominal ratio ``local_load_kvar / local_load_kw`` (0 if the nominal kW is 0).
        """
        override = self.local_loads.get(mg.name)
        if override is None:
            mult = self.load[mg.local_load_class].to_numpy()[span]
            return mg.local_load_kw * mult, mg.local_load_kvar * mult
        mult = override.multiplier(mg.local_load_kw, span)
        return override.kw(mg.local_load_kw, span), mg.local_load_kvar * mult

    def with_bus_loads(self, mult: np.ndarray, buses: Sequence[int], load_p_kw: pd.Series,
                       load_scale: float, span: slice) -> np.ndarray:
        """Bus multipliers (``buses`` x slots) with the file's buses put in.

        A multiplier column is times ``load_scale`` (like the class shape it replaces); a kW
        column is the bus's load as it is (its multiplier: kW over the nominal kW).
        """
        if not self.bus_loads:
            return mult
        out = np.array(mult, dtype=float, copy=True)
        for i, bus in enumerate(buses):
            override = self.bus_loads.get(bus)
            if override is None:
                continue
            row = override.multiplier(float(load_p_kw.get(bus, 0.0)), span)
            out[i] = row * load_scale if override.quantity is SeriesQuantity.MULTIPLIER else row
        return out


@dataclass(frozen=True)
class TimeOrigin:
    """The start of a run's first slot, for the recorded time coordinate.

    Attributes:
        start: Start of slot 0, time-zone aware.
        time_zone: IANA name of the zone the run's timestamps are given in.

    """

    start: pd.Timestamp
    time_zone: str

    @property
    def cf_units(self) -> str:
        """CF units of the time coordinate, ``hours since <ISO start with UTC offset>``."""
        return f"hours since {self.start.isoformat()}"


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


def _from_file(scenario: Scenario, lookahead_slots: int) -> dict[str, object]:
    """The fields of a :class:`ScenarioSeries` from the scenario's time-series file."""
    from gridcosim.scenarios.timeseries_files import file_series

    ts = scenario.timeseries
    values = file_series(ts, scenario.horizon.slot_hours, scenario.total_slots,
                         lookahead_slots).values
    idx = values.index
    parts: dict[str, object] = {
        "price_usd_per_kwh": pd.Series(ts.price_usd_per_kwh, index=idx, dtype=float,
                                       name="price_usd_per_kwh"),
        "load": pd.DataFrame(1.0, index=idx, columns=list(CLASSES)),
        "renewables": pd.DataFrame(1.0, index=idx, columns=["pv", "wind"]),
        "bus_loads": {}, "unit_loads": {}, "local_loads": {}}
    for col in ts.columns:
        _apply_column(parts, col, values[col.column].to_numpy(dtype=float), ts.price_usd_per_kwh)
    parts["renewables"]["generic"] = parts["renewables"]["pv"]
    return parts


def _apply_column(parts: dict[str, object], col: SeriesColumn, values: np.ndarray,
                  base_price_usd_per_kwh: float) -> None:
    """Put one mapped column where it belongs among a series' fields."""
    target, override = col.target, LoadOverride(values, col.quantity)
    if target is SeriesTarget.PRICE:
        price = values if col.quantity is SeriesQuantity.USD_PER_KWH else (
            values * base_price_usd_per_kwh)
        parts["price_usd_per_kwh"][:] = price
    elif target is SeriesTarget.CUSTOMER_CLASS:
        parts["load"][col.customer_class] = values
    elif target is SeriesTarget.RENEWABLE_KIND:
        parts["renewables"][col.kind] = values
    elif target is SeriesTarget.BUS:
        parts["bus_loads"][col.bus] = override
    elif target is SeriesTarget.UNIT:
        parts["unit_loads"][col.unit.split("/", 1)[1]] = override
    else:
        parts["local_loads"][col.microgrid] = override


def scenario_series(scenario: Scenario, network: NetworkData | None = None,
                    lookahead_slots: int = 0) -> ScenarioSeries:
    """The scenario's price, load and renewable series over all its slots.

    Args:
        scenario: A validated scenario.
        network: Its network (without it the bus classes are left empty, enough for a
            microgrid's window).
        lookahead_slots: Forecast slots wanted after the scenario's last slot (for the
            windows of a rolling horizon near the end of a run). A profile set gives as
            many as its data hold after the run's days, scaled like the run's days; a
            time-series file as many as it holds; per-slot multipliers give none.

    Raises:
        ScenarioError: If a time-series file cannot give the run's series.

    """
    classes = _bus_classes(scenario, network) if network is not None else {}
    slot_hours = scenario.horizon.slot_hours
    ts = scenario.timeseries
    if ts is not None and ts.file is not None:
        return ScenarioSeries(bus_class=classes, slot_hours=slot_hours,
                              **_from_file(scenario, lookahead_slots))
    if ts is None:
        price, load, res = _from_multipliers(scenario)
    else:
        price, load, res = _from_profile_set(scenario, lookahead_slots)
    return ScenarioSeries(price, load, res, classes, slot_hours)


def time_origin(scenario: Scenario) -> TimeOrigin | None:
    """Where a scenario's slot 0 starts in real time, if its series have dates.

    A time-series file: ``timeseries.start`` (or the file's first timestamp) in
    ``timeseries.time_zone``. A shipped profile set: its first hour plus ``start_day``
    days (:func:`gridcosim.scenarios.profiles.profile_set_start`). Per-slot multipliers
    (``[profiles]``) have no dates: ``None``.

    Raises:
        ScenarioError: If a time-series file cannot be read.

    """
    ts = scenario.timeseries
    if ts is None:
        return None
    if ts.file is not None:
        from gridcosim.scenarios.timeseries_files import run_start

        return TimeOrigin(run_start(ts), ts.time_zone)
    from gridcosim.scenarios.profiles import profile_set_start

    found = profile_set_start(ts.profile_set, ts.start_day)
    return None if found is None else TimeOrigin(*found)
