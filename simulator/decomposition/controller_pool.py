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
import signal
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any, Protocol

from gridcosim.scenarios.errors import SolverError
from gridcosim.simulator.decomposition.controller_responder import MicrogridResponder
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

    def load(self, windows: Sequence[MicrogridWindow]) -> None:
        """Start a new window with new private data."""


class ControllerGroup:
    """Some microgrids' responders, answering every :class:`ResponderPool` call."""

    def __init__(self, windows: Sequence[MicrogridWindow], settings: DecompositionSettings):
        self.settings = settings
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

    def load(self, windows: Sequence[MicrogridWindow]) -> None:
        """Move every responder to its new window (rebuilt if its models do not fit)."""
        self.responders = {w.spec.name: self._reloaded(w) for w in windows}

    def _reloaded(self, window: MicrogridWindow) -> MicrogridResponder:
        old = self.responders.get(window.spec.name)
        if old is not None and old.reload(window):
            return old
        return MicrogridResponder(window, self.settings)


class LocalPool(ControllerGroup):
    """All controllers in this process (``workers=1``)."""

    def close(self) -> None:
        """Nothing to release."""


#: The calls a worker answers (the methods of :class:`ResponderPool`).
CALLS = frozenset({"bounds", "respond", "price_responses", "initial_cuts", "warm_start_cuts",
                   "schedules", "load"})


def _serve(conn: Connection, windows: list[MicrogridWindow],
           settings: DecompositionSettings) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
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


class ProcessPool:
    """Controllers spread over ``workers`` processes, each owning a fixed set of microgrids."""

    def __init__(self, windows: Sequence[MicrogridWindow], settings: DecompositionSettings,
                 workers: int):
        ctx = mp.get_context("spawn")
        groups = [g for g in (list(windows[k::workers]) for k in range(workers)) if g]
        self._order = {w.spec.name: k for k, w in enumerate(windows)}
        self._owner: dict[str, int] = {}
        self._conns: list[Connection] = []
        self._procs = []
        for k, group in enumerate(groups):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(child, group, settings), daemon=True)
            proc.start()
            self._conns.append(parent)
            self._procs.append(proc)
            self._owner.update({w.spec.name: k for w in group})
        for k in range(len(self._conns)):
            self._receive(k)

    # ---------------------------------------------------------------- the calls
    def bounds(self) -> list[ExchangeBounds]:
        """The bounds every controller publishes."""
        return self._gather("bounds")

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
        """The unit schedule of each award, in the same order."""
        return self._scatter("schedules", awards, lambda a: a.mg)

    def load(self, windows: Sequence[MicrogridWindow]) -> None:
        """Each worker re-loads the models of the microgrids it owns."""
        self._scatter("load", windows, lambda w: w.spec.name)

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
        split: list[list[int]] = [[] for _ in self._conns]
        for i, item in enumerate(items):
            split[self._owner[mg_of(item)]].append(i)
        parts = self._broadcast([(call, ([items[i] for i in s], *extra)) for s in split])
        out: list[Any] = [None] * len(items)
        for s, part in zip(split, parts, strict=True):
            for i, answer in zip(s, part or [None] * len(s), strict=True):
                out[i] = answer
        return out

    def _gather(self, call: str, *args: Any) -> list[Any]:
        """Ask every worker; the answers merged in scenario order of their microgrids."""
        parts = self._broadcast([(call, args)] * len(self._conns))
        return sorted((m for part in parts for m in part), key=lambda m: self._order[m.mg])

    def _broadcast(self, messages: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        for k, message in enumerate(messages):
            try:
                self._conns[k].send(message)
            except OSError:  # BrokenPipeError: the worker is gone
                raise self._died(k) from None
        return [self._receive(k) for k in range(len(self._conns))]

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


def make_pool(windows: Sequence[MicrogridWindow], settings: DecompositionSettings
              ) -> LocalPool | ProcessPool:
    """A :class:`LocalPool` for one worker, else a :class:`ProcessPool`."""
    if settings.workers <= 1:
        return LocalPool(windows, settings)
    return ProcessPool(windows, settings, settings.workers)
