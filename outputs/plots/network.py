"""The feeder's voltage envelope per slot: lowest and highest bus voltage, with the limits.

A co-simulation run records three voltages per bus (``bus/``): the plan's LinDistFlow
voltage, the AC power flow of the plan and the AC power flow of the realised slot. On a
three-phase feeder the bus ids are ``bus.phase`` and each phase gets its panel. A market
run records the AC voltages of the adopted clearing per phase (``phase_bus/vm_<p>_pu``).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gridcosim.outputs.plots.figures import NoData, legend, new_figure
from gridcosim.outputs.plots.run_data import RunData

#: The voltages of ``bus/`` and how the legend names them, drawn in this order (the first
#: with its band, the others as lines on top of it).
BUS_VOLTAGES = (("vm_real_pu", "realised (AC power flow)"), ("vm_pu", "plan (AC power flow)"),
                ("vm_lin_pu", "plan (LinDistFlow)"))
#: Line styles of the series, in drawing order.
STYLES = ({"color": "C2", "linewidth": 2.0}, {"color": "C1", "linewidth": 1.4, "linestyle": "--"},
          {"color": "C0", "linewidth": 1.2, "linestyle": "-."})
PHASES = ("a", "b", "c")


def voltage_envelope(rd: RunData) -> Figure:
    """Per slot, the lowest and highest voltage of each recorded kind, per phase if any."""
    panels = dict(_panels(rd))
    if not panels:
        raise NoData("no bus voltages (bus/vm_*_pu or phase_bus/vm_<phase>_pu)")
    fig, axes = new_figure(len(panels))
    low, high = rd.voltage_limits()
    for ax, (phase, series) in zip(axes, panels.items(), strict=True):
        for i, (label, frame) in enumerate(series):
            _envelope(rd, ax, frame, label, i)
        ax.axhline(low, color="tab:red", linestyle="--", linewidth=1, label=f"limit {low:g} p.u.")
        ax.axhline(high, color="tab:red", linestyle=":", linewidth=1, label=f"limit {high:g} p.u.")
        ax.set_ylabel(rd.label(f"|V| {phase}".strip(), "bus", "vm_pu"))
        ax.grid(alpha=0.3)
    legend(axes[0], loc="best")
    rd.time_axis(axes[-1])
    fig.suptitle(rd.title("Voltage envelope per slot (min and max over buses)"))
    return fig


def _panels(rd: RunData) -> Iterator[tuple[str, list[tuple[str, pd.DataFrame]]]]:
    """(phase, [(label, frame)]) per panel: one panel, or one per phase."""
    market = [(p, rd.optional("phase_bus", f"vm_{p}_pu")) for p in PHASES]
    if any(frame is not None for _, frame in market):
        for phase, frame in market:
            if frame is not None:
                yield f"phase {phase}", [("AC power flow (adopted clearing)", frame)]
        return
    series = [(label, f) for var, label in BUS_VOLTAGES
              if (f := rd.optional("bus", var)) is not None]
    if not series:
        return
    phases = _phase_of(series[0][1].columns)
    if phases is None:
        yield "", series
        return
    for phase in PHASES:
        cols = [c for c, p in zip(series[0][1].columns, phases, strict=True) if p == phase]
        if cols:
            yield f"phase {phase}", [(label, f[cols]) for label, f in series]


def _phase_of(ids: pd.Index) -> list[str] | None:
    """The phase of each ``bus.phase`` id; None on a balanced feeder (plain bus ids)."""
    parts = [str(i).rpartition(".") for i in ids]
    if parts and all(sep and phase in PHASES for _, sep, phase in parts):
        return [phase for _, _, phase in parts]
    return None


def _envelope(rd: RunData, ax: Axes, frame: pd.DataFrame, label: str, order: int) -> None:
    """The slot's lowest and highest voltage; the first series also as a band."""
    low, high = row_range(frame.to_numpy(dtype=float))
    style = STYLES[order % len(STYLES)]
    rd.steps(ax, low, label=f"{label}: min, max", **style)
    rd.steps(ax, high, **style)
    if order == 0:
        rd.band(ax, low, high, color=style["color"], alpha=0.15)


def row_range(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's lowest and highest finite value (NaN for a row without one)."""
    finite = np.isfinite(values)
    some = finite.any(axis=1)
    low = np.where(finite, values, np.inf).min(axis=1, initial=np.inf)
    high = np.where(finite, values, -np.inf).max(axis=1, initial=-np.inf)
    return np.where(some, low, np.nan), np.where(some, high, np.nan)
