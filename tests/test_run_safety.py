"""No silent data loss and honest resumption: ``gridcosim run`` with ``--out``, ``--force``
and ``--resume``, Ctrl-C, ``kill -9`` and write errors, as a user meets them.

Reference: one uninterrupted run of the week scenario (1 day, H = 6, K = 1, seeded noise:
24 windows). Every interrupted, killed or write-failed run is continued with ``--resume``
and must end with a file whose datasets equal the reference's bit for bit (wall-clock
columns aside). Runs are subprocesses, as a user starts them; a kill lands at random
points (seeded) after the first windows are on disk. About 90 s on 2 cores.
"""

from __future__ import annotations

import hashlib
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_cosim import assert_same_datasets

from gridcosim.outputs import read
from gridcosim.simulator.cli import main

WEEK = ["ieee123-nmg-week", "--days", "1", "--horizon", "6", "--noise", "0.05", "--seed", "3",
        "--no-progress"]
SEED = ["ieee123-nmg", "--no-progress"]


def cli(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "gridcosim.simulator.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kwargs)


def finish(proc: subprocess.Popen[str], timeout: float = 300) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def windows_on_disk(path: Path) -> int:
    try:
        return len(read(path).convergence)
    except (OSError, KeyError):
        return 0


def wait_for_windows(proc: subprocess.Popen[str], path: Path, n: int) -> None:
    deadline = time.monotonic() + 240
    while windows_on_disk(path) < n:
        assert proc.poll() is None, f"the run ended early: {proc.communicate()}"
        assert time.monotonic() < deadline, f"fewer than {n} windows after 240 s"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The uninterrupted run's file and its wall time (the kill tests scale by it)."""
    out = tmp_path_factory.mktemp("reference") / "week.h5"
    start = time.monotonic()
    assert main(["run", *WEEK, "--out", str(out)]) == 0
    return out, time.monotonic() - start


@pytest.fixture(scope="module")
def reference(reference_run: tuple[Path, float]) -> Path:
    return reference_run[0]


# ---------------------------------------------------------------- overwriting
def test_existing_output_is_not_replaced_without_force(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "seed.h5"
    assert main(["run", *SEED, "--out", str(out)]) == 0
    before = digest(out)
    assert main(["run", *SEED, "--out", str(out), "--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert "exists" in err and "--force" in err and "Traceback" not in err
    assert digest(out) == before
    assert main(["run", *SEED, "--out", str(out), "--seed", "1", "--force"]) == 0
    assert read(out).attrs["seed"] == 1


def test_scenario_file_is_never_the_output(tmp_path: Path, capsys: pytest.CaptureFixture
                                           ) -> None:
    from importlib.resources import files

    scenario = tmp_path / "mine.toml"
    scenario.write_text((files("gridcosim.scenarios") / "builtin" / "ieee123-nmg.toml")
                        .read_text())
    before = digest(scenario)
    for extra in ([], ["--force"]):
        assert main(["run", str(scenario), "--no-progress", "--out", str(scenario), *extra]) == 2
        assert "scenario file" in capsys.readouterr().err
    assert digest(scenario) == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "mine.toml"]


@pytest.mark.parametrize("folder", ["missing", "readonly"])
def test_unusable_output_folder_is_an_input_error(tmp_path: Path, folder: str,
                                                  capsys: pytest.CaptureFixture) -> None:
    where = tmp_path / folder
    if folder == "readonly":
        where.mkdir(mode=0o500)
    code = main(["run", *SEED, "--out", str(where / "x.h5")])
    err = capsys.readouterr().err
    if folder == "readonly" and code == 0:  # root may write anywhere
        pytest.skip("running as root: a read-only folder is still writable")
    assert code == 2 and ("does not exist" in err or "not writable" in err), err


def test_failed_run_keeps_the_earlier_trajectory(tmp_path: Path, reference: Path) -> None:
    """--force over a good file, then the run fails: the good file stays, the failed run's
    file is kept beside it."""
    from importlib.resources import files

    out = tmp_path / "week.h5"
    out.write_bytes(reference.read_bytes())
    before = digest(out)
    text = (files("gridcosim.scenarios") / "builtin" / "ieee123-nmg.toml").read_text()
    i = text.index('name = "mg58"')
    bad = text[:i] + text[i:].replace("e_initial_kwh = 30", "e_initial_kwh = 90", 1).replace(
        "pcc_p_max_kw = 400.0", "pcc_p_max_kw = 10.0", 1).replace(
        "ramp_kw_per_slot = 80", "ramp_kw_per_slot = 80\ninitial_on = true\ninitial_p_kw = 150",
        1)
    scenario = tmp_path / "infeasible.toml"
    scenario.write_text(bad)
    assert main(["run", str(scenario), "--no-progress", "--out", str(out), "--force"]) == 3
    assert digest(out) == before
    failed = read(tmp_path / "week.h5.partial")
    assert failed.attrs["status"] == "failed" and "mg58" in failed.attrs["status_reason"]


# ---------------------------------------------------------------- stopping and resuming
def test_ctrl_c_marks_the_file_interrupted_and_resume_completes_it(tmp_path: Path,
                                                                   reference: Path) -> None:
    out = tmp_path / "week.h5"
    proc = cli("run", *WEEK, "--out", str(out))
    wait_for_windows(proc, out.with_name("week.h5.partial"), 3)
    proc.send_signal(signal.SIGINT)
    code, stdout, stderr = finish(proc)
    assert code == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stdout and "--resume" in stdout
    tr = read(out)  # no earlier file: the interrupted trajectory takes the name
    assert tr.attrs["status"] == "interrupted" and tr.attrs["complete"] == 0
    assert 3 <= len(tr.convergence) == tr.slots < 24  # whole windows only (K = 1)
    code, stdout, stderr = finish(cli("run", *WEEK, "--out", str(out), "--resume"))
    assert code == 0, stderr
    assert read(out).attrs["status"] == "finished"
    assert_same_datasets(out, reference)


@pytest.mark.parametrize("seed", [11, pytest.param(12, marks=pytest.mark.slow),
                                  pytest.param(13, marks=pytest.mark.slow)])
def test_kill_9_anywhere_then_resume_equals_an_uninterrupted_run(
        tmp_path: Path, reference: Path, reference_run: tuple[Path, float], seed: int) -> None:
    out = tmp_path / "week.h5"
    partial = out.with_name("week.h5.partial")
    proc = cli("run", *WEEK, "--out", str(out))
    wait_for_windows(proc, partial, 1)
    # anywhere in the run (inside a flush, or not): within half the uninterrupted run's time
    time.sleep(random.Random(seed).uniform(0.0, 0.5 * reference_run[1]))
    proc.kill()
    code, _, _ = finish(proc)
    if code == 0 or (out.exists() and not partial.exists()):
        pytest.skip("the run had finished its file before the kill")
    assert code == -signal.SIGKILL and partial.exists() and not out.exists()
    killed_at = len(read(partial).convergence)
    code, stdout, stderr = finish(cli("run", *WEEK, "--out", str(out), "--resume", "--json"))
    assert code == 0, stderr
    assert f'"resumed_from_slot": {killed_at}' in stdout
    assert not partial.exists()
    assert_same_datasets(out, reference)


def _file_size_limit(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_write_error_stops_cleanly_and_resume_completes(tmp_path: Path, reference: Path
                                                        ) -> None:
    out = tmp_path / "week.h5"
    size = reference.stat().st_size
    proc = cli("run", *WEEK, "--out", str(out), preexec_fn=lambda: _file_size_limit(size * 4 // 5))
    code, stdout, stderr = finish(proc)
    assert code == 5, (stdout, stderr)
    assert "write error" in stdout and "Traceback" not in stderr and "Segmentation" not in stderr
    tr = read(out)
    assert 0 < tr.slots == len(tr.convergence) < 24
    code, _, stderr = finish(cli("run", *WEEK, "--out", str(out), "--resume"))
    assert code == 0, stderr
    assert_same_datasets(out, reference)


def test_resume_refuses_other_options_and_says_which(tmp_path: Path, reference: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "week.h5"
    partial = out.with_name("week.h5.partial")
    partial.write_bytes(reference.read_bytes())
    assert main(["run", *WEEK[:-3], "--seed", "4", "--no-progress", "--out", str(out),
                 "--resume"]) == 2
    assert "different seed (file: 3, now: 4)" in capsys.readouterr().err
    assert main(["run", *WEEK, "--horizon", "5", "--out", str(out), "--resume"]) == 2
    assert "horizon_slots" in capsys.readouterr().err
    assert main(["run", *SEED, "--out", str(tmp_path / "none.h5"), "--resume"]) == 2
    assert "no stopped run" in capsys.readouterr().err


def test_resume_of_a_finished_file_does_nothing(tmp_path: Path, reference: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "week.h5"
    out.write_bytes(reference.read_bytes())
    before = digest(out)
    assert main(["run", *WEEK, "--out", str(out), "--resume"]) == 0
    assert "already finished" in capsys.readouterr().out
    assert digest(out) == before
