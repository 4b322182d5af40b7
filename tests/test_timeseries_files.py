"""Time series from CSV / Parquet files (``[timeseries] file``) and the real time coordinate.

Scenarios are seed 000's system (``ieee123-nmg``) with its ``[profiles]`` replaced by a
file. Expected values are computed here from the data written to the file (numpy means
and repeats), never taken from the code under test. A short CLI run (3 slots of 8 h, one
window) and a bad file check the exit codes and the HDF5 time coordinate as xarray decodes
it; the shipped set's coordinate is checked through the writer (a run of it is ``slow``).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gridcosim.outputs import read
from gridcosim.outputs.hdf5 import TrajectoryWriter
from gridcosim.scenarios.errors import ScenarioError
from gridcosim.scenarios.loader import load_scenario, scenario_from_dict
from gridcosim.scenarios.network import load_network
from gridcosim.scenarios.series import scenario_series
from gridcosim.simulator.cli import main
from gridcosim.simulator.recording import time_coordinate
from gridcosim.simulator.windows import microgrid_window, network_window

REPO = Path(__file__).resolve().parents[1]
SEED_TOML = (REPO / "scenarios" / "builtin" / "ieee123-nmg.toml").read_text()
RNG = np.random.default_rng(20160801)
BUS = 12  # a load bus of ieee123


def scenario_file(folder: Path, columns: str, *, extra: str = "", slot_hours: float = 1.0,
                  slots: int = 3, csv: str = "series.csv", days: int = 1,
                  name: str = "sc.toml") -> Path:
    """Seed 000 with a ``[timeseries]`` file table instead of ``[profiles]``."""
    table = (f'[timeseries]\nfile = "{csv}"\ndays = {days}\n{extra}\n'
             f"columns = [\n{columns}\n]\n")
    text = re.sub(r"\[profiles\].*?(?=\n\[\[svcs\]\])", table, SEED_TOML, flags=re.S)
    text = text.replace("slots = 6\nslot_hours = 1.0",
                        f"slots = {slots}\nslot_hours = {slot_hours}")
    path = folder / name
    path.write_text(text)
    return path


def write_csv(path: Path, times: pd.DatetimeIndex | list[str], **columns: np.ndarray) -> None:
    stamps = times if isinstance(times, list) else list(times.strftime("%Y-%m-%dT%H:%M"))
    pd.DataFrame({"time": stamps, **columns}).to_csv(path, index=False)


def problems(path: Path) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return "\n".join(info.value.problems)


# ----------------------------------------------------------------------------- resampling
def test_quarter_hours_to_hourly_slots_are_means(tmp_path: Path) -> None:
    times = pd.date_range("2016-08-01", periods=96, freq="15min")
    res, price = RNG.uniform(0.2, 1.5, 96), RNG.uniform(0.05, 0.3, 96)
    write_csv(tmp_path / "series.csv", times, res=res, price=price)
    path = scenario_file(tmp_path, '{column = "res", target = "customer_class", customer_class'
                                   ' = "residential"},\n{column = "price", target = "price",'
                                   ' quantity = "usd_per_kwh"}')
    series = scenario_series(load_scenario(path))
    assert series.slots == 24
    np.testing.assert_allclose(series.load["residential"], res.reshape(24, 4).mean(axis=1),
                               rtol=1e-12)
    np.testing.assert_allclose(series.price_usd_per_kwh, price.reshape(24, 4).mean(axis=1),
                               rtol=1e-12)
    assert (series.load["commercial"] == 1.0).all()  # no column: nominal
    assert (series.renewables["generic"] == series.renewables["pv"]).all()


def test_hourly_to_quarter_hour_slots_hold_each_sample(tmp_path: Path) -> None:
    times = pd.date_range("2016-08-01", periods=26, freq="h")  # 2 h more than the run
    pv = RNG.uniform(0.0, 1.0, 26)
    write_csv(tmp_path / "series.csv", times, pv=pv)
    path = scenario_file(tmp_path, '{column = "pv", target = "renewable_kind", kind = "pv"}',
                         slot_hours=0.25, slots=4)
    scenario = load_scenario(path)
    np.testing.assert_array_equal(scenario_series(scenario).renewables["pv"],
                                  np.repeat(pv[:24], 4))
    # forecast slots after the run come from the file, as far as it reaches
    ahead = scenario_series(scenario, lookahead_slots=20)
    assert ahead.slots == 96 + 8
    np.testing.assert_array_equal(ahead.renewables["generic"], np.repeat(pv, 4))


def test_price_absolute_and_multiplier(tmp_path: Path) -> None:
    times = pd.date_range("2016-08-01", periods=24, freq="h")
    values = RNG.uniform(0.5, 1.5, 24)
    write_csv(tmp_path / "series.csv", times, p=values)
    prices = {}
    for quantity in ("usd_per_kwh", "multiplier"):
        path = scenario_file(tmp_path, f'{{column = "p", target = "price", quantity ='
                                       f' "{quantity}"}}', extra="price_usd_per_kwh = 0.2",
                             name=f"{quantity}.toml")
        prices[quantity] = scenario_series(load_scenario(path)).price_usd_per_kwh.to_numpy()
    np.testing.assert_array_equal(prices["usd_per_kwh"], values)
    np.testing.assert_allclose(prices["multiplier"], 0.2 * values, rtol=1e-15)


# ------------------------------------------------------------------------------ overrides
def test_bus_override_reaches_the_dso_window(tmp_path: Path) -> None:
    times = pd.date_range("2016-08-01", periods=24, freq="h")
    kw, mult = RNG.uniform(5.0, 50.0, 24), RNG.uniform(0.5, 1.5, 24)
    write_csv(tmp_path / "series.csv", times, kw=kw, mult=mult)
    path = scenario_file(tmp_path, f'{{column = "kw", target = "bus", bus = {BUS}, quantity ='
                                   f' "kw"}},\n{{column = "mult", target = "bus", bus = 2}}')
    path.write_text(path.read_text().replace("v_max_pu = 1.1", "v_max_pu = 1.1\nload_scale = 2.0"))
    scenario, net = load_scenario(path), load_network("ieee123")
    window = network_window(scenario, net, [], start=3, slots=3)
    np.testing.assert_allclose(window.load_kw.loc[BUS], kw[3:6], rtol=1e-12)
    q_ratio = net.load_q_kvar[BUS] / net.load_p_kw[BUS]
    np.testing.assert_allclose(window.load_kvar.loc[BUS], kw[3:6] * q_ratio, rtol=1e-12)
    np.testing.assert_allclose(window.load_kw.loc[2], net.load_p_kw[2] * mult[3:6] * 2.0,
                               rtol=1e-12)
    np.testing.assert_allclose(window.load_kw.loc[4], [net.load_p_kw[4] * 2.0] * 3)


def test_a_bus_given_by_name_is_the_bus_of_that_name(tmp_path: Path) -> None:
    """``bus = "12"`` (the network's own name of bus 12) drives bus 12; an unknown name fails."""
    times = pd.date_range("2016-08-01", periods=24, freq="h")
    kw = RNG.uniform(5.0, 50.0, 24)
    write_csv(tmp_path / "series.csv", times, kw=kw)
    path = scenario_file(tmp_path, f'{{column = "kw", target = "bus", bus = "{BUS}",'
                                   f' quantity = "kw"}}')
    scenario = load_scenario(path)
    assert scenario.timeseries.columns[0].bus == BUS
    window = network_window(scenario, load_network("ieee123"), [], start=0, slots=3)
    np.testing.assert_allclose(window.load_kw.loc[BUS], kw[:3], rtol=1e-12)
    bad = scenario_file(tmp_path, '{column = "kw", target = "bus", bus = "nope", quantity ='
                                  ' "kw"}', name="bad.toml")
    assert "timeseries.columns[0].bus: no bus named 'nope' in the network" in problems(bad)


def test_unit_and_local_load_overrides_reach_the_microgrid(tmp_path: Path) -> None:
    times = pd.date_range("2016-08-01", periods=24, freq="h")
    re7, re50, pv, load = (RNG.uniform(0.0, 40.0, 24), RNG.uniform(0.0, 1.2, 24),
                           RNG.uniform(0.0, 1.0, 24), RNG.uniform(1.0, 9.0, 24))
    write_csv(tmp_path / "series.csv", times, re7=re7, re50=re50, pv=pv, load=load)
    path = scenario_file(tmp_path, '{column = "re7", target = "unit", unit = "mg7/re7",'
                                   ' quantity = "kw"},\n{column = "re50", target = "unit",'
                                   ' unit = "mg50/re50"},\n{column = "pv", target ='
                                   ' "renewable_kind", kind = "pv"},\n{column = "load",'
                                   ' target = "local_load", microgrid = "mg7", quantity = "kw"}')
    scenario = load_scenario(path)
    series = scenario_series(scenario)
    mg7, mg50, mg58 = scenario.microgrids[:3]
    w7 = microgrid_window(scenario, mg7, start=2, slots=3, series=series)
    np.testing.assert_array_equal(w7.forecast_kw["re7"], re7[2:5])
    np.testing.assert_array_equal(w7.load_kw, load[2:5])
    w50 = microgrid_window(scenario, mg50, start=2, slots=3, series=series)
    np.testing.assert_allclose(w50.forecast_kw["re50"], 50.0 * re50[2:5], rtol=1e-15)
    w58 = microgrid_window(scenario, mg58, start=2, slots=3, series=series)  # generic: pv
    np.testing.assert_allclose(w58.forecast_kw["re58"], 80.0 * pv[2:5], rtol=1e-15)


def test_aware_timestamps_and_a_daylight_saving_fall_back(tmp_path: Path) -> None:
    # UTC timestamps, zone Berlin: the run starts at 02:00 local (CEST)
    times = pd.date_range("2016-08-01", periods=24, freq="h", tz="UTC")
    write_csv(tmp_path / "series.csv", list(times.strftime("%Y-%m-%dT%H:%MZ")),
              x=np.arange(24.0))
    path = scenario_file(tmp_path, '{column = "x", target = "customer_class", customer_class ='
                                   ' "industrial"}', extra='time_zone = "Europe/Berlin"')
    assert time_coordinate(load_scenario(path)) == (
        "hours since 2016-08-01T02:00:00+02:00", "Europe/Berlin")
    # naive local times on 2016-10-30: 02:00 twice (CEST, then CET) is read in file order
    local = pd.date_range("2016-10-30", periods=25, freq="h", tz="Europe/Berlin")
    write_csv(tmp_path / "fall.csv", list(local.tz_localize(None).strftime("%Y-%m-%dT%H:%M")),
              x=np.arange(25.0))
    path = scenario_file(tmp_path, '{column = "x", target = "customer_class", customer_class ='
                                   ' "industrial"}', extra='time_zone = "Europe/Berlin"',
                         csv="fall.csv", name="fall.toml")
    np.testing.assert_array_equal(scenario_series(load_scenario(path)).load["industrial"],
                                  np.arange(24.0))


def test_parquet_file_with_aware_timestamps(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    times = pd.date_range("2016-08-01", periods=48, freq="30min", tz="Europe/Berlin")
    x = RNG.uniform(0.0, 2.0, 48)
    pd.DataFrame({"stamp": times, "x": x}).to_parquet(tmp_path / "s.parquet")
    path = scenario_file(tmp_path, '{column = "x", target = "customer_class", customer_class ='
                                   ' "commercial"}', csv="s.parquet",
                         extra='time_column = "stamp"\ntime_zone = "Europe/Berlin"')
    np.testing.assert_allclose(scenario_series(load_scenario(path)).load["commercial"],
                               x.reshape(24, 2).mean(axis=1), rtol=1e-12)


# --------------------------------------------------------------------------------- errors
HOURS = list(pd.date_range("2016-08-01", periods=24, freq="h").strftime("%Y-%m-%dT%H:%M"))
CLASS = '{column = "x", target = "customer_class", customer_class = "residential"}'


@pytest.mark.parametrize(("times", "values", "columns", "extra", "expected"), [
    (HOURS, [1.0] * 5 + [None] + [1.0] * 18, CLASS, "",
     "timeseries.columns[0].column: column 'x': the value at 2016-08-01T05:00:00+00:00 is"
     " missing"),
    (HOURS[:7] + HOURS[8:] + ["2016-08-02T00:00"], [1.0] * 24, CLASS, "",
     "timeseries.time_column: column 'time': gap of 1 missing row(s) between"
     " 2016-08-01T06:00:00+00:00 and 2016-08-01T08:00:00+00:00"),
    (HOURS[:4] + HOURS[3:], [1.0] * 25, CLASS, "",
     "timeseries.time_column: column 'time': duplicate timestamp 2016-08-01T03:00:00+00:00"),
    (HOURS, [1.0] * 23 + [-2.0], f'{{column = "x", target = "bus", bus = {BUS}, quantity ='
     ' "kw"}', "", "timeseries.columns[0].column: column 'x': the value at"
     " 2016-08-01T23:00:00+00:00 is negative (got -2.0)"),
    (HOURS, [1.0] * 24, '{column = "x", target = "bus", bus = 99999}', "",
     "timeseries.columns[0].bus: no such bus in network 'ieee123' (got 99999)"),
    (HOURS, [1.0] * 24, '{column = "x", target = "bus", bus = 3}', "",
     "timeseries.columns[0].bus: bus has no load"),
    (HOURS, [1.0] * 24, '{column = "x", target = "unit", unit = "mg7/nope"}', "",
     "timeseries.columns[0].unit: no such unit in microgrid 'mg7' (got 'mg7/nope')"),
    (HOURS, [1.0] * 24, '{column = "x", target = "unit", unit = "mg7/dg7"}', "",
     "timeseries.columns[0].unit: is neither a renewable nor a curtailable load"),
    (HOURS, [1.0] * 24, '{column = "x", target = "customer_class", customer_class = "x"}', "",
     "timeseries.columns[0].customer_class: Input should be 'residential'"),
    (HOURS, [1.0] * 24, '{column = "y", target = "price"}', "",
     "timeseries.columns: no column 'y' in series.csv"),
    (HOURS[:20], [1.0] * 20, CLASS, "",
     "timeseries.days: the run of 1 day(s) from 2016-08-01T00:00:00+00:00 ends at"
     " 2016-08-02T00:00:00+00:00, after the file's data end at 2016-08-01T20:00:00+00:00"),
    (["2016-10-30T01:00", "2016-10-30T01:30", "2016-10-30T02:00", "2016-10-30T02:30",
      "2016-10-30T03:00"], [1.0] * 5, CLASS, 'time_zone = "Europe/Berlin"',
     "timeseries.time_zone: naive timestamps of column 'time' cannot be placed in"
     " Europe/Berlin"),
    (["2016-03-27T01:00", "2016-03-27T02:00", "2016-03-27T03:00"], [1.0] * 3, CLASS,
     'time_zone = "Europe/Berlin"', "timeseries.time_zone: naive timestamps"),
    (HOURS, [1.0] * 24, CLASS, 'start = "2016-08-01T00:30:00"',
     "timeseries.start: must be one of the file's timestamps"),
    (HOURS[:3] + ["2016-08-01T03:00+02:00"] + HOURS[4:], [1.0] * 24, CLASS, "",
     "timeseries.time_column: column 'time' mixes timestamps with and without a UTC offset;"
     " data row 4"),
])
def test_bad_file_is_a_scenario_error_naming_the_field(tmp_path: Path, times: list[str],
                                                       values: list[float | None],
                                                       columns: str, extra: str,
                                                       expected: str) -> None:
    write_csv(tmp_path / "series.csv", times, x=np.array(values, dtype=float))
    text = problems(scenario_file(tmp_path, columns, extra=extra))
    assert expected in text


def test_slot_length_must_fit_the_sampling_interval(tmp_path: Path) -> None:
    write_csv(tmp_path / "series.csv", HOURS, x=np.ones(24))
    text = problems(scenario_file(tmp_path, CLASS, slot_hours=1.5))
    assert "horizon.slot_hours: must be a whole multiple or a whole fraction of the" in text


def test_file_fields_need_a_file_and_vice_versa(tmp_path: Path) -> None:
    text = re.sub(r"\[profiles\].*?(?=\n\[\[svcs\]\])", '[timeseries]\ntime_zone = "Asia/Tokyo"',
                  SEED_TOML, flags=re.S)
    (tmp_path / "a.toml").write_text(text)
    assert "timeseries: time_zone only apply with a time-series file" in problems(
        tmp_path / "a.toml")
    write_csv(tmp_path / "series.csv", HOURS, x=np.ones(24))
    path = scenario_file(tmp_path, CLASS, extra="start_day = 1")
    assert "start_day do not apply with a time-series file" in problems(path)


def test_scenario_json_round_trips(tmp_path: Path) -> None:
    """Sweeps and resumed runs rebuild scenarios from their JSON (every field listed)."""
    write_csv(tmp_path / "series.csv", HOURS, x=np.ones(24))
    path = scenario_file(tmp_path, CLASS, extra='time_zone = "Europe/Berlin"\nstart ='
                                                ' "2016-08-01T00:00"')
    for scenario in (load_scenario(path), load_scenario("ieee123-nmg-week")):
        assert scenario_from_dict(json.loads(scenario.model_dump_json())) == scenario


# ------------------------------------------------------------------- CLI and time coordinate
def cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "gridcosim.simulator.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def assert_time_coordinate(path: Path, expected_utc: pd.DatetimeIndex, zone: str,
                           groups: tuple[str | None, ...] = (None, "customer")) -> None:
    """xarray decodes every time scale to the UTC instants; ``read`` gives them in ``zone``."""
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    for group in groups:
        with xr.open_dataset(path, engine="h5netcdf", group=group) as ds:
            assert ds["time"].dtype.kind == "M"
            np.testing.assert_array_equal(ds["time"].values, expected_utc.to_numpy())
            assert ds["time"].attrs["time_zone"] == zone
    tr = read(path)
    assert tr.time_zone == zone and str(tr.time.tz) == zone
    assert (tr.time == expected_utc.tz_localize("UTC")).all()


def week_from_day_2(folder: Path) -> Path:
    """The week scenario on the shipped set from day 2 (Wednesday 2016-08-03)."""
    week = folder / "week.toml"
    week.write_text((REPO / "scenarios/builtin/ieee123-nmg-week.toml").read_text()
                    .replace("start_day = 0", "start_day = 2"))
    return week


#: Slot starts of the week from day 2: 2016-08-03 00:00 CEST is 2016-08-02 22:00 UTC.
WEEK_UTC = pd.date_range("2016-08-02T22:00", periods=3, freq="h")


def test_cli_runs_a_file_scenario_and_the_time_coordinate_decodes(tmp_path: Path) -> None:
    times = pd.date_range("2016-08-01", periods=192, freq="15min")  # two days
    write_csv(tmp_path / "series.csv", times, res=RNG.uniform(0.5, 1.2, 192),
              price=RNG.uniform(0.05, 0.2, 192))
    good = scenario_file(tmp_path, '{column = "res", target = "customer_class",'
                                   ' customer_class = "residential"},\n{column = "price",'
                                   ' target = "price", quantity = "usd_per_kwh"}',
                         extra='time_zone = "America/New_York"\nstart = "2016-08-01T08:00"',
                         slot_hours=8.0, name="good.toml")
    frame = pd.read_csv(tmp_path / "series.csv")
    frame.loc[7, "res"] = np.nan
    frame.to_csv(tmp_path / "bad.csv", index=False)
    (tmp_path / "bad.toml").write_text(good.read_text().replace('"series.csv"', '"bad.csv"'))
    procs = {"good": cli("run", str(good), "--out", str(tmp_path / "good.h5"), "--commit", "3",
                         "--no-progress"),
             "bad": cli("run", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "bad.h5"),
                        "--no-progress")}
    done = {name: (p.communicate(timeout=300), p.returncode) for name, p in procs.items()}
    assert done["good"][1] == 0, done["good"]
    (_, err), code = done["bad"]
    assert code == 2 and "Traceback" not in err and not (tmp_path / "bad.h5").exists()
    assert "timeseries.columns[0].column: column 'res'" in err
    # 2016-08-01 08:00 in New York (EDT, UTC-4) is 12:00 UTC; slots of 8 h
    assert_time_coordinate(tmp_path / "good.h5",
                           pd.date_range("2016-08-01T12:00", periods=3, freq="8h"),
                           "America/New_York")


def test_shipped_set_time_coordinate_decodes(tmp_path: Path) -> None:
    """The recorder's units for the shipped set, written and decoded (no run: see below)."""
    units, zone = time_coordinate(load_scenario(week_from_day_2(tmp_path)))
    assert (units, zone) == ("hours since 2016-08-03T00:00:00+02:00", "Europe/Berlin")
    path = tmp_path / "w.h5"
    with TrajectoryWriter(path, scenario="w", scenario_json="{}", seed=0,
                          entities={"customer": ["1"]}, variables={"customer": ["p_kw"]},
                          time_units=units, time_zone=zone, version="test") as writer:
        writer.append_slots([0.0, 1.0, 2.0], {"customer": {"p_kw": np.ones((3, 1))}})
        writer.flush()
    assert_time_coordinate(path, WEEK_UTC, zone)


@pytest.mark.slow
def test_shipped_set_run_time_coordinate_decodes(tmp_path: Path) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["run", str(week_from_day_2(tmp_path)), "--out", str(tmp_path / "week.h5"),
                     "--days", "0.125", "--horizon", "3", "--commit", "3",
                     "--no-progress"]) == 0
    assert_time_coordinate(tmp_path / "week.h5", WEEK_UTC, "Europe/Berlin")


def test_profiles_scenarios_keep_hours_since_start_of_run() -> None:
    assert time_coordinate(load_scenario("ieee123-nmg")) == ("hours since start of run", None)
    assert time_coordinate(load_scenario("tem-eulv")) == (
        "hours since 2016-08-01T00:00:00+02:00", "Europe/Berlin")


def test_inspect_shows_local_times_across_a_daylight_saving_switch(tmp_path: Path) -> None:
    """``gridcosim inspect`` labels the slots in the file's zone, not the start's offset.

    48 hourly slots from 2016-10-29 00:00 CEST end after the autumn switch: at 2016-10-30
    23:00 CET (a fixed +02:00 would say 2016-10-31 00:00).
    """
    from gridcosim.outputs.overview import summary, summary_dict

    path = tmp_path / "dst.h5"
    with TrajectoryWriter(path, scenario="dst", scenario_json="{}", seed=0,
                          entities={"customer": ["1"]}, variables={"customer": ["p_kw"]},
                          time_units="hours since 2016-10-29T00:00:00+02:00",
                          time_zone="Europe/Berlin", version="test") as writer:
        writer.append_slots(np.arange(48.0), {"customer": {"p_kw": np.ones((48, 1))}})
        writer.flush()
    assert "(2016-10-29 00:00 CEST -> 2016-10-30 23:00 CET, slot 1 h" in summary(path)
    assert summary_dict(path)["time_zone"] == "Europe/Berlin"


@pytest.mark.parametrize("name", ["ieee123-nmg-week", "ieee123-nmg-3ph"])
def test_run_loads_sliced_equal_each_window_cut_on_its_own(name: str) -> None:
    """The DSO cuts a run's bus loads once (``RunLoads``); each window's slice is exact."""
    from gridcosim.scenarios.network import network_for
    from gridcosim.simulator.windows import RunLoads, bus_loads

    scenario = load_scenario(name)
    network = network_for(scenario)
    series = scenario_series(scenario, network, 23)
    run = RunLoads.of(scenario, network, series)
    n = series.slots
    for start, slots in ((0, min(24, n)), (n // 2, min(24, n - n // 2)), (n - 1, 1)):
        sliced = run.window(start, slots)
        for got, want in zip(sliced, bus_loads(scenario, network, series, start, slots),
                             strict=True):
            pd.testing.assert_frame_equal(got, want, check_exact=True)
    with pytest.raises(ValueError, match="outside the run"):
        run.window(n - 3, 5)
