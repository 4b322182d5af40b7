"""``gridcosim view RUN.h5 --out report.html``: a run as one self-contained HTML page.

The page (:mod:`gridcosim.outputs.view`) draws the feeder with its bus coordinates,
coloured by voltage, with a slider over the slots; docs/view.md. Like ``gridcosim run``,
an existing output is replaced only with ``--force``; every problem with the input or
the output path is an :class:`~gridcosim.scenarios.errors.InputError` (exit code 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gridcosim.scenarios.errors import InputError
from gridcosim.simulator.status import ExitCode


def add_view_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``view`` subcommand to the ``gridcosim`` parser's subcommands."""
    p = sub.add_parser("view", help="write a run as one self-contained HTML page (feeder, "
                                    "voltages per slot, microgrid exchanges)")
    p.add_argument("file", help="the run's HDF5 trajectory")
    p.add_argument("--out", default=None, help="HTML file (default: FILE with suffix .html)")
    p.add_argument("--force", action="store_true", help="replace an existing output file")


def output_path(run: Path, out: str | None, force: bool) -> Path:
    """The page's path, checked: not the run itself, not a folder, not existing unless forced.

    Raises:
        InputError: If the path may not be written (the message says what to do).

    """
    target = Path(out) if out is not None else run.with_suffix(".html")
    if target.exists() and target.resolve() == run.resolve():
        raise InputError(f"--out {target}: that is the run's file; choose another name")
    if target.is_dir():
        raise InputError(f"--out {target}: is a directory; give a file name")
    if not target.parent.is_dir():
        raise InputError(f"--out {target}: the folder {target.parent} does not exist")
    if target.exists() and not force:
        raise InputError(f"--out {target}: the file exists; replace it with --force "
                         f"(or choose another name)")
    return target


def cmd_view(args: argparse.Namespace) -> int:
    """Write the page of ``args.file`` to ``args.out``; print where it is.

    Returns:
        0; an unusable input or output raises :class:`InputError` (exit code 2), a failed
        write returns :attr:`ExitCode.OUTPUT_ERROR` (5).

    """
    from gridcosim.outputs.view import write_page
    from gridcosim.outputs.view_data import page_data

    run = Path(args.file)
    if not run.is_file():
        raise InputError(f"{run}: no such file")
    out = output_path(run, args.out, args.force)
    try:
        data = page_data(run)
    except (OSError, KeyError, ValueError) as err:
        raise InputError(f"{run}: not a gridcosim trajectory ({_first_line(err)})") from None
    try:
        write_page(data, out)
    except OSError as err:
        print(f"gridcosim: --out {out}: could not write the page ({_first_line(err)})",
              file=sys.stderr)
        return ExitCode.OUTPUT_ERROR
    print(f"view: {out} ({data['meta']['slots']} slots, {len(data['buses'])} buses)")
    return ExitCode.OK


def _first_line(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text[:200]
