"""Tests of the multi-day profiles (scenarios/profiles.py, scenarios/data/profiles)."""

from __future__ import annotations

import sys
import types

import numpy as np
import pandas as pd
import pytest

from gridcosim.scenarios.profiles import (
    COLUMNS,
    LOAD_CLASSES,
    ProfileSet,
    available_profile_sets,
    load_profile_set,
    scaled_to_nominal,
    window,
)
from gridcosim.scenarios.tools.simbench_source import (
    PRICE_PEAK_RATIO,
    SIMBENCH_MISSING,
    from_simbench,
    price_multiplier,
)

DAYS = 14
NIGHT = [0, 1, 2, 3, 4, 22, 23]


@pytest.fixture(scope="module")
def shipped() -> ProfileSet:
    return load_profile_set()


def daily(profile_set: ProfileSet, column: str) -> np.ndarray:
    return profile_set.data[column].to_numpy().reshape(-1, 24)


# --------------------------------------------------------------------------- shipped data


def test_shipped_set_loads_with_expected_shape(shipped):
    assert "simbench_2weeks" in available_profile_sets()
    assert shipped.name == "simbench_2weeks"
    assert shipped.hours == 336 and shipped.days == DAYS
    assert shipped.columns == COLUMNS
    assert shipped.data.index.equals(pd.RangeIndex(336, name="hour"))
    assert not shipped.data.isna().any().any()


def test_shipped_values_in_range(shipped):
    values = shipped.data.to_numpy()
    assert values.min() >= 0.0 and values.max() <= 1.5
    # per unit of the annual peak: the fortnight itself stays at or below 1
    assert (shipped.data.drop(columns="price").max() <= 1.0).all()


def test_residential_evening_peak_above_night_trough(shipped):
    days = daily(shipped, "residential")
    evening = days[:, 17:23].max(axis=1)
    night = days[:, 1:6].min(axis=1)
    assert (evening > 1.5 * night).all()


def test_commercial_and_industrial_have_weekdays_and_weekends(shipped):
    # day 0 is a Monday: days 5, 6, 12, 13 are the weekends
    weekend = [5, 6, 12, 13]
    weekday = [d for d in range(DAYS) if d not in weekend]
    for column in ("commercial", "industrial"):
        means = daily(shipped, column).mean(axis=1)
        assert means[weekday].min() > means[weekend].max(), column


def test_pv_zero_at_night_positive_midday(shipped):
    days = daily(shipped, "pv")
    assert np.all(days[:, NIGHT] == 0.0)
    assert np.all(days[:, 11:14].max(axis=1) > 0.0)
    assert days.max() > 0.5  # at least one clear-ish day


def test_wind_varies_from_day_to_day(shipped):
    days = daily(shipped, "wind")
    assert np.corrcoef(days[0], days[1])[0, 1] < 0.99
    means = days.mean(axis=1)
    assert means.max() > 3 * means.min()


def test_no_two_days_identical(shipped):
    # SimBench repeats some days verbatim (gap filling); the shipped window avoids them
    for column in COLUMNS:
        days = daily(shipped, column)
        assert len({row.tobytes() for row in days}) == DAYS, column


def test_price_is_daily_mean_one_with_seed_like_spread(shipped):
    days = daily(shipped, "price")
    np.testing.assert_allclose(days.mean(axis=1), 1.0, atol=2e-4)
    ratios = days.max(axis=1) / days.min(axis=1)
    assert ratios.mean() == pytest.approx(PRICE_PEAK_RATIO, abs=0.01)
    assert 0.5 < days.min() and days.max() < 1.5


def test_price_follows_aggregate_load(shipped):
    # price = (a / daily mean a) ** gamma, renormalised: log price is linear in log a each day
    loads = shipped.data[list(LOAD_CLASSES)]
    aggregate = (loads / loads.mean()).mean(axis=1).to_numpy().reshape(-1, 24)
    for day, price in enumerate(daily(shipped, "price")):
        assert np.corrcoef(np.log(price), np.log(aggregate[day]))[0, 1] > 0.999


def test_unknown_set_is_reported():
    with pytest.raises(FileNotFoundError, match="simbench_2weeks"):
        load_profile_set("no-such-set")


def test_profile_set_validates_index_and_values():
    with pytest.raises(ValueError, match="index"):
        ProfileSet("x", pd.DataFrame({"a": [1.0, 2.0]}, index=[1, 2]))
    with pytest.raises(ValueError, match="NaN"):
        ProfileSet("x", pd.DataFrame({"a": [1.0, np.nan]}))


# --------------------------------------------------------------------------- window


def test_window_hourly_slices(shipped):
    cut = window(shipped, start_slot=30, slots=6)
    assert list(cut.index) == list(range(6)) and cut.index.name == "slot"
    np.testing.assert_array_equal(cut.to_numpy(), shipped.data.iloc[30:36].to_numpy())
    assert list(cut.columns) == list(COLUMNS)


def test_window_sub_hourly_hold_repeats_and_preserves_energy(shipped):
    cut = window(shipped, start_slot=4 * 24, slots=96, slot_hours=0.25)
    hourly = shipped.data.iloc[24:48].to_numpy()
    np.testing.assert_array_equal(cut.to_numpy()[::4], hourly)
    np.testing.assert_allclose(cut.to_numpy().reshape(24, 4, -1).mean(axis=1), hourly)
    half = window(shipped, start_slot=1, slots=3, slot_hours=0.5)
    np.testing.assert_array_equal(half.to_numpy(), shipped.data.iloc[[0, 1, 1]].to_numpy())


def test_window_sub_hourly_linear_interpolates_between_hour_centres(shipped):
    cut = window(shipped, start_slot=0, slots=8, slot_hours=0.5, method="linear")
    values = shipped.data["residential"].to_numpy()
    # slot 1 centre is t = 0.75 h, between hour centres 0.5 and 1.5
    assert cut["residential"].iloc[1] == pytest.approx(0.75 * values[0] + 0.25 * values[1])
    assert cut["residential"].iloc[0] == pytest.approx(values[0])  # held before first centre


def test_window_coarser_slots_average(shipped):
    cut = window(shipped, start_slot=1, slots=3, slot_hours=4)
    expected = shipped.data.iloc[4:16].to_numpy().reshape(3, 4, -1).mean(axis=1)
    np.testing.assert_allclose(cut.to_numpy(), expected)


@pytest.mark.parametrize(
    ("start", "slots", "slot_hours", "match"),
    [
        (330, 24, 1.0, "does not fit"),
        (-1, 5, 1.0, "start_slot"),
        (0, 0, 1.0, "slots"),
        (0, 4, 0.3, "1/k"),
        (0, 4, 1.5, "whole number"),
    ],
)
def test_window_rejects_bad_requests(shipped, start, slots, slot_hours, match):
    with pytest.raises(ValueError, match=match):
        window(shipped, start, slots, slot_hours)


# --------------------------------------------------------------------------- scaling


def test_scaled_to_nominal_first_day_mean(shipped):
    series = scaled_to_nominal(shipped.data["commercial"])
    assert series.iloc[:24].mean() == pytest.approx(1.0)
    assert series.index.equals(shipped.data.index)
    kw = scaled_to_nominal(shipped.data["commercial"], nominal=120.0)
    np.testing.assert_allclose(kw, 120.0 * series)
    frame = scaled_to_nominal(shipped.data)
    np.testing.assert_allclose(frame.iloc[:24].mean(), 1.0)
    # the price is already daily-mean-1
    np.testing.assert_allclose(frame["price"], shipped.data["price"], atol=2e-4)
    quarter = window(shipped, 0, 192, slot_hours=0.25)
    assert scaled_to_nominal(quarter["wind"], slots_per_day=96).iloc[:96].mean() == (
        pytest.approx(1.0)
    )


def test_scaled_to_nominal_rejects_zero_first_day():
    with pytest.raises(ValueError, match="pv"):
        scaled_to_nominal(pd.Series(np.zeros(48), name="pv"))
    with pytest.raises(ValueError, match="at least"):
        scaled_to_nominal(pd.Series(np.ones(10)))


# --------------------------------------------------------------------------- price


def test_price_multiplier_properties():
    hours = np.arange(72)
    loads = pd.DataFrame(
        {
            "a": 1.0 + 0.5 * np.sin(2 * np.pi * (hours - 9) / 24),
            "b": 2.0 + 0.2 * np.sin(2 * np.pi * (hours - 6) / 24) * (1 + hours // 24),
        }
    )
    price, gamma = price_multiplier(loads, ratio=1.5)
    days = price.to_numpy().reshape(3, 24)
    np.testing.assert_allclose(days.mean(axis=1), 1.0)
    assert (days.max(axis=1) / days.min(axis=1)).mean() == pytest.approx(1.5)
    assert gamma > 0
    assert price.name == "price"
    with pytest.raises(ValueError, match="whole days"):
        price_multiplier(loads.iloc[:30])


# --------------------------------------------------------------------------- simbench


def test_from_simbench_without_simbench_raises_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "simbench", None)
    with pytest.raises(ImportError, match=r"pip install gridcosim\[simbench\]") as info:
        from_simbench({"residential": "H0-A"}, "2016-08-29", 2)
    assert str(info.value) == SIMBENCH_MISSING


def fake_simbench_profiles() -> dict[str, pd.DataFrame]:
    """A tiny stand-in for simbench.get_all_simbench_profiles: 2016 local time with DST."""
    utc = pd.date_range("2015-12-31 23:00", "2016-12-31 22:45", freq="15min", tz="UTC")
    local = utc.tz_convert("Europe/Berlin").strftime("%d.%m.%Y %H:%M")
    n = len(local)
    hour_of_day = utc.tz_convert("Europe/Berlin").hour
    load = pd.DataFrame(
        {
            "time": local,
            "H0-A_pload": 0.2 + 0.8 * (hour_of_day == 19),
            "H0-A_qload": np.full(n, 0.1),
            "H0-B_pload": np.full(n, 0.5),
            "G0-A_pload": 0.5 + 0.5 * ((hour_of_day >= 8) & (hour_of_day < 18)),
        }
    )
    renewables = pd.DataFrame({"time": local, "WP4": np.linspace(0.0, 0.8, n)})
    return {"load": load, "renewables": renewables, "powerplants": load[["time"]].copy()}


@pytest.fixture
def fake_simbench(monkeypatch):
    calls = []

    def get_all_simbench_profiles(scenario):
        calls.append(scenario)
        return fake_simbench_profiles()

    module = types.ModuleType("simbench")
    module.get_all_simbench_profiles = get_all_simbench_profiles
    monkeypatch.setitem(sys.modules, "simbench", module)
    return calls


def test_from_simbench_with_fake_module(fake_simbench):
    assert len(fake_simbench_profiles()["load"]) == 35136
    result = from_simbench(
        {"residential": ["H0-A", "H0-B"], "commercial": "G0-A", "wind": "WP4"},
        "2016-08-29",
        2,
        scenario=1,
    )
    assert fake_simbench == [1]
    assert result.name == "simbench_20160829_2d"
    assert result.columns == ("residential", "commercial", "wind", "price")
    assert result.hours == 48
    data = result.data
    # mean of the members (0.2 or 1.0, and 0.5) over the annual peak (0.75) at 19:00
    assert data["residential"].iloc[19] == pytest.approx(1.0)
    assert data["residential"].iloc[3] == pytest.approx(0.35 / 0.75)
    assert data["commercial"].iloc[8] == pytest.approx(1.0)
    assert data["commercial"].iloc[7] == pytest.approx(0.5)
    assert data["wind"].max() < 1.0  # the annual peak is at the end of the year
    np.testing.assert_allclose(data["price"].to_numpy().reshape(2, 24).mean(axis=1), 1.0)


def test_from_simbench_lookup_and_errors(fake_simbench):
    profiles = fake_simbench_profiles()
    result = from_simbench({"q": "H0-A_qload"}, "2016-01-04 06:00", 1, profiles=profiles)
    assert fake_simbench == []  # pre-loaded profiles: simbench is not called
    assert result.columns == ("q",)  # no load class: no price column
    with pytest.raises(ValueError, match="unknown SimBench profile 'XX'"):
        from_simbench({"residential": "XX"}, "2016-08-29", 1, profiles=profiles)
    with pytest.raises(ValueError, match="2016 only"):
        from_simbench({"residential": "H0-A"}, "2017-08-29", 1, profiles=profiles)
    with pytest.raises(ValueError, match="past the end"):
        from_simbench({"residential": "H0-A"}, "2016-12-25", 14, profiles=profiles)
    with pytest.raises(ValueError, match="on the hour"):
        from_simbench({"residential": "H0-A"}, "2016-08-29 06:30", 1, profiles=profiles)
    with pytest.warns(UserWarning, match="daylight-saving"):
        from_simbench({"residential": "H0-A"}, "2016-03-26", 2, profiles=profiles)


def test_extraction_checks_find_copied_and_constant_days():
    from gridcosim.scenarios.tools.extract_simbench_profiles import constant_days, repeated_days

    profiles = fake_simbench_profiles()
    load = profiles["load"]
    rows = 96
    start = int(np.flatnonzero(load["time"] == "01.08.2016 00:00")[0])
    noisy = np.random.default_rng(0).random(len(load))
    noisy[start + 2 * rows : start + 3 * rows] = noisy[start : start + rows]  # day 2 = day 0
    noisy[start + 20 * rows : start + 21 * rows] = noisy[start + 5 * rows : start + 6 * rows]
    noisy[start + 4 * rows : start + 5 * rows] = 0.0
    load["X_pload"] = noisy
    inside, outside = repeated_days(profiles, {"x": "X"}, "2016-08-01", 14)
    assert [m.split(":")[1].strip().split()[0] for m in inside] == [
        "2016-08-01",
        "2016-08-03",
    ]
    assert len(outside) == 1 and "2016-08-06" in outside[0] and "2016-08-21" in outside[0]
    assert constant_days(profiles, {"x": ["X"]}, "2016-08-01", 14) == ["X: 0 all day on 2016-08-05"]
