"""The graph of kernels: which kernel must run before which."""
from __future__ import annotations

import heapq


class KernelGraph:
    """Which kernel reads what another computes: an edge ``a -> b`` when
    kernel ``b`` needs kernel ``a`` first.  One node per kernel, so a few
    dicts do; networkx did this before and cost ~90 ms of ``import
    tracejit`` for a reachability test and a topological sort."""

    def __init__(self):
        self.succ: dict[int, set[int]] = {}

    def add_node(self, n: int) -> None:
        self.succ.setdefault(n, set())

    def add_edge(self, a: int, b: int) -> None:
        self.add_node(b)
        self.succ.setdefault(a, set()).add(b)

    def has_path(self, a: int, b: int) -> bool:
        seen, stack = {a}, [a]
        while stack:
            n = stack.pop()
            if n == b:
                return True
            fresh = self.succ[n] - seen
            seen |= fresh
            stack += fresh
        return False

    def descendants(self, a: int) -> set[int]:
        """Every kernel reachable from ``a`` (``a`` included): one walk
        answers ``has_path(a, b)`` for every ``b``."""
        seen, stack = {a}, [a]
        while stack:
            fresh = self.succ[stack.pop()] - seen
            seen |= fresh
            stack += fresh
        return seen

    def order(self) -> list[int]:
        """A topological order, the smallest ready kernel id first: kernels
        run in creation order wherever their dependencies allow."""
        preds = {n: 0 for n in self.succ}
        for n in self.succ:
            for m in self.succ[n]:
                preds[m] += 1
        ready = [n for n, k in preds.items() if k == 0]
        heapq.heapify(ready)
        out = []
        while ready:
            n = heapq.heappop(ready)
            out.append(n)
            for m in self.succ[n]:
                preds[m] -= 1
                if preds[m] == 0:
                    heapq.heappush(ready, m)
        if len(out) != len(preds):
            raise AssertionError("kernel graph has a cycle")
        return out
