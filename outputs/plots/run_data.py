"""A run's trajectory as the plots need it: frames, units, slot edges, scenario facts.

Only what the file holds is used: the datasets (up to the last committed flush, so an
interrupted run plots its committed slots), their ``units`` attributes and the scenario
stored in the root attribute ``scenario_json`` (voltage limits, customer classes).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from gridcosim.outputs.plots.figures import NoData, axis_label
from gridcosim.outputs.reader import Trajectory, read

#: Customers not listed under ``[market.customers.classes]`` are of this class.
DEFAULT_CLASS = "residential"
#: Voltage limits when the stored scenario names none (the schema's defaults).
DEFAULT_LIMITS_PU = (0.9, 1.1)


@dataclass(frozen=True)
class RunData:
    """A trajectory and what the figures derive from it.

    Attributes:
        path: The file.
        tr: Its contents (committed slots and windows only).
        config: The stored scenario (``scenario_json``; empty if absent).
        slot_h: Slot length in hours.

    """

    path: Path
    tr: Trajectory
    config: dict[str, Any] = field(default_factory=dict)
    slot_h: float = 1.0

    @classmethod
    def load(cls, path: str | Path) -> RunData:
        """Read a trajectory file (raises OSError, KeyError or ValueError if it is none)."""
        tr = read(path)
        config = json.loads(tr.attrs.get("scenario_json") or "{}")
        return cls(Path(path), tr, config, _slot_hours(tr))

    # ---------------------------------------------------------------- data
    def frame(self, kind: str, var: str) -> pd.DataFrame:
        """The ``(time, entity)`` frame of a variable with at least one finite value.

        Raises:
            NoData: If the kind, the variable or any entity or finite value is missing.

        """
        frame = self.tr.groups.get(kind, {}).get(var)
        if frame is None:
            raise NoData(f"no {kind}/{var} in the file")
        if frame.shape[1] == 0 or frame.shape[0] == 0:
            raise NoData(f"{kind}/{var} has no {'entities' if frame.shape[0] else 'slots'}")
        if not np.isfinite(frame.to_numpy(dtype=float)).any():
            raise NoData(f"{kind}/{var} is NaN in every slot")
        return frame

    def optional(self, kind: str, var: str) -> pd.DataFrame | None:
        """:meth:`frame`, or None where it has no data."""
        try:
            return self.frame(kind, var)
        except NoData:
            return None

    def units(self, kind: str, var: str) -> str | None:
        """The variable's ``units`` attribute (None if it has none)."""
        return self.tr.units.get(kind, {}).get(var)

    def label(self, text: str, kind: str, var: str) -> str:
        """An axis label with the variable's units."""
        return axis_label(text, self.units(kind, var), var)

    # ---------------------------------------------------------------- time
    @property
    def dated(self) -> bool:
        """Whether the times are dates (else hours)."""
        return isinstance(self.tr.time, pd.DatetimeIndex)

    @property
    def edges(self) -> np.ndarray:
        """Slot start times and the last slot's end (``slots + 1`` floats).

        Hours, or matplotlib date numbers when the times are dates.
        """
        hours = np.append(self.tr.time_h, self.tr.time_h[-1] + self.slot_h)
        if not self.dated:
            return hours
        start = pd.DatetimeIndex(self.tr.time)[0]
        return np.asarray(mdates.date2num(start + pd.to_timedelta(hours - hours[0], "h")))

    def time_axis(self, ax: Axes) -> None:
        """Label the time axis (dates, or hours since the file's origin)."""
        if self.dated:
            ax.xaxis_date(tz=pd.DatetimeIndex(self.tr.time).tz)  # local clock, not UTC
            ax.set_xlabel("time")
        else:
            ax.set_xlabel(f"time ({self.tr.time_units.replace('hours', 'h', 1)})")
        ax.set_xlim(self.edges[0], self.edges[-1])

    def steps(self, ax: Axes, values: Sequence[float] | np.ndarray, **kwargs: Any) -> Any:
        """Draw per-slot values as steps over the slots (the last slot drawn to its end)."""
        y = np.asarray(values, dtype=float)
        return ax.stairs(y, self.edges, baseline=None, **kwargs)

    def band(self, ax: Axes, low: np.ndarray, high: np.ndarray, **kwargs: Any) -> None:
        """Fill between two per-slot series, slot by slot."""
        x = np.repeat(self.edges, 2)[1:-1]
        ax.fill_between(x, np.repeat(low, 2), np.repeat(high, 2), linewidth=0, **kwargs)

    # ---------------------------------------------------------------- scenario facts
    @property
    def name(self) -> str:
        """The scenario's name (for titles)."""
        return str(self.tr.attrs.get("scenario") or self.path.stem)

    def title(self, what: str) -> str:
        """A figure title: what, the scenario, and the run's status when not finished."""
        status = self.tr.attrs.get("status")
        tail = "" if status in (None, "finished") else f" [{status}: committed slots only]"
        return f"{what} - {self.name}{tail}"

    def voltage_limits(self) -> tuple[float, float]:
        """The scenario's voltage band (p.u.)."""
        network = self.config.get("network") or {}
        low, high = DEFAULT_LIMITS_PU
        return float(network.get("v_min_pu", low)), float(network.get("v_max_pu", high))

    def customer_classes(self, ids: Sequence[str]) -> dict[str, list[str]]:
        """The market customers by class (``[market.customers.classes]``; others residential)."""
        market = self.config.get("market") or {}
        listed = (market.get("customers") or {}).get("classes") or {}
        of = {str(load): str(cls) for cls, loads in listed.items() for load in loads}
        classes: dict[str, list[str]] = {}
        for name in ids:
            classes.setdefault(of.get(str(name), DEFAULT_CLASS), []).append(str(name))
        return dict(sorted(classes.items(), key=lambda kv: kv[0] != DEFAULT_CLASS))


def _slot_hours(tr: Trajectory) -> float:
    """The slot length: the run attribute, else the median step of the times, else 1 h."""
    value = tr.attrs.get("slot_hours")
    if isinstance(value, int | float) and value > 0:
        return float(value)
    if len(tr.time_h) > 1:
        return float(np.median(np.diff(tr.time_h)))
    return 1.0
