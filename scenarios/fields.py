"""Field types, limits and the base model shared by the scenario schema's tables.

Units are in the field names (kW, kvar, kWh, $, hours, p.u.); every number must be
finite and within the named limits below; every name follows :data:`NAME_RULE`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo

# ---------------------------------------------------------------------------------------
# Limits. Every number must be finite (TOML allows ``inf`` and ``nan``; both are rejected)
# and inside these documented bounds: far beyond anything a distribution-feeder study uses,
# yet small enough that the MILP / LP coefficients stay well inside the solvers' numerical
# range (HiGHS treats 1e20 as infinite; costs times powers times slot lengths must not get
# near that).

#: Largest magnitude of any active (kW) or reactive (kvar) power: 1 GW.
MAX_POWER_KW = 1e6
#: Largest stored energy (kWh): 10 GWh.
MAX_ENERGY_KWH = 1e7
#: Largest energy price or generation cost ($/kWh); market offer caps are ~5 $/kWh.
MAX_COST_USD_PER_KWH = 1e3
#: Largest curtailment cost ($/MWh), the same 1e3 $/kWh.
MAX_CURTAILMENT_COST_USD_PER_MWH = 1e6
#: Largest start-up cost of a generator ($).
MAX_STARTUP_COST_USD = 1e6
#: Largest per-slot profile multiplier (of a nominal price, load or forecast).
MAX_MULTIPLIER = 1e3
#: Smallest storage efficiency and renewable power factor: 1 / eta and tan(acos(pf)) are
#: coefficients of the models (at most 100 here).
MIN_EFFICIENCY = 0.01
MIN_POWER_FACTOR = 0.01
#: Largest ``network.load_scale``.
MAX_LOAD_SCALE = 100.0
#: Range of the power base (kVA) and of the line-to-line voltage base (kV).
MIN_BASE_KVA, MAX_BASE_KVA = 1.0, 1e6
MIN_BASE_KV, MAX_BASE_KV = 0.1, 500.0
#: Range of the slot length (hours): one minute to one day.
MIN_SLOT_HOURS, MAX_SLOT_HOURS = 1.0 / 60.0, 24.0
#: Longest optimisation window (slots): one day of one-minute slots; the MILP grows linearly.
MAX_HORIZON_SLOTS = 1440
#: Longest run and latest start day of a ``[timeseries]`` scenario (days), before the
#: profile set's own length is checked.
MAX_DAYS = 366
#: Most microgrids per scenario, and units of one kind per microgrid.
MAX_MICROGRIDS = 1000
MAX_UNITS_PER_KIND = 100
#: Longest name (scenario, microgrid, unit, data set).
MAX_NAME_CHARS = 64

#: Names become file-name stems (``<name>.h5``), HDF5 entity ids and JSON keys: 1 to 64
#: characters of ASCII letters, digits and ``_ - . +``, starting with a letter or digit.
NAME_RULE = (f"must be 1-{MAX_NAME_CHARS} characters of ASCII letters, digits and _ - . +,"
             " starting with a letter or digit")
_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.+-]{{0,{MAX_NAME_CHARS - 1}}}")


def _check_name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(NAME_RULE)
    return value


def check_slot_hours(value: float) -> float:
    """Accept a slot length from one minute to one day."""
    if not MIN_SLOT_HOURS - 1e-12 <= value <= MAX_SLOT_HOURS:
        raise ValueError(f"must be between 1 minute ({MIN_SLOT_HOURS:.6g} h) and"
                         f" {MAX_SLOT_HOURS:g} h")
    return value


def bounded(low: float | None = None, high: float | None = None, *, gt: float | None = None,
             lt: float | None = None) -> Any:
    """Constraints of a number field: strict (no bools, no strings) and within bounds.

    Finiteness comes from the models' ``allow_inf_nan=False``.
    """
    return Field(strict=True, ge=low, le=high, gt=gt, lt=lt)


Name = Annotated[str, Field(strict=True, description=NAME_RULE), AfterValidator(_check_name)]
Integer = Annotated[int, Field(strict=True)]
#: A network bus: its id (an integer, the source's own numbering), or its name as the
#: source spells it (a string, e.g. an OpenDSS bus ``"rg60"``), resolved to the id on loading.
BusRef = Annotated[int, Field(strict=True)] | Annotated[str, Field(strict=True, min_length=1,
                                                                   max_length=256)]
PowerKw = Annotated[float, bounded(-MAX_POWER_KW, MAX_POWER_KW)]
CapacityKw = Annotated[float, bounded(high=MAX_POWER_KW, gt=0.0)]
NonNegativeKw = Annotated[float, bounded(0.0, MAX_POWER_KW)]
CapacityKwh = Annotated[float, bounded(high=MAX_ENERGY_KWH, gt=0.0)]
NonNegativeKwh = Annotated[float, bounded(0.0, MAX_ENERGY_KWH)]
CostUsdPerKwh = Annotated[float, bounded(0.0, MAX_COST_USD_PER_KWH)]
PriceUsdPerKwh = Annotated[float, bounded(high=MAX_COST_USD_PER_KWH, gt=0.0)]
Efficiency = Annotated[float, bounded(MIN_EFFICIENCY, 1.0)]
PowerFactor = Annotated[float, bounded(MIN_POWER_FACTOR, 1.0)]
Multiplier = Annotated[float, bounded(0.0, MAX_MULTIPLIER)]
Profile = Annotated[tuple[Multiplier, ...], Field(min_length=1, max_length=MAX_HORIZON_SLOTS)]
CustomerClass = Literal["residential", "commercial", "industrial", "agricultural"]


#: Key of the validation context holding the scenario file's folder: relative file paths
#: in a scenario (a network file, a time-series file) are taken relative to it.
SCENARIO_DIR = "scenario_dir"


def scenario_dir(info: ValidationInfo) -> Path | None:
    """The scenario file's folder from the validation context (``None`` without one)."""
    context = info.context if isinstance(info.context, dict) else {}
    folder = context.get(SCENARIO_DIR)
    return None if folder is None else Path(folder)


class Frozen(BaseModel):
    """Base of every scenario table: frozen, no unknown keys, finite numbers."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


#: Key of a field's ``json_schema_extra`` marking it as read only with ``[timeseries]``
#: (with ``[profiles]`` every load and renewable follows one multiplier list, so such a
#: field must keep its default; :func:`gridcosim.scenarios.checks.check_profile_mode_fields`).
TIMESERIES_ONLY = "timeseries_only"


def timeseries_only(default: Any, description: str) -> Any:
    """A field that only has an effect with ``[timeseries]`` (see :data:`TIMESERIES_ONLY`)."""
    return Field(default, description=description, json_schema_extra={TIMESERIES_ONLY: True})
