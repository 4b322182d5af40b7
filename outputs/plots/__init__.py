"""Figures of trajectories and sweeps (``gridcosim plot``), drawn with matplotlib (Agg)."""

from gridcosim.outputs.plots.figures import ImageFormat, PlotReport, RunFigure, SweepFigure
from gridcosim.outputs.plots.run import RUN_FIGURES, plot_path, plot_run
from gridcosim.outputs.plots.sweep import plot_sweep

__all__ = ["RUN_FIGURES", "ImageFormat", "PlotReport", "RunFigure", "SweepFigure",
           "plot_path", "plot_run", "plot_sweep"]
