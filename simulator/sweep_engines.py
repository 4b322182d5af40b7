"""Where a sweep's runs run: in this process, a local process pool, or a dask cluster.

Each engine hands :func:`~gridcosim.simulator.sweep_run.run_one` its runs' specs and yields
their summary rows as they finish. The local pool lives for the sweep; on Linux its workers
are forked from this process, which has imported the code, so they start at once (spawned
elsewhere). A run whose worker gives no row (it died, or the cluster lost it) is a
``failed`` row with the reason. When the sweep is interrupted, the pool's running runs are
stopped (their files marked ``interrupted``, resumed by the next sweep) and a dask
cluster's pending runs are cancelled.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from enum import StrEnum
from typing import Any

from gridcosim.scenarios.errors import InputError
from gridcosim.simulator import sweep_run
from gridcosim.simulator.sweep_run import RunSpec, failed_row

#: The summary rows of runs, as they finish.
RowSource = Iterator[dict[str, Any]]
#: Seconds to wait for a dask scheduler to answer.
CONNECT_TIMEOUT_S = 10.0


class Engine(StrEnum):
    """Where the runs of a sweep run."""

    IN_PROCESS = "in-process"
    PROCESS_POOL = "process-pool"
    DASK = "dask"


def pool_start_method() -> str:
    """``fork`` on Linux (workers inherit the imported code), else ``spawn``."""
    return "fork" if sys.platform.startswith("linux") else "spawn"


class InProcess:
    """The runs one after the other in this process."""

    kind = Engine.IN_PROCESS

    def __enter__(self) -> InProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def rows(self, specs: Sequence[RunSpec]) -> RowSource:
        """Run each spec in turn (lazily: a run starts when its row is asked for)."""
        return (sweep_run.run_one(spec) for spec in specs)


class ProcessPool:
    """A local process pool of ``workers`` processes, started at the first run."""

    kind = Engine.PROCESS_POOL

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> ProcessPool:
        return self

    def __exit__(self, kind: type | None, *exc: object) -> None:
        if self.pool is None:
            return
        if kind is not None:  # interrupted, or the sweep failed: stop the running runs
            for proc in list(getattr(self.pool, "_processes", {}).values()):
                proc.terminate()  # SIGTERM: the worker's run stops, its file says so
        self.pool.shutdown(wait=True, cancel_futures=True)

    def rows(self, specs: Sequence[RunSpec]) -> RowSource:
        """Submit every spec now (the workers start here), yield rows as runs finish."""
        if not specs:
            return iter(())
        context = mp.get_context(pool_start_method())
        self.pool = ProcessPoolExecutor(min(self.workers, len(specs)), mp_context=context,
                                        initializer=sweep_run.init_pool_worker)
        futures = {self.pool.submit(sweep_run.run_one, spec): spec for spec in specs}
        return _finished(as_completed(futures), futures)


class DaskCluster:
    """A dask.distributed cluster: a given ``Client``, or one connected to ``scheduler``."""

    kind = Engine.DASK

    def __init__(self, client: Any = None, scheduler: str | None = None) -> None:
        self.client, self.scheduler = client, scheduler
        self.futures: list[Any] = []
        self._own = client is None

    def __enter__(self) -> DaskCluster:
        return self

    def __exit__(self, kind: type | None, *exc: object) -> None:
        if kind is not None and self.futures:
            self.client.cancel(self.futures)
        if self._own and self.client is not None:
            self.client.close()

    def rows(self, specs: Sequence[RunSpec]) -> RowSource:
        """Submit every spec to the cluster, yield rows as runs finish."""
        if not specs:
            return iter(())
        from distributed import as_completed as dask_completed

        client = self.client or self._connect()
        futures = {client.submit(sweep_run.run_one, spec, pure=False, retries=0): spec
                   for spec in specs}
        self.futures = list(futures)
        return _finished(dask_completed(self.futures), futures)

    def _connect(self) -> Any:
        from distributed import Client

        try:
            self.client = Client(self.scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, ValueError) as err:
            raise InputError(f"--scheduler {self.scheduler}: cannot connect ({err})") from None
        return self.client


def _finished(done: Iterable[Future[Any] | Any], specs: dict[Any, RunSpec]) -> RowSource:
    """Each finished future's row; a failed row for a future that raised."""
    for future in done:
        error = future.exception()
        if error is None:
            yield future.result()
        else:
            yield failed_row(specs[future], f"the worker gave no row: "
                                            f"{type(error).__name__}: {error}")


Engines = InProcess | ProcessPool | DaskCluster


def make_engine(workers: int = 1, client: Any = None, scheduler: str | None = None
                ) -> Engines:
    """The engine for these options: dask with a client or scheduler, else local.

    Raises:
        InputError: For fewer than one worker, or workers together with a cluster.

    """
    if workers < 1:
        raise InputError(f"--workers {workers}: must be at least 1")
    if client is not None or scheduler is not None:
        if workers != 1:
            raise InputError(f"--workers {workers}: the cluster's workers run the runs; "
                             f"give --workers only for a local pool")
        return DaskCluster(client, scheduler)
    return ProcessPool(workers) if workers > 1 else InProcess()
