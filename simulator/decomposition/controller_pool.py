"""Where the microgrid controllers' subproblems run: in-process or in worker processes.

:class:`ControllerGroup` is a set of controllers' responders and answers every call of
:class:`ResponderPool`, the DSO loop's view of the controllers. :class:`LocalPool` is one
group in this process; :class:`ProcessPool` spreads the microgrids over worker processes,
each holding a group for the whole run (its models are built in the worker, HiGHS with
one thread each), and sends each call to the workers that own the microgrids concerned.
Both pools give the same answers in the same order.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any, Protocol

from gridcosim.scenarios.errors import SolverError
from gridcosim.simulator.collector import collector_paused
from gridcosim.simulator.decomposition.controller_responder import MicrogridResponder
from gridcosim.simulator.decomposition.controller_warm_start import ControllerWarmStart
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.simulator.messages import (
    Accept,
    ExchangeBounds,
    ExchangeProposal,
    Infeasible,
    PriceResponse,
    PriceSignal,
    Reply,
    ScheduleAward,
    UnifiedCut,
)
from gridcosim.simulator.models.microgrid_model import MicrogridWindow
from gridcosim.simulator.schedule import MicrogridSchedule
from gridcosim.simulator.windows import published_bounds


class ResponderPool(Protocol):
    """What the DSO's loop (and, for ``schedules``, the controllers' agents) may call."""

    def bounds(self) -> list[ExchangeBounds]:
        """The bounds every controller publishes."""

    def respond(self, proposals: Sequence[ExchangeProposal], eps: float) -> list[Reply]:
        """One reply per proposal, in the same order."""

    def price_responses(self, signals: Sequence[PriceSignal]
                        ) -> list[PriceResponse | Infeasible]:
        """One answer per price signal, in the same order."""

    def initial_cuts(self, warm_start: bool = True) -> list[UnifiedCut | Accept | Infeasible]:
        """Each controller's runnable starting point and (optionally) warm-start cuts."""

    def warm_start_cuts(self) -> list[UnifiedCut]:
        """Each controller's probe cuts around its starting point."""

    def schedules(self, awards: Sequence[ScheduleAward]) -> list[MicrogridSchedule]:
        """The unit schedule of each award, in the same order (the controllers' side)."""

    def load(self, windows: Sequence[MicrogridWindow],
             warm: Sequence[ControllerWarmStart] | None = None) -> None:
        """Start a new window with new private data.

        Each controller's LPs start from its last window's bases (or those of ``warm``,
        e.g. from a checkpoint), moved on to the new window's first slot.
        """

    def warm_starts(self) -> list[ControllerWarmStart]:
        """Each controller's bases now: where its next window starts (for a checkpoint)."""


class ControllerGroup:
    """Some microgrids' responders, answering every :class:`ResponderPool` call."""

    def __init__(self, windows: Sequence[MicrogridWindow], settings: DecompositionSettings):
        self.settings = settings
        with collector_paused():  # large model builds (simulator/collector.py)
            self.responders = {w.spec.name: MicrogridResponder(w, settings) for w in windows}

    def bounds(self) -> list[ExchangeBounds]:
        """The bounds every controller publishes."""
        return [r.bounds() for r in self.responders.values()]

    def respond(self, proposals: Sequence[ExchangeProposal], eps: float) -> list[Reply]:
        """One reply per proposal, in the same order."""
        return [self.responders[p.mg].respond(p, eps) for p in proposals]

    def price_responses(self, signals: Sequence[PriceSignal]
                        ) -> list[PriceResponse | Infeasible]:
        """One answer per price signal, in the same order."""
        return [self.responders[s.mg].respond_to_price(s) for s in signals]

    def initial_cuts(self, warm_start: bool = True) -> list[UnifiedCut | Accept | Infeasible]:
        """Each controller's runnable starting point and (optionally) warm-start cuts."""
        return [c for r in self.responders.values() for c in r.initial_cuts(warm_start)]

    def warm_start_cuts(self) -> list[UnifiedCut]:
        """Each controller's probe cuts around its starting point."""
        return [c for r in self.responders.values() for c in r.warm_start_cuts()]

    def schedules(self, awards: Sequence[ScheduleAward]) -> list[MicrogridSchedule]:
        """The unit schedule of each award, in the same order."""
        return [self.responders[a.mg].schedule(a.key, a.q_kvar) for a in awards]

    def load(self, windows: Sequence[MicrogridWindow],
             warm: Sequence[ControllerWarmStart] | None = None) -> None:
        """Move every responder to its new window (rebuilt if its models do not fit)."""
        given = {w.mg: w for w in warm or ()}
        self.responders = {w.spec.name: self._reloaded(w, given.get(w.spec.name))
                           for w in windows}

    def warm_starts(self) -> list[ControllerWarmStart]:
        """Each controller's bases now: where its next window starts (for a checkpoint)."""
        return [r.warm_start() for r in self.responders.values()]

    def schedules_and_starts(self, awards: Sequence[ScheduleAward]
                             ) -> tuple[list[MicrogridSchedule], list[ControllerWarmStart]]:
        """:meth:`schedules`, and then :meth:`warm_starts` (one round trip for a worker)."""
        return self.schedules(awards), self.warm_starts()

    def _reloaded(self, window: MicrogridWindow, warm: ControllerWarmStart | None
                  ) -> MicrogridResponder:
        old = self.responders.get(window.spec.name)
        if old is not None and old.reload(window, warm):
            return old
        with collector_paused():
            new = MicrogridResponder(window, self.settings)
        if warm is not None:  # a checkpoint's bases (a resumed run's first window)
            new.reload(window, warm)
        return new


class LocalPool(ControllerGroup):
    """All controllers in this process (``workers=1``)."""

    def close(self) -> None:
        """Nothing to release."""


#: The calls a worker answers (the methods of :class:`ResponderPool`).
CALLS = frozenset({"bounds", "respond", "price_responses", "initial_cuts", "warm_start_cuts",
                   "schedules", "load", "warm_starts", "schedules_and_starts"})


def _serve(conn: Connection, windows: list[MicrogridWindow],
           settings: DecompositionSettings, builders: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        with builders:  # a build slot (:func:`build_slots`)
            group = ControllerGroup(windows, settings)
        conn.send(("ok", None))
    except Exception:  # noqa: BLE001 - reported to the parent, which raises
        conn.send(("error", traceback.format_exc()))
        return
    while True:
        call, args = conn.recv()
        if call == "close":
            return
        try:
            if call not in CALLS:
                raise ValueError(f"unknown call {call!r}")
            conn.send(("ok", getattr(group, call)(*args)))
        except Exception:  # noqa: BLE001 - reported to the parent, which raises
            conn.send(("error", traceback.format_exc()))


def start_method() -> str:
    """``fork`` on Linux (workers inherit the imported code: they start at once), else spawn.

    Forking is safe here: every HiGHS instance of the project runs with one thread, so
    HiGHS's task scheduler has no worker threads to lose in the child, and the other
    threads a run holds (OpenBLAS, jemalloc) are idle pools that handle ``fork``. A forked
    worker ends with ``os._exit`` (multiprocessing), so it never closes the parent's
    files (the run's HDF5 file).
    """
    return "fork" if sys.platform.startswith("linux") else "spawn"


def build_slots(workers: int) -> int:
    """How many workers build their models at once: one core is left to this process.

    While the workers build, this process builds the DSO's models, which the first
    price round waits for: it is the start's critical path. With more builders than
    the other cores they share them with it and slow it down (on 2 cores with 2 workers
    the scale case's master build took 1.8 s instead of 0.9 s, 2026-12-02); taking
    turns, the workers' builds still end before it (they take half as long).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(workers, (cores or 1) - 1))


class ProcessPool:
    """Controllers spread over ``workers`` processes, each owning a fixed set of microgrids.

    The workers live for the whole run. They are started without waiting for them: each
    builds its models while this process goes on (the DSO builds its own), and the first
    call that needs a worker waits for it. What a controller publishes (its bounds) is a
    function of its window, which this process holds, so it is answered here; a new
    window is sent without waiting for its acknowledgement (read before the next answer,
    a failure raised there), and the controllers' warm starts come back with the window's
    schedules. A window then costs three round trips: price responses, replies and
    schedules.
    """

    def __init__(self, windows: Sequence[MicrogridWindow], settings: DecompositionSettings,
                 workers: int):
        ctx = mp.get_context(start_method())
        groups = [g for g in (list(windows[k::workers]) for k in range(workers)) if g]
        builders = ctx.BoundedSemaphore(build_slots(len(groups)))
        self._order = {w.spec.name: k for k, w in enumerate(windows)}
        self._windows = list(windows)
        self._owner: dict[str, int] = {}
        self._conns: list[Connection] = []
        self._procs = []
        for k, group in enumerate(groups):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(child, group, settings, builders),
                               daemon=True)
            proc.start()
            child.close()  # the worker's end: a dead worker then reads as EOF here
            self._conns.append(parent)
            self._procs.append(proc)
            self._owner.update({w.spec.name: k for w in group})
        self._pending = [1] * len(self._conns)  # replies owed before the next answer
        self._starts: list[ControllerWarmStart] | None = None  # from the last schedules

    # ---------------------------------------------------------------- the calls
    def bounds(self) -> list[ExchangeBounds]:
        """The bounds every controller publishes (of the windows loaded last)."""
        return [published_bounds(w) for w in self._windows]

    def respond(self, proposals: Sequence[ExchangeProposal], eps: float) -> list[Reply]:
        """One reply per proposal, in the same order."""
        return self._scatter("respond", proposals, lambda p: p.mg, eps)

    def price_responses(self, signals: Sequence[PriceSignal]
                        ) -> list[PriceResponse | Infeasible]:
        """One answer per price signal, in the same order."""
        return self._scatter("price_responses", signals, lambda s: s.mg)

    def initial_cuts(self, warm_start: bool = True) -> list[UnifiedCut | Accept | Infeasible]:
        """Each controller's runnable starting point and (optionally) warm-start cuts."""
        return self._gather("initial_cuts", warm_start)

    def warm_start_cuts(self) -> list[UnifiedCut]:
        """Each controller's probe cuts around its starting point."""
        return self._gather("warm_start_cuts")

    def schedules(self, awards: Sequence[ScheduleAward]) -> list[MicrogridSchedule]:
        """The unit schedule of each award, in the same order (warm starts kept)."""
        split = self._split(awards, lambda a: a.mg)
        parts = self._broadcast([("schedules_and_starts", ([awards[i] for i in s],))
                                 for s in split])
        starts = [w for _, warm in parts for w in warm]
        self._starts = sorted(starts, key=lambda w: self._order[w.mg])
        return self._merge(split, [schedules for schedules, _ in parts], len(awards))

    def load(self, windows: Sequence[MicrogridWindow],
             warm: Sequence[ControllerWarmStart] | None = None) -> None:
        """Each worker re-loads the models of the microgrids it owns (not waited for)."""
        self._starts = None
        split = self._split(windows, lambda w: w.spec.name)
        for k, s in enumerate(split):
            self._send(k, ("load", ([windows[i] for i in s], warm)))
            self._pending[k] += 1
        self._windows = list(windows)

    def warm_starts(self) -> list[ControllerWarmStart]:
        """Each controller's bases now, in scenario order."""
        return self._starts if self._starts is not None else self._gather("warm_starts")

    def close(self) -> None:
        """Stop the workers (those that are still alive)."""
        for conn in self._conns:
            try:
                conn.send(("close", ()))
            except OSError:
                pass
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()

    # ---------------------------------------------------------------- transport
    def _scatter(self, call: str, items: Sequence[Any], mg_of: Callable[[Any], str],
                 *extra: Any) -> list[Any]:
        """Send each item to its microgrid's worker; answers in the items' order."""
        split = self._split(items, mg_of)
        parts = self._broadcast([(call, ([items[i] for i in s], *extra)) for s in split])
        return self._merge(split, parts, len(items))

    def _split(self, items: Sequence[Any], mg_of: Callable[[Any], str]) -> list[list[int]]:
        """The positions of the items each worker owns."""
        split: list[list[int]] = [[] for _ in self._conns]
        for i, item in enumerate(items):
            split[self._owner[mg_of(item)]].append(i)
        return split

    @staticmethod
    def _merge(split: list[list[int]], parts: list[Any], n: int) -> list[Any]:
        out: list[Any] = [None] * n
        for s, part in zip(split, parts, strict=True):
            for i, answer in zip(s, part or [None] * len(s), strict=True):
                out[i] = answer
        return out

    def _gather(self, call: str, *args: Any) -> list[Any]:
        """Ask every worker; the answers merged in scenario order of their microgrids."""
        parts = self._broadcast([(call, args)] * len(self._conns))
        return sorted((m for part in parts for m in part), key=lambda m: self._order[m.mg])

    def _broadcast(self, messages: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        self._starts = None  # any call may move the controllers' bases
        for k, message in enumerate(messages):
            self._send(k, message)
        return [self._receive(k) for k in range(len(self._conns))]

    def _send(self, k: int, message: tuple[str, tuple[Any, ...]]) -> None:
        try:
            self._conns[k].send(message)
        except OSError:  # BrokenPipeError: the worker is gone
            raise self._died(k) from None

    def _receive(self, k: int) -> Any:
        while self._pending[k]:  # models built, windows loaded: acknowledged first
            self._pending[k] -= 1
            self._receive(k)
        try:
            status, payload = self._conns[k].recv()
        except (EOFError, OSError):
            raise self._died(k) from None
        if status == "error":
            raise SolverError(f"microgrid worker {k} failed:\n{payload}")
        return payload

    def _died(self, k: int) -> SolverError:
        proc = self._procs[k]
        proc.join(timeout=1)
        owned = sorted(mg for mg, owner in self._owner.items() if owner == k)
        return SolverError(f"microgrid worker {k} (pid {proc.pid}, microgrids "
                           f"{', '.join(owned)}) died with exit code {proc.exitcode}")


def make_pool(windows: Sequence[MicrogridWindow], settings: DecompositionSettings
              ) -> LocalPool | ProcessPool:
    """A :class:`LocalPool` for one worker, else a :class:`ProcessPool`."""
    if settings.workers <= 1:
        return LocalPool(windows, settings)
    return ProcessPool(windows, settings, settings.workers)
