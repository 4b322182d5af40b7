"""The docs are self-contained, their generated parts are current, and their code runs.

* ``docs/scenario_format.md`` and the variable tables of ``docs/hdf5_layout.md`` are
  generated from the schema and the agents' declarations
  (:mod:`gridcosim.simulator.reference_docs`); a change to either without regenerating
  fails here.
* Every scenario field has a meaning (the reference has no empty cell to fill later).
* No file of the project points outside the repository (the design notes the project
  started from are not shipped), and every relative link in the docs resolves.
* Every ``python`` block of ``docs/scripting.md`` runs, in order, in one namespace.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gridcosim.scenarios.schema import Scenario
from gridcosim.simulator import reference_docs
from gridcosim.simulator.reference_docs import _tables, expected_docs

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
REGENERATE = "python -m gridcosim.simulator.reference_docs docs"
#: Text files of the project (what a user gets and reads).
TEXT_SUFFIXES = {".py", ".md", ".toml", ".txt", ".cfg", ".ini", ".yml", ".yaml"}
OUTSIDE = re.compile(r"FORMULATION\.md|ARCHITECTURE\.md|\.\./shared|/work/shared|FORMULATION §")


#: Folders that are not the project's files when the tree is not a git checkout.
NOT_PROJECT = {".git", ".venv", ".venv-ci", "__pycache__", ".ruff_cache", ".pytest_cache",
               "build", "dist"}


def project_files() -> list[Path]:
    """The project's text files: git's list, or a walk of the tree outside a checkout
    (``.ci/update-lock`` tests a copy of the work tree)."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                         cwd=ROOT, capture_output=True, text=True)
    if out.returncode == 0:
        paths = [ROOT / p for p in out.stdout.split()]
    else:
        paths = [p for p in ROOT.rglob("*") if not NOT_PROJECT & set(p.relative_to(ROOT).parts)
                 and not any(part.endswith(".egg-info") for part in p.parts)]
    return [p for p in paths if p.suffix in TEXT_SUFFIXES and p.is_file()]


@pytest.mark.parametrize("name", [reference_docs.SCENARIO_DOC, reference_docs.HDF5_DOC,
                                  reference_docs.FORMULATION_DOC])
def test_generated_docs_are_current(name: str) -> None:
    expected = expected_docs(DOCS)[DOCS / name]
    assert (DOCS / name).read_text() == expected, f"docs/{name} is stale: run {REGENERATE}"


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    for name in (reference_docs.SCENARIO_DOC, reference_docs.HDF5_DOC,
                 reference_docs.FORMULATION_DOC):
        (tmp_path / name).write_text((DOCS / name).read_text())
    assert reference_docs.main([str(tmp_path), "--check"]) == 0
    (tmp_path / reference_docs.SCENARIO_DOC).write_text("# old\n")
    assert reference_docs.main([str(tmp_path), "--check"]) == 1


def test_every_scenario_field_has_a_meaning() -> None:
    missing = [f"{header}.{name}" for header, model in _tables(Scenario, "")
               for name, info in model.model_fields.items() if not info.description]
    assert missing == []


def test_scenario_format_lists_every_table_and_field() -> None:
    text = (DOCS / reference_docs.SCENARIO_DOC).read_text()
    for header, model in _tables(Scenario, ""):
        section = text.split(f"## `{header}`", 1)[1].split("\n## ", 1)[0]
        for name in model.model_fields:
            assert f"| `{name}` |" in section, f"{header}.{name}"


def test_no_file_points_outside_the_repository() -> None:
    offenders = [f"{p.relative_to(ROOT)}:{i}" for p in project_files()
                 if p.resolve() != Path(__file__).resolve()
                 for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
                 if OUTSIDE.search(line)]
    assert offenders == []


def test_relative_links_in_docs_resolve() -> None:
    broken = []
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" not in target and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []


def test_scripting_guide_runs(tmp_path: Path) -> None:
    """The guide's blocks, as one script in a fresh interpreter in an empty folder."""
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / "scripting.md").read_text(), re.S)
    assert len(blocks) >= 4
    script = tmp_path / "guide.py"
    script.write_text("\n".join(blocks))
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "total cost" in run.stdout and (tmp_path / "seed.h5").is_file()
