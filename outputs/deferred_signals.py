"""Ctrl-C and SIGTERM held back while a window is written, delivered right after.

Python raises ``KeyboardInterrupt`` at whatever bytecode the signal arrives. Inside the
trajectory writer's flush that left a window half on disk: its slots written, its
convergence row still buffered and then dropped with the unfinished window
(``tests/test_hdf5.py``). The flush runs inside :func:`signals_deferred`.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM inside the block; deliver them, in order, after it.

    Python raises ``KeyboardInterrupt`` at whatever bytecode the signal arrives; inside a
    flush that would leave the writer's counts behind the data it wrote. Only the main
    thread can set handlers: elsewhere the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    saved = {sig: handler for sig, handler in saved.items() if handler is not None}
    for sig in saved:  # (None: a handler not set from Python, which cannot be restored)
        signal.signal(sig, lambda signum, _frame: held.append(signum))
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        for sig in held:
            signal.raise_signal(sig)
