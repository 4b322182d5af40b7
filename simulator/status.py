"""Statuses of runs and windows, and the command line's exit codes.

A status is only what was verified: a run is ``finished`` when every slot was executed
and recorded; a window is ``optimal`` when the decomposition certified it. Degraded
outcomes that still let a run finish (a window stopped at a cap with its best runnable
schedule, AC power flows that did not converge) are counted and reported with their own
exit code.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class RunStatus(StrEnum):
    """What became of a co-simulation run (root attribute ``status`` of its file)."""

    RUNNING = "running"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"
    FAILED = "failed"


class WindowStatus(StrEnum):
    """The outcome of one coordinated window (column ``status`` of ``/convergence``)."""

    OPTIMAL = "optimal"
    NOT_CONVERGED = "not_converged"
    INFEASIBLE = "infeasible"
    MASTER_FAILED = "master_failed"  # the master solve stopped without a proposal
    PRICES_NOT_SETTLED = "prices_not_settled"  # a market day's clearing is network-feasible,
    #                                            but the aggregator's prices still moved
    POWER_FLOW_FAILED = "power_flow_failed"  # the DSO could not check a market clearing


class ExitCode(IntEnum):
    """Exit codes of the ``gridcosim`` command (documented in the README).

    Attributes:
        OK: Finished; every window optimal; every AC power flow converged.
        ERROR: An unexpected internal error (a bug); a run's file is marked ``failed``.
        INVALID_INPUT: Invalid scenario file, options or input file; nothing was run.
        FAILED: The run or solve stopped on a window it could not solve (infeasible,
            solver failure, a microgrid worker that died); the file says which and why.
        DEGRADED: Finished, but some window stopped at its iteration or time cap with its
            best runnable schedule, or some AC power flow did not converge.
        OUTPUT_ERROR: The output could not be written (write error, disk full, file size
            limit); every window flushed before it stays readable.
        INTERRUPTED: Stopped by Ctrl-C or SIGTERM (128 + SIGINT, the shell's convention);
            the file is marked ``interrupted`` and ``--resume`` continues it.

    """

    OK = 0
    ERROR = 1
    INVALID_INPUT = 2
    FAILED = 3
    DEGRADED = 4
    OUTPUT_ERROR = 5
    INTERRUPTED = 130
