"""The ``/iterations`` table: one row per master solve, written with its window's row.

Written, discarded and resumed together with the convergence rows; rows of windows past
the committed counts are not read; a resumed file's prefix equals the stopped one's.
Files only (no runs): well under a second.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from gridcosim.outputs import TrajectoryWriter, read
from gridcosim.outputs.prefix import copy_prefix, resume_point

COLUMNS = {"start_slot": "int", "iteration": "int", "lower_bound_usd": "float",
           "gap": "float", "cuts_unified": "int", "master_wall_s": "float"}


def writer(path: Path, iterations: dict | None = COLUMNS) -> TrajectoryWriter:
    return TrajectoryWriter(path, scenario="t", scenario_json="{}", seed=1,
                            entities={"bus": ["1", "2"]}, variables={"bus": ["vm_pu"]},
                            convergence={"start_slot": "int", "status": "str"},
                            time_units="hours", version="test", iterations=iterations)


def rows(start: int, n: int) -> list[dict[str, object]]:
    return [{"start_slot": start, "iteration": k, "lower_bound_usd": 10.0 * k + 0.1,
             "gap": 1.0 / k if k < n else 0.0, "cuts_unified": 2 * k,
             "master_wall_s": 0.01 * k} for k in range(1, n + 1)]


def window(w: TrajectoryWriter, slot: int, iterations: int) -> None:
    w.append_slots([float(slot)], {"bus": {"vm_pu": np.full((1, 2), 1.0 - 0.01 * slot)}})
    w.append_convergence({"start_slot": slot, "status": "optimal"}, rows(slot, iterations))
    w.append_checkpoint(json.dumps({"slot": slot + 1}))
    w.flush()


def test_rows_carry_their_window_and_read_back(tmp_path: Path) -> None:
    with writer(tmp_path / "a.h5") as w:
        for slot, n in enumerate((3, 1, 2)):
            window(w, slot, n)
    tr = read(tmp_path / "a.h5")
    assert tr.iterations["window"].tolist() == [0, 0, 0, 1, 2, 2]
    assert tr.iterations["iteration"].tolist() == [1, 2, 3, 1, 1, 2]
    assert list(tr.iterations.columns) == ["window", *COLUMNS]
    assert tr.iterations.index.name == "row"
    with h5py.File(tmp_path / "a.h5", "r") as f:
        assert f["iterations/lower_bound_usd"].attrs["units"] == "USD"


def test_discard_drops_the_window_s_iteration_rows(tmp_path: Path) -> None:
    with writer(tmp_path / "d.h5") as w:
        window(w, 0, 2)
        w.append_convergence({"start_slot": 1, "status": "optimal"}, rows(1, 5))
        w.discard()
        window(w, 1, 1)
    tr = read(tmp_path / "d.h5")
    assert tr.iterations["window"].tolist() == [0, 0, 1]


def test_refused_rows_buffer_nothing(tmp_path: Path) -> None:
    with writer(tmp_path / "r.h5") as w:
        with pytest.raises(ValueError, match="missing columns"):
            w.append_convergence({"start_slot": 0, "status": "x"}, [{"iteration": 1}])
        window(w, 0, 1)
    assert len(read(tmp_path / "r.h5").convergence) == 1
    with writer(tmp_path / "n.h5", iterations=None) as w:
        with pytest.raises(ValueError, match="no iterations table"):
            w.append_convergence({"start_slot": 0, "status": "x"}, rows(0, 1))
        w.append_convergence({"start_slot": 0, "status": "optimal"})
    tr = read(tmp_path / "n.h5")
    assert len(tr.convergence) == 1 and tr.iterations.empty


def test_resume_copies_the_committed_iteration_rows_bit_for_bit(tmp_path: Path) -> None:
    old = writer(tmp_path / "old.h5")
    for slot, n in enumerate((3, 2, 4)):
        window(old, slot, n)
    old.close("interrupted")
    point = resume_point(tmp_path / "old.h5")
    with writer(tmp_path / "new.h5") as new:
        copy_prefix(point, new)
    with h5py.File(tmp_path / "old.h5", "r") as a, h5py.File(tmp_path / "new.h5", "r") as b:
        for name in ("window", "row", *COLUMNS):
            x, y = a[f"iterations/{name}"][()], b[f"iterations/{name}"][()]
            assert x.dtype == y.dtype and np.array_equal(x, y), name


def test_xarray_reads_the_table_on_its_row_dimension(tmp_path: Path) -> None:
    xarray = pytest.importorskip("xarray")
    with writer(tmp_path / "x.h5") as w:
        window(w, 0, 3)
    ds = xarray.open_dataset(tmp_path / "x.h5", group="iterations", engine="h5netcdf")
    assert ds.sizes["row"] == 3 and ds["window"].dims == ("row",)
    ds.close()
