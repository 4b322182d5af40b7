"""``gridcosim plot``: every figure of a run, an interrupted run, a market run and a sweep.

Four runs are made at the same time as subprocesses, once per module: the seed case
(``ieee123-nmg``, no AC cuts), the stressed case with ``--ac`` over 3 slots (H = 2), the
market's day (``tem-eulv``) and the week scenario stopped with SIGINT after its third
window (an interrupted file: only committed slots). ``plot`` runs on each (and on a sweep
directory with a small summary written here) as a subprocess, also at the same time.
Every figure must be a non-empty image that is not one colour; figures without data are
listed as skipped. Synthetic files (written with the writer) cover a three-phase feeder,
a file with no slots and a half-written flush. About 30 s on 2 cores (45 s of CPU).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from matplotlib.image import imread

from gridcosim.outputs import TrajectoryWriter, read
from gridcosim.outputs.plots import RUN_FIGURES, ImageFormat, RunFigure, plot_path
from gridcosim.outputs.plots.network import voltage_envelope
from gridcosim.outputs.plots.run_data import RunData
from gridcosim.simulator.cli import main
from gridcosim.simulator.recording import ITERATION_COLUMNS

MARKET_FIGURES = {RunFigure.CLASS_PRICES, RunFigure.CLASS_RESPONSES, RunFigure.SUPPLY_MIX,
                  RunFigure.MARKET_SETTLEMENT}
DSO_FIGURES = set(RUN_FIGURES) - MARKET_FIGURES
MARKET_RUN_FIGURES = MARKET_FIGURES | {RunFigure.VOLTAGE_ENVELOPE,
                                       RunFigure.CONVERGENCE_WINDOWS}
RUNS = {
    "nmg": ["ieee123-nmg"],
    "stressed": ["ieee123-nmg-stressed", "--ac", "--days", "0.125", "--horizon", "2"],
    "market": ["tem-eulv"],
    "week": ["ieee123-nmg-week", "--days", "1", "--horizon", "6"],
}
INTERRUPT_AFTER_WINDOWS = 3
SWEEP_CSV = """run,param.horizon.slots,param.decomposition.integer_method,param.seed,cost_usd,\
wall_s,iterations,status,note
0,3,branch,1,100.5,1.2,5,finished,a
1,3,restoration,1,101.0,1.5,7,finished,b
2,6,branch,1,98.2,2.2,9,finished,
3,6,restoration,1,,3.0,12,failed,c
4,12,branch,1,97.0,4.1,15,finished,d
5,12,restoration,1,97.3,5.0,20,degraded,e
"""


def cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "gridcosim.simulator.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], timeout: float = 300) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def windows_on_disk(path: Path) -> int:
    try:
        return len(read(path).convergence)
    except (OSError, KeyError, ValueError):
        return 0


def interrupt(proc: subprocess.Popen[str], partial: Path) -> None:
    """SIGINT once ``partial`` holds INTERRUPT_AFTER_WINDOWS committed windows."""
    deadline = time.monotonic() + 240
    while windows_on_disk(partial) < INTERRUPT_AFTER_WINDOWS:
        assert proc.poll() is None, f"the run ended early: {proc.communicate()}"
        assert time.monotonic() < deadline, "the run committed too few windows"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The four runs' trajectories (and the sweep directory), made at the same time."""
    root = tmp_path_factory.mktemp("runs")
    paths = {name: root / f"{name}.h5" for name in RUNS}
    procs = {name: cli("run", *args, "--out", str(paths[name]), "--no-progress")
             for name, args in RUNS.items()}
    interrupt(procs["week"], root / "week.h5.partial")
    for name, proc in procs.items():
        code, _, err = finish(proc)
        assert code == (130 if name == "week" else 0), (name, err[-2000:])
    sweep = root / "sweep"
    sweep.mkdir()
    (sweep / "summary.csv").write_text(SWEEP_CSV)
    return {**paths, "sweep": sweep}


@pytest.fixture(scope="module")
def plots(files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
          ) -> dict[str, tuple[dict, Path]]:
    """``gridcosim plot --json`` of every file at once: its report and output directory.

    The seed case writes PNG and SVG (the default), the others PNG only.
    """
    out = tmp_path_factory.mktemp("plots")
    procs = {name: cli("plot", str(path), "--out", str(out / name), "--json",
                       *(() if name == "nmg" else ("--format", "png")))
             for name, path in files.items()}
    reports = {}
    for name, proc in procs.items():
        code, stdout, stderr = finish(proc)
        assert code == 0, (name, stderr[-2000:])
        assert "Traceback" not in stderr
        reports[name] = (json.loads(stdout), out / name)
    return reports


def assert_images(report: dict, out: Path, suffixes: tuple[str, ...] = (".png",)) -> None:
    """Every figure has each file, non-empty; every PNG has more than one colour."""
    assert report["figures"], report
    for name in report["figures"]:
        for suffix in suffixes:
            path = out / f"{name}{suffix}"
            assert path.is_file() and path.stat().st_size > 0, path
            if suffix == ".png":
                pixels = imread(path)
                assert np.ptp(pixels.reshape(-1, pixels.shape[-1]), axis=0).max() > 0, path
            else:
                assert "<svg" in path.read_text()[:2000], path
    assert len(report["files"]) == len(report["figures"]) * len(suffixes)


def window_figures(n: int) -> set[str]:
    return {f"{RunFigure.CONVERGENCE_WINDOW.value}_{w:03d}" for w in range(n)}


def iterated_window_figures(path: Path, report: dict) -> set[str]:
    """The per-window figures of the windows that iterated; the others are skipped as
    settled before iterating (their price rounds met the master's bound)."""
    iterations = read(path).convergence["iterations"]
    settled = window_figures(len(iterations)) - {
        f"{RunFigure.CONVERGENCE_WINDOW.value}_{w:03d}" for w in iterations.index
        if iterations[w] > 0}
    for name in settled:
        assert "settled before iterating" in report["skipped"][name], name
    return window_figures(len(iterations)) - settled


# ---------------------------------------------------------------- the runs' figures
def test_seed_run_has_every_dso_figure_in_png_and_svg(plots: dict, files: dict) -> None:
    report, out = plots["nmg"]
    assert_images(report, out, (".png", ".svg"))
    per_window = iterated_window_figures(files["nmg"], report)
    assert set(report["figures"]) == {str(f) for f in DSO_FIGURES} | per_window
    assert set(report["skipped"]) == ({str(f) for f in MARKET_FIGURES}
                                      | window_figures(6) - per_window)
    assert report["slots"] == 6 and report["windows"] == 6


def test_ac_run_plots_every_window_of_its_iterations(plots: dict, files: dict) -> None:
    report, out = plots["stressed"]
    assert_images(report, out)
    tr = read(files["stressed"])
    assert set(report["figures"]) == {str(f) for f in DSO_FIGURES} | window_figures(3)
    assert report["iteration_rows"] == len(tr.iterations) == tr.convergence["iterations"].sum()
    assert tr.iterations["cuts_ac"].max() > 0  # the AC cuts are counted per iteration


def test_market_run_has_the_market_figures_and_skips_the_microgrids(plots: dict) -> None:
    report, out = plots["market"]
    assert_images(report, out)
    assert set(report["figures"]) == {str(f) for f in MARKET_RUN_FIGURES}
    assert RunFigure.STORAGE_ENERGY in report["skipped"]
    assert "market run" in report["skipped"][f"{RunFigure.CONVERGENCE_WINDOW.value}_*"]


def test_interrupted_run_plots_its_committed_slots(plots: dict, files: dict) -> None:
    report, out = plots["week"]
    assert_images(report, out)
    tr = read(files["week"])
    assert tr.attrs["status"] == report["status"] == "interrupted"
    assert INTERRUPT_AFTER_WINDOWS <= report["windows"] == tr.slots == report["slots"] < 24
    per_window = iterated_window_figures(files["week"], report)
    assert set(report["figures"]) == {str(f) for f in DSO_FIGURES} | per_window
    iterated = tr.convergence.index[tr.convergence["iterations"] > 0]
    assert set(tr.iterations["window"]) == set(iterated)


def test_sweep_draws_each_swept_parameter(plots: dict) -> None:
    report, out = plots["sweep"]
    assert_images(report, out)
    assert report["figures"] == ["sweep_horizon_slots", "sweep_decomposition_integer_method"]
    assert "not swept" in report["skipped"]["sweep_seed"]
    assert report["runs"] == 6 and report["kind"] == "sweep"


def test_iterations_table_matches_the_convergence_rows(files: dict) -> None:
    tr = read(files["nmg"])
    per_window = tr.iterations.groupby("window")["iteration"].max()
    counts = per_window.reindex(tr.convergence.index, fill_value=0)  # 0: settled before
    assert counts.tolist() == tr.convergence["iterations"].tolist()
    last = tr.iterations.groupby("window").tail(1).set_index("window")
    conv = tr.convergence.loc[last.index]
    for family in ("unified", "lagrangian", "ac"):
        assert last[f"cuts_{family}"].tolist() == conv[f"cuts_{family}"].tolist()
    assert np.allclose(last["lower_bound_usd"], conv["lower_bound_usd"])


# ---------------------------------------------------------------- the command line
def test_a_missing_path_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    code, _, stderr = finish(cli("plot", str(tmp_path / "missing.h5")), timeout=60)
    assert code == 2 and "Traceback" not in stderr
    assert f"{tmp_path / 'missing.h5'}: no such file or directory" in stderr, stderr


@pytest.mark.parametrize(("name", "message"), [
    ("", "not a sweep directory (no summary.parquet or summary.csv)"),
    ("junk.h5", "not a gridcosim trajectory"),
    ("nmg", "--windows [99]: the file has windows 0..5"),
])
def test_bad_inputs_exit_2_with_a_clear_message(tmp_path: Path, files: dict, name: str,
                                                 message: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "junk.h5").write_text("not hdf5")
    source = files[name] if name in files else tmp_path / name
    args = ["plot", str(source), "--out", str(tmp_path / "out")]
    assert main([*args, *(["--windows", "0,99"] if name == "nmg" else [])]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- synthetic files
def synthetic(path: Path, ids: list[str], slots: int, *, close: bool = True,
              time_units: str = "hours") -> TrajectoryWriter:
    """A trajectory with bus voltages only (and per-iteration rows), ``slots`` slots."""
    writer = TrajectoryWriter(
        path, scenario="synthetic", scenario_json=json.dumps({"network": {
            "v_min_pu": 0.95, "v_max_pu": 1.05}}), seed=None, entities={"bus": ids},
        variables={"bus": ["vm_lin_pu", "vm_pu", "vm_real_pu"]},
        convergence={"start_slot": "int", "iterations": "int", "gap": "float"},
        time_units=time_units, version="test", iterations=ITERATION_COLUMNS)
    rng = np.random.default_rng(1)
    for slot in range(slots):
        vm = 1.0 - 0.04 * rng.random((1, len(ids)))
        writer.append_slots([float(slot)], {"bus": {v: vm for v in ("vm_lin_pu", "vm_pu",
                                                                       "vm_real_pu")}})
        writer.append_convergence({"start_slot": slot, "iterations": 2, "gap": 0.0},
                                  [iteration_row(slot, k) for k in (1, 2)])
        writer.flush()
    if close:
        writer.close()
    return writer


def iteration_row(slot: int, k: int) -> dict[str, object]:
    row = {name: 0 for name in ITERATION_COLUMNS}
    return {**row, "start_slot": slot, "iteration": k, "lower_bound_usd": 10.0 * k,
            "upper_bound_usd": 20.0, "gap": 0.5 / k, "cuts_unified": 3 * k}


def test_three_phase_feeder_gets_one_voltage_panel_per_phase(tmp_path: Path) -> None:
    synthetic(tmp_path / "3ph.h5", ["1.a", "1.b", "1.c", "2.a", "3.c"], 3,
              time_units="hours since 2016-01-04T00:00:00")  # a dated time axis, too
    rd = RunData.load(tmp_path / "3ph.h5")
    fig = voltage_envelope(rd)
    assert [ax.get_ylabel() for ax in fig.axes] == [f"|V| phase {p} (p.u.)" for p in "abc"]
    assert rd.dated and fig.axes[-1].get_xlabel() == "time"
    report = plot_path(tmp_path / "3ph.h5", tmp_path / "out", windows=[])
    assert "voltage_envelope" in report.figures
    assert not any(name.startswith("convergence_window_") for name in report.figures)


def test_a_file_without_slots_skips_every_slot_figure(tmp_path: Path) -> None:
    synthetic(tmp_path / "empty.h5", ["1", "2"], 0)
    report = plot_path(tmp_path / "empty.h5", tmp_path / "out")
    assert report.figures == [] and set(report.skipped) == {str(f) for f in RUN_FIGURES}


def test_rows_of_a_flush_cut_short_are_not_plotted(tmp_path: Path) -> None:
    """Rows written after the last committed counts (a killed flush) stay invisible."""
    writer = synthetic(tmp_path / "cut.h5", ["1", "2"], 2, close=False)
    writer.append_slots([2.0], {"bus": {v: np.ones((1, 2)) for v in (
        "vm_lin_pu", "vm_pu", "vm_real_pu")}})
    writer.append_convergence({"start_slot": 2, "iterations": 2, "gap": 0.0},
                              [iteration_row(2, 1), iteration_row(2, 2)])
    writer._write_buffers()  # the data, but not the counts: a flush cut short
    writer._file.flush()
    tr = read(tmp_path / "cut.h5")
    assert tr.slots == 2 and len(tr.convergence) == 2
    assert tr.iterations["window"].tolist() == [0, 0, 1, 1]
    with h5py.File(tmp_path / "cut.h5", "r", swmr=True) as f:
        assert f["iterations/window"].shape == (6,)
    report = plot_path(tmp_path / "cut.h5", tmp_path / "out", windows=[1])
    assert report.facts["slots"] == 2 and "convergence_window_001" in report.figures
    writer.close("interrupted")


def test_sweep_reading_is_defensive(tmp_path: Path) -> None:
    """An unreadable Parquet file falls back to the CSV; no status column, no panel."""
    (tmp_path / "summary.parquet").write_bytes(b"not parquet")
    (tmp_path / "summary.csv").write_text(
        "param.noise,param.ac_cuts,cost_usd,wall_s,label\n0.0,True,10,1,a\n0.05,False,12,2,b\n"
        "0.1,True,,3,c\n")
    report = plot_path(tmp_path, tmp_path / "out", formats=[ImageFormat.PNG])
    assert report.facts["summary"] == "summary.csv"
    assert report.figures == ["sweep_noise", "sweep_ac_cuts"]
    assert_images(report.to_json_dict(), tmp_path / "out")
    (tmp_path / "summary.csv").write_text("cost_usd\n1\n")
    report = plot_path(tmp_path, tmp_path / "out2")
    assert report.figures == [] and "no param.* columns" in report.skipped["sweep"]
