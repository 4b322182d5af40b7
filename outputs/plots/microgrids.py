"""The microgrids' figures: exchange with the DSO, storage, generators, prices, settlement.

The exchange figures are seed 000's Figs. A.5 (active) and A.6 (reactive): each
microgrid's exchange at its point of common coupling per slot, export positive. The
realised exchange is drawn solid, the plan (realised minus ``deviation_kw``) dashed where
they differ.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gridcosim.outputs.plots.figures import legend, new_figure
from gridcosim.outputs.plots.run_data import RunData

#: Deviations below this (kW) count as none: the plan is not drawn separately.
DEVIATION_TOLERANCE_KW = 1e-6


def p_exchange(rd: RunData) -> Figure:
    """Seed 000's Fig. A.5: each microgrid's active exchange per slot (plan dashed)."""
    realised = rd.frame("microgrid", "p_ex_kw")
    deviation = rd.optional("microgrid", "deviation_kw")
    fig, (ax,) = new_figure(1, height_in=4.0)
    for i, mg in enumerate(realised.columns):
        color = f"C{i % 10}"
        rd.steps(ax, realised[mg], color=color, linewidth=1.6, label=str(mg))
        if deviation is not None and np.nanmax(np.abs(deviation[mg]), initial=0.0) > \
                DEVIATION_TOLERANCE_KW:
            rd.steps(ax, realised[mg] - deviation[mg], color=color, linewidth=1,
                     linestyle="--", label=f"{mg} plan")
    _exchange_axes(rd, ax, rd.label("active exchange, export +", "microgrid", "p_ex_kw"))
    fig.suptitle(rd.title("Microgrids' active power exchange with the DSO"))
    return fig


def q_exchange(rd: RunData) -> Figure:
    """Seed 000's Fig. A.6: each microgrid's reactive exchange per slot."""
    realised = rd.frame("microgrid", "q_ex_kvar")
    fig, (ax,) = new_figure(1, height_in=4.0)
    for i, mg in enumerate(realised.columns):
        rd.steps(ax, realised[mg], color=f"C{i % 10}", linewidth=1.6, label=str(mg))
    _exchange_axes(rd, ax, rd.label("reactive exchange, export +", "microgrid", "q_ex_kvar"))
    fig.suptitle(rd.title("Microgrids' reactive power exchange with the DSO"))
    return fig


def _exchange_axes(rd: RunData, ax: Axes, ylabel: str) -> None:
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    legend(ax, loc="best")
    rd.time_axis(ax)


def unit_outputs(rd: RunData, ax: Axes, power: pd.DataFrame, ylabel: str) -> None:
    """One step line per unit of a kind's output, with grid and legend."""
    for i, unit in enumerate(power.columns):
        rd.steps(ax, power[unit], color=f"C{i % 10}", label=str(unit))
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    legend(ax, loc="best")


def storage_energy(rd: RunData) -> Figure:
    """Each battery's stored energy at slot ends (from its initial value) and its output."""
    energy = rd.frame("storage", "e_kwh")
    power = rd.optional("storage", "p_kw")
    fig, axes = new_figure(2 if power is not None else 1)
    initial = rd.tr.initial.get("storage", {}).get("e_kwh")
    for i, unit in enumerate(energy.columns):
        values = energy[unit].to_numpy(dtype=float)
        start = np.nan if initial is None else float(initial.get(unit, np.nan))
        axes[0].plot(rd.edges, np.append(start, values), color=f"C{i % 10}", marker=".",
                     label=str(unit))
    axes[0].set_ylabel(rd.label("stored energy (slot end)", "storage", "e_kwh"))
    if power is not None:
        unit_outputs(rd, axes[1], power, rd.label("net output, discharge +", "storage", "p_kw"))
        axes[1].axhline(0.0, color="black", linewidth=0.6)
    axes[0].grid(alpha=0.3)
    legend(axes[0], loc="best")
    rd.time_axis(axes[-1])
    fig.suptitle(rd.title("Storage: stored energy and output"))
    return fig


def generator_commitment(rd: RunData) -> Figure:
    """Each generator's commitment (on/off per slot) and its active output."""
    on = rd.frame("generator", "on")
    power = rd.optional("generator", "p_kw")
    fig, axes = new_figure(2 if power is not None else 1)
    edges = rd.edges
    rows = np.arange(on.shape[1] + 1) - 0.5
    mesh = axes[0].pcolormesh(edges, rows, on.to_numpy(dtype=float).T, cmap="Greens",
                              vmin=0.0, vmax=1.0, shading="flat")
    axes[0].set_yticks(np.arange(on.shape[1]), [str(c) for c in on.columns])
    axes[0].set_ylabel("generator")
    fig.colorbar(mesh, ax=axes[0], label="commitment (1 on, 0 off)", ticks=[0, 1])
    if power is not None:
        unit_outputs(rd, axes[1], power, rd.label("active output", "generator", "p_kw"))
    rd.time_axis(axes[-1])
    fig.suptitle(rd.title("Generators: commitment and output"))
    return fig


def nodal_prices(rd: RunData) -> Figure:
    """The nodal prices the DSO sent each microgrid (active; reactive if recorded)."""
    active = rd.frame("microgrid", "nodal_price_usd_per_kwh")
    reactive = rd.optional("microgrid", "nodal_price_q_usd_per_kvarh")
    fig, axes = new_figure(2 if reactive is not None else 1)
    for i, mg in enumerate(active.columns):
        rd.steps(axes[0], active[mg], color=f"C{i % 10}", label=str(mg))
    utility = rd.optional("substation", "price_usd_per_kwh")
    if utility is not None:
        rd.steps(axes[0], utility.iloc[:, 0], color="black", linestyle="--",
                 label="utility price")
    axes[0].set_ylabel(rd.label("active nodal price", "microgrid", "nodal_price_usd_per_kwh"))
    if reactive is not None:
        for i, mg in enumerate(reactive.columns):
            rd.steps(axes[1], reactive[mg], color=f"C{i % 10}", label=str(mg))
        axes[1].set_ylabel(rd.label("reactive nodal price", "microgrid",
                                    "nodal_price_q_usd_per_kvarh"))
    for ax in axes:
        ax.axhline(0.0, color="black", linewidth=0.6)
        ax.grid(alpha=0.3)
    legend(axes[0], loc="best")
    rd.time_axis(axes[-1])
    fig.suptitle(rd.title("Nodal prices per microgrid"))
    return fig


def settlements(rd: RunData) -> Figure:
    """Each microgrid's settlement per slot and its totals (active, reactive)."""
    total = rd.frame("microgrid", "settlement_usd")
    fig, axes = new_figure(2, sharex=False)
    for i, mg in enumerate(total.columns):
        rd.steps(axes[0], total[mg], color=f"C{i % 10}", label=str(mg))
    axes[0].axhline(0.0, color="black", linewidth=0.6)
    axes[0].set_ylabel(rd.label("settlement per slot, paid to mg +", "microgrid",
                                "settlement_usd"))
    legend(axes[0], loc="best")
    rd.time_axis(axes[0])
    _settlement_totals(rd, axes[1], [str(c) for c in total.columns])
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(rd.title("Settlement of the microgrids' exchange at the nodal prices"))
    return fig


def _settlement_totals(rd: RunData, ax: Axes, names: list[str]) -> None:
    """Bars: each microgrid's total active and reactive settlement over the run."""
    x = np.arange(len(names))
    parts = [(var, text) for var, text in (("settlement_p_usd", "active"),
                                           ("settlement_q_usd", "reactive"))
             if rd.optional("microgrid", var) is not None] or [("settlement_usd", "total")]
    width = 0.8 / len(parts)
    for j, (var, text) in enumerate(parts):
        sums = rd.frame("microgrid", var).sum(axis=0, skipna=True)
        ax.bar(x + (j - (len(parts) - 1) / 2) * width, sums.to_numpy(), width, label=text)
    ax.set_xticks(x, names)
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_ylabel(rd.label("total over the run", "microgrid", "settlement_usd"))
    legend(ax, loc="best")
