"""Microgrid-side branch tree (docs/formulation.md §3c), private to one controller.

Node 0 is the root (no fixings). Splitting a leaf on binary k creates two children, one
with the binary fixed to 0 and one with it fixed to 1. Only the node ids leave the
controller; what a node fixes stays here.
"""

from __future__ import annotations


class BranchTree:
    """Anonymous node ids mapped to the binary fixings they stand for."""

    def __init__(self) -> None:
        self._parent: dict[int, int | None] = {0: None}
        self._fix: dict[int, tuple[int, float]] = {}
        self._children: dict[int, tuple[int, int]] = {}

    @property
    def size(self) -> int:
        """Number of nodes, root included."""
        return len(self._parent)

    @property
    def leaves(self) -> list[int]:
        """Nodes without children."""
        return [n for n in self._parent if n not in self._children]

    def fixings(self, node: int) -> dict[int, float]:
        """Binary index -> fixed value along the path from the root to ``node``."""
        out: dict[int, float] = {}
        while node is not None and node != 0:
            k, value = self._fix[node]
            out.setdefault(k, value)
            node = self._parent[node]
        return out

    def split(self, leaf: int, k: int) -> tuple[int, int]:
        """Split ``leaf`` on binary ``k``; return the ids of the 0- and 1-child."""
        if leaf in self._children:
            raise ValueError(f"node {leaf} is not a leaf")
        if k in self.fixings(leaf):
            raise ValueError(f"binary {k} is already fixed at node {leaf}")
        c0, c1 = len(self._parent), len(self._parent) + 1
        for child, value in ((c0, 0.0), (c1, 1.0)):
            self._parent[child] = leaf
            self._fix[child] = (k, value)
        self._children[leaf] = (c0, c1)
        return c0, c1
