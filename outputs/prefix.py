"""The readable prefix of a stopped run's trajectory, and copying it into a new file.

A run stopped by Ctrl-C, a failed window, a write error or ``kill -9`` leaves a file whose
flushed windows each end with a checkpoint (the state to continue from). ``gridcosim run
--resume`` reads the last one here, copies every slot, convergence row (with its
iteration rows) and checkpoint up to it into the new run's file, bit for bit, and
continues from its state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gridcosim.outputs.convergence import ColumnKind
from gridcosim.outputs.hdf5 import TrajectoryWriter
from gridcosim.outputs.layout import (
    CHECKPOINT,
    COLUMNS_ATTR,
    CONVERGENCE,
    IDS,
    ITERATIONS,
    TIME,
    VARIABLES_ATTR,
    WINDOW,
    attr_value,
    checkpoint_states,
    committed_counts,
    open_trajectory,
)


@dataclass(frozen=True)
class ResumePoint:
    """Where a stopped run can continue.

    Attributes:
        path: The file read.
        attrs: Its root attributes (Python values).
        slots: Slots up to the last checkpoint.
        windows: Convergence rows up to the last checkpoint (one per committed window).
        state: The last checkpoint (the model's snapshot), ``None`` if there is none.

    """

    path: Path
    attrs: dict[str, Any]
    slots: int
    windows: int
    state: dict[str, Any] | None


def resume_point(path: str | Path) -> ResumePoint:
    """Read the last checkpoint of a trajectory file.

    Raises:
        OSError: If the file cannot be opened as HDF5.
        ValueError: If it is not a trajectory with checkpoints (layout version 1).

    """
    with open_trajectory(path) as f:
        attrs = {k: attr_value(v) for k, v in f.attrs.items()}
        if CHECKPOINT not in f:
            raise ValueError(f"{path}: no checkpoints (written by an older gridcosim)")
        n = committed_counts(f)[2]
        if n == 0:
            return ResumePoint(Path(path), attrs, 0, 0, None)
        state = json.loads(checkpoint_states(f, n)[-1])
        return ResumePoint(Path(path), attrs, int(f[CHECKPOINT][TIME][n - 1]), n, state)


def copy_prefix(point: ResumePoint, writer: TrajectoryWriter) -> None:
    """Append ``point``'s slots, convergence and iteration rows, checkpoints; flush.

    The values are copied as stored (float64 and strings), so the new file's prefix is
    identical to the old file's.

    Raises:
        ValueError: If the old file's kinds, ids, variables or columns differ from the
            writer's (the run is not the same).

    """
    with open_trajectory(point.path) as f:
        n, k = point.slots, point.windows
        if n:
            writer.append_slots(f[TIME][:n], _slot_values(f, n))
        iterations = _iteration_rows(f, k)
        for row in range(k):
            writer.append_convergence(_row(f[CONVERGENCE], row), iterations.get(row, []))
        states = checkpoint_states(f, k)
        slots = f[CHECKPOINT][TIME][:k]
    for slot, state in zip(slots, states, strict=True):
        writer.append_checkpoint(str(state), int(slot))
    writer.flush()


def _slot_values(f: h5py.File, n: int) -> dict[str, dict[str, np.ndarray]]:
    values: dict[str, dict[str, np.ndarray]] = {}
    for name, group in f.items():
        if not isinstance(group, h5py.Group) or IDS not in group:
            continue
        variables = [attr_value(v) for v in group.attrs.get(VARIABLES_ATTR, [])]
        values[name] = {var: np.asarray(group[var][:n], dtype=np.float64)
                        for var in variables}
    return values


def _row(table: h5py.Group, row: int) -> dict[str, object]:
    """One row of a table, its declared columns as stored."""
    return {name: _cell(table[name], row, kind) for name, kind in _columns(table).items()}


def _iteration_rows(f: h5py.File, windows: int) -> dict[int, list[dict[str, object]]]:
    """The ``/iterations`` rows of the first ``windows`` windows, by window.

    Each row holds its columns as stored but ``window``; a file without the table has none.
    """
    if ITERATIONS not in f:
        return {}
    table = f[ITERATIONS]
    n = int(np.searchsorted(table[WINDOW][()], windows, side="left"))
    columns = {name: _values(table[name], kind, n) for name, kind in _columns(table).items()}
    out: dict[int, list[dict[str, object]]] = {}
    for row, window in enumerate(columns.pop(WINDOW)):
        out.setdefault(int(window), []).append({k: v[row] for k, v in columns.items()})
    return out


def _values(ds: h5py.Dataset, kind: ColumnKind, n: int) -> list[object]:
    """The first ``n`` cells of a column as Python values (as :func:`_cell` gives them)."""
    if kind == "str":
        return [str(v) for v in ds.asstr()[:n]]
    values = ds[:n].tolist()
    return [bool(v) for v in values] if kind == "bool" else values


def _columns(conv: h5py.Group) -> dict[str, ColumnKind]:
    names = [attr_value(c) for c in conv.attrs.get(COLUMNS_ATTR, [])]
    out: dict[str, ColumnKind] = {}
    for name in names:
        ds = conv[name]
        if h5py.check_string_dtype(ds.dtype) is not None:
            out[name] = "str"
        elif ds.attrs.get("gridcosim_dtype") == "bool":
            out[name] = "bool"
        else:
            out[name] = "int" if np.issubdtype(ds.dtype, np.integer) else "float"
    return out


def _cell(ds: h5py.Dataset, row: int, kind: ColumnKind) -> object:
    if kind == "str":
        return ds.asstr()[row]
    value = ds[row].item()
    return bool(value) if kind == "bool" else value
