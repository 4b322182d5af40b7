"""``gridcosim sweep``: the grid, the engines, resumability, failures and the command line.

One 2 x 2 grid (``network.load_scale`` x ``microgrids.0.storage.0.e_max_kwh``) x 2 seeds on
``ieee123-nmg`` (6 hourly slots per run, H = K = 3, noise 0.05) runs once on a local pool
of 2 workers. Its rows are checked against the same 8 runs made one by one with
``run_scenario`` on variants built by hand, then against the same sweep on a dask
``LocalCluster`` (2 worker processes); re-running it runs nothing, in this process and as a
subprocess; an interrupted run is resumed and ends as the uninterrupted one. A failing
variant (mg58 unable to run any schedule) and a run that raises are rows with their
status; the other run completes. About 35 s on 2 cores.
"""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from gridcosim.outputs.overview import summary_dict
from gridcosim.scenarios.errors import InputError
from gridcosim.scenarios.loader import load_scenario, scenario_from_dict
from gridcosim.scenarios.schema import Scenario
from gridcosim.simulator import sweep_run
from gridcosim.simulator.cosim import CoSimulation, RunSettings
from gridcosim.simulator.runner import run_scenario
from gridcosim.simulator.status import ExitCode
from gridcosim.simulator.sweep import SweepResult, run_sweep
from gridcosim.simulator.sweep_grid import build_variants, resolve_params, split_param
from gridcosim.simulator.sweep_summary import NONDETERMINISTIC, Column, RunAction

SEED = "ieee123-nmg"
LOAD, EMAX = "network.load_scale", "microgrids.0.storage.0.e_max_kwh"
GRID = {LOAD: "1.0,1.3", EMAX: "80,120", "run.noise": "0.05", "run.horizon": "3",
        "run.commit": "3"}
SEEDS = 2


def cli_args(out: Path) -> list[str]:
    params = [arg for path, values in GRID.items() for arg in ("--param", f"{path}={values}")]
    return ["sweep", SEED, *params, "--seeds", str(SEEDS), "--out", str(out)]


def popen(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "gridcosim.simulator.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.h5")}


def deterministic(table: pd.DataFrame) -> pd.DataFrame:
    return table[[c for c in table.columns if c not in NONDETERMINISTIC]]


@pytest.fixture(scope="module")
def base() -> Scenario:
    return load_scenario(SEED)


@pytest.fixture(scope="module")
def pooled(base: Scenario, tmp_path_factory: pytest.TempPathFactory) -> SweepResult:
    """The grid on a local pool of 2 workers."""
    return run_sweep(base, GRID, tmp_path_factory.mktemp("sweep"), seeds=SEEDS, workers=2,
                     progress=False)


def test_the_grid_writes_one_trajectory_and_one_row_per_run(pooled: SweepResult) -> None:
    table = pooled.table
    assert len(table) == 8 and sorted(table[Column.RUN]) == list(range(8))
    assert sorted(p.name for p in pooled.out_dir.glob("*.h5")) == sorted(table[Column.FILE])
    assert set(table[Column.STATUS]) == {"finished"} and pooled.exit_code == ExitCode.OK
    assert set(table[Column.ACTION]) == {RunAction.RAN} and pooled.count(RunAction.RAN) == 8
    assert list(table["param." + LOAD]) == [1.0] * 4 + [1.3] * 4
    assert list(table["param." + EMAX]) == [80.0, 80.0, 120.0, 120.0] * 2
    assert list(table[Column.SEED]) == [0, 1] * 4
    for column in ("cost_usd", "substation.cost_usd", "microgrid.cost_usd",
                   "microgrid.settlement_usd", "energy_served_kwh", "energy_curtailed_kwh",
                   "storage_throughput_kwh", "violation_slots", "iterations", "cuts", "wall_s",
                   "windows", "slots"):
        assert table[column].notna().all(), column
    assert (table[Column.SLOTS] == 6).all() and (table[Column.WINDOWS] == 2).all()
    assert table[Column.COST_USD].nunique() == 8  # every parameter and seed matters
    on_disk = pd.read_parquet(pooled.parquet)
    pd.testing.assert_frame_equal(on_disk, table)
    assert len(pd.read_csv(pooled.csv)) == 8


def _by_hand(base: Scenario, load: float, e_max: float) -> Scenario:
    doc = base.model_dump(mode="json")
    doc["network"]["load_scale"] = load
    doc["microgrids"][0]["storage"][0]["e_max_kwh"] = e_max
    return scenario_from_dict(doc)


def _reference(scenario: Scenario, seed: int, out: Path) -> dict[str, Any]:
    """One run with ``run_scenario`` (no sweep code): its ``inspect`` facts."""
    settings = RunSettings(horizon=3, commit=3, noise=0.05, seed=seed)
    outcome = run_scenario(scenario, out, settings, progress=False)
    return {"status": str(outcome.status), **summary_dict(out)}


def test_rows_equal_the_same_runs_one_by_one(pooled: SweepResult, base: Scenario,
                                             tmp_path: Path) -> None:
    rows = pooled.table.to_dict(orient="records")
    calls = [(_by_hand(base, r["param." + LOAD], r["param." + EMAX]), int(r[Column.SEED]),
              tmp_path / f"ref{r[Column.RUN]}.h5") for r in rows]
    # one run_scenario call per run, two at a time (a plain process pool, not the sweep's)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        references = list(pool.map(_reference, *zip(*calls, strict=True)))
    for row, facts in zip(rows, references, strict=True):
        assert facts["status"] == "finished"
        assert row[Column.COST_USD] == pytest.approx(facts["cost_usd"]["total"], rel=1e-12)
        for kind in ("substation", "microgrid", "generator"):
            assert row[f"{kind}.cost_usd"] == pytest.approx(facts["cost_usd"][kind], rel=1e-12)
        assert row[Column.ITERATIONS] == facts["iterations"]


def test_rerunning_runs_nothing(pooled: SweepResult, base: Scenario,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    before = mtimes(pooled.out_dir)

    def no_run(spec: Any) -> dict[str, Any]:
        raise AssertionError(f"run {spec.index} ran again")

    monkeypatch.setattr(sweep_run, "run_one", no_run)
    again = run_sweep(base, GRID, pooled.out_dir, seeds=SEEDS, progress=False)
    assert mtimes(pooled.out_dir) == before
    assert again.count(RunAction.REUSED) == 8
    pd.testing.assert_frame_equal(deterministic(again.table), deterministic(pooled.table))
    assert list(again.table[Column.WALL_S]) == list(pooled.table[Column.WALL_S])


def test_an_interrupted_run_is_resumed(pooled: SweepResult, base: Scenario, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    one = {**GRID, LOAD: "1.0", EMAX: "80"}  # the grid's run 0 (seed 0)
    step = CoSimulation.step

    def stop_at_slot_4(model: CoSimulation) -> None:  # Ctrl-C in the second window
        if model.slot == 4:
            raise KeyboardInterrupt
        step(model)

    monkeypatch.setattr(CoSimulation, "step", stop_at_slot_4)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(base, one, tmp_path, progress=False)
    stopped = pd.read_parquet(tmp_path / "summary.parquet")
    assert list(stopped[Column.STATUS]) == ["interrupted"] and list(stopped[Column.SLOTS]) == [3]
    monkeypatch.setattr(CoSimulation, "step", step)
    resumed = run_sweep(base, one, tmp_path, progress=False)
    row, first = resumed.table.iloc[0], pooled.table.iloc[0]
    assert row[Column.ACTION] == RunAction.RESUMED and row[Column.STATUS] == "finished"
    assert row[Column.FILE] == first[Column.FILE]
    assert row[Column.COST_USD] == pytest.approx(first[Column.COST_USD], rel=1e-12)


def test_cli_json_rerun_and_bad_params(pooled: SweepResult) -> None:
    before = mtimes(pooled.out_dir)
    rerun = popen(*cli_args(pooled.out_dir), "--json")
    bad_path = popen("sweep", SEED, "--param", "network.load_scal=1.0", "--out",
                     str(pooled.out_dir / "bad"))
    bad_value = popen("sweep", SEED, "--param", "microgrids.mg7.pcc_p_max_kw=1,-5", "--out",
                      str(pooled.out_dir / "bad"))
    stdout, stderr = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, stderr
    doc = json.loads(stdout)  # exactly one JSON document
    assert doc["runs"] == 8 and doc["reused"] == 8 and doc["ran"] == 0
    assert doc["exit_code"] == 0 and len(doc["rows"]) == 8
    assert [r[Column.COST_USD] for r in doc["rows"]] == pytest.approx(
        list(pooled.table[Column.COST_USD]), rel=1e-12)
    assert mtimes(pooled.out_dir) == before
    for proc, named in ((bad_path, "network.load_scal"),
                        (bad_value, "microgrids.mg7.pcc_p_max_kw=-5")):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == ExitCode.INVALID_INPUT, err
        assert named in err and "Traceback" not in err and out == ""
    assert not (pooled.out_dir / "bad").exists()


def test_a_failing_variant_is_a_row_and_the_others_complete(base: Scenario,
                                                            tmp_path: Path) -> None:
    # mg58's generator on at 150 kW and its storage full: a 10 kW PCC cannot take the rest
    mg58 = "microgrids.mg58"
    params = {f"{mg58}.pcc_p_max_kw": [10.0, 400.0], f"{mg58}.generators.0.initial_on": [True],
              f"{mg58}.generators.0.initial_p_kw": [150.0],
              f"{mg58}.storage.0.e_initial_kwh": [90.0], "run.horizon": [3, 7],
              "run.commit": [3]}
    result = run_sweep(base, params, tmp_path, workers=2, progress=False)
    rows = result.table.set_index(Column.RUN)
    assert list(rows[Column.STATUS]) == ["failed", "failed", "finished", "failed"]
    assert "infeasible" in rows.at[0, Column.REASON] and "mg58" in rows.at[0, Column.REASON]
    assert "horizon (7)" in rows.at[1, Column.REASON]  # raised when the model was built
    assert rows.at[2, Column.EXIT_CODE] == ExitCode.OK and rows.at[2, Column.SLOTS] == 6
    assert pd.isna(rows.at[0, Column.COST_USD]) and rows.at[2, Column.COST_USD] > 0
    assert result.exit_code == ExitCode.FAILED
    assert len(pd.read_parquet(result.parquet)) == 4


def test_dask_cluster_gives_the_same_summary(pooled: SweepResult, base: Scenario,
                                              tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        result = run_sweep(base, GRID, tmp_path, seeds=SEEDS, client=client, progress=False)
    assert str(result.engine) == "dask" and result.count(RunAction.RAN) == 8
    pd.testing.assert_frame_equal(deterministic(result.table), deterministic(pooled.table))


# --------------------------------------------------------------------------- the grid
def test_values_split_and_parse_by_field_type(base: Scenario) -> None:
    assert split_param("profiles.load=[1, 2],[3, 4]") == ("profiles.load", ["[1, 2]", "[3, 4]"])
    params = resolve_params(base, {
        "network.load_scale": "1,1.5", "microgrids.mg7.generators.dg7.initial_on": "true,no",
        "run.max_iterations": "10", "run.price_signals": "false", "network.ac_engine": "auto",
        "profiles.load": "[1, 1, 1, 1, 1, 1]", "run.noise": [0, 0.1]})
    values = {p.path: p.values for p in params}
    assert values["network.load_scale"] == (1.0, 1.5)
    assert values["microgrids.mg7.generators.dg7.initial_on"] == (True, False)
    assert values["run.max_iterations"] == (10,) and values["run.price_signals"] == (False,)
    assert values["network.ac_engine"] == ("auto",) and values["run.noise"] == (0.0, 0.1)
    assert values["profiles.load"] == ([1, 1, 1, 1, 1, 1],)


@pytest.mark.parametrize(("params", "named"), [
    ({"network.nope": "1"}, "network.nope"),
    ({"microgrids.7.bus": "1"}, "microgrids.7.bus"),
    ({"microgrids.mg999.bus": "1"}, "mg999"),
    ({"run.speed": "1"}, "run.speed"),
    ({"run.workers": "2"}, "run.workers"),
    ({"run.seed": "x"}, "run.seed=x"),
    ({"network.load_scale": "1,0"}, "network.load_scale=0.0"),
    ({"run.noise": "0,2"}, "run.noise=2.0"),
    ({"run.commit": "7"}, "run.commit"),
])
def test_bad_paths_and_values_name_the_parameter(base: Scenario, params: dict[str, str],
                                                 named: str) -> None:
    with pytest.raises(InputError, match=named.replace(".", r"\.")):
        build_variants(base, resolve_params(base, params), RunSettings())


def test_values_that_must_change_together_are_checked_together(base: Scenario) -> None:
    gen = "microgrids.mg58.generators.0"
    together = {f"{gen}.initial_on": [True], f"{gen}.initial_p_kw": [150.0]}
    variants = build_variants(base, resolve_params(base, together), RunSettings(), seeds=3)
    assert [v.settings.seed for v in variants] == [0, 1, 2]
    assert variants[0].scenario.microgrids[2].generators[0].initial_p_kw == 150.0
    with pytest.raises(InputError, match="initial_on=true"):
        build_variants(base, resolve_params(base, {f"{gen}.initial_on": [True]}), RunSettings())


@pytest.mark.slow  # 4 s: the stressed case twice
def test_curtailed_energy_is_the_plans_curtailment(tmp_path: Path) -> None:
    from gridcosim.simulator.sweep_summary import trajectory_facts

    scenario, settings = load_scenario("ieee123-nmg-stressed"), RunSettings(horizon=3, commit=3)
    model, planned_kwh = CoSimulation(scenario, settings), 0.0
    while model.running:
        slot = model.slot
        model.step()
        k = slot - model.dso.plan_start
        planned_kwh += sum(v[k] for v in model.dso.plan.curtail_kw.values())
    model.close()
    run_scenario(scenario, tmp_path / "stressed.h5", settings, progress=False)
    curtailed = trajectory_facts(tmp_path / "stressed.h5")[Column.ENERGY_CURTAILED_KWH]
    assert planned_kwh > 1.0 and curtailed == pytest.approx(planned_kwh, rel=1e-9)
