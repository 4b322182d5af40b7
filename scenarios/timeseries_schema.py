"""Schema pieces of a time-series file (``[timeseries] file = ...``): column mappings, zones.

A scenario's ``[timeseries]`` either names a shipped profile set or a CSV / Parquet file
with a timestamp column. Each ``[[timeseries.columns]]`` entry says what one column of the
file drives (:class:`SeriesTarget`) and in which quantity (:class:`SeriesQuantity`); the
reading and resampling rules are in :mod:`gridcosim.scenarios.timeseries_files` and
``docs/timeseries.md``.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, model_validator

from gridcosim.scenarios.fields import BusRef, CustomerClass, Frozen, Name

#: File name endings read as CSV and as Parquet.
CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")

ColumnName = Annotated[str, Field(strict=True, min_length=1, max_length=256)]
#: ``<microgrid>/<unit name>``.
UnitPath = Annotated[str, Field(strict=True, pattern=r"^[^/]+/[^/]+$", max_length=129)]
RenewableKind = Literal["pv", "wind"]


class SeriesTarget(StrEnum):
    """What a column of a time-series file drives."""

    PRICE = "price"                    # the utility price
    CUSTOMER_CLASS = "customer_class"  # the load shape of one customer class
    BUS = "bus"                        # one bus's load (instead of its class shape)
    UNIT = "unit"                      # a renewable's availability or a curtailable load
    LOCAL_LOAD = "local_load"          # a microgrid's local load
    RENEWABLE_KIND = "renewable_kind"  # the shape of every renewable of a kind


class SeriesQuantity(StrEnum):
    """The quantity a column holds."""

    MULTIPLIER = "multiplier"    # times the nominal value (price_usd_per_kwh, a nominal kW)
    KW = "kw"                    # absolute active power, kW
    USD_PER_KWH = "usd_per_kwh"  # absolute price, $/kWh


#: Quantities each target accepts.
QUANTITIES: dict[SeriesTarget, frozenset[SeriesQuantity]] = {
    SeriesTarget.PRICE: frozenset({SeriesQuantity.USD_PER_KWH, SeriesQuantity.MULTIPLIER}),
    SeriesTarget.CUSTOMER_CLASS: frozenset({SeriesQuantity.MULTIPLIER}),
    SeriesTarget.BUS: frozenset({SeriesQuantity.KW, SeriesQuantity.MULTIPLIER}),
    SeriesTarget.UNIT: frozenset({SeriesQuantity.KW, SeriesQuantity.MULTIPLIER}),
    SeriesTarget.LOCAL_LOAD: frozenset({SeriesQuantity.KW, SeriesQuantity.MULTIPLIER}),
    SeriesTarget.RENEWABLE_KIND: frozenset({SeriesQuantity.MULTIPLIER}),
}
#: The field naming what a target applies to (``None``: the price, there is one).
KEY_FIELDS: dict[SeriesTarget, str | None] = {
    SeriesTarget.PRICE: None, SeriesTarget.CUSTOMER_CLASS: "customer_class",
    SeriesTarget.BUS: "bus", SeriesTarget.UNIT: "unit", SeriesTarget.LOCAL_LOAD: "microgrid",
    SeriesTarget.RENEWABLE_KIND: "kind",
}


class SeriesColumn(Frozen):
    """One column of the time-series file and what it drives.

    Give the one field that names what ``target`` applies to: ``customer_class`` for
    `customer_class`, ``bus`` for `bus`, ``unit`` (``"<microgrid>/<unit name>"``, a
    renewable or a curtailable load) for `unit`, ``microgrid`` for `local_load`, ``kind``
    for `renewable_kind`; none for `price`. Quantities: `price` takes `usd_per_kwh` or
    `multiplier` (of ``timeseries.price_usd_per_kwh``); `bus`, `unit` and `local_load`
    take `kw` or `multiplier` (of the bus's, unit's or microgrid's nominal kW);
    `customer_class` and `renewable_kind` take `multiplier`.
    """

    column: ColumnName = Field(description="column name in the file")
    target: SeriesTarget = Field(description="what the column drives")
    quantity: SeriesQuantity = Field(
        SeriesQuantity.MULTIPLIER, description="what the values are (see above)")
    customer_class: CustomerClass | None = Field(
        None, description="the class whose load shape it is (target customer_class)")
    bus: BusRef | None = Field(
        None, description="the load bus (target bus): id, or name as a string")
    unit: UnitPath | None = Field(
        None, description="a renewable or curtailable load as microgrid/unit, e.g."
        " mg7/re7 (target unit)")
    microgrid: Name | None = Field(None, description="the microgrid (target local_load)")
    kind: RenewableKind | None = Field(
        None, description="the renewable kind (target renewable_kind; generic follows pv)")

    @model_validator(mode="after")
    def _consistent(self) -> SeriesColumn:
        key = KEY_FIELDS[self.target]
        given = [name for name in KEY_FIELDS.values()
                 if name is not None and getattr(self, name) is not None]
        if key is not None and key not in given:
            raise ValueError(f"target {self.target.value!r} needs the field {key!r}")
        extra = [name for name in given if name != key]
        if extra:
            raise ValueError(f"target {self.target.value!r} takes no {', '.join(extra)}")
        allowed = QUANTITIES[self.target]
        if self.quantity not in allowed:
            raise ValueError(f"target {self.target.value!r} takes quantity "
                             f"{' or '.join(sorted(q.value for q in allowed))}, not "
                             f"{self.quantity.value!r}")
        return self

    @property
    def key(self) -> str | int | None:
        """What the target applies to (a class, bus, unit path, microgrid or kind)."""
        name = KEY_FIELDS[self.target]
        return None if name is None else getattr(self, name)


def check_time_zone(value: str) -> str:
    """Accept an IANA time zone name (``"Europe/Berlin"``, ``"UTC"``)."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("must be an IANA time zone name such as 'UTC' or"
                         " 'Europe/Berlin'") from None
    return value


def resolve_file(value: Path, folder: Path | None) -> Path:
    """An absolute path: a relative one is taken relative to ``folder`` (else the cwd).

    Raises:
        ValueError: If the name ends neither in ``.csv`` nor in ``.parquet`` / ``.pq``.

    """
    if value.suffix.lower() not in (*CSV_SUFFIXES, *PARQUET_SUFFIXES):
        raise ValueError("must be a .csv or .parquet (.pq) file")
    if not value.is_absolute():
        value = (folder if folder is not None else Path.cwd()) / value
    return value.resolve()


def duplicate_columns(columns: tuple[SeriesColumn, ...]) -> list[str]:
    """Messages for mappings that repeat a column name or drive the same thing twice."""
    problems, names, targets = [], {}, {}
    for i, col in enumerate(columns):
        path = f"timeseries.columns[{i}]"
        if col.column in names:
            problems.append(f"{path}.column: column mapped twice, already at {names[col.column]}"
                            f" (got {col.column!r})")
        names.setdefault(col.column, path)
        target = (col.target, col.key)
        if target in targets:
            problems.append(f"{path}.target: {col.target.value} {col.key!r} already driven by"
                            f" {targets[target]} (got {col.target.value!r})")
        targets.setdefault(target, path)
    return problems
