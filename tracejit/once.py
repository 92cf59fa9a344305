"""Build each cache entry once, however many threads ask at the same time.

Several threads making the first call of one jitted function with one
signature must not each trace and compile it: the first builds, the others
wait on that key's lock and then find the entry built.  Different keys have
different locks, so different signatures still build concurrently (tracing
keeps its state per thread).  The one lock shared by all keys is held only
to find or create a key's lock, never while building.

A build that raises stores nothing and releases the key's lock; each
waiting thread then builds for itself (and, for a deterministic failure,
raises the same error with its own traceback).  Lookups of entries that
exist take no lock: a dict read is atomic under the GIL.
"""
from __future__ import annotations

import threading


class OncePerKey:
    """Per-key locks for building the values of one or more dicts."""

    def __init__(self):
        self._guard = threading.Lock()
        # reentrant: a build may build another table's entry of the same key
        # (compiling traces first), and a recursive first call fails with a
        # RecursionError instead of deadlocking
        self._locks: dict = {}

    def key_lock(self, key) -> threading.RLock:
        with self._guard:
            lock = self._locks.get(key)
            if lock is None:
                lock = self._locks[key] = threading.RLock()
            return lock

    def get_or_build(self, table: dict, key, build):
        """(value, built) with ``value = table[key]``, calling ``build()``
        and storing its result if no thread has; ``built`` tells whether
        this call did."""
        value = table.get(key)
        if value is not None:
            return value, False
        with self.key_lock(key):
            value = table.get(key)
            if value is not None:
                return value, False
            value = build()
            table[key] = value
            return value, True

    def add(self, stats: dict, name: str) -> None:
        """Count one event exactly, even against threads building other
        keys (hits are counted without a lock, on the fast path)."""
        with self._guard:
            stats[name] += 1
