"""Names, units and low-level helpers of the HDF5 trajectory layout (``docs/hdf5_layout.md``).

Shared by the writer (:mod:`outputs.hdf5`, :mod:`outputs.convergence`) and the reader
(:mod:`outputs.reader`).
"""

from __future__ import annotations

import re
from datetime import datetime

import h5py
import numpy as np

LAYOUT = "gridcosim-trajectory"
LAYOUT_VERSION = 1
TIME = "time"
IDS = "ids"
CONVERGENCE = "convergence"
WINDOW = "window"
COLUMNS_ATTR = "columns"
KINDS_ATTR = "kinds"
VARIABLES_ATTR = "variables"
BOOL_ATTR = "gridcosim_dtype"
ORIGIN_ATTR = "time_origin"
RESERVED_GROUPS = frozenset({TIME, CONVERGENCE})
RESERVED_VARIABLES = frozenset({TIME, IDS})

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TIME_UNITS_RE = re.compile(r"^hours(?: since (?P<origin>\S.*))?$")

# Name suffix -> CF-style ``units`` attribute written on each variable (first match wins).
UNIT_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("_usd_per_kwh", "USD/kWh"),
    ("_usd_per_kw", "USD/kW"),
    ("_kwh", "kWh"),
    ("_kvarh", "kvarh"),
    ("_kvar", "kvar"),
    ("_kva", "kVA"),
    ("_kw", "kW"),
    ("_usd", "USD"),
    ("_pu", "1"),
    ("_deg", "degree"),
    ("_pct", "percent"),
    ("_h", "h"),
    ("_s", "s"),
)
_DIMENSIONLESS = frozenset({"on", "soc", "status"})

CHUNK_BYTES = 32 * 1024
CONVERGENCE_CHUNK = 256


def units_of(name: str) -> str | None:
    """CF-style units implied by a variable name (``p_kw`` -> ``kW``), or None if unknown."""
    if name in _DIMENSIONLESS:
        return "1"
    for suffix, units in UNIT_SUFFIXES:
        if name.endswith(suffix):
            return units
    return None


def time_chunk(n_entities: int) -> int:
    """Slots per chunk: a power of two in [16, 1024], about 32 KiB of float64 per chunk.

    Small chunks keep a flush cheap: HDF5 writes every touched chunk whole.
    """
    target = CHUNK_BYTES // (8 * max(n_entities, 1))
    return 1 << min(10, max(4, target.bit_length() - 1))


def append_rows(ds: h5py.Dataset, old: int, data: np.ndarray) -> None:
    """Grow ``ds`` along axis 0 and write C-contiguous ``data`` at row ``old``.

    Uses the low-level API: ``Dataset.resize`` and slice assignment cost ~10x more in Python.
    """
    dsid = ds.id
    dsid.set_extent((old + data.shape[0],) + data.shape[1:])
    if data.size == 0:
        return
    fspace = dsid.get_space()
    fspace.select_hyperslab((old,) + (0,) * (data.ndim - 1), data.shape)
    dsid.write(h5py.h5s.create_simple(data.shape), fspace, data)


def cf_time_units(time_units: str) -> tuple[str, str | None]:
    """CF ``units`` for ``time_units`` and, if its reference is not a date, that reference.

    ``"hours since 2016-01-04T00:00:00"`` is kept. ``"hours since start of run"`` is not
    decodable by CF tools (xarray raises), so it is stored as ``"hours"`` with the reference
    text in the ``time_origin`` attribute.

    Raises:
        ValueError: If the units are not hours.

    """
    match = _TIME_UNITS_RE.match(time_units)
    if not match:
        raise ValueError(f"time_units must be 'hours since <ISO time>' or 'hours', "
                         f"got {time_units!r}")
    origin = match["origin"]
    if origin is None:
        return time_units, None
    try:
        datetime.fromisoformat(origin.strip().replace("Z", "+00:00"))
    except ValueError:
        return "hours", origin
    return time_units, None


def check_name(name: str, what: str) -> None:
    """Raise ValueError unless ``name`` is letters, digits and underscores."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError(f"{what} {name!r} is not a valid name (letters, digits, underscore)")
