"""``gridcosim plot``: every figure of a run's trajectory, or of a sweep directory.

Each figure is drawn from the file alone; one whose data the file does not have (no
storage, no market, no per-iteration table) is listed as skipped with the reason, never
drawn empty. An interrupted or still-running file is plotted up to its last committed
flush (the reader stops there).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from matplotlib.figure import Figure

from gridcosim.outputs.plots.convergence import (
    convergence_windows,
    window_convergence,
    window_names,
)
from gridcosim.outputs.plots.figures import ImageFormat, NoData, PlotReport, RunFigure, save
from gridcosim.outputs.plots.market import (
    class_prices,
    class_responses,
    market_settlement,
    supply_mix,
)
from gridcosim.outputs.plots.microgrids import (
    generator_commitment,
    nodal_prices,
    p_exchange,
    q_exchange,
    settlements,
    storage_energy,
)
from gridcosim.outputs.plots.network import voltage_envelope
from gridcosim.outputs.plots.run_data import RunData
from gridcosim.outputs.plots.sweep import is_sweep_dir, plot_sweep
from gridcosim.scenarios.errors import InputError, OutputError

#: The run figures in drawing order (the per-window convergence figures follow them).
RUN_FIGURES: dict[RunFigure, Callable[[RunData], Figure]] = {
    RunFigure.VOLTAGE_ENVELOPE: voltage_envelope,
    RunFigure.P_EXCHANGE: p_exchange,
    RunFigure.Q_EXCHANGE: q_exchange,
    RunFigure.STORAGE_ENERGY: storage_energy,
    RunFigure.GENERATOR_COMMITMENT: generator_commitment,
    RunFigure.NODAL_PRICES: nodal_prices,
    RunFigure.SETTLEMENTS: settlements,
    RunFigure.CLASS_PRICES: class_prices,
    RunFigure.CLASS_RESPONSES: class_responses,
    RunFigure.SUPPLY_MIX: supply_mix,
    RunFigure.MARKET_SETTLEMENT: market_settlement,
    RunFigure.CONVERGENCE_WINDOWS: convergence_windows,
}
DEFAULT_FORMATS = (ImageFormat.PNG, ImageFormat.SVG)


def plot_path(path: str | Path, out_dir: str | Path, *,
              formats: Sequence[ImageFormat] = DEFAULT_FORMATS,
              windows: list[int] | None = None) -> PlotReport:
    """Plot a trajectory file or a sweep directory into ``out_dir``.

    Raises:
        InputError: If ``path`` is neither, or ``windows`` names windows the file lacks.
        OutputError: If the images cannot be written.

    """
    path, out_dir = Path(path), Path(out_dir)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir}: exists and is not a directory")
    try:
        if path.is_dir():
            if not is_sweep_dir(path):
                raise InputError(f"{path}: not a sweep directory (no summary.parquet or "
                                 f"summary.csv)")
            return plot_sweep(path, out_dir, formats)
        return plot_run(path, out_dir, formats=formats, windows=windows)
    except OSError as err:
        raise OutputError(f"{out_dir}: cannot write the figures ({err})") from None


def plot_run(path: str | Path, out_dir: str | Path, *,
             formats: Sequence[ImageFormat] = DEFAULT_FORMATS,
             windows: list[int] | None = None) -> PlotReport:
    """Every figure of one trajectory file (see :data:`RUN_FIGURES`), then one per window.

    Raises:
        InputError: If the file is not a trajectory or ``windows`` names absent windows.

    """
    rd = load_run(Path(path))
    try:
        names = window_names(rd, windows)
    except ValueError as err:
        raise InputError(str(err)) from None
    report = PlotReport(Path(path), Path(out_dir), facts={
        "kind": "run", "status": rd.tr.attrs.get("status"), "slots": rd.tr.slots,
        "windows": len(rd.tr.convergence), "iteration_rows": len(rd.tr.iterations)})
    for name, build in RUN_FIGURES.items():
        _draw(report, name.value, lambda build=build: build(rd), formats)
    if names and _no_iteration_table(rd):
        report.skipped[f"{RunFigure.CONVERGENCE_WINDOW.value}_*"] = (
            "no per-iteration rows in the file (written before the iterations table "
            "existed, or a market run: its clearings keep no bounds)")
        return report
    for window, name in names.items():
        _draw(report, name, lambda w=window: window_convergence(rd, w), formats)
    return report


def _no_iteration_table(rd: RunData) -> bool:
    """Whether the file keeps no per-iteration rows at all.

    Not the case when every window settled before iterating, which leaves the table
    empty too.
    """
    table, conv = rd.tr.iterations, rd.tr.convergence
    if not table.empty and "window" in table:
        return False
    return not ("iterations" in conv and len(conv) and (conv["iterations"] == 0).all())


def load_run(path: Path) -> RunData:
    """Read a trajectory for plotting.

    Raises:
        InputError: If the file is not a gridcosim trajectory.

    """
    try:
        return RunData.load(path)
    except (OSError, KeyError, ValueError) as err:
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"{path}: not a gridcosim trajectory ({text[:200]})") from None


def _draw(report: PlotReport, name: str, build: Callable[[], Figure],
          formats: Sequence[ImageFormat]) -> None:
    """Draw and save one figure, or list it as skipped when the file lacks its data."""
    try:
        fig = build()
    except NoData as why:
        report.skipped[name] = str(why)
        return
    report.files += save(fig, report.out_dir, name, formats)
    report.figures.append(name)
