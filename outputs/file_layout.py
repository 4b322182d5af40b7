"""Creating the tree of a trajectory file: root attributes, groups, datasets, scales.

Everything is created when the file is (the writer then only appends: HDF5's SWMR mode
allows no new object later). See ``docs/hdf5_layout.md``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import h5py
import numpy as np

from gridcosim.outputs.layout import (
    CHECKPOINT,
    COMMITTED,
    IDS,
    INITIAL,
    KINDS_ATTR,
    LAYOUT,
    LAYOUT_VERSION,
    STATE,
    STATE_END,
    TIME,
    VARIABLES_ATTR,
    AttrValue,
    EntityKind,
    append_rows,
    checked_attrs,
    time_chunk,
    units_of,
)


def write_root_attrs(f: h5py.File, *, scenario: str, scenario_json: str, seed: int | None,
                     version: str, kinds: Sequence[str],
                     run_attrs: Mapping[str, AttrValue]) -> None:
    """The root attributes of a new file (``status`` is ``running`` until it closes)."""
    f.attrs["gridcosim_version"] = str(version)
    f.attrs["scenario"] = str(scenario)
    f.attrs["scenario_json"] = scenario_json
    f.attrs["seed"] = h5py.Empty(np.int64) if seed is None else np.int64(seed)
    f.attrs["created_utc"] = datetime.now(UTC).isoformat(timespec="seconds")
    f.attrs["layout"] = LAYOUT
    f.attrs["layout_version"] = np.int64(LAYOUT_VERSION)
    f.attrs["complete"] = np.int8(0)
    f.attrs["status"] = "running"
    f.attrs[KINDS_ATTR] = np.array(list(kinds), dtype=h5py.string_dtype())
    for key, value in run_attrs.items():
        f.attrs[key] = np.int8(value) if isinstance(value, bool) else value


def time_scale(group: h5py.Group, units: str, attrs: Mapping[str, str]) -> h5py.Dataset:
    """The group's ``time`` dataset, a dimension scale (``attrs``: ``time_origin``, ...)."""
    ds = group.create_dataset(TIME, shape=(0,), maxshape=(None,), chunks=(1024,),
                              dtype=np.float64)
    ds.attrs["units"] = units
    ds.attrs["long_name"] = "slot start time"
    ds.attrs.update(attrs)
    ds.make_scale(TIME)
    return ds


def create_kind(f: h5py.File, kind: EntityKind, units: str, time_attrs: Mapping[str, str],
                initial: Mapping[str, np.ndarray]) -> None:
    """A kind's group: ``time``, ``ids``, one 2-D dataset per variable, initial values."""
    group = f.create_group(kind.name)
    group.attrs[VARIABLES_ATTR] = np.array(kind.variables, dtype=h5py.string_dtype())
    kind.time_ds = time_scale(group, units, time_attrs)
    ids = group.create_dataset(IDS, data=np.array(kind.ids, dtype=object),
                               dtype=h5py.string_dtype())
    ids.attrs["long_name"] = f"{kind.name} ids"
    ids.make_scale(IDS)
    chunks = (time_chunk(kind.n), max(kind.n, 1))
    maxshape = (None, kind.n if kind.n else None)
    for var in kind.variables:
        ds = group.create_dataset(var, shape=(0, kind.n), maxshape=maxshape, chunks=chunks,
                                  dtype=np.float64, fillvalue=np.nan)
        _set_units(ds, var)
        ds.dims[0].attach_scale(kind.time_ds)
        ds.dims[1].attach_scale(ids)
        ds.dims[0].label, ds.dims[1].label = TIME, IDS
        kind.datasets.append(ds)
    if initial:
        _write_initial(group, initial, ids)


def _write_initial(group: h5py.Group, initial: Mapping[str, np.ndarray],
                   ids: h5py.Dataset) -> None:
    """``<kind>/initial/<var>``: the values before the first slot, on ``ids``."""
    sub = group.create_group(INITIAL)
    for var, data in initial.items():
        ds = sub.create_dataset(var, data=np.asarray(data, dtype=np.float64))
        _set_units(ds, var)
        ds.attrs["long_name"] = f"{var} before the first slot"
        ds.dims[0].attach_scale(ids)
        ds.dims[0].label = IDS


def _set_units(ds: h5py.Dataset, var: str) -> None:
    units = units_of(var)
    if units is not None:
        ds.attrs["units"] = units


@dataclass(frozen=True)
class CheckpointDatasets:
    """``/checkpoint``: the committed counts and the states to resume from.

    The states are UTF-8 bytes one after the other (``state``) with where each ends
    (``state_end``) and its slot count (``time``): fixed-size chunks that later flushes
    only append to (a variable-length string would live in a global heap that later
    writes rewrite, which a write error could corrupt).
    """

    committed: h5py.Dataset
    state: h5py.Dataset
    end: h5py.Dataset
    slots: h5py.Dataset

    @classmethod
    def create(cls, f: h5py.File) -> CheckpointDatasets:
        """Create the group and its datasets."""
        ck = f.create_group(CHECKPOINT)
        committed = ck.create_dataset(COMMITTED, data=np.zeros(3, dtype=np.int64))
        committed.attrs["long_name"] = ("slots, convergence rows and checkpoints of the last "
                                        "complete flush")
        return cls(committed,
                   ck.create_dataset(STATE, shape=(0,), maxshape=(None,), chunks=(1 << 16,),
                                     dtype=np.uint8),
                   ck.create_dataset(STATE_END, shape=(0,), maxshape=(None,), chunks=(256,),
                                     dtype=np.int64),
                   ck.create_dataset(TIME, shape=(0,), maxshape=(None,), chunks=(256,),
                                     dtype=np.int64))

    def append(self, written: int, start_byte: int,
               checkpoints: Sequence[tuple[int, str]]) -> int:
        """Write ``(slots, state)`` checkpoints after ``written`` ones; return the bytes used.

        The states go after byte ``start_byte`` of ``state``.
        """
        blobs = [state.encode("utf-8") for _, state in checkpoints]
        ends = start_byte + np.cumsum([len(b) for b in blobs])
        append_rows(self.state, start_byte, np.frombuffer(b"".join(blobs), np.uint8))
        append_rows(self.end, written, ends.astype(np.int64))
        append_rows(self.slots, written, np.array([c[0] for c in checkpoints], dtype=np.int64))
        return int(ends[-1])


def checked_initial(initial: Mapping[str, Mapping[str, Sequence[float]]],
                    kinds: Mapping[str, EntityKind]) -> dict[str, dict[str, np.ndarray]]:
    """Initial values: declared kinds and variables, one value per entity."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, values in initial.items():
        kind = kinds.get(name)
        if kind is None:
            raise ValueError(f"initial values for an unknown kind {name!r}")
        for var, data in values.items():
            if var not in kind.variables:
                raise ValueError(f"initial value of an unknown variable {name}/{var}")
            arr = np.asarray(data, dtype=np.float64)
            if arr.shape != (kind.n,):
                raise ValueError(f"{name}/{var}: {arr.shape} initial values for {kind.n} ids")
            out.setdefault(name, {})[var] = arr
    return out


def checked_kind_attrs(attrs: Mapping[str, Mapping[str, AttrValue]],
                       kinds: Mapping[str, EntityKind]) -> dict[str, dict[str, AttrValue]]:
    """Group attributes: declared kinds only, plain values (numbers, strings, booleans)."""
    if unknown := sorted(set(attrs) - set(kinds)):
        raise ValueError(f"attributes for unknown kinds {unknown}")
    return {kind: checked_attrs(values, frozenset()) for kind, values in attrs.items()}


def close_detached(f: h5py.File) -> None:
    """Close ``f`` after pointing its descriptor at ``/dev/null``: HDF5 cannot write it again.

    After a write error HDF5 would retry the failed writes at every later call (and at
    exit); the file on disk stays as the last good flush and the error left it.
    """
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, f.id.get_vfd_handle())
        os.close(null)
        f.close()
    except (OSError, RuntimeError, ValueError):
        pass
