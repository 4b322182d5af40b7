"""Python's cyclic garbage collector paused while a large optimisation model is built.

Building a Pyomo model allocates millions of objects (variables, constraints, expression
nodes) that all stay alive. Each allocation burst makes the cyclic collector run, and
every run of its oldest generation walks every live object, so a build slows down with
the size of what is already built. On the scale case (1,317 buses, 24 slots, 100
microgrids; 2026-12-02, each build timed twice in one process) the master's Pyomo build
took 3.6 s and 2.5 s with the collector and 1.05–1.2 s without it, the microgrids' models
2.7–3.1 s and 1.6–2.0 s; ``python benchmarks/bench_scale.py``'s master column went from
4.9 s to 3.0–3.2 s with this and the faster compile. Reference counting still frees
everything the build drops; only reference cycles wait until the collector runs again,
after the build.
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
