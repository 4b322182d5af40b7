"""Error hierarchy of gridcosim.

Every error the library raises on purpose derives from :class:`GridcosimError`, so a
caller (the CLI in particular) can tell a diagnosed problem from a bug.
"""

from __future__ import annotations


class GridcosimError(Exception):
    """Base class of every error gridcosim raises on purpose."""


class ScenarioError(GridcosimError):
    """A scenario is malformed; ``problems`` lists one message per offending field.

    Args:
        problems: Human-readable messages, each naming a field path and the bad value.

    """

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class SolverError(GridcosimError):
    """A solver returned something other than an optimal or infeasible status."""


class PowerFlowError(GridcosimError):
    """An AC power flow failed in a way that cannot be recorded as a status."""


class OutputError(GridcosimError):
    """An output file cannot be written (write error, disk full, file size limit).

    The run stops; whatever was flushed before stays readable in the file.
    """


class InputError(GridcosimError, ValueError):
    """An input the user gave cannot be used: run options, output paths, input files.

    Reported by the command line with exit code 2, like a :class:`ScenarioError`.
    """
