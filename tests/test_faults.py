"""Faults made on purpose: the status, exit code and file each command must end with.

Every fault is provoked through the command line (``gridcosim.simulator.cli.main`` in this
process, or a subprocess where a process must die) and checked against the documented
contract: the exit codes of :class:`gridcosim.simulator.status.ExitCode`, the ``--json``
documents of ``solve`` and ``run``, and the trajectory file read back with
:func:`gridcosim.outputs.read` (root attributes ``status``, ``status_reason``,
``failed_slot``, ``complete``; the convergence table; ``substation/ac_converged``).

* Infeasible microgrid (:func:`infeasible_text`: mg58 exports at least 150 kW at slot 0
  through a 10 kW PCC): both solve methods and ``run`` exit 3, the run's file is
  ``failed`` at slot 0 and names mg58, never its units.
* Diverging AC power flows (:func:`diverging_text`: loads x8): ``run`` and
  ``solve --method monolithic --ac`` exit 4 with every power flow failed;
  ``solve --method decomposition --ac`` must not call a schedule with failed power flows
  ``optimal``.
* Solver failure (``HighsModel.solve`` raising ``SolverError`` after N calls): exit 3, the
  windows before it kept, no traceback.
* Iteration and time caps on ``ieee123-nmg-stressed`` with small PCC ratings
  (:func:`capped_text`; exit 3 with AC cuts on the stressed case itself, when the cap
  leaves no runnable schedule): ``not_converged``, exit 4, an honest ``gap``.
* A microgrid worker killed with SIGKILL during a run: exit 3, naming the worker.

About 30 s on 2 cores (40 s when the machine is busy).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gridcosim.outputs import Trajectory, read, summary
from gridcosim.outputs.reader import summary_dict
from gridcosim.scenarios.errors import SolverError
from gridcosim.simulator import highs_model
from gridcosim.simulator.cli import main
from gridcosim.simulator.status import ExitCode

SEED = "ieee123-nmg"
STRESSED = "ieee123-nmg-stressed"
WEEK = "ieee123-nmg-week"
SLOTS = 6  # the seed and stressed scenarios' horizon
MICROGRIDS = 6
INFEASIBLE_MG = "mg58"


# --------------------------------------------------------------------------- scenarios


def builtin_text(name: str = SEED) -> str:
    """The text of a built-in scenario file."""
    return (files("gridcosim.scenarios") / "builtin" / f"{name}.toml").read_text(encoding="utf-8")


def _replace_once(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def infeasible_text() -> str:
    """The seed with mg58 unable to run any schedule in the first window.

    Its generator is on at 150 kW (ramping down at most 80 kW per slot) and its storage
    full, so it must export far more than its 10 kW PCC allows.
    """
    source = builtin_text()
    cut = source.index(f'name = "{INFEASIBLE_MG}"')
    tail = _replace_once(source[cut:], "pcc_p_max_kw = 400.0", "pcc_p_max_kw = 10.0")
    tail = _replace_once(tail, "ramp_kw_per_slot = 80",
                         "ramp_kw_per_slot = 80\ninitial_on = true\ninitial_p_kw = 150")
    tail = _replace_once(tail, "e_initial_kwh = 30", "e_initial_kwh = 90")
    return source[:cut] + tail


def capped_text() -> str:
    """The stressed case with 60 kW / 100 kvar at every PCC: an integer gap.

    The convex hull of the microgrids' schedules is 4.5e-4 below the optimum, so neither
    the price rounds nor the first master can close the gap: caps stop the loop.
    """
    text = builtin_text(STRESSED)
    assert text.count("pcc_p_max_kw = 400.0") == MICROGRIDS
    return text.replace("pcc_p_max_kw = 400.0", "pcc_p_max_kw = 60.0").replace(
        "pcc_q_max_kvar = 300.0", "pcc_q_max_kvar = 100.0")


def diverging_text() -> str:
    """The seed with every bus load x8 (no AC power flow converges) and v_min 0.55 p.u."""
    text = _replace_once(builtin_text(), "v_min_pu = 0.9", "v_min_pu = 0.55")
    return _replace_once(text, "v_max_pu = 1.1", "v_max_pu = 1.1\nload_scale = 8.0")


def private_words(text: str) -> set[str]:
    """What a DSO-side message must not show: unit names and unit and PCC field names."""
    data = tomllib.loads(text)
    units = [unit for mg in data["microgrids"]
             for kind in ("generators", "renewables", "storage") for unit in mg.get(kind, [])]
    return ({unit["name"] for unit in units} | {key for unit in units for key in unit}
            | {key for mg in data["microgrids"] for key in mg if key.startswith("pcc")}) - {
                "name"}


@pytest.fixture(scope="module")
def infeasible_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scenarios") / "infeasible.toml"
    path.write_text(infeasible_text(), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def capped_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scenarios") / "capped.toml"
    path.write_text(capped_text(), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def diverging_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scenarios") / "diverging.toml"
    path.write_text(diverging_text(), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- running


@dataclass(frozen=True)
class Result:
    """One in-process command: its exit code, stdout and stderr."""

    code: int
    out: str
    err: str

    @property
    def doc(self) -> dict[str, Any]:
        """Stdout parsed as the one JSON document it must be."""
        return json.loads(self.out)


def call(*argv: str | Path) -> Result:
    """Run the CLI in this process; assert it printed no traceback."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    assert "Traceback" not in err.getvalue(), err.getvalue()
    return Result(int(code), out.getvalue(), err.getvalue())


def run_json(scenario: str | Path, out: Path, *options: str) -> Result:
    """``gridcosim run SCENARIO --out OUT --json OPTIONS``."""
    return call("run", scenario, "--out", out, "--json", *options)


def assert_failed_file(path: Path, slot: int, reason: str) -> Trajectory:
    """The file is a readable ``failed`` trajectory stopped at ``slot`` for ``reason``."""
    assert path.is_file() and not path.with_name(path.name + ".partial").exists()
    tr = read(path)
    assert tr.attrs["status"] == "failed" and tr.attrs["complete"] == 0
    assert tr.attrs["failed_slot"] == slot
    assert reason in tr.attrs["status_reason"]
    assert summary_dict(path)["status"] == "failed"
    return tr


def assert_gap_honest(doc: dict[str, Any]) -> None:
    """A capped solve's gap: null without a finite bound or objective, else positive."""
    gap = doc["gap"]
    if doc["lower_bound_usd"] is None or doc["objective_usd"] is None:
        assert gap is None, doc
    else:
        assert gap is not None and gap > 0, doc


# --------------------------------------------------------------------------- infeasible


@pytest.mark.parametrize("method", ["monolithic", "decomposition"])
def test_infeasible_microgrid_solve_exits_3(infeasible_file: Path, method: str) -> None:
    result = call("solve", infeasible_file, "--method", method, "--json")
    doc = result.doc
    assert result.code == ExitCode.FAILED
    assert doc["status"] == "infeasible" and doc["objective_usd"] is None
    if method == "decomposition":
        assert doc["infeasible_microgrids"] == [INFEASIBLE_MG]
        assert doc["gap"] is None and doc["lower_bound_usd"] is None


def test_infeasible_microgrid_run_fails_at_slot_0(infeasible_file: Path,
                                                  tmp_path: Path) -> None:
    out = tmp_path / "infeasible.h5"
    result = run_json(infeasible_file, out)
    doc = result.doc
    assert result.code == doc["exit_code"] == ExitCode.FAILED
    assert (doc["status"], doc["failed_slot"], doc["slots"]) == ("failed", 0, 0)
    assert doc["file"] == str(out)
    tr = assert_failed_file(out, 0, INFEASIBLE_MG)
    assert tr.slots == 0 and len(tr.convergence) == 1
    row = tr.convergence.iloc[0]
    assert row["status"] == "infeasible" and row["infeasible_microgrids"] == INFEASIBLE_MG
    private = private_words(infeasible_text())
    for reason in (doc["reason"], tr.attrs["status_reason"]):
        assert INFEASIBLE_MG in reason
        assert not [word for word in private if word in reason], reason


# --------------------------------------------------------------------------- diverging AC


@pytest.fixture(scope="module")
def diverging_run(diverging_file: Path, tmp_path_factory: pytest.TempPathFactory
                  ) -> tuple[Result, Path]:
    out = tmp_path_factory.mktemp("diverging") / "diverging.h5"
    return run_json(diverging_file, out), out


def test_diverging_power_flows_run_exits_4(diverging_run: tuple[Result, Path]) -> None:
    result, out = diverging_run
    doc = result.doc
    assert result.code == doc["exit_code"] == ExitCode.DEGRADED
    assert doc["status"] == "finished" and doc["failed_slot"] is None
    assert (doc["slots"], doc["powerflow_failures"], doc["windows_not_optimal"]) == (SLOTS,
                                                                                    SLOTS, 0)
    tr = read(out)
    assert tr.attrs["status"] == "finished" and tr.attrs["complete"] == 1
    assert (tr.frame("substation", "ac_converged").to_numpy() == 0).all()
    assert np.isnan(tr.frame("bus", "vm_pu").to_numpy()).all()


def test_diverging_power_flows_inspect(diverging_run: tuple[Result, Path]) -> None:
    _, out = diverging_run
    assert f"{SLOTS} of {SLOTS} failed" in summary(out)
    result = call("inspect", out, "--json")
    assert result.code == ExitCode.OK
    doc = result.doc
    assert (doc["powerflows_checked"], doc["powerflow_failures"]) == (SLOTS, SLOTS)
    assert doc["status"] == "finished"


def test_diverging_power_flows_monolithic_ac_exits_4(diverging_file: Path) -> None:
    result = call("solve", diverging_file, "--method", "monolithic", "--ac", "--json")
    final = result.doc["ac"]["final"]
    assert result.doc["status"] == "optimal"
    assert final["power_flows_failed"] == SLOTS and final["violation_pu"] is None
    assert result.code == ExitCode.DEGRADED


def test_diverging_power_flows_decomposition_ac_is_honest(diverging_file: Path) -> None:
    """Observed: AC cuts steer it to a schedule whose power flows all converge (exit 0)."""
    result = call("solve", diverging_file, "--method", "decomposition", "--ac", "--json")
    doc = result.doc
    final = doc["ac"]["final"]
    if doc["status"] == "optimal":
        assert result.code == ExitCode.OK
        assert final["power_flows_failed"] == 0 and final["feasible"] is True
        assert final["violation_pu"] is not None and final["violation_pu"] <= final["tol_pu"]
        v_min = tomllib.loads(diverging_text())["network"]["v_min_pu"]
        assert all(s["status"] == "ok" and s["vm_min_pu"] >= v_min - final["tol_pu"]
                   for s in final["slots"])
    else:
        assert result.code in (ExitCode.FAILED, ExitCode.DEGRADED), doc["status"]
        assert final is None or final["power_flows_failed"] > 0 or not final["feasible"]


# --------------------------------------------------------------------------- solver failure


@contextlib.contextmanager
def highs_solves(monkeypatch: pytest.MonkeyPatch, fail_after: float) -> Iterator[list[int]]:
    """Count ``HighsModel.solve`` calls; raise ``SolverError`` after ``fail_after``."""
    original = highs_model.HighsModel.solve
    calls = [0]

    def solve(self: highs_model.HighsModel, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] > fail_after:
            raise SolverError("injected")
        return original(self, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(highs_model.HighsModel, "solve", solve)
        yield calls


def test_solver_failure_mid_run_exits_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    with highs_solves(monkeypatch, math.inf) as calls:
        assert main(["run", SEED, "--out", str(tmp_path / "count.h5"), "--no-progress"]) == 0
    capsys.readouterr()
    out = tmp_path / "failing.h5"
    with highs_solves(monkeypatch, calls[0] // 2):
        code = main(["run", SEED, "--out", str(out), "--json"])
    printed = capsys.readouterr()
    assert "Traceback" not in printed.err
    doc = json.loads(printed.out)
    assert code == doc["exit_code"] == ExitCode.FAILED
    assert doc["status"] == "failed" and "injected" in doc["reason"]
    slot = doc["failed_slot"]
    assert 0 < slot < SLOTS
    tr = assert_failed_file(out, slot, "injected")
    assert tr.slots == len(tr.convergence) == slot  # K = 1: the windows before it, kept
    assert set(tr.convergence["status"]) == {"optimal"}


def test_solver_failure_in_solve_exits_3(monkeypatch: pytest.MonkeyPatch) -> None:
    with highs_solves(monkeypatch, 0):
        result = call("solve", SEED, "--json")
    assert result.code == ExitCode.FAILED
    assert "injected" in result.err


def test_solver_failure_in_solve_prints_one_json_document(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with highs_solves(monkeypatch, 0):
        result = call("solve", SEED, "--json")
    assert isinstance(result.doc, dict)
    assert result.doc["status"] == "failed" and "injected" in result.doc["reason"]


# --------------------------------------------------------------------------- caps

SOLVE_CAPS = [("--max-iterations", "1"), ("--time-limit", "0.001")]
RUN_CAPS = [("--max-iterations", "1"), ("--window-time-limit", "0.001")]


@pytest.mark.parametrize("cap", SOLVE_CAPS, ids=lambda c: c[0])
def test_capped_solve_is_not_converged_exit_4(cap: tuple[str, str], capped_file: Path) -> None:
    result = call("solve", capped_file, "--json", *cap)
    doc = result.doc
    assert doc["status"] == "not_converged" and result.code == ExitCode.DEGRADED
    assert doc["objective_usd"] is not None and "network" in doc  # best runnable schedule
    assert len(doc["microgrids"]) == MICROGRIDS
    assert_gap_honest(doc)


def test_capped_ac_solve_without_schedule_exits_3() -> None:
    result = call("solve", STRESSED, "--json", "--ac", "--max-iterations", "1")
    doc = result.doc
    assert doc["status"] == "not_converged" and result.code == ExitCode.FAILED
    assert doc["objective_usd"] is None and "network" not in doc
    assert_gap_honest(doc)


@pytest.mark.parametrize("cap", RUN_CAPS, ids=lambda c: c[0])
def test_capped_run_finishes_degraded_exit_4(cap: tuple[str, str], tmp_path: Path,
                                            capped_file: Path) -> None:
    out = tmp_path / "capped.h5"
    result = run_json(capped_file, out, "--horizon", "6", "--commit", "6", *cap)
    doc = result.doc
    assert result.code == doc["exit_code"] == ExitCode.DEGRADED
    assert doc["status"] == "finished" and doc["windows_not_optimal"] > 0
    tr = read(out)
    assert tr.attrs["status"] == "finished" and tr.slots == SLOTS
    conv = tr.convergence
    capped = conv[conv["status"] != "optimal"]
    assert len(capped) == doc["windows_not_optimal"]
    assert set(capped["status"]) == {"not_converged"}
    assert (capped["gap"] > 0).all() and np.isfinite(capped["cost_usd"]).all()
    assert summary_dict(out)["window_statuses"]["not_converged"] == len(capped)


# --------------------------------------------------------------------------- killed worker


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            kids += [int(k) for k in (task / "children").read_text().split()]
    return kids


def _workers(pid: int) -> list[int]:
    """The run's worker children (not its resource tracker): spawned ones run
    ``spawn_main``, forked ones (Linux) have the run's own command line."""
    workers = []
    own = Path(f"/proc/{pid}/cmdline").read_bytes()
    for kid in _children(pid):
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{kid}/cmdline").read_bytes()
            if b"spawn_main" in cmdline or cmdline == own:
                workers.append(kid)
    return workers


def _windows_in(path: Path) -> int:
    try:
        return len(read(path).convergence)
    except (OSError, KeyError):  # not created yet, or between two flushes
        return 0


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_killed_worker_fails_the_run_exit_3(tmp_path: Path) -> None:
    out = tmp_path / "killed.h5"
    partial = out.with_name(out.name + ".partial")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridcosim.simulator.cli", "run", WEEK, "--days", "2",
         "--horizon", "6", "--workers", "2", "--out", str(out), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while _windows_in(partial) < 2:
            assert proc.poll() is None, f"run ended before the kill: {proc.communicate()}"
            assert time.monotonic() < deadline, "no second window within 120 s"
            time.sleep(0.05)
        workers = _workers(proc.pid)
        assert len(workers) == 2, workers
        os.kill(workers[0], signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "Traceback" not in stderr, stderr
    doc = json.loads(stdout)
    assert proc.returncode == doc["exit_code"] == ExitCode.FAILED, stderr
    assert doc["status"] == "failed" and "microgrid worker" in doc["reason"]
    tr = assert_failed_file(out, doc["failed_slot"], "microgrid worker")
    assert tr.slots == len(tr.convergence) == doc["failed_slot"] >= 2
    assert _gone(workers[1]), "the surviving worker outlived the run"
