"""Scenario loading and validation: the built-in seed case and malformed inputs."""

from __future__ import annotations

import copy
import subprocess
import sys
import tomllib
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import pydantic
import pytest

from gridcosim.scenarios import (
    Scenario,
    ScenarioError,
    builtin_names,
    load_scenario,
    scenario_from_dict,
)
from gridcosim.scenarios.errors import GridcosimError

BUILTIN = "ieee123-nmg"

# docs/formulation.md §8, typed independently of the TOML file.
# bus: (DG cost, start-up, Pmin, Pmax, Qmin, Qmax, ramp, RE kW, RE pf,
#       ESS Pch, Pdis, Emin, Emax, Einit, eta_ch, eta_dis)
SEED_MICROGRIDS = {
    7: (0.05, 10, 20, 100, -50, 50, 50, 30, 0.90, 40, 40, 20, 80, 60, 0.90, 0.90),
    50: (0.08, 5, 30, 150, -75, 75, 45, 50, 0.95, 40, 40, 20, 100, 40, 0.85, 0.85),
    58: (0.04, 10, 50, 150, -50, 100, 80, 80, 0.85, 35, 35, 30, 90, 30, 0.90, 0.90),
    96: (0.055, 10, 20, 120, -10, 50, 50, 80, 0.90, 60, 60, 40, 160, 80, 0.95, 0.95),
    104: (0.085, 10, 10, 60, -20, 30, 40, 40, 0.85, 40, 40, 20, 80, 40, 0.90, 0.90),
    121: (0.045, 10, 20, 120, -25, 75, 50, 60, 0.90, 30, 30, 40, 120, 60, 0.90, 0.90),
}
SEED_SVCS = {83: (-300, 300), 88: (-300, 300), 113: (-200, 200), 117: (-400, 400)}
SEED_PRICE = (0.77, 1.00, 1.16, 0.90, 1.30, 0.77)
SEED_LOAD = (0.85, 0.95, 0.90, 1.00, 0.95, 0.85)
SEED_RENEWABLES = (1.00, 1.20, 0.60, 1.00, 1.40, 1.00)


@pytest.fixture(scope="module")
def seed() -> Scenario:
    return load_scenario(BUILTIN)


@pytest.fixture()
def raw() -> dict[str, Any]:
    """The built-in scenario as parsed TOML, fresh for every test (mutate freely)."""
    text = (files("gridcosim.scenarios") / "builtin" / f"{BUILTIN}.toml").read_text(
        encoding="utf-8")
    return tomllib.loads(text)


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(data)
    assert info.value.problems, "ScenarioError without problems"
    return info.value.problems


def assert_reported(problems: list[str], path: str, *fragments: str) -> None:
    """Assert that one message starts with ``path:`` and contains every fragment."""
    hits = [p for p in problems if p.startswith(f"{path}:") and all(f in p for f in fragments)]
    assert hits, f"no problem at {path!r} containing {fragments}; got:\n" + "\n".join(problems)


# ---------------------------------------------------------------------------------------
# The built-in scenario


def test_builtin_is_listed() -> None:
    assert BUILTIN in builtin_names()
    assert builtin_names() == sorted(builtin_names())


def test_builtin_header_matches_formulation(seed: Scenario) -> None:
    assert seed.name == BUILTIN
    assert seed.network.source == "ieee123"
    assert seed.network.base_kva == 1000.0
    assert seed.network.base_kv == 4.16
    assert (seed.network.v_min_pu, seed.network.v_ref_pu, seed.network.v_max_pu) == (
        0.9,
        1.0,
        1.1,
    )
    assert seed.curtailment_cost_usd_per_mwh == 500.0
    assert seed.curtailment_cost_usd_per_kwh == pytest.approx(0.5)
    assert seed.horizon.slots == 6
    assert seed.horizon.slot_hours == 1.0


def test_builtin_profiles_match_formulation(seed: Scenario) -> None:
    assert seed.profiles.price_usd_per_kwh == pytest.approx(0.11)
    assert seed.profiles.price == pytest.approx(SEED_PRICE)
    assert seed.profiles.load == pytest.approx(SEED_LOAD)
    assert seed.profiles.renewables == pytest.approx(SEED_RENEWABLES)


def test_builtin_svcs_match_formulation(seed: Scenario) -> None:
    assert {s.bus: (s.q_min_kvar, s.q_max_kvar) for s in seed.svcs} == SEED_SVCS


def test_builtin_microgrids_match_formulation(seed: Scenario) -> None:
    assert [mg.bus for mg in seed.microgrids] == list(SEED_MICROGRIDS)
    for mg in seed.microgrids:
        assert (len(mg.generators), len(mg.renewables), len(mg.storage)) == (1, 1, 1)
        (dg,), (re,), (ess,) = mg.generators, mg.renewables, mg.storage
        got = (
            dg.cost_usd_per_kwh, dg.startup_cost_usd, dg.p_min_kw, dg.p_max_kw,
            dg.q_min_kvar, dg.q_max_kvar, dg.ramp_kw_per_slot,
            re.forecast_kw, re.min_power_factor,
            ess.p_charge_max_kw, ess.p_discharge_max_kw, ess.e_min_kwh, ess.e_max_kwh,
            ess.e_initial_kwh, ess.eta_charge, ess.eta_discharge,
        )  # fmt: skip
        assert got == pytest.approx(SEED_MICROGRIDS[mg.bus]), mg.name
        assert dg.initial_on is False and dg.initial_p_kw == 0.0, "DGs initially off"


def test_builtin_spot_checks(seed: Scenario) -> None:
    by_bus = {mg.bus: mg for mg in seed.microgrids}
    ess58 = by_bus[58].storage[0]
    assert (ess58.p_charge_max_kw, ess58.p_discharge_max_kw) == (35.0, 35.0)
    assert (ess58.e_min_kwh, ess58.e_max_kwh) == (30.0, 90.0)
    dg96 = by_bus[96].generators[0]
    assert (dg96.q_min_kvar, dg96.q_max_kvar) == (-10.0, 50.0)
    svc117 = next(s for s in seed.svcs if s.bus == 117)
    assert (svc117.q_min_kvar, svc117.q_max_kvar) == (-400.0, 400.0)


def test_builtin_is_frozen(seed: Scenario) -> None:
    with pytest.raises(pydantic.ValidationError):
        seed.microgrids[0].bus = 8  # type: ignore[misc]


def test_path_and_dict_give_the_same_scenario(seed: Scenario, raw: dict[str, Any]) -> None:
    path = Path(str(files("gridcosim.scenarios") / "builtin" / f"{BUILTIN}.toml"))
    assert load_scenario(path) == seed
    assert load_scenario(str(path)) == seed
    assert scenario_from_dict(raw) == seed


def test_import_is_light() -> None:
    code = (
        "import sys, scenarios; "
        "print(sorted(m for m in ('pandas', 'pandapower', 'pyomo') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_scenario_error_is_a_gridcosim_error() -> None:
    assert issubclass(ScenarioError, GridcosimError)


# ---------------------------------------------------------------------------------------
# Malformed inputs: one mutation of the built-in dict each


def setting(*path: str | int, value: Any) -> Callable[[dict[str, Any]], None]:
    """Mutation that sets the value at ``path`` (keys and list indices)."""

    def mutate(data: dict[str, Any]) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def deleting(*path: str | int) -> Callable[[dict[str, Any]], None]:
    """Mutation that removes the key at ``path``."""

    def mutate(data: dict[str, Any]) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


def renaming(*path: str | int, to: str) -> Callable[[dict[str, Any]], None]:
    """Mutation that renames the key at ``path`` (a typo in a field name)."""

    def mutate(data: dict[str, Any]) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        node[to] = node.pop(path[-1])

    return mutate


MG = "microgrids"
MALFORMED = [
    pytest.param(
        setting(MG, 0, "storage", 0, "p_charge_max_kw", value=-40),
        "microgrids[0].storage[0].p_charge_max_kw",
        ("greater than 0", "got -40"),
        id="negative-storage-capacity",
    ),
    pytest.param(
        setting(MG, 4, "generators", 0, "p_max_kw", value=-60.0),
        "microgrids[4].generators[0].p_max_kw",
        ("got -60.0",),
        id="negative-generator-capacity",
    ),
    pytest.param(
        setting(MG, 5, "pcc_p_max_kw", value=0),
        "microgrids[5].pcc_p_max_kw",
        ("got 0",),
        id="zero-pcc-rating",
    ),
    pytest.param(
        setting(MG, 1, "generators", 0, "p_min_kw", value=200),
        "microgrids[1].generators[0]",
        ("p_min_kw (200.0) exceeds p_max_kw (150.0)", "dg50"),
        id="p_min-above-p_max",
    ),
    pytest.param(
        setting(MG, 2, "storage", 0, "e_min_kwh", value=100),
        "microgrids[2].storage[0]",
        ("e_min_kwh (100.0) exceeds e_max_kwh (90.0)", "ess58"),
        id="e_min-above-e_max",
    ),
    pytest.param(
        setting(MG, 3, "storage", 0, "e_initial_kwh", value=200),
        "microgrids[3].storage[0]",
        ("e_initial_kwh (200.0) outside", "ess96"),
        id="e_initial-outside",
    ),
    pytest.param(
        setting(MG, 0, "storage", 0, "eta_charge", value=0),
        "microgrids[0].storage[0].eta_charge",
        ("greater than or equal to 0.01", "got 0"),
        id="efficiency-zero",
    ),
    pytest.param(
        setting(MG, 0, "storage", 0, "eta_discharge", value=1.2),
        "microgrids[0].storage[0].eta_discharge",
        ("less than or equal to 1", "got 1.2"),
        id="efficiency-above-one",
    ),
    pytest.param(
        setting(MG, 4, "renewables", 0, "min_power_factor", value=0),
        "microgrids[4].renewables[0].min_power_factor",
        ("got 0",),
        id="power-factor-zero",
    ),
    pytest.param(
        setting(MG, 4, "renewables", 0, "min_power_factor", value=1.05),
        "microgrids[4].renewables[0].min_power_factor",
        ("got 1.05",),
        id="power-factor-above-one",
    ),
    pytest.param(
        setting("profiles", "load", value=[0.85, 0.95, 0.90, 1.00, 0.95]),
        "profiles.load",
        ("horizon.slots = 6", "got 5 entries"),
        id="profile-too-short",
    ),
    pytest.param(
        setting("profiles", "renewables", value=[1.0] * 7),
        "profiles.renewables",
        ("horizon.slots = 6", "got 7 entries"),
        id="profile-too-long",
    ),
    pytest.param(
        setting("profiles", "price", 2, value=-0.5),
        "profiles.price[2]",
        ("greater than or equal to 0", "got -0.5"),
        id="profile-negative-entry",
    ),
    pytest.param(
        setting(MG, 2, "bus", value=999),
        "microgrids[2].bus",
        ("no such bus", "got 999"),
        id="microgrid-bus-missing",
    ),
    pytest.param(
        setting("svcs", 3, "bus", value=500),
        "svcs[3].bus",
        ("no such bus", "got 500"),
        id="svc-bus-missing",
    ),
    pytest.param(
        setting("svcs", 0, "q_min_kvar", value=400.0),
        "svcs[0]",
        ("q_min_kvar (400.0) exceeds q_max_kvar (300.0)",),
        id="svc-q_min-above-q_max",
    ),
    pytest.param(
        setting(MG, 3, "generators", 0, "q_min_kvar", value=60),
        "microgrids[3].generators[0]",
        ("q_min_kvar (60.0) exceeds q_max_kvar (50.0)",),
        id="generator-q_min-above-q_max",
    ),
    pytest.param(
        setting("network", "v_min_pu", value=1.1),
        "network",
        ("v_min_pu (1.1) must be below v_max_pu (1.1)",),
        id="v_min-not-below-v_max",
    ),
    pytest.param(
        renaming(MG, 1, "generators", 0, "startup_cost_usd", to="start_up_cost_usd"),
        "microgrids[1].generators[0].start_up_cost_usd",
        ("Extra inputs are not permitted", "got 5"),
        id="unknown-field-typo",
    ),
    pytest.param(
        renaming("curtailment_cost_usd_per_mwh", to="curtailment_cost_usd_per_mhw"),
        "curtailment_cost_usd_per_mhw",
        ("Extra inputs are not permitted",),
        id="unknown-top-level-field",
    ),
    pytest.param(
        setting(MG, 1, "generators", 0, "cost_usd_per_kwh", value="cheap"),
        "microgrids[1].generators[0].cost_usd_per_kwh",
        ("valid number", "got 'cheap'"),
        id="string-for-number",
    ),
    pytest.param(
        setting("horizon", "slots", value=6.5),
        "horizon.slots",
        ("valid integer", "got 6.5"),
        id="fraction-for-integer",
    ),
    pytest.param(
        setting(MG, 3, "name", value="mg7"),
        "microgrids[3].name",
        ("duplicate microgrid name", "microgrids[0]", "got 'mg7'"),
        id="duplicate-microgrid-name",
    ),
    pytest.param(
        setting(MG, 1, "storage", 0, "name", value="dg7"),
        "microgrids[1].storage[0].name",
        ("duplicate unit name", "microgrids[0].generators[0]", "got 'dg7'"),
        id="duplicate-unit-name",
    ),
    pytest.param(
        setting(MG, 1, "bus", value=7),
        "microgrids[1].bus",
        ("one microgrid per bus", "microgrids[0]", "got 7"),
        id="two-microgrids-one-bus",
    ),
    pytest.param(
        setting("svcs", 1, "bus", value=83),
        "svcs[1].bus",
        ("one SVC per bus", "svcs[0]", "got 83"),
        id="two-svcs-one-bus",
    ),
    pytest.param(
        setting(MG, 0, "bus", value=1),
        "microgrids[0].bus",
        ("root bus", "got 1"),
        id="microgrid-at-root",
    ),
    pytest.param(
        deleting(MG, 0, "bus"),
        "microgrids[0].bus",
        ("Field required",),
        id="missing-microgrid-bus",
    ),
    pytest.param(
        deleting("profiles"),
        "scenario",
        ("exactly one of [profiles]", "[timeseries]"),
        id="missing-profiles-section",
    ),
    pytest.param(
        setting(MG, 2, "generators", 0, "ramp_kw_per_slot", value=40),
        "microgrids[2].generators[0].ramp_kw_per_slot",
        ("p_min_kw = 50.0", "never start", "got 40.0"),
        id="ramp-below-p_min",
    ),
    pytest.param(
        setting(MG, 0, "generators", 0, "initial_p_kw", value=30),
        "microgrids[0].generators[0]",
        ("initial_p_kw (30.0)", "initial_on is false"),
        id="initial_p-while-off",
    ),
    pytest.param(
        setting("horizon", "slots", value=0),
        "horizon.slots",
        ("greater than 0", "got 0"),
        id="zero-slots",
    ),
    pytest.param(
        setting("network", "source", value="ieee999"),
        "network.source",
        ("cannot load network data set", "got 'ieee999'"),
        id="unknown-network",
    ),
    pytest.param(
        setting("curtailment_cost_usd_per_mwh", value=-1),
        "curtailment_cost_usd_per_mwh",
        ("got -1",),
        id="negative-curtailment-cost",
    ),
]


@pytest.mark.parametrize(("mutate", "path", "fragments"), MALFORMED)
def test_malformed_input_is_reported(
    raw: dict[str, Any],
    mutate: Callable[[dict[str, Any]], None],
    path: str,
    fragments: tuple[str, ...],
) -> None:
    mutate(raw)
    problems = problems_of(raw)
    assert_reported(problems, path, *fragments)
    assert len(problems) == 1, problems


def test_typo_in_required_field_reports_missing_and_extra(raw: dict[str, Any]) -> None:
    renaming(MG, 0, "storage", 0, "e_initial_kwh", to="e_inital_kwh")(raw)
    problems = problems_of(raw)
    assert len(problems) == 2, problems
    assert_reported(problems, "microgrids[0].storage[0].e_initial_kwh", "Field required")
    assert_reported(problems, "microgrids[0].storage[0].e_inital_kwh", "Extra", "got 60")


def test_long_inputs_are_shortened(raw: dict[str, Any]) -> None:
    raw[MG][0]["generators"][0]["p_min_kw"] = 200
    (problem,) = problems_of(raw)
    got = problem.rsplit("(got ", 1)[1]
    assert got.endswith("...)") and len(got) <= 61


def test_validation_does_not_mutate_input(raw: dict[str, Any]) -> None:
    before = copy.deepcopy(raw)
    problems_of({**raw, "horizon": {"slots": 5}})
    assert raw == before


# ---------------------------------------------------------------------------------------
# Several problems at once, and file-level problems


def write(tmp_path: Path, text: str, name: str = "case.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def builtin_text() -> str:
    return (files("gridcosim.scenarios") / "builtin" / f"{BUILTIN}.toml").read_text(
        encoding="utf-8")


def test_file_with_three_field_problems_reports_all(tmp_path: Path) -> None:
    text = (
        builtin_text()
        .replace("e_max_kwh = 160", "e_max_kwh = -160")  # mg96 storage
        .replace("base_kv = 4.16", "base_kv = 4.16\nbase_kvv = 4.16")  # typo'd extra field
        .replace("forecast_kw = 40", 'forecast_kw = "forty"')  # mg104 renewable
    )
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, text))
    problems = info.value.problems
    assert len(problems) == 3, problems
    assert_reported(problems, "microgrids[3].storage[0].e_max_kwh", "got -160")
    assert_reported(problems, "network.base_kvv", "Extra inputs are not permitted")
    assert_reported(problems, "microgrids[4].renewables[0].forecast_kw", "got 'forty'")
    assert str(info.value) == "\n".join(problems)


def test_three_cross_field_problems_reported_at_once(raw: dict[str, Any]) -> None:
    raw["profiles"]["price"] = raw["profiles"]["price"][:4]
    raw[MG][5]["bus"] = 999
    raw["svcs"][2]["bus"] = 88
    problems = problems_of(raw)
    assert len(problems) == 3, problems
    assert_reported(problems, "profiles.price", "got 4 entries")
    assert_reported(problems, "microgrids[5].bus", "got 999")
    assert_reported(problems, "svcs[2].bus", "svcs[1]", "got 88")


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ScenarioError) as info:
        load_scenario(missing)
    (problem,) = info.value.problems
    assert problem.startswith(f"{missing}:")
    assert "no such file" in problem and BUILTIN in problem


def test_unknown_name_is_treated_as_missing_file() -> None:
    with pytest.raises(ScenarioError, match="no such file.*ieee123-nmg"):
        load_scenario("ieee123-nmgg")


def test_directory_is_not_a_scenario(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="is a directory"):
        load_scenario(tmp_path)


def test_toml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, 'name = "x"\n\n[network]\nbase_kva = \n')
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}: TOML syntax error")
    assert "line 4, column 12" in problem


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('name = "caf\u00e9"\n'.encode("latin-1"))
    with pytest.raises(ScenarioError, match="cannot read scenario file"):
        load_scenario(path)


def test_non_mapping_data() -> None:
    problems = problems_of([1, 2, 3])  # type: ignore[arg-type]
    assert problems[0].startswith("scenario:")
