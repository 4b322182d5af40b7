"""Malformed scenario files through the command line: exit code 2, field and value named.

Each :class:`Case` is one malformed input: the text of a scenario file (a mutation of a
built-in scenario), the command-line arguments it is run with, the field path the error
must name and a substring of the offending value. ``SCENARIO_CASES`` covers the scenario
file; ``OPTION_CASES`` is for malformed command-line options on a valid file (append
``Case(..., options=("--json", "--workers", "-1"), path="--workers", value="-1")``).
"""

from __future__ import annotations

import math
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from gridcosim.scenarios.loader import MAX_FILE_BYTES, MAX_NESTING_DEPTH
from gridcosim.simulator.cli import main

SEED = "ieee123-nmg"
WEEK = "ieee123-nmg-week"
EXIT_SCENARIO = 2  # the CLI's exit code for an invalid scenario (or invalid options)
FILE = "<file>"  # a case's path when the problem is the file itself, not one field


def builtin_text(name: str = SEED) -> str:
    """The text of a built-in scenario file."""
    return (files("gridcosim.scenarios") / "builtin" / f"{name}.toml").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Case:
    """One malformed input and what the error output must name.

    Attributes:
        id: Test id.
        text: Builds the scenario file's text.
        path: Field path the error names (:data:`FILE`: the file's own path).
        value: Substring of the offending value as the error shows it.
        command: CLI command.
        options: CLI arguments after the file.

    """

    id: str
    text: Callable[[], str]
    path: str
    value: str
    command: str = "solve"
    options: tuple[str, ...] = ("--json",)

    def argv(self, file: Path) -> list[str]:
        """Command-line arguments running this case on ``file``."""
        return [self.command, str(file), *self.options]


# --------------------------------------------------------------------------- TOML writing


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        out = "".join(c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}"
                      for c in value)
        return f'"{out}"'
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return "[" + ", ".join(_toml_value(v) for v in value) + "]"


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else _toml_value(key)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """Write parsed TOML back as TOML (tables and arrays of tables as headers)."""
    lines = [f"{_key(k)} = {_toml_value(v)}" for k, v in data.items()
             if not isinstance(v, dict) and not _is_table_array(v)]
    for key, value in data.items():
        name = f"{prefix}{_key(key)}"
        if isinstance(value, dict):
            lines += ["", f"[{name}]", to_toml(value, f"{name}.")]
        elif _is_table_array(value):
            for item in value:
                lines += ["", f"[[{name}]]", to_toml(item, f"{name}.")]
    return "\n".join(lines)


# --------------------------------------------------------------------------- mutations


def replaced(old: str, new: str, base: str = SEED) -> Callable[[], str]:
    """Text mutation: the first ``old`` in built-in ``base`` replaced by ``new``."""

    def text() -> str:
        source = builtin_text(base)
        assert old in source, old
        return source.replace(old, new, 1)

    return text


def setting(*path: str | int, value: Any, base: str = SEED) -> Callable[[], str]:
    """Dict mutation: the value at ``path`` set (keys and list indices), written as TOML."""

    def text() -> str:
        data = tomllib.loads(builtin_text(base))
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return to_toml(data)

    return text


def appended(extra: str, base: str = SEED) -> Callable[[], str]:
    """Text mutation: ``extra`` put before the first table of built-in ``base``."""

    def text() -> str:
        source = builtin_text(base)
        cut = source.index("\n[")
        return source[:cut] + "\n" + extra + "\n" + source[cut:]

    return text


def raw(build: Callable[[], str]) -> Callable[[], str]:
    """A file text built from scratch."""
    return build


INF, NAN = math.inf, math.nan
MG = "microgrids"
GEN = (MG, 0, "generators", 0)
ESS = (MG, 1, "storage", 0)
RES = (MG, 2, "renewables", 0)


def _case(id_: str, text: Callable[[], str], path: str, value: str) -> Case:
    return Case(id=id_, text=text, path=path, value=value)


SCENARIO_CASES: list[Case] = [
    # ---- 1. non-finite and absurd numbers
    _case("gen-p_max-inf", replaced("p_max_kw = 100", "p_max_kw = inf"),
          "microgrids[0].generators[0].p_max_kw", "inf"),
    _case("gen-p_max-1e308", replaced("p_max_kw = 100", "p_max_kw = 1e308"),
          "microgrids[0].generators[0].p_max_kw", "1e+308"),
    _case("gen-q_min-nan", setting(*GEN, "q_min_kvar", value=NAN),
          "microgrids[0].generators[0].q_min_kvar", "nan"),
    _case("gen-q_max-minus-inf", setting(*GEN, "q_max_kvar", value=-INF),
          "microgrids[0].generators[0].q_max_kvar", "-inf"),
    _case("gen-cost-inf", setting(*GEN, "cost_usd_per_kwh", value=INF),
          "microgrids[0].generators[0].cost_usd_per_kwh", "inf"),
    _case("gen-cost-huge", setting(*GEN, "cost_usd_per_kwh", value=5e6),
          "microgrids[0].generators[0].cost_usd_per_kwh", "5000000.0"),
    _case("gen-startup-nan", setting(*GEN, "startup_cost_usd", value=NAN),
          "microgrids[0].generators[0].startup_cost_usd", "nan"),
    _case("gen-ramp-inf", setting(*GEN, "ramp_kw_per_slot", value=INF),
          "microgrids[0].generators[0].ramp_kw_per_slot", "inf"),
    _case("gen-initial_p-nan", setting(*GEN, "initial_p_kw", value=NAN),
          "microgrids[0].generators[0].initial_p_kw", "nan"),
    _case("gen-p_min-negative", setting(*GEN, "p_min_kw", value=-5.0),
          "microgrids[0].generators[0].p_min_kw", "-5.0"),
    _case("pcc-p-inf", replaced("pcc_p_max_kw = 400.0", "pcc_p_max_kw = inf"),
          "microgrids[0].pcc_p_max_kw", "inf"),
    _case("pcc-q-nan", setting(MG, 3, "pcc_q_max_kvar", value=NAN),
          "microgrids[3].pcc_q_max_kvar", "nan"),
    _case("pcc-p-huge", setting(MG, 2, "pcc_p_max_kw", value=1e9),
          "microgrids[2].pcc_p_max_kw", "1000000000.0"),
    _case("local-load-inf", setting(MG, 4, "local_load_kw", value=INF),
          "microgrids[4].local_load_kw", "inf"),
    _case("local-load-kvar-nan", setting(MG, 4, "local_load_kvar", value=NAN),
          "microgrids[4].local_load_kvar", "nan"),
    _case("ess-e_max-inf", replaced("e_max_kwh = 80", "e_max_kwh = inf"),
          "microgrids[0].storage[0].e_max_kwh", "inf"),
    _case("ess-e_max-huge", setting(*ESS, "e_max_kwh", value=1e12),
          "microgrids[1].storage[0].e_max_kwh", "1000000000000.0"),
    _case("ess-e_initial-nan", setting(*ESS, "e_initial_kwh", value=NAN),
          "microgrids[1].storage[0].e_initial_kwh", "nan"),
    _case("ess-charge-inf", setting(*ESS, "p_charge_max_kw", value=INF),
          "microgrids[1].storage[0].p_charge_max_kw", "inf"),
    _case("ess-eta-nan", setting(*ESS, "eta_discharge", value=NAN),
          "microgrids[1].storage[0].eta_discharge", "nan"),
    _case("res-forecast-inf", setting(*RES, "forecast_kw", value=INF),
          "microgrids[2].renewables[0].forecast_kw", "inf"),
    _case("res-forecast-huge", setting(*RES, "forecast_kw", value=2e6),
          "microgrids[2].renewables[0].forecast_kw", "2000000.0"),
    _case("ess-eta-tiny", setting(*ESS, "eta_charge", value=1e-300),
          "microgrids[1].storage[0].eta_charge", "1e-300"),
    _case("res-pf-tiny", setting(*RES, "min_power_factor", value=1e-300),
          "microgrids[2].renewables[0].min_power_factor", "1e-300"),
    _case("res-pf-nan", setting(*RES, "min_power_factor", value=NAN),
          "microgrids[2].renewables[0].min_power_factor", "nan"),
    _case("svc-q_max-nan", setting("svcs", 0, "q_max_kvar", value=NAN),
          "svcs[0].q_max_kvar", "nan"),
    _case("svc-q_min-minus-inf", setting("svcs", 1, "q_min_kvar", value=-INF),
          "svcs[1].q_min_kvar", "-inf"),
    _case("svc-q_max-huge", setting("svcs", 2, "q_max_kvar", value=1e9),
          "svcs[2].q_max_kvar", "1000000000.0"),
    _case("curtailment-inf", setting("curtailment_cost_usd_per_mwh", value=INF),
          "curtailment_cost_usd_per_mwh", "inf"),
    _case("curtailment-huge", setting("curtailment_cost_usd_per_mwh", value=1e12),
          "curtailment_cost_usd_per_mwh", "1000000000000.0"),
    _case("base_kva-inf", replaced("base_kva = 1000.0", "base_kva = inf"),
          "network.base_kva", "inf"),
    _case("base_kva-tiny", replaced("base_kva = 1000.0", "base_kva = 1e-6"),
          "network.base_kva", "1e-06"),
    _case("base_kv-nan", replaced("base_kv = 4.16", "base_kv = nan"), "network.base_kv", "nan"),
    _case("base_kv-huge", replaced("base_kv = 4.16", "base_kv = 1e5"),
          "network.base_kv", "100000.0"),
    _case("v_min-nan", replaced("v_min_pu = 0.9", "v_min_pu = nan"), "network.v_min_pu", "nan"),
    _case("v_ref-inf", replaced("v_ref_pu = 1.0", "v_ref_pu = inf"), "network.v_ref_pu", "inf"),
    # ---- 2. slot lengths, horizon
    _case("slot-1e-12", replaced("slot_hours = 1.0", "slot_hours = 1e-12"),
          "horizon.slot_hours", "1e-12"),
    _case("slot-48h", replaced("slot_hours = 1.0", "slot_hours = 48.0"),
          "horizon.slot_hours", "48.0"),
    _case("slot-nan", replaced("slot_hours = 1.0", "slot_hours = nan"),
          "horizon.slot_hours", "nan"),
    _case("slot-inf", replaced("slot_hours = 1.0", "slot_hours = inf"),
          "horizon.slot_hours", "inf"),
    _case("slots-huge", replaced("slots = 6", "slots = 1000000"), "horizon.slots", "1000000"),
    _case("slots-float", replaced("slots = 6", "slots = 6.0"), "horizon.slots", "6.0"),
    _case("slots-bool", replaced("slots = 6", "slots = true"), "horizon.slots", "True"),
    # ---- 3. profiles and load scale
    _case("load_scale-inf", replaced("v_max_pu = 1.1", "v_max_pu = 1.1\nload_scale = inf"),
          "network.load_scale", "inf"),
    _case("load_scale-huge", replaced("v_max_pu = 1.1", "v_max_pu = 1.1\nload_scale = 1e6"),
          "network.load_scale", "1000000.0"),
    _case("profile-price-inf", setting("profiles", "price", 1, value=INF),
          "profiles.price[1]", "inf"),
    _case("profile-load-nan", setting("profiles", "load", 2, value=NAN),
          "profiles.load[2]", "nan"),
    _case("profile-renewables-huge", setting("profiles", "renewables", 0, value=1e9),
          "profiles.renewables[0]", "1000000000.0"),
    _case("profile-load-negative", setting("profiles", "load", 0, value=-1.0),
          "profiles.load[0]", "-1.0"),
    _case("profile-nominal-price-nan", setting("profiles", "price_usd_per_kwh", value=NAN),
          "profiles.price_usd_per_kwh", "nan"),
    _case("profile-entry-string", setting("profiles", "price", 3, value="high"),
          "profiles.price[3]", "'high'"),
    # ---- 4. names
    _case("mg-name-empty", setting(MG, 0, "name", value=""), "microgrids[0].name", "''"),
    _case("mg-name-nul", setting(MG, 1, "name", value="mg\x0050"),
          "microgrids[1].name", r"'mg\x0050'"),
    _case("mg-name-newline", setting(MG, 2, "name", value="mg\n58"),
          "microgrids[2].name", r"'mg\n58'"),
    _case("mg-name-escape", setting(MG, 2, "name", value="mg\x1b[31m"),
          "microgrids[2].name", r"\x1b"),
    _case("mg-name-space", setting(MG, 3, "name", value="mg 96"),
          "microgrids[3].name", "'mg 96'"),
    _case("mg-name-too-long", setting(MG, 4, "name", value="m" * 65),
          "microgrids[4].name", "mmmmmmmm"),
    _case("mg-name-slash", setting(MG, 5, "name", value="../mg121"),
          "microgrids[5].name", "'../mg121'"),
    _case("mg-name-number", setting(MG, 5, "name", value=121), "microgrids[5].name", "121"),
    _case("unit-name-empty", setting(*ESS, "name", value=""), "microgrids[1].storage[0].name",
          "''"),
    _case("unit-name-tab", setting(*GEN, "name", value="dg\t7"),
          "microgrids[0].generators[0].name", r"'dg\t7'"),
    _case("scenario-name-path", replaced('name = "ieee123-nmg"', 'name = "../../tmp/x"'),
          "name", "'../../tmp/x'"),
    _case("scenario-name-option", replaced('name = "ieee123-nmg"', 'name = "-rf"'),
          "name", "'-rf'"),
    _case("scenario-name-empty", replaced('name = "ieee123-nmg"', 'name = ""'), "name", "''"),
    _case("network-source-path", replaced('source = "ieee123"', 'source = "../data"'),
          "network.source", "'../data'"),
    _case("network-source-unknown", replaced('source = "ieee123"', 'source = "ieee13"'),
          "network.source", "'ieee13'"),
    # ---- 5. buses
    _case("svc-at-root", setting("svcs", 0, "bus", value=1), "svcs[0].bus", "1"),
    _case("mg-bus-unknown-name", setting(MG, 0, "bus", value="bus7"), "microgrids[0].bus",
          "'bus7'"),
    _case("mg-bus-float", setting(MG, 0, "bus", value=7.0), "microgrids[0].bus", "7.0"),
    _case("class-unknown-bus", replaced("price_usd_per_kwh = 0.11",
                                        "price_usd_per_kwh = 0.11\n"
                                        "customer_classes = { commercial = [999] }", WEEK),
          "timeseries.customer_classes.commercial[0]", "999"),
    _case("class-bus-without-load", replaced("price_usd_per_kwh = 0.11",
                                             "price_usd_per_kwh = 0.11\n"
                                             "customer_classes = { industrial = [2, 3] }",
                                             WEEK),
          "timeseries.customer_classes.industrial[1]", "3"),
    _case("class-bus-twice", replaced("price_usd_per_kwh = 0.11",
                                      "price_usd_per_kwh = 0.11\ncustomer_classes = "
                                      "{ commercial = [2], industrial = [4, 2] }", WEEK),
          "timeseries.customer_classes.industrial[1]", "2"),
    _case("class-unknown", replaced("price_usd_per_kwh = 0.11",
                                    "price_usd_per_kwh = 0.11\n"
                                    "customer_classes = { offices = [2] }", WEEK),
          "timeseries.customer_classes.offices", "'offices'"),
    # ---- 6. no microgrid
    _case("no-microgrids", raw(lambda: to_toml(
        {**tomllib.loads(builtin_text()), "microgrids": []})), "microgrids", "[]"),
    # ---- 7. time series against the profile set
    _case("start_day-beyond", replaced("start_day = 0", "start_day = 14", WEEK),
          "timeseries.start_day", "14"),
    _case("days-beyond", replaced("start_day = 0\ndays = 7", "start_day = 7\ndays = 10", WEEK),
          "timeseries.days", "10"),
    _case("days-huge", replaced("days = 7", "days = 100000", WEEK), "timeseries.days", "100000"),
    _case("days-zero", replaced("days = 7", "days = 0", WEEK), "timeseries.days", "0"),
    _case("start_day-negative", replaced("start_day = 0", "start_day = -1", WEEK),
          "timeseries.start_day", "-1"),
    _case("profile-set-unknown", replaced('profile_set = "simbench_2weeks"',
                                          'profile_set = "simbench_1year"', WEEK),
          "timeseries.profile_set", "'simbench_1year'"),
    _case("ts-slot-5h", replaced("slot_hours = 1.0", "slot_hours = 5.0", WEEK),
          "horizon.slot_hours", "5.0"),
    _case("ts-slot-0.4h", replaced("slot_hours = 1.0", "slot_hours = 0.4", WEEK),
          "horizon.slot_hours", "0.4"),
    _case("ts-horizon-longer-than-run", replaced("slots = 24", "slots = 200", WEEK),
          "horizon.slots", "200"),
    # ---- 10. fields that would be ignored
    _case("kind-with-profiles", replaced('name = "re7"', 'name = "re7"\nkind = "pv"'),
          "microgrids[0].renewables[0].kind", "'pv'"),
    _case("load-class-with-profiles", setting(MG, 3, "local_load_class", value="commercial"),
          "microgrids[3].local_load_class", "'commercial'"),
    # ---- 11. types and structure
    _case("initial_on-int", setting(*GEN, "initial_on", value=1),
          "microgrids[0].generators[0].initial_on", "1"),
    _case("p_max-bool", setting(*GEN, "p_max_kw", value=True),
          "microgrids[0].generators[0].p_max_kw", "True"),
    _case("description-number", setting("description", value=5), "description", "5"),
    _case("unknown-horizon-key", replaced("slot_hours = 1.0", "slot_hours = 1.0\nslot = 1"),
          "horizon.slot", "1"),
    _case("both-time-sources", appended('[timeseries]\nprofile_set = "simbench_2weeks"'),
          "scenario", "[timeseries]"),
    _case("datetime-for-number", replaced("p_max_kw = 100", "p_max_kw = 2024-01-01"),
          "microgrids[0].generators[0].p_max_kw", "datetime.date(2024, 1, 1)"),
    # ---- 8. the file itself
    _case("integer-5000-digits", replaced("slots = 6", "slots = " + "9" * 5000), FILE,
          "4300 digits"),
    _case("nesting-100k", raw(lambda: builtin_text() + "\nx = " + "[" * 100_000 + "]" * 100_000),
          FILE, f"deeper than {MAX_NESTING_DEPTH}"),
    _case("nesting-inline-tables", raw(lambda: builtin_text() + "\ny = " + "{a = " * 50 + "1"
                                       + "}" * 50), FILE, f"deeper than {MAX_NESTING_DEPTH}"),
    _case("nesting-dotted-keys", raw(lambda: "a." * 200 + "b = 1\n" + builtin_text()),
          FILE, f"deeper than {MAX_NESTING_DEPTH}"),
    _case("file-too-large", raw(lambda: builtin_text() + "#" * (MAX_FILE_BYTES + 1)),
          FILE, f"limit of {MAX_FILE_BYTES} bytes"),
]


class OptionCase(Case):
    """A malformed command-line option on the valid seed file.

    ``path`` is the option (``--workers``), ``value`` the offending value as the error
    shows it; one stderr line must hold both (the option with or without its dashes:
    argparse writes ``argument --workers: ... (got '-1')``, a run setting ``commit (7)``).
    A ``run`` case writes to ``<file>.h5`` beside the scenario file, never to the working
    folder (an ``--out`` among its options comes later and wins).
    """

    def argv(self, file: Path) -> list[str]:
        """Command-line arguments running this case on ``file``."""
        if self.command != "run":
            return super().argv(file)
        return [self.command, str(file), "--out", str(file.with_suffix(".h5")), *self.options]

    def named_in(self, line: str) -> bool:
        """Whether ``line`` names the option and the offending value."""
        return self.path.lstrip("-") in line and self.value in line


def _option(id_: str, option: str, value: str, *, command: str = "run",
            shown: str | None = None, before: tuple[str, ...] = ()) -> OptionCase:
    """``COMMAND SEED --json [BEFORE] OPTION VALUE``; ``shown``: default ``(got 'VALUE')``."""
    return OptionCase(id=id_, text=builtin_text, path=option,
                      value=f"(got {value!r})" if shown is None else shown, command=command,
                      options=("--json", *before, option, value))


#: Malformed command-line options on valid scenario files.
OPTION_CASES: list[Any] = [
    # ---- run: argparse ranges and types
    _option("run-workers-negative", "--workers", "-1"),
    _option("run-workers-zero", "--workers", "0"),
    _option("run-workers-text", "--workers", "abc"),
    _option("run-workers-huge", "--workers", "100000"),
    _option("run-max-iterations-negative", "--max-iterations", "-1"),
    _option("run-max-iterations-zero", "--max-iterations", "0"),
    _option("run-noise-negative", "--noise", "-1"),
    _option("run-noise-above-1", "--noise", "2"),
    _option("run-noise-nan", "--noise", "nan"),
    _option("run-seed-negative", "--seed", "-1"),
    _option("run-seed-float", "--seed", "1.5"),
    _option("run-seed-exponent", "--seed", "1e3"),
    _option("run-days-zero", "--days", "0"),
    _option("run-days-negative", "--days", "-1"),
    _option("run-days-inf", "--days", "inf"),
    _option("run-horizon-zero", "--horizon", "0"),
    _option("run-commit-zero", "--commit", "0"),
    _option("run-window-time-limit-zero", "--window-time-limit", "0"),
    _option("run-window-time-limit-nan", "--window-time-limit", "nan"),
    # ---- run: settings checked against the scenario and the files
    _option("run-days-beyond-data", "--days", "30",
            shown="the scenario covers only 0.25 days (6 slots)"),
    _option("run-horizon-beyond-data", "--horizon", "7",
            shown="horizon (7) exceeds the 6 slots"),
    _option("run-commit-beyond-horizon", "--commit", "7", shown="commit (7)"),
    _option("run-commit-beyond-given-horizon", "--commit", "4", shown="commit (4)",
            before=("--horizon", "3")),
    _option("run-out-missing-folder", "--out", "/nonexistent-gridcosim/x.h5",
            shown="/nonexistent-gridcosim does not exist"),
    OptionCase(id="run-resume-nothing", text=builtin_text, path="--resume",
               value="no stopped run", command="run", options=("--json", "--resume")),
    # ---- solve
    _option("solve-time-limit-negative", "--time-limit", "-1", command="solve"),
    _option("solve-time-limit-zero", "--time-limit", "0", command="solve"),
    _option("solve-time-limit-nan", "--time-limit", "nan", command="solve"),
    _option("solve-time-limit-inf", "--time-limit", "inf", command="solve"),
    _option("solve-workers-zero", "--workers", "0", command="solve"),
    _option("solve-workers-257", "--workers", "257", command="solve"),
    _option("solve-max-iterations-zero", "--max-iterations", "0", command="solve"),
    _option("solve-method-unknown", "--method", "lp", command="solve", shown="'lp'"),
    _option("solve-integer-method-unknown", "--integer-method", "x", command="solve",
            shown="'x'"),
    _option("solve-stabilisation-unknown", "--stabilisation", "x", command="solve",
            shown="'x'"),
]

ALL_CASES = SCENARIO_CASES + OPTION_CASES


def run_in_process(case: Case, tmp_path: Path,
                   capsys: pytest.CaptureFixture[str]) -> tuple[int, str, Path]:
    """Write the case's file and run the CLI on it; return exit code, stderr and file."""
    path = tmp_path / "case.toml"
    path.write_text(case.text(), encoding="utf-8")
    try:
        code = main(case.argv(path))
    except SystemExit as stop:  # argparse rejects an option before main's handlers run
        code = stop.code
    return code, capsys.readouterr().err, path


def assert_names(err: str, case: Case, path: Path) -> None:
    """Assert that one stderr line names the field path and the offending value."""
    if isinstance(case, OptionCase):
        assert any(case.named_in(line) for line in err.splitlines()), (
            f"no line naming {case.path!r} and {case.value!r} in:\n{err}")
        return
    field = str(path) if case.path == FILE else case.path
    lines = [line for line in err.splitlines()
             if (f"- {field}:" in line or f"- {field}." in line) and case.value in line]
    assert lines, f"no line naming {field!r} and {case.value!r} in:\n{err}"


def test_enough_cases() -> None:
    assert len(SCENARIO_CASES) >= 60
    assert len({c.id for c in ALL_CASES}) == len(ALL_CASES)


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
def test_malformed_input_exits_2(case: Case, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, err, path = run_in_process(case, tmp_path, capsys)
    assert code == EXIT_SCENARIO, err
    assert "Traceback" not in err
    assert_names(err, case, path)


SUBPROCESS_CASES = ("gen-p_max-inf", "mg-name-nul", "nesting-100k")


@pytest.mark.parametrize("case", [c for c in SCENARIO_CASES if c.id in SUBPROCESS_CASES],
                         ids=lambda c: c.id)
def test_malformed_input_in_a_subprocess(case: Case, tmp_path: Path) -> None:
    path = tmp_path / "case.toml"
    path.write_text(case.text(), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "gridcosim.simulator.cli", *case.argv(path)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == EXIT_SCENARIO, done.stderr
    assert "Traceback" not in done.stderr
    assert_names(done.stderr, case, path)


def test_writer_round_trips_the_seed() -> None:
    data = tomllib.loads(builtin_text())
    assert tomllib.loads(to_toml(data)) == data
