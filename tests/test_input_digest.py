"""The run's input digest: a resumed run or a reused sweep run reads the data it started with.

A scenario names its network and time-series files; the run file stores the scenario and a
digest of the data as read (``input_sha256``). Here a file scenario (seed 000's system,
three 8-hour slots from a CSV) runs, its CSV is edited, and ``--resume`` must refuse with
the reason, while an edit the run never reads (an unmapped column) is accepted; a sweep
re-runs a finished run whose data changed and reuses it otherwise. The digest itself is
checked against data changed by hand and across processes. About 15 s on 2 cores.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gridcosim.outputs import read
from gridcosim.scenarios.digest import data_digest
from gridcosim.scenarios.loader import load_scenario
from gridcosim.scenarios.network import network_for
from gridcosim.scenarios.series import scenario_series
from gridcosim.simulator.cli import main
from gridcosim.simulator.cosim import RunSettings
from gridcosim.simulator.sweep import run_sweep
from gridcosim.simulator.sweep_summary import Column, RunAction

REPO = Path(__file__).resolve().parents[1]
SEED_TOML = (REPO / "scenarios" / "builtin" / "ieee123-nmg.toml").read_text()


def file_scenario(folder: Path) -> Path:
    """Seed 000 on three 8-hour slots whose residential shape and price come from a CSV."""
    rng = np.random.default_rng(7)
    times = pd.date_range("2016-08-01", periods=96, freq="15min").strftime("%Y-%m-%dT%H:%M")
    pd.DataFrame({"time": times, "res": rng.uniform(0.5, 1.2, 96),
                  "price": rng.uniform(0.05, 0.2, 96),
                  "unused": rng.uniform(0, 1, 96)}).to_csv(folder / "series.csv", index=False)
    table = ('[timeseries]\nfile = "series.csv"\ndays = 1\ncolumns = [\n'
             '{column = "res", target = "customer_class", customer_class = "residential"},\n'
             '{column = "price", target = "price", quantity = "usd_per_kwh"}\n]\n')
    text = re.sub(r"\[profiles\].*?(?=\n\[\[svcs\]\])", table, SEED_TOML, flags=re.S)
    path = folder / "sc.toml"
    path.write_text(text.replace("slots = 6\nslot_hours = 1.0", "slots = 3\nslot_hours = 8.0"))
    return path


def edit_csv(folder: Path, column: str) -> None:
    frame = pd.read_csv(folder / "series.csv", float_precision="round_trip")  # others kept
    frame.loc[10, column] *= 1.5
    frame.to_csv(folder / "series.csv", index=False)


def finished_run(folder: Path) -> tuple[Path, Path]:
    """A finished run of the file scenario in ``folder`` (K = 1: three windows)."""
    scenario = file_scenario(folder)
    out = folder / "run.h5"
    assert main(["run", str(scenario), "--out", str(out), "--commit", "1",
                 "--no-progress"]) == 0
    return scenario, out


def stopped_run(folder: Path) -> tuple[Path, Path, bytes]:
    """The scenario, its run file as a stopped run left it (``.partial``), and its bytes."""
    scenario, out = finished_run(folder)
    partial = folder / "run.h5.partial"
    out.rename(partial)
    return scenario, out, partial.read_bytes()


def resume(scenario: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gridcosim.simulator.cli", "run",
                           str(scenario), "--out", str(out), "--commit", "1", "--no-progress",
                           "--resume"], capture_output=True, text=True, timeout=300)


def test_the_run_file_records_the_digest_of_what_it_read(tmp_path: Path) -> None:
    scenario, out = finished_run(tmp_path)
    loaded = load_scenario(scenario)
    network = network_for(loaded)
    want = data_digest(network, scenario_series(loaded, network, loaded.horizon.slots - 1))
    assert read(out).attrs["input_sha256"] == want


def test_resume_refuses_a_changed_series_file(tmp_path: Path) -> None:
    scenario, out, before = stopped_run(tmp_path)
    edit_csv(tmp_path, "price")
    done = resume(scenario, out)
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr
    assert "not the data the scenario reads now" in done.stderr
    assert (tmp_path / "run.h5.partial").read_bytes() == before  # untouched
    assert not out.exists()


def test_resume_accepts_a_change_the_run_does_not_read(tmp_path: Path) -> None:
    scenario, out, _ = stopped_run(tmp_path)
    edit_csv(tmp_path, "unused")
    done = resume(scenario, out)
    assert done.returncode == 0, done
    assert "already finished" in done.stdout


def test_a_sweep_reruns_a_finished_run_whose_data_changed(tmp_path: Path) -> None:
    scenario = load_scenario(file_scenario(tmp_path))
    grid, settings = {"run.noise": "0"}, RunSettings(commit=3)

    def sweep() -> str:
        result = run_sweep(scenario, grid, tmp_path / "sweep", settings=settings, progress=False)
        return str(result.table[Column.ACTION].iloc[0])

    assert sweep() == RunAction.RAN
    assert sweep() == RunAction.REUSED
    edit_csv(tmp_path, "res")
    assert sweep() == RunAction.RAN


# ------------------------------------------------------------------------- the digest
@dataclasses.dataclass(frozen=True)
class Pair:
    frame: pd.DataFrame
    values: np.ndarray


def sample() -> Pair:
    return Pair(pd.DataFrame({"p_kw": [1.0, 2.0], "name": ["a", "b"]}, index=[3, 4]),
                np.arange(3.0))


def test_digest_changes_with_any_value_label_or_field_and_not_otherwise() -> None:
    base = data_digest(sample())
    assert data_digest(sample()) == base
    changed = sample()
    changed.frame.loc[4, "p_kw"] = 2.0 + 1e-12
    assert data_digest(changed) != base
    relabelled = sample()
    relabelled.frame.index = [3, 5]
    assert data_digest(relabelled) != base
    renamed = sample()
    assert data_digest(renamed.frame.rename(columns={"p_kw": "q_kvar"})) != data_digest(
        renamed.frame)
    assert data_digest({"a": 1.0, "b": 2}) == data_digest({"b": 2, "a": 1.0})
    assert data_digest((1.0,)) != data_digest((1,)) != data_digest(("1",))
    with pytest.raises(TypeError):
        data_digest(object())


def test_digest_is_the_same_in_another_process() -> None:
    code = ("from gridcosim.scenarios.loader import load_scenario;"
            "from gridcosim.scenarios.network import network_for;"
            "from gridcosim.scenarios.series import scenario_series;"
            "from gridcosim.scenarios.digest import data_digest;"
            "s = load_scenario('ieee123-nmg-week'); n = network_for(s);"
            "print(data_digest(n, scenario_series(s, n, 23)))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.strip().splitlines()[-1]
    scenario = load_scenario("ieee123-nmg-week")
    network = network_for(scenario)
    assert other == data_digest(network, scenario_series(scenario, network, 23))
