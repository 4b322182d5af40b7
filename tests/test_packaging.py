"""Installing the project adds exactly one import name, ``gridcosim``.

Checked on a wheel pip builds from this checkout (as ``pip install .`` does): its
top-level entries are ``gridcosim/`` and the dist-info only, every subpackage folder of
the repository is in it, the package data (built-in scenarios, network data, profiles)
is in it, and the console script points into ``gridcosim``. Also: ``import gridcosim``
gives the scripting API lazily (no solver imported until a name is used).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("simulator", "agents", "scenarios", "outputs")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The wheel pip builds from this checkout (its isolated build gets setuptools)."""
    out = tmp_path_factory.mktemp("wheel")
    source = out / "source"  # a copy: setuptools builds in the tree it is given
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "build", "*.egg-info", "__pycache__", "*.h5", "*.partial"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                           "--wheel-dir", str(out), str(source)], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (built,) = out.glob("gridcosim-*.whl")
    return zipfile.ZipFile(built)


def test_wheel_installs_one_top_level_name(wheel: zipfile.ZipFile) -> None:
    tops = {n.split("/")[0] for n in wheel.namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"gridcosim"}
    info = next(t for t in tops if t.endswith(".dist-info"))
    assert wheel.read(f"{info}/top_level.txt").decode().split() == ["gridcosim"]
    scripts = wheel.read(f"{info}/entry_points.txt").decode()
    assert "gridcosim = gridcosim.simulator.cli:main" in scripts


def test_every_subpackage_and_data_file_is_in_the_wheel(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for folder in FOLDERS:
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.relative_to(ROOT).as_posix()
            assert f"gridcosim/{rel}" in names, rel
        for module in (ROOT / folder).rglob("*.py"):
            if "__pycache__" not in module.parts:
                assert f"gridcosim/{module.relative_to(ROOT).as_posix()}" in names
    for data in ("scenarios/builtin/ieee123-nmg.toml", "scenarios/data/ieee123/branches.csv",
                 "scenarios/data/profiles/simbench_2weeks.csv", "outputs/view_page.html",
                 "outputs/view_page.js"):
        assert f"gridcosim/{data}" in names
    assert not any(n.startswith(("gridcosim/tests/", "gridcosim/benchmarks/")) for n in names)


def test_pyproject_lists_every_package_folder() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    for folder in FOLDERS:
        for init in (ROOT / folder).rglob("__init__.py"):
            dotted = ".".join(init.parent.relative_to(ROOT).parts)
            assert f"gridcosim.{dotted}" in listed, dotted


def test_import_gridcosim_is_lazy_and_exposes_the_api() -> None:
    code = ("import sys, gridcosim; assert not any(m.split('.')[0] in ('pyomo', 'highspy', "
            "'pandapower') for m in sys.modules), 'eager'; "
            "s = gridcosim.load_scenario('ieee123-nmg'); "
            "assert isinstance(s, gridcosim.Scenario); "
            "assert callable(gridcosim.solve_scenario) and gridcosim.CoSimulation; "
            "print(sorted(gridcosim.__all__))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "run_scenario" in proc.stdout and "read" in proc.stdout
