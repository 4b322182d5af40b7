"""``gridcosim run | inspect | scenarios`` end to end, in process and as subprocesses.

The default run (``gridcosim run ieee123-nmg``: K = 1, H = 6, six windows) is made twice,
once in this process with ``--out`` and once as a subprocess with no options in a fresh
working directory, at the same time; the two files must hold identical datasets. A third
subprocess is killed with SIGKILL after its second window and must leave a readable file.
Bad options are tested in ``test_malformed_inputs.py``, file safety and resume in
``test_run_safety.py``. The module takes about 30 s (60 s on a busy 2-core machine).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from test_cosim import assert_same_datasets, planned_cost_usd, trajectory_violations

from gridcosim.outputs import read, summary
from gridcosim.scenarios.loader import load_scenario
from gridcosim.scenarios.network import load_network
from gridcosim.scenarios.series import scenario_series
from gridcosim.simulator.cli import main
from gridcosim.simulator.solve import solve_scenario

REPO = Path(__file__).resolve().parents[1]
SEED = "ieee123-nmg"
WEEK = "ieee123-nmg-week"


def cli(*args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "gridcosim.simulator.cli", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def violations(path: Path, scenario: str = SEED) -> list[str]:
    sc = load_scenario(scenario)
    return trajectory_violations(sc, scenario_series(sc, load_network(sc.network.source)),
                                 read(path))


@dataclasses.dataclass
class DefaultRuns:
    """The default run made in this process (``--out``) and as a subprocess (no options)."""

    code: int
    stdout: str
    out: Path
    proc: subprocess.CompletedProcess[str]
    default_file: Path


@pytest.fixture(scope="module")
def default_runs(tmp_path_factory: pytest.TempPathFactory) -> DefaultRuns:
    cwd = tmp_path_factory.mktemp("default_cwd")
    proc = cli("run", SEED, cwd=cwd)  # runs while the in-process run below runs
    out = tmp_path_factory.mktemp("inproc") / "run.h5"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["run", SEED, "--out", str(out), "--no-progress"])
    stdout, stderr = proc.communicate(timeout=300)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return DefaultRuns(code, buffer.getvalue(), out, done, cwd / f"{SEED}.h5")


def test_run_with_defaults_in_process(default_runs: DefaultRuns) -> None:
    assert default_runs.code == 0
    assert str(default_runs.out) in default_runs.stdout
    tr = read(default_runs.out)
    assert tr.attrs["complete"] == 1 and tr.attrs["scenario"] == SEED and tr.attrs["seed"] == 0
    assert (tr.attrs["horizon_slots"], tr.attrs["commit_slots"], tr.attrs["noise"]) == (6, 1, 0.0)
    assert tr.attrs["ac_cuts"] == 0 and tr.attrs["price_signals"] == 1
    assert tr.slots == 6
    # defaults: K = 1, H = the scenario's 6 slots
    assert list(tr.convergence["start_slot"]) == [0, 1, 2, 3, 4, 5]
    assert list(tr.convergence["slots"]) == [6, 5, 4, 3, 2, 1]
    assert set(tr.convergence["status"]) == {"optimal"}
    assert violations(default_runs.out) == []


def test_run_prints_file_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "short.h5"
    code = main(["run", WEEK, "--days", "0.25", "--horizon", "3", "--commit",
                 "3", "--out", str(out), "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0
    assert str(out) in printed and "finished" in printed
    tr = read(out)
    assert tr.slots == 6 and len(tr.convergence) == 2  # --days 0.25 = 6 hourly slots
    assert violations(out, WEEK) == []


def test_run_without_out_writes_default_file_in_cwd(default_runs: DefaultRuns) -> None:
    done, default_file = default_runs.proc, default_runs.default_file
    assert done.returncode == 0, done.stderr
    assert f"{SEED}.h5" in done.stdout
    assert "Traceback" not in done.stderr
    assert default_file.is_file()
    assert read(default_file).slots == 6


def test_same_seed_identical_datasets_across_processes(default_runs: DefaultRuns) -> None:
    assert default_runs.proc.returncode == 0, default_runs.proc.stderr
    assert_same_datasets(default_runs.out, default_runs.default_file)


def test_day_ahead_run_reproduces_solve(tmp_path: Path) -> None:
    out = tmp_path / "da.h5"
    assert main(["run", SEED, "--horizon", "6", "--commit", "6", "--out",
                 str(out), "--no-progress"]) == 0
    mono = solve_scenario(load_scenario(SEED), "monolithic")
    tr = read(out)
    assert tr.slots == 6 and len(tr.convergence) == 1
    g = tr.groups
    for mg in mono.microgrids:
        pairs = [("microgrid", "p_ex_kw", mg.name, mg.p_ex_kw)]
        pairs += [("generator", "p_kw", u.name, u.p_kw) for u in mg.generators]
        pairs += [("storage", "p_kw", u.name, u.p_kw) for u in mg.storage]
        pairs += [("storage", "e_kwh", u.name, u.e_kwh) for u in mg.storage]
        for kind, var, name, want in pairs:
            np.testing.assert_allclose(g[kind][var][name].to_numpy(), want, rtol=0,
                                       atol=1e-4, err_msg=f"{kind}/{var}/{name}")
    np.testing.assert_allclose(g["substation"]["p_plan_kw"]["substation"].to_numpy(),
                               mono.network.p_sub_kw, rtol=0, atol=1e-4)
    assert planned_cost_usd(tr, load_scenario(SEED)) == pytest.approx(mono.objective_usd,
                                                                      rel=1e-6)


def _windows_in(path: Path) -> int:
    try:
        return len(read(path).convergence)
    except (OSError, KeyError):  # not created yet
        return 0


def test_killed_run_leaves_readable_file_with_committed_windows(tmp_path: Path) -> None:
    target = tmp_path / "killed.h5"
    out = target.with_name("killed.h5.partial")  # a killed run never renames its file
    # 48 one-slot windows: far more than can run in the flush's grace below, however fast
    proc = cli("run", WEEK, "--days", "2", "--commit", "1", "--out", str(target),
               "--no-progress")
    try:
        deadline = time.monotonic() + 240
        while _windows_in(out) < 2:
            assert proc.poll() is None, f"run ended before the kill: {proc.communicate()}"
            assert time.monotonic() < deadline, "no second window within 240 s"
            time.sleep(0.05)
        time.sleep(0.2)  # let the flush that wrote the second window finish
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not target.exists()
    with h5py.File(out, "r", swmr=True) as f:  # the dead SWMR writer's file opens so
        assert f.attrs["complete"] == 0 and f.attrs["status"] == "running"
        windows = int(f["checkpoint/committed"][1])
        assert windows >= 2
    tr = read(out)
    assert len(tr.convergence) == windows < 48
    assert tr.slots == len(tr.convergence) * 1  # K = 1: one slot per committed window
    assert list(tr.convergence["start_slot"]) == list(range(windows))
    assert violations(out, WEEK) == []
    assert "INCOMPLETE" in summary(out)


def test_scenarios_lists_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenarios"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert {"ieee123-nmg", "ieee123-nmg-week"} <= set(names)


def test_inspect_prints_slots_agents_cost_statuses(default_runs: DefaultRuns,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = default_runs.out
    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    tr = read(out)
    total = (tr.groups["substation"]["cost_usd"].to_numpy().sum()
             + tr.groups["microgrid"]["cost_usd"].to_numpy().sum())
    assert "slots       6" in text
    assert "microgrid 6" in text and "generator 6" in text and "storage 6" in text
    assert f"total {total:.2f} USD" in text
    assert "optimal 6" in text
    assert "H = 6, K = 1, noise 0.0, AC cuts False" in text
    assert "[finished]" in text and "INCOMPLETE" not in text


def test_unknown_scenario_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "no-such-scenario", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no-such-scenario" in err and "Traceback" not in err


def test_bad_scenario_file_exit_2_without_traceback(tmp_path: Path) -> None:
    text = (REPO / "scenarios" / "builtin" / f"{SEED}.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("p_max_kw = 100", "p_max_kw = -100", 1))
    proc = cli("run", str(bad), "--out", str(tmp_path / "bad.h5"), "--no-progress")
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2, (stdout, stderr)
    assert "Traceback" not in stderr
    assert "p_max_kw" in stderr
    assert not (tmp_path / "bad.h5").exists()


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--commit", "7", "commit (7) must be in 1..horizon (6)"),
    ("--days", "2", "--days 2: the scenario covers only 0.25 days (6 slots)"),
])
def test_bad_run_settings_are_reported_not_raised(tmp_path: Path, option: str, value: str,
                                                  message: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.h5"
    assert main(["run", SEED, option, value, "--out", str(out), "--no-progress"]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
