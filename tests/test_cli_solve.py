"""``gridcosim solve``: JSON and text output, and scenario errors without a traceback."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from gridcosim.scenarios.loader import load_scenario
from gridcosim.simulator.cli import main

SCENARIO = "ieee123-nmg"


def _reject(token: str) -> Any:
    raise ValueError(f"not strict JSON: {token}")


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code = main(["solve", SCENARIO, *args, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out[:500]
    data = json.loads(lines[0], parse_constant=_reject)  # no NaN / Infinity
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def microgrid_names() -> list[str]:
    return [mg.name for mg in load_scenario(SCENARIO).microgrids]


@pytest.fixture(scope="module")
def outputs() -> dict[str, dict[str, Any]]:
    return {}


def solved(capsys: pytest.CaptureFixture[str], outputs: dict[str, dict[str, Any]],
           method: str) -> dict[str, Any]:
    if method not in outputs:
        outputs[method] = run_json(capsys, "--method", method)
    return outputs[method]


def check_microgrids(data: dict[str, Any], names: list[str], slots: int) -> None:
    mgs = data["microgrids"]
    assert sorted(mgs) == sorted(names)
    for name, mg in mgs.items():
        assert mg["name"] == name
        assert isinstance(mg["p_ex_kw"], list) and len(mg["p_ex_kw"]) == slots
        assert all(isinstance(v, int | float) for v in mg["p_ex_kw"])
        for kind in ("generators", "renewables", "storage"):
            assert isinstance(mg[kind], list) and mg[kind], (name, kind)
            for unit in mg[kind]:
                assert isinstance(unit["p_kw"], list) and len(unit["p_kw"]) == slots


def test_decomposition_json(capsys: pytest.CaptureFixture[str],
                            outputs: dict[str, dict[str, Any]],
                            microgrid_names: list[str]) -> None:
    data = solved(capsys, outputs, "decomposition")
    assert data["scenario"] == SCENARIO
    assert data["method"] == "decomposition"
    assert data["status"] == "optimal"
    assert isinstance(data["objective_usd"], float) and math.isfinite(data["objective_usd"])
    assert isinstance(data["iterations"], int) and data["iterations"] >= 0
    assert 0.0 <= data["gap"] <= 1e-6
    assert set(data["cuts"]) == {"unified", "lagrangian", "restoration", "branch", "ac",
                                 "market"}
    assert all(isinstance(v, int) and v >= 0 for v in data["cuts"].values())
    assert data["cuts"]["unified"] + data["cuts"]["lagrangian"] > 0
    assert data["wall_s"] > 0
    check_microgrids(data, microgrid_names, load_scenario(SCENARIO).horizon.slots)


def test_monolithic_json_matches_decomposition(capsys: pytest.CaptureFixture[str],
                                               outputs: dict[str, dict[str, Any]],
                                               microgrid_names: list[str]) -> None:
    mono = solved(capsys, outputs, "monolithic")
    dec = solved(capsys, outputs, "decomposition")
    assert mono["method"] == "monolithic" and mono["status"] == "optimal"
    assert mono["wall_s"] > 0
    check_microgrids(mono, microgrid_names, load_scenario(SCENARIO).horizon.slots)
    assert abs(dec["objective_usd"] - mono["objective_usd"]) <= 1e-6 * abs(
        mono["objective_usd"])


def test_text_table_mentions_every_microgrid(capsys: pytest.CaptureFixture[str],
                                             microgrid_names: list[str]) -> None:
    code = main(["solve", SCENARIO])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "status optimal" in out
    assert "decomposition" in out
    for name in microgrid_names:
        assert name in out, name
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_malformed_scenario_exit_code_2(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    text = (Path(__file__).resolve().parent.parent / "scenarios" / "builtin"
            / f"{SCENARIO}.toml").read_text(encoding="utf-8")
    assert 'ramp_kw_per_slot = 50' in text and 'pcc_p_max_kw = 400.0' in text
    bad = (text.replace('ramp_kw_per_slot = 50', 'ramp_kw_per_slot = "fast"', 1)
           .replace('pcc_p_max_kw = 400.0', 'pcc_p_max_kw = -5.0', 1))
    path = tmp_path / "bad.toml"
    path.write_text(bad, encoding="utf-8")
    code = main(["solve", str(path), "--method", "decomposition", "--json"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    assert "microgrids[0].generators[0].ramp_kw_per_slot" in err
    assert "microgrids[0].pcc_p_max_kw" in err


def test_toml_syntax_error_exit_code_2(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('name = "x"\n[network\nsource = "ieee123"\n', encoding="utf-8")
    code = main(["solve", str(path)])
    out, err = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in err
    assert "TOML syntax error" in err and "line 2" in err
