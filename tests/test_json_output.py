"""``--json``: every command prints exactly one JSON document on stdout, whatever happens.

Each command runs as a subprocess (``python -m gridcosim.simulator.cli ...``), so anything
written to file descriptor 1 (a solver's banner, as highspy 1.16 printed) would break the
document; capturing ``sys.stdout`` in this process could not see it. The whole stdout
must parse with :func:`json.loads` as one object (NaN and infinities, which are not JSON,
rejected), stderr must hold no traceback, and the exit code must agree with the
document's status, as :class:`gridcosim.simulator.status.ExitCode` documents it.

Covered: ``solve`` (monolithic, decomposition, ``--workers 2``, ``--ac``,
``--workers 2 --ac``, ``--integer-method restoration --stabilisation none``,
``--max-iterations 1``, an infeasible scenario), ``run`` (finished and
failed) and ``inspect`` on both files. The commands run two at a time: about 30 s on
2 cores, 55 s when another job shares them.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_faults import INFEASIBLE_MG, infeasible_text

from gridcosim.outputs import read
from gridcosim.simulator.status import ExitCode

SEED = "ieee123-nmg"
STRESSED = "ieee123-nmg-stressed"
MICROGRIDS = {"mg7", "mg50", "mg58", "mg96", "mg104", "mg121"}
DIR = "{dir}"  # replaced by the module's working folder

#: Solve commands (slowest first: they run two at a time) and the status each must give.
SOLVES: dict[str, tuple[tuple[str, ...], str]] = {
    "workers-2-ac": (("--workers", "2", "--ac"), "optimal"),
    "workers-2": (("--workers", "2"), "optimal"),
    "ac": (("--ac",), "optimal"),
    "monolithic": (("--method", "monolithic"), "optimal"),
    "decomposition": (("--method", "decomposition"), "optimal"),
    "restoration-none": (("--integer-method", "restoration", "--stabilisation", "none"),
                         "optimal"),
    # with AC cuts: the price rounds alone settle the stressed case at its first master
    "max-iterations-1": (("--max-iterations", "1", "--ac"), "not_converged"),
    "infeasible": (("--method", "decomposition"), "infeasible"),
}
RUNS: dict[str, tuple[str, ...]] = {
    "run-finished": ("run", SEED, "--commit", "3", "--out", f"{DIR}/finished.h5", "--json"),
    "run-failed": ("run", f"{DIR}/infeasible.toml", "--out", f"{DIR}/failed.h5", "--json"),
}
INSPECTS: dict[str, tuple[str, ...]] = {
    "inspect-finished": ("inspect", f"{DIR}/finished.h5", "--json"),
    "inspect-failed": ("inspect", f"{DIR}/failed.h5", "--json"),
}


def solve_argv(case: str) -> tuple[str, ...]:
    """The ``solve`` command line of a :data:`SOLVES` case."""
    options, _ = SOLVES[case]
    scenario = (f"{DIR}/infeasible.toml" if case.startswith("infeasible") else
                STRESSED if case == "max-iterations-1" else SEED)
    return ("solve", scenario, "--json", *options)


COMMANDS: dict[str, tuple[str, ...]] = {
    **{case: solve_argv(case) for case in SOLVES}, **RUNS, **INSPECTS}


@dataclass(frozen=True)
class Done:
    """A finished subprocess: its exit code, stdout and stderr."""

    code: int
    stdout: str
    stderr: str


def _reject(token: str) -> Any:
    raise ValueError(f"{token} is not JSON")


def document(done: Done) -> dict[str, Any]:
    """The one strict-JSON object that is the whole of stdout."""
    doc = json.loads(done.stdout, parse_constant=_reject)
    assert isinstance(doc, dict)
    return doc


def _run(argv: tuple[str, ...], folder: Path) -> Done:
    args = [a.replace(DIR, str(folder)) for a in argv]
    proc = subprocess.run([sys.executable, "-m", "gridcosim.simulator.cli", *args],
                          capture_output=True, text=True, timeout=300, check=False)
    return Done(proc.returncode, proc.stdout, proc.stderr)


def _run_all(names: list[str], folder: Path) -> dict[str, Done]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(_run, COMMANDS[name], folder) for name in names}
        return {name: future.result() for name, future in futures.items()}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("json")
    (path / "infeasible.toml").write_text(infeasible_text(), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def results(folder: Path) -> dict[str, Done]:
    """Every command's result: solves and runs first, then inspect on the run files."""
    done = _run_all([*SOLVES, *RUNS], folder)
    return {**done, **_run_all(list(INSPECTS), folder)}


def solve_exit_code(doc: dict[str, Any]) -> int:
    """The exit code the README and ExitCode give for a solve's JSON document."""
    ac = (doc.get("ac") or {}).get("final") or {}
    if doc["status"] == "optimal":
        return ExitCode.DEGRADED if ac.get("power_flows_failed") else ExitCode.OK
    if doc["status"] == "not_converged" and doc.get("network") is not None:
        return ExitCode.DEGRADED
    return ExitCode.FAILED


# --------------------------------------------------------------------------- every command


@pytest.mark.parametrize("name", list(COMMANDS))
def test_stdout_is_one_json_document(results: dict[str, Done], name: str) -> None:
    done = results[name]
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stdout.strip(), f"nothing on stdout; stderr:\n{done.stderr}"
    document(done)


# --------------------------------------------------------------------------- solve


@pytest.mark.parametrize("name", list(SOLVES))
def test_solve_status_matches_exit_code(results: dict[str, Done], name: str) -> None:
    done = results[name]
    doc = document(done)
    assert doc["status"] == SOLVES[name][1]
    assert done.code == solve_exit_code(doc), doc["status"]
    method = "monolithic" if "monolithic" in SOLVES[name][0] else "decomposition"
    assert doc["method"] == method
    if method == "decomposition":
        assert {"gap", "lower_bound_usd", "cuts", "iterations"} <= set(doc)


@pytest.mark.parametrize("name", [n for n, (_, s) in SOLVES.items() if s == "optimal"])
def test_optimal_solves_agree(results: dict[str, Done], name: str) -> None:
    doc = document(results[name])
    reference = document(results["monolithic"])["objective_usd"]
    assert doc["objective_usd"] == pytest.approx(reference, rel=1e-6)
    assert set(doc["microgrids"]) == MICROGRIDS and "network" in doc
    if doc["method"] == "decomposition":
        assert doc["gap"] is not None and 0 <= doc["gap"] <= 1e-6


@pytest.mark.parametrize("name", ["ac", "workers-2-ac"])
def test_ac_solves_report_their_final_check(results: dict[str, Done], name: str) -> None:
    final = document(results[name])["ac"]["final"]
    assert final["power_flows_failed"] == 0 and final["feasible"] is True
    assert final["violation_pu"] is not None and math.isfinite(final["violation_pu"])


def test_solve_echoes_integer_method_and_stabilisation(results: dict[str, Done]) -> None:
    doc = document(results["restoration-none"])
    assert (doc["integer_method"], doc["stabilisation"]) == ("restoration", "none")


def test_capped_solve_gap_is_positive_or_null(results: dict[str, Done]) -> None:
    doc = document(results["max-iterations-1"])
    assert doc["iterations"] == 1
    if doc["lower_bound_usd"] is None or doc["objective_usd"] is None:
        assert doc["gap"] is None
    else:
        assert doc["gap"] > 0
        assert doc["lower_bound_usd"] <= doc["objective_usd"]


def test_infeasible_solve_document(results: dict[str, Done]) -> None:
    doc = document(results["infeasible"])
    assert doc["objective_usd"] is None and doc["gap"] is None
    assert doc["infeasible_microgrids"] == [INFEASIBLE_MG]


# --------------------------------------------------------------------------- run, inspect


@pytest.mark.parametrize(("name", "status", "code"), [
    ("run-finished", "finished", ExitCode.OK), ("run-failed", "failed", ExitCode.FAILED)])
def test_run_document(results: dict[str, Done], folder: Path, name: str, status: str,
                      code: int) -> None:
    done = results[name]
    doc = document(done)
    assert (doc["status"], doc["exit_code"], done.code) == (status, code, code)
    tr = read(doc["file"])
    assert Path(doc["file"]).parent == folder and tr.attrs["status"] == status
    assert (doc["slots"], doc["windows"]) == (tr.slots, len(tr.convergence))
    if status == "failed":
        assert doc["failed_slot"] == 0 and INFEASIBLE_MG in doc["reason"]
    else:
        assert doc["failed_slot"] is None and doc["reason"] is None
        assert (doc["slots"], doc["windows_not_optimal"], doc["powerflow_failures"]) == (6, 0, 0)


@pytest.mark.parametrize(("name", "run"), [("inspect-finished", "run-finished"),
                                           ("inspect-failed", "run-failed")])
def test_inspect_document(results: dict[str, Done], name: str, run: str) -> None:
    done, ran = results[name], document(results[run])
    doc = document(done)
    assert done.code == ExitCode.OK
    assert doc["status"] == ran["status"]
    assert (doc["slots"], doc["windows"]) == (ran["slots"], ran["windows"])
    assert doc["powerflow_failures"] == ran["powerflow_failures"]
    not_optimal = sum(n for s, n in doc["window_statuses"].items() if s != "optimal")
    assert not_optimal == ran["windows_not_optimal"]
