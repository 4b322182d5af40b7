"""HDF5 trajectory writer and reader (outputs.hdf5, outputs.reader).

Timing (not a test). 300 entities in 8 kinds x 15 variables = 120 datasets, one slot per
append, flush every 24 slots, 720 slots, h5py 3.16 / HDF5 2.0, local disk. Measured with the
script in docs/hdf5_layout.md ("Performance"), saved as /tmp/h5exp/bench.py:

    cd /work/main && PYTHONPATH=. /work/venv/bin/python /tmp/h5exp/bench.py 24 15
    window 24: append/slot 85 us, flush 7.27 ms, file 27.7 MB

Flushing every slot: 5.6 ms per flush. Every 96 slots: 11 ms. 4 variables per kind
(32 datasets): 30 us per append and 2.3 ms per flush. These are from a quiet 2-core machine;
under load 4 the same runs took about twice as long.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

import gridcosim.outputs
from gridcosim.outputs import Trajectory, TrajectoryWriter, read, summary

ROOT = Path(__file__).resolve().parents[1]
UNITS = "hours since 2016-01-04T00:00:00"
ENTITIES = {
    "microgrid": ["mg1", "mg2"],
    "generator": ["mg1.dg1", "mg2.dg1", "mg2.dg2"],
    "storage": ["mg1.ess", "mg2.ess"],
    "bus": ["1", "2", "3", "150"],
    "substation": ["sub"],
    "svc": [],
}
VARIABLES = {
    "microgrid": ["p_kw", "q_kvar", "cost_usd"],
    "generator": ["p_kw", "on", "cost_usd"],
    "storage": ["p_kw", "e_kwh"],
    "bus": ["vm_pu", "vm_lin_pu"],
    "substation": ["p_kw", "price_usd_per_kwh", "cost_usd"],
    "svc": ["q_kvar"],
}
SCENARIO = {"name": "unit", "horizon": {"slots": 4}, "microgrids": [{"name": "mg1"}]}
COLUMNS = {"start_slot": "int", "iterations": "int", "cuts_unified": "int",
           "cuts_restoration": "int", "cuts_branch": "int", "cuts_ac": "int",
           "lower_bound": "float", "final_cost": "float", "status": "str", "wall_s": "float"}


def make_writer(path: Path, **kw) -> TrajectoryWriter:
    args = dict(scenario="unit", scenario_json=json.dumps(SCENARIO), seed=7, entities=ENTITIES,
                variables=VARIABLES, time_units=UNITS, version="0.1.0", convergence=COLUMNS)
    args.update(kw)
    return TrajectoryWriter(path, **args)


def window_values(rng: np.random.Generator, n: int) -> dict[str, dict[str, np.ndarray]]:
    values = {k: {v: rng.normal(size=(n, len(ENTITIES[k]))) for v in vs}
              for k, vs in VARIABLES.items()}
    values["generator"]["on"] = rng.integers(0, 2, size=(n, 3)).astype(float)
    values["bus"]["vm_lin_pu"][0, 1] = np.nan  # "not computed"
    return values


def conv_row(w: int, status: str = "optimal") -> dict[str, object]:
    return {"start_slot": 4 * w, "iterations": 3 + w,
            "cuts": {"unified": 2 * w, "restoration": 0, "branch": w, "ac": 1},
            "lower_bound": 10.0 + w, "final_cost": 11.0 + w if w != 1 else None,
            "status": status, "wall_s": 0.25}


def write_run(path: Path, windows: int = 3, slots: int = 4, **kw):
    """Write ``windows`` windows of ``slots`` slots; return what was written."""
    rng = np.random.default_rng(1)
    times, data, rows = [], [], []
    with make_writer(path, **kw) as w:
        for win in range(windows):
            t = np.arange(win * slots, (win + 1) * slots, dtype=float)
            values = window_values(rng, slots)
            w.append_slots(t, values)
            row = conv_row(win, "optimal" if win != 2 else "iteration_limit")
            w.append_convergence(row)
            w.flush()
            times.append(t)
            data.append(values)
            rows.append(row)
    return np.concatenate(times), data, rows


def expected_frame(data, kind, var) -> np.ndarray:
    return np.concatenate([d[kind][var] for d in data])


# ---------------------------------------------------------------------------------- layout
def test_layout(tmp_path):
    path = tmp_path / "run.h5"
    write_run(path)
    with h5py.File(path, "r") as f:
        assert f.attrs["gridcosim_version"] == "0.1.0"
        assert f.attrs["scenario"] == "unit"
        assert json.loads(f.attrs["scenario_json"]) == SCENARIO
        assert f.attrs["seed"] == 7
        assert pd.Timestamp(f.attrs["created_utc"]).tzinfo is not None
        assert f.attrs["complete"] == 1
        assert f["time"].attrs["units"] == UNITS
        assert f["time"].dtype == np.float64
        np.testing.assert_array_equal(f["time"][()], np.arange(12.0))
        for kind, ids in ENTITIES.items():
            g = f[kind]
            assert list(g["ids"].asstr()[()]) == ids
            assert h5py.check_string_dtype(g["ids"].dtype) is not None
            assert g["time"].attrs["units"] == UNITS
            for var in VARIABLES[kind]:
                ds = g[var]
                assert ds.shape == (12, len(ids))
                assert ds.dtype == np.float64
                assert ds.chunks is not None
                assert ds.maxshape[0] is None
                assert [d.label for d in ds.dims] == ["time", "ids"]
                assert ds.dims[0][0] == g["time"] and ds.dims[1][0] == g["ids"]
        assert f["storage/p_kw"].attrs["units"] == "kW"
        assert f["storage/e_kwh"].attrs["units"] == "kWh"
        assert f["bus/vm_pu"].attrs["units"] == "1"
        assert f["substation/price_usd_per_kwh"].attrs["units"] == "USD/kWh"
        assert f["time"].maxshape == (None,)
        conv = f["convergence"]
        assert conv["window"].shape == (3,)
        assert conv["status"].maxshape == (None,)
        assert h5py.check_string_dtype(conv["status"].dtype) is not None


def test_seed_none_and_empty_file(tmp_path):
    path = tmp_path / "empty.h5"
    with make_writer(path, seed=None):
        pass
    tr = read(path)
    assert tr.attrs["seed"] is None
    assert tr.slots == 0 and len(tr.time) == 0
    assert tr.frame("storage", "p_kw").shape == (0, 2)
    assert tr.convergence.empty
    assert "slots       0" in summary(path)


# ------------------------------------------------------------------------------ round trip
def test_round_trip(tmp_path):
    path = tmp_path / "run.h5"
    # Uneven appends through a tiny buffer: exercises buffer growth and partial chunks.
    rng = np.random.default_rng(3)
    written: dict[tuple[str, str], list[np.ndarray]] = {}
    times = []
    with make_writer(path, buffer_slots=2) as w:
        start = 0
        for n in (1, 5, 2, 7, 1):
            t = np.arange(start, start + n) * 0.25
            values = window_values(rng, n)
            w.append_slots(t, values)
            times.append(t)
            for kind, vs in values.items():
                for var, arr in vs.items():
                    written.setdefault((kind, var), []).append(arr)
            start += n
            w.flush()
        assert w.slots_written == 16 and w.slots_buffered == 0
    tr = read(path)
    assert isinstance(tr, Trajectory)
    assert tr.attrs["scenario"] == "unit" and tr.attrs["seed"] == 7
    assert tr.time_units == UNITS
    np.testing.assert_array_equal(tr.time_h, np.concatenate(times))
    expected_index = pd.Timestamp("2016-01-04") + pd.to_timedelta(np.arange(16) * 15, unit="min")
    assert (tr.time == expected_index).all()
    assert tr.time.name == "time"
    assert tr.entity_ids == ENTITIES
    assert set(tr.groups) == set(ENTITIES)
    for (kind, var), arrays in written.items():
        frame = tr.frame(kind, var)
        assert list(frame.columns) == ENTITIES[kind]
        assert frame.index.equals(tr.time)
        np.testing.assert_array_equal(frame.to_numpy(), np.concatenate(arrays))
        assert tr.groups[kind][var] is frame
    assert list(tr.groups["storage"]) == VARIABLES["storage"]  # writer order kept
    hours = read(path, timestamps=False)
    np.testing.assert_array_equal(hours.time.to_numpy(), np.arange(16) * 0.25)
    with pytest.raises(KeyError, match="no variable storage/soc"):
        tr.frame("storage", "soc")
    with pytest.raises(KeyError, match="no kind"):
        tr.frame("feeder", "p_kw")
    only = read(path, kinds=["bus"])
    assert list(only.groups) == ["bus"]


def test_single_slot_append_accepts_1d_rows(tmp_path):
    path = tmp_path / "run.h5"
    with make_writer(path) as w:
        for s in range(3):
            values = {k: {v: np.full(len(ENTITIES[k]), s + 0.5) for v in vs}
                      for k, vs in VARIABLES.items() if ENTITIES[k]}  # empty "svc" omitted
            w.append_slots([float(s)], values)
    frame = read(path).frame("microgrid", "cost_usd")
    np.testing.assert_array_equal(frame.to_numpy(), [[0.5, 0.5], [1.5, 1.5], [2.5, 2.5]])


@pytest.mark.parametrize("units", ["hours", "hours since start of run"])
def test_time_units_without_date(tmp_path, units):
    xr = pytest.importorskip("xarray")
    path = tmp_path / "run.h5"
    with make_writer(path, time_units=units) as w:
        w.append_slots([0.0, 0.5], window_values(np.random.default_rng(0), 2))
    with h5py.File(path, "r") as f:
        assert f["time"].attrs["units"] == "hours"  # a non-date reference is not valid CF
        assert f["storage/time"].attrs["units"] == "hours"
        if units != "hours":
            assert f["time"].attrs["time_origin"] == "start of run"
    tr = read(path)
    assert not isinstance(tr.time, pd.DatetimeIndex)
    np.testing.assert_array_equal(tr.time.to_numpy(), [0.0, 0.5])
    with xr.open_dataset(path, group="storage", engine="h5netcdf") as ds:
        np.testing.assert_array_equal(ds["time"].values, [0.0, 0.5])
    assert "0 h -> 1 h" in summary(path)


# ----------------------------------------------------------------------------------- xarray
def test_xarray_open_group(tmp_path):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    path = tmp_path / "run.h5"
    _, data, _ = write_run(path)
    with xr.open_dataset(path, group="storage", engine="h5netcdf") as ds:
        assert dict(ds.sizes) == {"time": 12, "ids": 2}
        assert ds["p_kw"].dims == ("time", "ids")
        assert list(ds["ids"].values) == ENTITIES["storage"]
        assert ds["time"].dtype.kind == "M"  # CF "hours since" decoded to datetimes
        assert pd.Timestamp(ds["time"].values[1]) == pd.Timestamp("2016-01-04T01:00")
        np.testing.assert_array_equal(ds["e_kwh"].values, expected_frame(data, "storage", "e_kwh"))
        assert ds["p_kw"].attrs["units"] == "kW"
        assert float(ds["p_kw"].sel(ids="mg2.ess").isel(time=0)) == data[0]["storage"]["p_kw"][0, 1]
    with xr.open_dataset(path, group="svc", engine="h5netcdf") as ds:
        assert dict(ds.sizes) == {"time": 12, "ids": 0}
    with xr.open_dataset(path, group="convergence", engine="h5netcdf") as ds:
        assert dict(ds.sizes) == {"window": 3}
        assert list(ds["status"].values) == ["optimal", "optimal", "iteration_limit"]
    with xr.open_dataset(path, engine="h5netcdf") as ds:  # root: /time and the attributes
        assert dict(ds.sizes) == {"time": 12}
        assert ds.attrs["scenario"] == "unit"


# ------------------------------------------------------------------------------ convergence
MIXED = {"start_slot": "int", "iterations": "int", "cuts_unified": "int", "cuts_ac": "int",
         "lower_bound": "float", "final_cost": "float", "status": "str", "converged": "bool",
         "wall_s": "float"}


def test_convergence_round_trip(tmp_path):
    path = tmp_path / "run.h5"
    with make_writer(path, convergence=MIXED) as w:
        rows = [
            {"start_slot": 0, "iterations": 4, "cuts": {"unified": 3, "ac": 2},
             "lower_bound": 1.5, "final_cost": None, "status": "optimal", "converged": True,
             "wall_s": 0.5},
            {"start_slot": 4, "iterations": 9, "cuts": {"unified": 5, "ac": 0},
             "lower_bound": 2.5, "final_cost": 3.0, "status": "nicht konvergiert – Grenze",
             "converged": False, "wall_s": 1.25},
            {"start_slot": 8.0, "iterations": np.int64(1), "cuts": {"unified": 0, "ac": 0},
             "lower_bound": np.float64(-1.0), "final_cost": 7, "status": "",
             "converged": np.bool_(True), "wall_s": 2.0},
        ]
        w.append_convergence(rows[0])
        w.flush()
        w.append_convergence(rows[1])
        w.append_convergence(rows[2])
    conv = read(path).convergence
    assert list(conv.columns) == list(MIXED)
    assert conv.index.name == "window" and list(conv.index) == [0, 1, 2]
    assert list(conv["status"]) == ["optimal", "nicht konvergiert – Grenze", ""]
    assert conv["start_slot"].dtype == np.int64 and list(conv["start_slot"]) == [0, 4, 8]
    assert conv["converged"].dtype == bool and list(conv["converged"]) == [True, False, True]
    assert np.isnan(conv.loc[0, "final_cost"]) and conv.loc[2, "final_cost"] == 7.0
    assert list(conv["cuts_unified"]) == [3, 5, 0]


def test_convergence_row_errors(tmp_path):
    with make_writer(tmp_path / "run.h5", convergence={"start_slot": "int", "status": "str",
                                                      "lower_bound": "float"}) as w:
        with pytest.raises(ValueError, match=r"missing columns \['status'\]"):
            w.append_convergence({"start_slot": 0, "lower_bound": 1.0})
        with pytest.raises(ValueError, match=r"unknown \['extra'\]"):
            w.append_convergence({"start_slot": 0, "lower_bound": 1.0, "status": "", "extra": 1})
        with pytest.raises(ValueError, match="not an integer"):
            w.append_convergence({"start_slot": 1.5, "lower_bound": 1.0, "status": "x"})
        with pytest.raises(ValueError, match="not a number"):
            w.append_convergence({"start_slot": 0, "lower_bound": "low", "status": "x"})
        with pytest.raises(ValueError, match="given twice"):
            w.append_convergence({"start_slot": 0, "lower": {"bound": 1.0}, "lower_bound": 1.0,
                                  "status": ""})
    with pytest.raises(ValueError, match="reserved"):
        make_writer(tmp_path / "run2.h5", convergence={"window": "int"})
    with pytest.raises(ValueError, match="unknown kind"):
        make_writer(tmp_path / "run3.h5", convergence={"x": "complex"})


def test_convergence_columns_exist_before_the_first_row(tmp_path):
    """SWMR: every dataset is created with the file (a reader sees the empty table)."""
    xr = pytest.importorskip("xarray")
    path = tmp_path / "run.h5"
    with make_writer(path):
        pass
    conv = read(path).convergence
    assert list(conv.columns) == list(COLUMNS) and len(conv) == 0
    with xr.open_dataset(path, group="convergence", engine="h5netcdf") as ds:
        assert ds["lower_bound"].dims == ("window",)


# ------------------------------------------------------------------------------- validation
def test_append_validation(tmp_path):
    rng = np.random.default_rng(0)
    with make_writer(tmp_path / "run.h5") as w:
        values = window_values(rng, 2)
        del values["storage"]["e_kwh"]
        with pytest.raises(ValueError, match="storage/e_kwh"):
            w.append_slots([0.0, 1.0], values)
        values = window_values(rng, 2)
        del values["bus"]
        with pytest.raises(ValueError, match="'bus'"):
            w.append_slots([0.0, 1.0], values)
        values = window_values(rng, 2)
        values["storage"]["soc"] = np.zeros((2, 2))
        with pytest.raises(ValueError, match="soc"):
            w.append_slots([0.0, 1.0], values)
        values = window_values(rng, 2)
        values["feeder"] = {}
        with pytest.raises(ValueError, match="feeder"):
            w.append_slots([0.0, 1.0], values)
        values = window_values(rng, 2)
        values["generator"]["p_kw"] = np.zeros((2, 2))
        with pytest.raises(ValueError, match=r"generator/p_kw: shape \(2, 2\)"):
            w.append_slots([0.0, 1.0], values)
        assert w.slots_buffered == 0  # failed appends buffer nothing
        w.append_slots([0.0, 1.0], window_values(rng, 2))
        with pytest.raises(ValueError, match="increasing"):
            w.append_slots([1.0, 2.0], window_values(rng, 2))
    with pytest.raises(ValueError, match="closed"):
        w.append_slots([5.0], window_values(rng, 1))
    assert read(tmp_path / "run.h5").slots == 2


def test_constructor_validation(tmp_path):
    with pytest.raises(ValueError, match="time_units"):
        make_writer(tmp_path / "a.h5", time_units="days since 2016-01-01")
    with pytest.raises(ValueError, match="without entities"):
        make_writer(tmp_path / "b.h5", variables={**VARIABLES, "pv": ["p_kw"]})
    with pytest.raises(ValueError, match="duplicate ids"):
        make_writer(tmp_path / "c.h5", entities={**ENTITIES, "bus": ["1", "1"]})
    with pytest.raises(ValueError, match="reserved"):
        make_writer(tmp_path / "d.h5", variables={**VARIABLES, "bus": ["ids"]})
    with pytest.raises(json.JSONDecodeError):
        make_writer(tmp_path / "e.h5", scenario_json="{not json")


# ------------------------------------------------------------------------------ interrupted
KILLED_WRITER = textwrap.dedent("""
    import json, os, signal, sys
    import numpy as np
    from gridcosim.outputs import TrajectoryWriter
    how = sys.argv[2]
    w = TrajectoryWriter(sys.argv[1], scenario="killed", scenario_json="{}", seed=1,
                         entities={"storage": ["a", "b"], "bus": ["1", "2", "3"]},
                         variables={"storage": ["p_kw", "e_kwh"], "bus": ["vm_pu"]},
                         convergence={"start_slot": "int", "status": "str"},
                         time_units="hours since 2016-01-04T00:00:00", version="0.1.0",
                         buffer_slots=4)
    for win in range(4):
        t = np.arange(win * 6, win * 6 + 6, dtype=float)
        w.append_slots(t, {"storage": {"p_kw": np.full((6, 2), win), "e_kwh": np.ones((6, 2))},
                           "bus": {"vm_pu": np.full((6, 3), 1.0 + win / 100)}})
        w.append_convergence({"start_slot": win * 6, "status": f"ok{win}"})
        w.append_checkpoint(json.dumps({"window": win}))
        if win < 3:
            w.flush()  # the 4th window stays in memory
    sys.stdout.write("ready\\n")
    sys.stdout.flush()
    if how == "exit":
        os._exit(1)
    os.kill(os.getpid(), signal.SIGKILL)
""")


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_killed_writer_leaves_flushed_windows(tmp_path, how):
    path = tmp_path / "killed.h5"
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(path), how],
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "ready", proc.stderr
    assert proc.returncode == (1 if how == "exit" else -signal.SIGKILL)
    with pytest.raises(OSError, match="already open for write"):
        h5py.File(path, "r")  # a plain open refuses a file whose SWMR writer died
    with h5py.File(path, "r", swmr=True) as f:
        assert f.attrs["complete"] == 0 and f.attrs["status"] == "running"
        assert f["time"].shape == (18,)
        assert f["storage/p_kw"].shape == (18, 2)
        assert list(f["checkpoint/time"][()]) == [6, 12, 18]
    tr = read(path)
    assert tr.slots == 18
    np.testing.assert_array_equal(tr.time_h, np.arange(18.0))
    np.testing.assert_array_equal(tr.frame("storage", "p_kw")["a"], np.repeat([0, 1, 2], 6))
    np.testing.assert_array_equal(tr.frame("bus", "vm_pu")["3"],
                                  np.repeat([1.0, 1.01, 1.02], 6))
    assert list(tr.convergence["status"]) == ["ok0", "ok1", "ok2"]
    text = summary(path)
    assert "INCOMPLETE: the writer did not close the file" in text and "slots       18" in text


WRITE_ERROR = textwrap.dedent("""
    import json, resource, signal, sys
    import numpy as np
    from gridcosim.outputs import TrajectoryWriter
    from gridcosim.scenarios.errors import OutputError
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # as the CLI does: EFBIG, not a signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (800_000, 800_000))
    w = TrajectoryWriter(sys.argv[1], scenario="full", scenario_json="{}", seed=1,
                         entities={"bus": [str(b) for b in range(200)]},
                         variables={"bus": [f"v{k}_pu" for k in range(8)]},
                         convergence={"start_slot": "int"}, time_units="hours",
                         version="0.1.0")
    for win in range(10_000):
        t = np.arange(win * 4, win * 4 + 4, dtype=float)
        w.append_slots(t, {"bus": {f"v{k}_pu": np.full((4, 200), float(win))
                                   for k in range(8)}})
        w.append_convergence({"start_slot": win * 4})
        w.append_checkpoint(json.dumps({"slot": win * 4 + 4}))
        try:
            w.flush()
        except OutputError as err:
            print(win, err)
            break
    try:
        w.close()
    except OutputError as err:
        print("close:", err)
""")


def test_write_error_keeps_the_flushed_windows(tmp_path):
    """A file-size limit (like a full disk) mid-run: a clear error, no crash, a readable
    file with every window flushed before the error."""
    path = tmp_path / "full.h5"
    proc = subprocess.run([sys.executable, "-c", WRITE_ERROR, str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    failed_at = int(proc.stdout.split()[0])
    assert failed_at > 5 and "write error" in proc.stdout and "close: " in proc.stdout
    assert "Traceback" not in proc.stderr and "Segmentation" not in proc.stderr
    tr = read(path)
    assert tr.slots == 4 * tr.convergence.shape[0] >= 4 * (failed_at - 1)
    values = tr.frame("bus", "v7_pu").to_numpy()
    np.testing.assert_array_equal(values[:, 0], np.repeat(np.arange(tr.slots // 4), 4))


def test_discard_drops_the_unfinished_window(tmp_path):
    path = tmp_path / "run.h5"
    rng = np.random.default_rng(0)
    w = make_writer(path)
    w.append_slots([0.0, 1.0], window_values(rng, 2))
    w.append_convergence(conv_row(0))
    w.flush()
    w.append_slots([2.0, 3.0], window_values(rng, 2))
    w.append_convergence(conv_row(1))
    w.append_checkpoint("{}")
    w.discard()
    w.append_slots([2.0], window_values(rng, 1))  # times restart after the last flush
    w.discard()
    w.close("interrupted", {"status_reason": "Ctrl-C", "failed_slot": 2})
    tr = read(path)
    assert tr.slots == 2 and len(tr.convergence) == 1
    assert tr.attrs["status"] == "interrupted" and tr.attrs["complete"] == 0
    assert "INTERRUPTED at slot 2: Ctrl-C" in summary(path)


# ---------------------------------------------------------------------------------- summary
def test_summary(tmp_path):
    path = tmp_path / "run.h5"
    _, data, _ = write_run(path)
    text = summary(path)
    assert "slots       12" in text
    assert "2016-01-04 00:00 -> 2016-01-04 12:00" in text
    assert "microgrid 2, generator 3, storage 2, bus 4, substation 1, svc 0" in text
    # generator costs are part of the microgrid costs: shown, not added again
    total = sum(expected_frame(data, k, "cost_usd").sum() for k in ("microgrid", "substation"))
    gen = expected_frame(data, "generator", "cost_usd").sum()
    assert f"total {total:.2f} USD" in text
    assert f"generator {gen:.2f} (in microgrid)" in text
    assert "substation" in text.split("cost")[1]
    assert "windows     3" in text
    assert "optimal 2" in text and "iteration_limit 1" in text
    assert "iterations  total 12" in text  # 3 + 4 + 5
    assert "[finished]" in text


def test_summary_total_without_microgrid_cost(tmp_path):
    path = tmp_path / "run.h5"
    values = window_values(np.random.default_rng(5), 3)
    del values["microgrid"]["cost_usd"]
    with make_writer(path, variables={**VARIABLES, "microgrid": ["p_kw", "q_kvar"]}) as w:
        w.append_slots([0.0, 1.0, 2.0], values)
    gen, sub = (values[k]["cost_usd"].sum() for k in ("generator", "substation"))
    assert f"total {gen + sub:.2f} USD  (generator {gen:.2f}, substation" in summary(path)


def test_reader_works_while_writer_is_open(tmp_path):
    path = tmp_path / "live.h5"
    rng = np.random.default_rng(0)
    with make_writer(path) as w:
        w.append_slots([0.0, 1.0], window_values(rng, 2))
        w.flush()
        w.append_slots([2.0], window_values(rng, 1))  # buffered only
        assert read(path).slots == 2
        assert "INCOMPLETE" in summary(path)
        assert read(path).attrs["status"] == "running"
    assert read(path).slots == 3


def test_package_imports_no_solver_code():
    code = ("import sys, gridcosim.outputs as o; bad = [m for m in sys.modules if "
            "m == 'gridcosim.outputs.tables' or m.startswith(('gridcosim.simulator', "
            "'gridcosim.agents')) or m.split('.')[0] in ('pyomo', 'highspy', 'pandapower')]; "
            "print(bad); assert o.read and not bad")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert gridcosim.outputs.read is read
    from gridcosim.outputs.hdf5 import read as hdf5_read
    from gridcosim.outputs.hdf5 import summary as hdf5_summary  # what the CLI imports
    assert callable(hdf5_read) and callable(hdf5_summary)


def test_run_attributes_are_root_attributes(tmp_path: Path) -> None:
    path = tmp_path / "attrs.h5"
    w = make_writer(path, run_attrs={"horizon_slots": 24, "noise": 0.05, "ac_cuts": True,
                                     "integer_method": "branch"})
    w.close()
    with h5py.File(path, "r") as f:
        assert f.attrs["horizon_slots"] == 24 and f.attrs["noise"] == 0.05
        assert f.attrs["ac_cuts"] == 1 and f.attrs["integer_method"] == "branch"
    assert read(path).attrs["horizon_slots"] == 24


@pytest.mark.parametrize("attrs", [{"seed": 3}, {"complete": 1}, {"bad name": 1},
                                   {"window": [1, 2]}])
def test_bad_or_reserved_run_attributes_are_refused(tmp_path: Path, attrs: dict) -> None:
    with pytest.raises(ValueError):
        make_writer(tmp_path / "bad.h5", run_attrs=attrs).close()


def test_kind_attributes_are_written_and_checked(tmp_path: Path) -> None:
    """Group attributes (``cost_included_in``) reach the file; unknown kinds are refused."""
    attrs = {"generator": {"cost_included_in": "microgrid", "entity": "a generator"}}
    with make_writer(tmp_path / "a.h5", kind_attrs=attrs):
        pass
    with h5py.File(tmp_path / "a.h5", "r") as f:
        assert f["generator"].attrs["cost_included_in"] == "microgrid"
        assert "cost_included_in" not in f["bus"].attrs
    with pytest.raises(ValueError, match="unknown kinds"):
        make_writer(tmp_path / "b.h5", kind_attrs={"nope": {"entity": "x"}})
    with pytest.raises(ValueError, match="must be a number, string or bool"):
        make_writer(tmp_path / "c.h5", kind_attrs={"bus": {"entity": [1, 2]}})


def test_ctrl_c_during_a_flush_lands_after_the_window(tmp_path, monkeypatch):
    """SIGINT between a window's slots and its convergence row: both are written.

    Before, the KeyboardInterrupt came out of the flush with the slots written and the
    row still buffered; the interrupted run's discard then dropped the row, and the file
    held a slot more than windows.
    """
    path = tmp_path / "ctrl_c.h5"
    w = make_writer(path)
    w.append_slots(np.arange(4.0), window_values(np.random.default_rng(1), 4))
    w.append_convergence(conv_row(0))
    table = w._convergence
    flush_rows = table.flush

    def interrupted_flush() -> None:
        monkeypatch.setattr(table, "flush", flush_rows)  # once
        signal.raise_signal(signal.SIGINT)  # Ctrl-C while the window is being written
        flush_rows()

    monkeypatch.setattr(table, "flush", interrupted_flush)
    with pytest.raises(KeyboardInterrupt):
        w.flush()
    w.discard()  # what an interrupted run does with its unfinished window
    w.close("interrupted")
    tr = read(path)
    assert tr.slots == 4 and len(tr.convergence) == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
