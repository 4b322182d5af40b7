"""Where a run writes, and the rules that keep earlier results safe.

A run never writes its output file directly. It writes ``<out>.partial`` next to it and,
when it finishes, renames that over ``<out>`` (atomic on one file system), so an earlier
trajectory survives a run that fails. The rules, checked before anything runs:

* ``--out`` is never the scenario file, a directory, or in a missing or read-only folder;
* an existing ``<out>`` is replaced only with ``--force``; a leftover ``<out>.partial``
  (a run that was stopped) only with ``--force`` too, or it is continued with
  ``--resume``;
* a run that stops early (interrupted, failed) leaves its trajectory in ``<out>`` when
  there was none before, else in ``<out>.partial`` beside the earlier one;
* ``--resume`` continues from ``<out>.partial`` if it exists, else from an unfinished
  ``<out>``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gridcosim.scenarios.errors import InputError

PARTIAL_SUFFIX = ".partial"
#: A partial trajectory moved aside while a resumed run copies it (removed after).
OLD_SUFFIX = ".old"


class OutputPathError(InputError):
    """The output path cannot be used as asked (reported with exit code 2)."""


@dataclass(frozen=True)
class OutputPlan:
    """The files of one run.

    Attributes:
        out: The trajectory file the user asked for.
        partial: Where the run writes until it ends (``<out>.partial``).
        source: The file a resumed run continues from (``None``: a fresh run).

    """

    out: Path
    partial: Path
    source: Path | None = None

    @property
    def moved_aside(self) -> Path:
        """Where a partial trajectory waits while a resumed run copies it."""
        return self.partial.with_name(self.partial.name + OLD_SUFFIX)


def partial_path(out: Path) -> Path:
    """``<out>.partial``."""
    return out.with_name(out.name + PARTIAL_SUFFIX)


def plan_output(out: str | Path, *, scenario_file: Path | None = None, force: bool = False,
                resume: bool = False) -> OutputPlan:
    """Check ``out`` against the rules above and say which files the run uses.

    Raises:
        OutputPathError: If the rules forbid the run (message says which and what to do).

    """
    out = Path(out)
    _check_folder(out)
    if scenario_file is not None and _same_file(out, scenario_file):
        raise OutputPathError(f"--out {out}: that is the scenario file; choose another name")
    if out.is_dir():
        raise OutputPathError(f"--out {out}: is a directory; give a file name")
    partial = partial_path(out)
    plan = OutputPlan(out, partial)
    if resume:
        return OutputPlan(out, partial, _resume_source(plan))
    if partial.exists() and not force:
        raise OutputPathError(
            f"--out {out}: a stopped run left {partial}; continue it with --resume, or "
            f"discard it with --force")
    if out.exists() and not force:
        raise OutputPathError(f"--out {out}: the file exists; replace it with --force "
                              f"(or choose another name)")
    return plan


def _check_folder(out: Path) -> None:
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise OutputPathError(f"--out {out}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(f"--out {out}: the folder {folder} is not writable")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return a.resolve() == b.resolve()


def _resume_source(plan: OutputPlan) -> Path:
    for candidate in (plan.moved_aside, plan.partial, plan.out):
        if candidate.is_file():
            return candidate
    raise OutputPathError(f"--resume: neither {plan.partial} nor {plan.out} exists; "
                          f"there is no stopped run to continue")


def settle(plan: OutputPlan, finished: bool) -> Path:
    """Put the run's file where it belongs when the run ends; return where it is.

    A finished run replaces ``out``. A run that stopped early takes ``out`` only if there
    is none (an earlier trajectory is never replaced by an unfinished one).
    """
    if finished or not plan.out.exists():
        os.replace(plan.partial, plan.out)
        return plan.out
    return plan.partial
