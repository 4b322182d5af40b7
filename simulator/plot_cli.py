"""``gridcosim plot RUN.h5 | SWEEP_DIR --out DIR``: the figures of a run or a sweep.

Registered by :mod:`gridcosim.simulator.cli` (:func:`add_plot_parser`, :func:`cmd_plot`);
the figures are drawn by :mod:`gridcosim.outputs.plots` (matplotlib, imported only when
the command runs).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gridcosim.scenarios.errors import InputError
from gridcosim.simulator.status import ExitCode

#: ``--format`` choices: the image formats written per figure.
FORMAT_CHOICES = ("png", "svg", "both")


def add_plot_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``plot`` subcommand to the ``gridcosim`` parser."""
    p = sub.add_parser("plot", help="figures of a trajectory file or a sweep directory",
                       description="Write PNG and SVG figures of a run's HDF5 trajectory "
                       "(voltages, exchanges, storage, generators, prices, settlement, "
                       "convergence; market figures for market runs) or of a sweep "
                       "directory's summary (outcomes against each swept parameter). "
                       "Figures without data in the file are skipped and listed.")
    p.add_argument("path", help="a trajectory (.h5, also an interrupted run's .partial) "
                                "or a sweep directory holding summary.parquet/summary.csv")
    p.add_argument("--out", default=None,
                   help="output directory (default: <path without suffix>-plots)")
    p.add_argument("--format", choices=FORMAT_CHOICES, default="both",
                   help="image format(s) per figure")
    p.add_argument("--windows", type=_window_list, default=None,
                   help="per-window convergence figures only for these windows "
                        "(comma-separated indices, or 'none'; default: every window)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")


def _window_list(text: str) -> list[int]:
    """``--windows 0,3,5`` -> ``[0, 3, 5]``; ``--windows none`` -> ``[]``."""
    if text.strip().lower() == "none":
        return []
    try:
        windows = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of window indices "
                                         f"(got {text!r})") from None
    if not windows or min(windows) < 0:
        raise argparse.ArgumentTypeError(f"window indices are 0, 1, ... (got {text!r})")
    return windows


def default_out(path: Path) -> Path:
    """``run.h5`` -> ``run-plots``; ``sweep/`` -> ``sweep/plots``."""
    if path.is_dir():
        return path / "plots"
    name = path.name.removesuffix(".partial")
    return path.with_name(f"{Path(name).stem}-plots")


def cmd_plot(args: argparse.Namespace) -> int:
    """Run ``gridcosim plot``: write the figures, report what was written and skipped."""
    from gridcosim.outputs.plots import ImageFormat, plot_path

    path = Path(args.path)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    formats = list(ImageFormat) if args.format == "both" else [ImageFormat(args.format)]
    out = Path(args.out) if args.out else default_out(path)
    report = plot_path(path, out, formats=formats, windows=args.windows)
    doc = report.to_json_dict()
    print(json.dumps(doc) if args.json else _text(doc))
    return ExitCode.OK


def _text(doc: dict[str, Any]) -> str:
    """The report as lines: what was written where, and what was skipped and why."""
    lines = [f"wrote {len(doc['figures'])} figure(s) ({len(doc['files'])} files) to "
             f"{doc['out']}"]
    lines += [f"  {name}" for name in doc["figures"]]
    if doc["skipped"]:
        lines.append(f"skipped {len(doc['skipped'])}:")
        lines += [f"  {name}: {why}" for name, why in doc["skipped"].items()]
    return "\n".join(lines)
