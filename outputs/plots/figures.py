"""What every plot shares: figure names, image formats, the report, saving, labels.

Figures are drawn on :class:`matplotlib.figure.Figure` objects with the Agg canvas (no
pyplot, so no global state and no display is needed). A figure whose data the file does
not have raises :class:`NoData`; the caller lists it as skipped instead of drawing an
empty plot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gridcosim.outputs.layout import units_of

#: Width of a figure and height of one panel, in inches; PNG resolution.
WIDTH_IN = 10.0
PANEL_IN = 3.0
DPI = 110


class RunFigure(StrEnum):
    """The figures of a run's trajectory (file stems)."""

    VOLTAGE_ENVELOPE = "voltage_envelope"
    P_EXCHANGE = "microgrid_p_exchange"
    Q_EXCHANGE = "microgrid_q_exchange"
    STORAGE_ENERGY = "storage_energy"
    GENERATOR_COMMITMENT = "generator_commitment"
    NODAL_PRICES = "nodal_prices"
    SETTLEMENTS = "settlements"
    CONVERGENCE_WINDOWS = "convergence_windows"
    #: One per window: ``convergence_window_000``, ``convergence_window_001``, ...
    CONVERGENCE_WINDOW = "convergence_window"
    CLASS_PRICES = "class_prices"
    CLASS_RESPONSES = "class_responses"
    SUPPLY_MIX = "supply_mix"
    MARKET_SETTLEMENT = "market_settlement"


class SweepFigure(StrEnum):
    """The figures of a sweep directory (one per swept parameter: ``sweep_<param>``)."""

    PARAMETER = "sweep"


class ImageFormat(StrEnum):
    """The image files written per figure."""

    PNG = "png"
    SVG = "svg"


class NoData(Exception):
    """The file has no data for a figure (the message says what is missing)."""


@dataclass
class PlotReport:
    """What a ``plot`` wrote and what it skipped.

    Attributes:
        source: The trajectory file or sweep directory plotted.
        out_dir: Where the images went.
        figures: Names of the figures written, in order.
        files: Every image file written.
        skipped: Figure name -> why it was not drawn.
        facts: What was plotted (slots, windows, runs), for the CLI.

    """

    source: Path
    out_dir: Path
    figures: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        """The report as plain JSON types."""
        return {"source": str(self.source), "out": str(self.out_dir),
                "figures": list(self.figures), "files": [str(f) for f in self.files],
                "skipped": dict(self.skipped), **self.facts}


def new_figure(rows: int = 1, cols: int = 1, *, sharex: bool = True,
               height_in: float = PANEL_IN) -> tuple[Figure, list[Axes]]:
    """A figure with ``rows x cols`` panels (a flat list, row by row), laid out tightly."""
    fig = Figure(figsize=(WIDTH_IN, max(height_in * rows, 2.5)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, sharex=sharex, squeeze=False)
    return fig, list(np.ravel(axes))


def save(fig: Figure, out_dir: Path, name: str,
         formats: Sequence[ImageFormat]) -> list[Path]:
    """Write ``fig`` as ``<out_dir>/<name>.<format>`` for each format; return the files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out_dir / f"{name}.{fmt.value}"
        fig.savefig(path, format=fmt.value, dpi=DPI, metadata=_metadata(fmt))
        fig.set_layout_engine("none")  # laid out once: the next format keeps the layout
        paths.append(path)
    return paths


def _metadata(fmt: ImageFormat) -> dict[str, Any]:
    """No creation date in SVG files (the same data give the same file)."""
    return {"Date": None} if fmt is ImageFormat.SVG else {}


def axis_label(text: str, units: str | None, var: str = "") -> str:
    """``text (units)``; dimensionless voltages as ``p.u.``, other ``1`` units omitted."""
    units = units if units is not None else units_of(var)
    if units == "1":
        return f"{text} (p.u.)" if var.endswith("_pu") else text
    return f"{text} ({units})" if units else text


def legend(ax: Axes, **kwargs: Any) -> None:
    """A legend for the panel's labelled artists, outside the data where there are many."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    if len(handles) > 8:
        ax.legend(handles, labels, fontsize="x-small", ncol=2, loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), **kwargs)
    else:
        ax.legend(handles, labels, fontsize="small", **kwargs)
