"""Where the microgrid controllers' subproblems run: in-process or in worker processes.

Each worker process owns a fixed set of microgrids for the whole window and keeps their
persistent models between iterations; the models are built inside the worker (HiGHS with
one thread each). Both pools answer the same calls with the same results.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import traceback
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any, Protocol

from gridcosim.scenarios.errors import SolverError
from gridcosim.simulator.decomposition.controller_responder import MicrogridResponder, ResponseStats
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.simulator.messages import (
    Accept,
    ExchangeBounds,
    ExchangeProposal,
    PriceResponse,
    PriceSignal,
    Response,
    ScheduleAward,
    UnifiedCut,
)
from gridcosim.simulator.models.microgrid_model import MicrogridWindow
from gridcosim.simulator.schedule import MicrogridSchedule

Reply = tuple[Response, ResponseStats]


class ResponderPool(Protocol):
    """What the DSO's loop needs from the microgrid controllers."""

    def bounds(self) -> list[ExchangeBounds]:
        """The bounds every controller publishes."""

    def respond(self, proposals: Sequence[ExchangeProposal], eps: float) -> list[Reply]:
        """One reply per proposal, in the same order."""

    def schedules(self, awards: Sequence[ScheduleAward]) -> list[MicrogridSchedule]:
        """The unit schedule of each award, in the same order.

        This is the controllers' side: each microgrid controller turns its own award into
        its unit schedule (the DSO's loop never calls it).
        """

    def initial_cuts(self, warm_start: bool = True) -> list[UnifiedCut | Accept]:
        """Each controller's runnable starting point and (optionally) warm-start cuts."""

    def load(self, windows: Sequence[MicrogridWindow]) -> None:
        """Start a new window with new private data."""

    def price_responses(self, signals: Sequence[PriceSignal]) -> list[PriceResponse | None]:
        """One answer per price signal, in the same order (``None``: no schedule found)."""

    def warm_start_cuts(self) -> list[UnifiedCut]:
        """Each controller's probe cuts around its starting point (after initial_cuts)."""


class _Group:
    """A set of responders; the unit of work of one process."""

    def __init__(self, windows: Sequence[MicrogridWindow], settings: DecompositionSettings):
        self.settings = settings
        self.responders = {w.spec.name: MicrogridResponder(w, settings) for w in windows}

    def _reloaded(self, window: MicrogridWindow) -> MicrogridResponder:
        """The controller's responder moved to ``window`` (rebuilt if it does not fit)."""
        old = self.responders.get(window.spec.name)
        if old is not None and old.reload(window):
            return old
        return MicrogridResponder(window, self.settings)

    def handle(self, command: str, payload: Any) -> Any:
        if command == "load":
            self.responders = {w.spec.name: self._reloaded(w) for w in payload}
            return None
        if command == "bounds":
            return [r.bounds() for r in self.responders.values()]
        if command == "respond":
            proposals, eps = payload
            out = []
            for p in proposals:
                r = self.responders[p.mg]
                out.append((r.respond(p, eps), r.last_stats))
            return out
        if command == "warm_start_cuts":
            return [c for r in self.responders.values() for c in r.warm_start_cuts()]
        if command == "prices":
            return [self.responders[s.mg].respond_to_price(s) for s in payload]
        if command == "initial_cuts":
            return [c for r in self.responders.values() for c in r.initial_cuts(payload)]
        if command == "schedules":
            return [self.responders[a.mg].schedule(a.tag, a.q_kvar) for a in payload]
        raise ValueError(f"unknown command {command!r}")


class LocalPool:
    """All controllers in this process (``workers=1``)."""

    def __init__(self, windows: Sequence[MicrogridWindow], settings: DecompositionSettings):
        self._group = _Group(windows, settings)

    def bounds(self) -> list[ExchangeBounds]:
        """The bounds every controller publishes."""
        return self._group.handle("bounds", None)

    def respond(self, proposals: Sequence[ExchangeProposal], eps: float) -> list[Reply]:
        """One reply per proposal, in the same order."""
        return self._group.handle("respond", (list(proposals), eps))

    def schedules(self, awards: Sequence[ScheduleAward]) -> list[MicrogridSchedule]:
        """The unit schedule of each award, in the same order."""
        return self._group.handle("schedules", list(awards))

    def initial_cuts(self, warm_start: bool = True) -> list[UnifiedCut | Accept]:
        """Each controller's runnable starting point and (optionally) warm-start cuts."""
        return self._group.handle("initial_cuts", warm_start)

    def price_responses(self, signals: Sequence[PriceSignal]) -> list[PriceResponse | None]:
        """One answer per price signal, in the same order."""
        return self._group.handle("prices", list(signals))

    def warm_start_cuts(self) -> list[UnifiedCut]:
        """Each controller's probe cuts around its starting point."""
        return self._group.handle("warm_start_cuts", None)

    def load(self, windows: Sequence[MicrogridWindow]) -> None:
        """Start a new window: every controller re-loads its models with its new data."""
        self._group.handle("load", list(windows))

    def close(self) -> None:
        """Nothing to release."""


def _serve(conn: Connection, windows: list[MicrogridWindow],
           settings: DecompositionSettings) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        group = _Group(windows, settings)
        conn.send(("ok", None))
    except Exception:  # noqa: BLE001 - reported to the parent, which raises
        conn.send(("error", traceback.format_exc()))
        return
    while True:
        command, payload = conn.recv()
        if command == "close":
            return
        try:
            conn.send(("ok", group.handle(command, payload)))
        except Exception:  # noqa: BLE001 - reported to the parent, which raises
            conn.send(("error", traceback.format_exc()))


class ProcessPool:
    """Controllers spread over ``workers`` processes, each owning a fixed set of microgrids."""

    def __init__(self, windows: Sequence[MicrogridWindow], settings: DecompositionSettings,
                 workers: int):
        ctx = mp.get_context("spawn")
        groups = [list(windows[k::workers]) for k in range(workers)]
        self._order = [w.spec.name for w in windows]
        self._owner: dict[str, int] = {}
        self._conns: list[Connection] = []
        self._procs = []
        for k, group in enumerate(g for g in groups if g):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(child, group, settings), daemon=True)
            proc.start()
            self._conns.append(parent)
            self._procs.append(proc)
            self._owner.update({w.spec.name: k for w in group})
        for k in range(len(self._conns)):
            self._receive(k)

    def _receive(self, k: int) -> Any:
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

    def _broadcast(self, payloads: list[tuple[str, Any]]) -> list[Any]:
        for k, message in enumerate(payloads):
            try:
                self._conns[k].send(message)
            except OSError:  # BrokenPipeError: the worker is gone
                raise self._died(k) from None
        return [self._receive(k) for k in range(len(self._conns))]

    def bounds(self) -> list[ExchangeBounds]:
        """The bounds every controller publishes."""
        parts = self._broadcast([("bounds", None)] * len(self._conns))
        return self._in_order([b for part in parts for b in part])

    def respond(self, proposals: Sequence[ExchangeProposal], eps: float) -> list[Reply]:
        """One reply per proposal, in the same order."""
        split: list[list[ExchangeProposal]] = [[] for _ in self._conns]
        for p in proposals:
            split[self._owner[p.mg]].append(p)
        parts = self._broadcast([("respond", (s, eps)) for s in split])
        by_tag = {p.tag: reply for s, part in zip(split, parts, strict=True)
                  for p, reply in zip(s, part, strict=True)}
        return [by_tag[p.tag] for p in proposals]

    def schedules(self, awards: Sequence[ScheduleAward]) -> list[MicrogridSchedule]:
        """The unit schedule of each award, in the same order."""
        split: list[list[ScheduleAward]] = [[] for _ in self._conns]
        for a in awards:
            split[self._owner[a.mg]].append(a)
        parts = self._broadcast([("schedules", s) for s in split])
        by_mg = {s.name: s for part in parts for s in part}
        return [by_mg[a.mg] for a in awards]

    def initial_cuts(self, warm_start: bool = True) -> list[UnifiedCut | Accept]:
        """Each controller's runnable starting point and (optionally) warm-start cuts."""
        parts = self._broadcast([("initial_cuts", warm_start)] * len(self._conns))
        return self._in_order([c for part in parts for c in part])

    def price_responses(self, signals: Sequence[PriceSignal]) -> list[PriceResponse | None]:
        """One answer per price signal, in the same order."""
        split: list[list[PriceSignal]] = [[] for _ in self._conns]
        for s in signals:
            split[self._owner[s.mg]].append(s)
        parts = self._broadcast([("prices", s) for s in split])
        by_tag = {s.tag: r for s_, part in zip(split, parts, strict=True)
                  for s, r in zip(s_, part, strict=True)}
        return [by_tag[s.tag] for s in signals]

    def warm_start_cuts(self) -> list[UnifiedCut]:
        """Each controller's probe cuts around its starting point."""
        parts = self._broadcast([("warm_start_cuts", None)] * len(self._conns))
        return self._in_order([c for part in parts for c in part])

    def _in_order(self, messages: list[Any]) -> list[Any]:
        """Messages sorted by microgrid in scenario order (as a :class:`LocalPool` gives)."""
        rank = {mg: k for k, mg in enumerate(self._order)}
        return sorted(messages, key=lambda m: rank[m.mg])

    def load(self, windows: Sequence[MicrogridWindow]) -> None:
        """Start a new window: each worker re-loads the models of the microgrids it owns."""
        split: list[list[MicrogridWindow]] = [[] for _ in self._conns]
        for w in windows:
            split[self._owner[w.spec.name]].append(w)
        self._broadcast([("load", part) for part in split])

    def close(self) -> None:
        """Stop the workers (those that are still alive)."""
        for conn in self._conns:
            try:
                conn.send(("close", None))
            except OSError:
                pass
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()


def make_pool(windows: Sequence[MicrogridWindow], settings: DecompositionSettings
              ) -> LocalPool | ProcessPool:
    """A :class:`LocalPool` for one worker, else a :class:`ProcessPool`."""
    if settings.workers <= 1:
        return LocalPool(windows, settings)
    return ProcessPool(windows, settings, settings.workers)
