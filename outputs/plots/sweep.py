"""A sweep directory's outcomes against each swept parameter.

The directory holds a summary table, ``summary.parquet`` or ``summary.csv`` (the first
that reads), with one row per run: parameter columns ``param.<dotted path>``, outcome
columns such as ``cost_usd``, ``wall_s``, ``iterations`` and a ``status``. The reading is
defensive: any numeric column that is not a parameter is an outcome, a missing ``status``
only drops the status panel, and a parameter with one value is listed as not swept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gridcosim.outputs.layout import units_of
from gridcosim.outputs.plots.figures import (
    ImageFormat,
    NoData,
    PlotReport,
    SweepFigure,
    axis_label,
    legend,
    new_figure,
    save,
)
from gridcosim.scenarios.errors import InputError

SUMMARY_FILES = ("summary.parquet", "summary.csv")
PARAM_PREFIX = "param."
STATUS = "status"
#: Outcomes drawn first when present (then any other numeric column that varies), at most
#: MAX_OUTCOMES; the first three also when they do not vary.
KNOWN_OUTCOMES = ("cost_usd", "wall_s", "iterations", "cuts", "windows_not_optimal",
                  "powerflow_failures", "violation_slots", "energy_curtailed_kwh")
ALWAYS = KNOWN_OUTCOMES[:3]
MAX_OUTCOMES = 7
#: Statuses of runs that ended well; other runs are marked in the outcome panels.
GOOD_STATUSES = frozenset({"finished", "optimal"})
#: More combinations of the other swept parameters than this are drawn as one group.
MAX_GROUPS = 8
#: Numeric columns that identify a run rather than describe its outcome.
NOT_OUTCOMES = frozenset({"run", "run_id", "index", "id", "seed", "exit_code", "Unnamed: 0"})


def is_sweep_dir(path: Path) -> bool:
    """Whether ``path`` is a directory with a summary table."""
    return path.is_dir() and any((path / name).is_file() for name in SUMMARY_FILES)


def read_summary(directory: Path) -> tuple[pd.DataFrame, str]:
    """The summary table and its file name (Parquet first, then CSV).

    Raises:
        InputError: If there is no readable summary.

    """
    problems = []
    for name in SUMMARY_FILES:
        path = directory / name
        if not path.is_file():
            continue
        try:
            table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        except (ImportError, OSError, ValueError) as err:
            problems.append(f"{name}: {str(err).splitlines()[0] if str(err) else err!r}")
            continue
        return table, name
    why = "; ".join(problems) if problems else "no summary.parquet or summary.csv"
    raise InputError(f"{directory}: not a readable sweep directory ({why})")


def parameters(table: pd.DataFrame) -> list[str]:
    """The parameter columns, in table order."""
    return [str(c) for c in table.columns if str(c).startswith(PARAM_PREFIX)]


def swept(table: pd.DataFrame) -> list[str]:
    """The parameter columns with more than one value."""
    return [p for p in parameters(table) if table[p].dropna().nunique() > 1]


def outcomes(table: pd.DataFrame) -> list[str]:
    """The numeric outcome columns worth a panel (known ones first).

    A column counts if it has a finite value and, unless it is one of :data:`ALWAYS`, more
    than one distinct value.
    """
    found = [str(c) for c in table.columns if not str(c).startswith(PARAM_PREFIX)
             and str(c) not in NOT_OUTCOMES and str(c) != STATUS
             and _numeric(table[c]).notna().any()]
    ordered = [c for c in KNOWN_OUTCOMES if c in found] + [c for c in found
                                                           if c not in KNOWN_OUTCOMES]
    shown = [c for c in ordered if c in ALWAYS or _numeric(table[c]).nunique() > 1]
    return shown[:MAX_OUTCOMES]


def _numeric(column: pd.Series) -> pd.Series:
    """A column as floats (booleans and text that is no number become NaN)."""
    if pd.api.types.is_bool_dtype(column):
        return pd.Series(np.nan, index=column.index)
    values = pd.to_numeric(column, errors="coerce")
    return values.where(np.isfinite(values.astype(float)))


def figure_name(param: str) -> str:
    """``sweep_<dotted path with non-alphanumerics as _>``."""
    path = param.removeprefix(PARAM_PREFIX)
    return f"{SweepFigure.PARAMETER.value}_{re.sub(r'[^A-Za-z0-9]+', '_', path).strip('_')}"


def plot_sweep(directory: Path, out_dir: Path, formats: Sequence[ImageFormat]) -> PlotReport:
    """Every swept parameter's figure; unswept ones and empty tables listed as skipped."""
    table, source = read_summary(directory)
    report = PlotReport(directory, out_dir, facts={
        "kind": "sweep", "summary": source, "runs": len(table),
        "parameters": [p.removeprefix(PARAM_PREFIX) for p in parameters(table)]})
    if table.empty or not parameters(table):
        why = "the summary has no rows" if table.empty else "no param.* columns in the summary"
        report.skipped[SweepFigure.PARAMETER.value] = why
        return report
    for param in parameters(table):
        name = figure_name(param)
        try:
            fig = parameter_figure(table, param, directory.resolve().name)
        except NoData as why:
            report.skipped[name] = str(why)
            continue
        report.files += save(fig, out_dir, name, formats)
        report.figures.append(name)
    return report


def parameter_figure(table: pd.DataFrame, param: str, title: str) -> Figure:
    """Each outcome (and the runs' statuses) against one parameter."""
    values = table[param]
    if values.dropna().nunique() < 2:
        shown = values.dropna().unique()[:1]
        raise NoData(f"{param} is not swept (one value: {shown[0] if len(shown) else 'none'})")
    names = outcomes(table)
    has_status = STATUS in table and table[STATUS].notna().any()
    panels = len(names) + int(has_status)
    if not panels:
        raise NoData("no numeric outcome and no status column in the summary")
    fig, axes = new_figure((panels + 1) // 2, 2 if panels > 1 else 1, sharex=False,
                           height_in=2.8)
    x, ticks = _positions(values)
    groups = _groups(table, param)
    for ax, outcome in zip(axes, names, strict=False):
        _outcome_panel(ax, table, x, outcome, groups, categorical=ticks is not None)
        _x_axis(ax, param, ticks)
    if has_status:
        _status_panel(axes[len(names)], table, x)
        _x_axis(axes[len(names)], param, ticks)
    for ax in axes[panels:]:
        ax.set_visible(False)
    fig.suptitle(f"Sweep {title}: outcomes against {param.removeprefix(PARAM_PREFIX)} "
                 f"({len(table)} runs)")
    return fig


def _positions(values: pd.Series) -> tuple[np.ndarray, list[str] | None]:
    """The runs' x positions: the values if numeric, else category indices and labels."""
    numeric = _numeric(values)
    if not pd.api.types.is_bool_dtype(values) and numeric.notna().sum() == values.notna().sum():
        return numeric.to_numpy(dtype=float), None
    labels = values.astype(str).where(values.notna(), "unset")
    categories = sorted(labels.unique())
    return labels.map({c: i for i, c in enumerate(categories)}).to_numpy(dtype=float), categories


def _x_axis(ax: Axes, param: str, ticks: list[str] | None) -> None:
    path = param.removeprefix(PARAM_PREFIX)
    ax.set_xlabel(axis_label(path, None, path.rpartition(".")[2]))
    if ticks is not None:
        ax.set_xticks(np.arange(len(ticks)), ticks)
    ax.grid(alpha=0.3)


def _groups(table: pd.DataFrame, param: str) -> dict[str, np.ndarray]:
    """The runs by the values of the other swept parameters (one line each in a panel).

    One group when no other parameter is swept, or when they make too many combinations.
    """
    others = [p for p in swept(table) if p != param]
    every = {"runs": np.ones(len(table), dtype=bool)}
    if not others:
        return every
    keys = table[others].astype(str).apply(lambda row: ", ".join(
        f"{name.removeprefix(PARAM_PREFIX)}={value}" for name, value in row.items()), axis=1)
    if keys.nunique() > MAX_GROUPS:
        return every
    return {key: (keys == key).to_numpy() for key in sorted(keys.unique())}


def _outcome_panel(ax: Axes, table: pd.DataFrame, x: np.ndarray, outcome: str,
                   groups: dict[str, np.ndarray], *, categorical: bool) -> None:
    """The runs' outcome, a line through the mean per value for each group of runs."""
    y = _numeric(table[outcome]).to_numpy(dtype=float)
    for i, (label, mask) in enumerate(groups.items()):
        color = f"C{i % 10}"
        ax.scatter(x[mask], y[mask], color=color, s=20, zorder=3)
        means = pd.Series(y[mask]).groupby(x[mask]).mean().dropna()
        ax.plot(means.index.to_numpy(), means.to_numpy(), color=color, label=label,
                linestyle=":" if categorical else "-", linewidth=1.2)
    if STATUS in table:
        bad = ~table[STATUS].astype(str).isin(GOOD_STATUSES).to_numpy()
        if bad.any():
            ax.scatter(x[bad], y[bad], marker="x", color="black", s=40, zorder=4,
                       label="not finished")
    ax.set_ylabel(axis_label(outcome_text(outcome), None, outcome))
    legend(ax, loc="best")


def outcome_text(name: str) -> str:
    """An outcome's name without its unit suffix: ``cost_usd`` -> ``cost``."""
    if units_of(name) is not None and "_" in name:
        name = name.rpartition("_")[0]
        for suffix in ("_usd_per", "_per"):
            name = name.removesuffix(suffix)
    return name.replace("_", " ")


def _status_panel(ax: Axes, table: pd.DataFrame, x: np.ndarray) -> None:
    """Runs per parameter value, stacked by status."""
    statuses = table[STATUS].astype(str).where(table[STATUS].notna(), "unknown")
    counts = pd.crosstab(pd.Series(x, name="x"), statuses.reset_index(drop=True))
    positions = counts.index.to_numpy(dtype=float)
    width = 0.8 * (np.min(np.diff(positions)) if len(positions) > 1 else 1.0)
    bottom = np.zeros(len(counts))
    for i, status in enumerate(counts.columns):
        ax.bar(positions, counts[status].to_numpy(), width, bottom=bottom,
               color=f"C{i % 10}", label=str(status))
        bottom += counts[status].to_numpy()
    ax.set_ylabel("runs")
    legend(ax, loc="best")
