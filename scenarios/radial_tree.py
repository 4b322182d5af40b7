"""Walks of a radial feeder, shared by the balanced and the three-phase network data."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping


def breadth_first(root: int, children: Mapping[int, tuple[int, ...]]) -> tuple[int, ...]:
    """Bus ids in breadth-first order from ``root`` (parents before children)."""
    order, queue = [], deque([root])
    while queue:
        bus = queue.popleft()
        order.append(bus)
        queue.extend(children.get(bus, ()))
    return tuple(order)


def path_to_root(bus: int, root: int, parent: Mapping[int, int], n_buses: int
                 ) -> tuple[int, ...]:
    """``(bus, parent(bus), ..., root)``; ``ValueError`` if the walk does not reach the root."""
    path = [bus]
    while path[-1] != root:
        path.append(parent[path[-1]])
        if len(path) > n_buses:
            raise ValueError(f"no path from bus {bus} to the root")
    return tuple(path)
