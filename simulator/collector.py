"""Python's cyclic garbage collector paused while a large optimisation model is built.

Building a Pyomo model allocates millions of objects (variables, constraints, expression
nodes) that all stay alive. Each allocation burst makes the cyclic collector run, and
every run of its oldest generation walks every live object, so a build slows down with
the size of what is already built: the scale case's master (1,317 buses, 24 slots) takes
3.6 s to build with the collector and 1.05 s without it, its 100 microgrids' models 2.7 s
and 1.6 s (measured on 2026-12-02, ``python benchmarks/bench_scale.py``). Reference
counting still frees everything the build drops; only reference cycles wait until the
collector runs again, after the build.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector inside the block (nested blocks: the outermost)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
