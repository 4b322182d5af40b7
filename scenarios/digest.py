"""A digest of the data a run is built from: its network and its time series, as read.

A run file stores the scenario (its JSON) and the run options, so ``--resume`` can refuse
to continue with other settings. The scenario names its network and time-series files
but does not contain them: edited between the stop and the resume, they would give the
rest of the run other data than its first part. The run file therefore also stores
:func:`data_digest` of the network and series the model was built from (root attribute
``input_sha256``), and a resumed run must reproduce it. The digest covers the data as
read, whatever they came from (a built-in data set, a pandapower or OpenDSS file, a CSV or
Parquet series file), so a change anywhere that reaches the model is noticed and a change
that does not (a comment in a file, a column the scenario does not map) is not.

Written here: no library digests nested data classes of frames and arrays (pandas hashes
one frame's rows, :func:`pandas.util.hash_pandas_object`, as 64-bit sums, not a digest).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd


def data_digest(*parts: Any) -> str:
    """SHA-256 (hex) of data classes, mappings, sequences, frames, arrays and scalars.

    Equal data give equal digests in any process (no Python ``hash``); a data class's
    field names, a frame's index, columns and dtypes are part of it.
    """
    sha = hashlib.sha256()
    for part in parts:
        _feed(sha, part)
    return sha.hexdigest()


def _feed(sha: Any, obj: Any) -> None:
    """Add ``obj`` to ``sha``, tagged by its kind so that different shapes differ."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        _tag(sha, "dataclass", type(obj).__name__)
        for f in dataclasses.fields(obj):
            _tag(sha, "field", f.name)
            _feed(sha, getattr(obj, f.name))
    elif isinstance(obj, pd.DataFrame | pd.Series):
        _feed_pandas(sha, obj)
    elif isinstance(obj, np.ndarray):
        _feed_array(sha, obj)
    elif isinstance(obj, Mapping):
        _tag(sha, "mapping", str(len(obj)))
        for key in sorted(obj, key=repr):
            _feed(sha, key)
            _feed(sha, obj[key])
    elif isinstance(obj, list | tuple):
        _tag(sha, "sequence", str(len(obj)))
        for item in obj:
            _feed(sha, item)
    elif isinstance(obj, enum.Enum):
        _tag(sha, "enum", f"{type(obj).__name__}.{obj.name}")
    elif obj is None or isinstance(obj, str | bytes | bool | int | float | np.generic):
        _tag(sha, "scalar", repr(obj.item() if isinstance(obj, np.generic) else obj))
    else:
        raise TypeError(f"no digest for {type(obj).__name__}")


def _tag(sha: Any, kind: str, text: str) -> None:
    sha.update(f"{kind}:{len(text)}:{text};".encode())


def _feed_pandas(sha: Any, obj: pd.DataFrame | pd.Series) -> None:
    frame = obj.to_frame() if isinstance(obj, pd.Series) else obj
    _tag(sha, "frame", f"{frame.shape}")
    _feed_array(sha, frame.index.to_numpy())
    for column in frame.columns:
        _feed(sha, str(column))
        _tag(sha, "dtype", str(frame[column].dtype))
        _feed_array(sha, frame[column].to_numpy())


def _feed_array(sha: Any, arr: np.ndarray) -> None:
    if arr.dtype == object:
        _feed(sha, [repr(v) for v in arr.ravel().tolist()])
        _tag(sha, "shape", str(arr.shape))
        return
    data = np.ascontiguousarray(arr)
    _tag(sha, "array", f"{data.dtype.str}{data.shape}")
    sha.update(data.tobytes())
