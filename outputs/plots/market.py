"""The market's figures (seed 001): customer classes, supply mix, settlement.

Prices and responses per customer class, the supply mix and the money.

Customer classes come from the scenario stored in the file (``[market.customers.classes]``;
unlisted loads are residential). The per-phase voltage envelope is drawn by
:mod:`gridcosim.outputs.plots.network`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from gridcosim.outputs.plots.figures import NoData, legend, new_figure
from gridcosim.outputs.plots.network import row_range
from gridcosim.outputs.plots.run_data import RunData

CUSTOMERS = "market_customer"


def class_prices(rd: RunData) -> Figure:
    """Per class, the personalised prices (mean, with the class's range), and the market's."""
    price = rd.frame(CUSTOMERS, "price_usd_per_kwh")
    fig, (ax,) = new_figure(1, height_in=4.0)
    for i, (name, ids) in enumerate(rd.customer_classes(price.columns).items()):
        values = price[ids].to_numpy(dtype=float)
        low, high = row_range(values)
        rd.steps(ax, _row_mean(values), color=f"C{i % 10}", linewidth=1.8,
                 label=f"{name} ({len(ids)}), mean")
        rd.band(ax, low, high, color=f"C{i % 10}", alpha=0.15)
    for kind, var, text, style in (("market", "clearing_price_usd_per_kwh", "clearing price",
                                    "-"), ("upstream", "price_usd_per_kwh", "upstream LMP", "--")):
        frame = rd.optional(kind, var)
        if frame is not None:
            rd.steps(ax, frame.iloc[:, 0], color="black", linestyle=style, label=text)
    ax.set_ylabel(rd.label("price", CUSTOMERS, "price_usd_per_kwh"))
    ax.grid(alpha=0.3)
    legend(ax, loc="best")
    rd.time_axis(ax)
    fig.suptitle(rd.title("Personalised prices per customer class (band: the class's range)"))
    return fig


def _row_mean(values: np.ndarray) -> np.ndarray:
    """Each row's mean over its finite values (NaN for a row without one)."""
    finite = np.isfinite(values)
    count = finite.sum(axis=1)
    total = np.where(finite, values, 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def class_responses(rd: RunData) -> Figure:
    """Per class, the consumption at its prices against its original profile."""
    served = rd.frame(CUSTOMERS, "p_kw")
    original = rd.optional(CUSTOMERS, "p_original_kw")
    classes = rd.customer_classes(served.columns)
    rows = math.ceil(len(classes) / 2)
    fig, axes = new_figure(rows, 2 if len(classes) > 1 else 1, height_in=2.6)
    for ax, (name, ids) in zip(axes, classes.items(), strict=False):
        rd.steps(ax, served[ids].sum(axis=1, min_count=1), color="C0", linewidth=1.6,
                 label="at its prices")
        if original is not None:
            rd.steps(ax, original[ids].sum(axis=1, min_count=1), color="C1",
                     linestyle="--", label="original profile")
        ax.set_title(f"{name} ({len(ids)} customers)", fontsize="medium")
        ax.set_ylabel(rd.label("consumption", CUSTOMERS, "p_kw"))
        ax.grid(alpha=0.3)
        legend(ax, loc="best")
        rd.time_axis(ax)
    for ax in axes[len(classes):]:
        ax.set_visible(False)
    fig.suptitle(rd.title("Customers' response per class"))
    return fig


def supply_mix(rd: RunData) -> Figure:
    """The cleared supply per supplier, stacked, with the demand it serves."""
    layers = _supply_layers(rd)
    fig, (ax,) = new_figure(1, height_in=4.0)
    bottom = np.zeros(rd.tr.slots)
    for i, (name, values) in enumerate(layers.items()):
        top = bottom + np.nan_to_num(values)
        rd.band(ax, bottom, top, color=f"C{i % 10}", alpha=0.7, label=name)
        bottom = top
    demand = rd.optional("market", "demand_kw")
    if demand is not None:
        rd.steps(ax, demand.iloc[:, 0], color="black", linewidth=1.6, label="demand served")
    ax.set_ylabel(rd.label("cleared supply", "market_der", "p_kw"))
    ax.grid(alpha=0.3)
    legend(ax, loc="best")
    rd.time_axis(ax)
    fig.suptitle(rd.title("Market supply mix"))
    return fig


def _supply_layers(rd: RunData) -> dict[str, np.ndarray]:
    """Each supplier's cleared output (the DERs, then the upstream microgrid)."""
    layers: dict[str, np.ndarray] = {}
    ders = rd.optional("market_der", "p_kw")
    if ders is not None:
        layers.update({str(c): ders[c].to_numpy(dtype=float) for c in ders.columns})
    upstream = rd.frame("upstream", "p_kw") if ders is None else rd.optional("upstream", "p_kw")
    if upstream is not None:
        layers.update({str(c) if "upstream" in str(c) else f"upstream {c}":
                       upstream[c].to_numpy(dtype=float) for c in upstream.columns})
    return layers


def market_settlement(rd: RunData) -> Figure:
    """The load aggregator's money per slot, and what each supplier was paid."""
    aggregator = {var: rd.optional("aggregator", var)
                  for var in ("revenue_usd", "purchase_usd", "profit_usd")}
    suppliers = _supplier_revenue(rd)
    if all(v is None for v in aggregator.values()):
        raise NoData("no aggregator/revenue_usd, purchase_usd or profit_usd in the file")
    fig, axes = new_figure(2)
    for var, frame in aggregator.items():
        if frame is not None:
            rd.steps(axes[0], frame.iloc[:, 0], label=f"aggregator {var.removesuffix('_usd')}")
    axes[0].set_ylabel(rd.label("per slot", "aggregator", "revenue_usd"))
    for i, (name, values) in enumerate(suppliers.items()):
        rd.steps(axes[1], values, color=f"C{i % 10}", label=name)
    axes[1].set_ylabel(rd.label("paid to the supplier", "market_der", "revenue_usd"))
    for ax in axes:
        ax.axhline(0.0, color="black", linewidth=0.6)
        ax.grid(alpha=0.3)
        legend(ax, loc="best")
    rd.time_axis(axes[-1])
    fig.suptitle(rd.title("Market settlement"))
    return fig


def _supplier_revenue(rd: RunData) -> dict[str, pd.Series]:
    out: dict[str, pd.Series] = {}
    for kind in ("market_der", "upstream"):
        frame = rd.optional(kind, "revenue_usd")
        if frame is not None:
            out.update({str(c): frame[c] for c in frame.columns})
    return out
