"""Convergence: per window over the run, and per iteration within each window.

``convergence_windows`` reads ``/convergence`` (one row per window: iterations, gap, cuts
by family). ``convergence_window_<w>`` reads ``/iterations`` (one row per master solve):
the master's lower bound and the best runnable schedule's cost (the upper bound) per
iteration, their gap, and the master's cuts by family, as seed 000's Fig. A.2 shows them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from gridcosim.outputs.plots.figures import NoData, RunFigure, axis_label, legend, new_figure
from gridcosim.outputs.plots.run_data import RunData

CUTS_PREFIX = "cuts_"
#: Gaps are drawn on a log axis; smaller ones (0 at convergence) are drawn at this floor.
GAP_FLOOR = 1e-9


def cut_families(table: pd.DataFrame) -> list[str]:
    """The cut families of a table (its ``cuts_<family>`` columns) with any cut."""
    return [c.removeprefix(CUTS_PREFIX) for c in table.columns
            if c.startswith(CUTS_PREFIX) and np.nansum(table[c].to_numpy(dtype=float)) > 0]


def convergence_windows(rd: RunData) -> Figure:
    """Per window: iterations (or clearings), the final gap, and cuts by family."""
    conv = rd.tr.convergence
    if conv.empty or "iterations" not in conv:
        raise NoData("no convergence rows in the file")
    fig, axes = new_figure(3, height_in=2.4)
    x = conv.index.to_numpy()
    axes[0].bar(x, conv["iterations"].to_numpy(dtype=float), color="C0")
    axes[0].set_ylabel("iterations")
    _gap_panel(axes[1], x, conv["gap"] if "gap" in conv else None, marker="o")
    bottom = np.zeros(len(conv))
    for i, family in enumerate(cut_families(conv)):
        values = conv[CUTS_PREFIX + family].to_numpy(dtype=float)
        axes[2].bar(x, values, bottom=bottom, color=f"C{i % 10}", label=family)
        bottom += values
    axes[2].set_ylabel("cuts added")
    legend(axes[2], loc="best")
    axes[2].set_xlabel("window")
    axes[2].xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(rd.title(f"Convergence per window ({_statuses(conv)})"))
    return fig


def _statuses(conv: pd.DataFrame) -> str:
    if "status" not in conv:
        return f"{len(conv)} windows"
    counts = conv["status"].value_counts()
    return ", ".join(f"{status} {n}" for status, n in counts.items())


def _gap_panel(ax: Axes, x: np.ndarray, gap: pd.Series | None, **kwargs: object) -> None:
    """Relative gap on a log axis; infinite gaps (no finite bound) noted, not drawn."""
    ax.set_ylabel("relative gap")
    if gap is None:
        return
    values = gap.to_numpy(dtype=float)
    finite = np.isfinite(values)
    notes = []
    if finite.any():
        ax.semilogy(x[finite], np.maximum(values[finite], GAP_FLOOR), color="C3", **kwargs)
        if (values[finite] < GAP_FLOOR).any():
            notes.append(f"gaps below {GAP_FLOOR:g} (0: converged) drawn at {GAP_FLOOR:g}")
    if not finite.all():
        notes.append(f"{int((~finite).sum())} without a finite bound (gap inf)")
    if notes:
        ax.text(0.01, 0.95, "; ".join(notes), transform=ax.transAxes, va="top",
                fontsize="small")


def window_names(rd: RunData, windows: list[int] | None) -> dict[int, str]:
    """The per-window figures to draw: window index -> figure name.

    Raises:
        ValueError: If a requested window is not in the file.

    """
    count = len(rd.tr.convergence)
    chosen = list(range(count)) if windows is None else windows
    if bad := [w for w in chosen if not 0 <= w < count]:
        raise ValueError(f"--windows {bad}: the file has windows 0..{count - 1}"
                         if count else f"--windows {bad}: the file has no windows")
    digits = max(3, len(str(max(count - 1, 0))))
    return {w: f"{RunFigure.CONVERGENCE_WINDOW.value}_{w:0{digits}d}" for w in chosen}


def window_convergence(rd: RunData, window: int) -> Figure:
    """One window's bounds, gap and cuts by family per iteration (seed 000's Fig. A.2)."""
    table, conv = rd.tr.iterations, rd.tr.convergence
    if "iterations" in conv and window in conv.index and conv.at[window, "iterations"] == 0:
        raise NoData(f"window {window} settled before iterating (its price rounds' "
                     "schedule met the master's bound): no iteration rows")
    if table.empty or "window" not in table:
        raise NoData("no per-iteration table in the file (written before it existed, or a "
                     "market run: its clearings keep no bounds)")
    rows = table[table["window"] == window]
    if rows.empty:
        raise NoData(f"window {window} has no iteration rows")
    it = rows["iteration"].to_numpy(dtype=float)
    fig, axes = new_figure(3, height_in=2.6)
    _bounds_panel(axes[0], rows, it, _final_cost(rd, window))
    _gap_panel(axes[1], it, rows["gap"], marker=".")
    for i, family in enumerate(cut_families(rows)):
        axes[2].plot(it, rows[CUTS_PREFIX + family].to_numpy(dtype=float), color=f"C{i % 10}",
                     marker=".", label=family)
    axes[2].set_ylabel("cuts in the master")
    legend(axes[2], loc="best")
    axes[2].set_xlabel("iteration (master solve)")
    axes[2].xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    axes[2].set_xlim(0.5, float(np.nanmax(it)) + 0.5)
    for ax in axes:
        ax.grid(alpha=0.3)
    start = int(rows["start_slot"].iloc[0]) if "start_slot" in rows else "?"
    fig.suptitle(rd.title(f"Window {window} (from slot {start}): convergence"))
    return fig


def _final_cost(rd: RunData, window: int) -> float:
    conv = rd.tr.convergence
    return float(conv["cost_usd"].iloc[window]) if "cost_usd" in conv else float("nan")


def _bounds_panel(ax: Axes, rows: pd.DataFrame, it: np.ndarray, cost: float) -> None:
    """Lower and upper bound per iteration; the adopted schedule's cost dotted."""
    for var, label, color in (("lower_bound_usd", "lower bound (master)", "C0"),
                              ("upper_bound_usd", "upper bound (best runnable schedule)",
                               "C1")):
        if var not in rows:
            continue
        values = rows[var].to_numpy(dtype=float)
        shown = np.where(np.isfinite(values), values, np.nan)
        if np.isfinite(shown).any():
            ax.plot(it, shown, color=color, marker=".", label=label)
    if np.isfinite(cost):
        ax.axhline(cost, color="black", linestyle=":", linewidth=1, label="adopted cost")
    if not ax.get_legend_handles_labels()[0]:
        ax.text(0.5, 0.5, "no finite bound in this window", transform=ax.transAxes,
                ha="center")
    ax.set_ylabel(axis_label("window cost", None, "lower_bound_usd"))
    legend(ax, loc="best")
