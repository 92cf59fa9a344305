"""Running one kernel on several threads.

A kernel's entry takes the range ``[lo, hi)`` of its split axis (the
outermost kept axis), so disjoint ranges write disjoint outputs and may run
at the same time.  ctypes releases the GIL during the native call, so plain
Python threads run the pieces in parallel.  Small kernels run on the calling
thread: a thread hand-off costs more than it saves below about 32K points.
TRACEJIT_NUM_THREADS sets the number of threads (default: all cores).
Library calls (GEMM) run on the calling thread with BLAS's own threads, never
at the same time as kernel threads, so the two never oversubscribe the cores.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

MIN_POINTS_PER_THREAD = 1 << 15


def num_threads() -> int:
    value = os.environ.get("TRACEJIT_NUM_THREADS")
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise ValueError(f"TRACEJIT_NUM_THREADS={value!r} is not an "
                             "integer") from None
    return os.cpu_count() or 1


class Pool:
    """A lazily started pool shared by every executable of the process."""

    _executor: ThreadPoolExecutor | None = None
    _size = 0

    @classmethod
    def executor(cls, size: int) -> ThreadPoolExecutor:
        if cls._executor is None or cls._size < size:
            cls._executor = ThreadPoolExecutor(
                max_workers=size, thread_name_prefix="tracejit")
            cls._size = size
        return cls._executor


def chunks(extent: int, points: int, threads: int) -> list[tuple[int, int]]:
    """Split ``range(extent)`` (of a kernel with ``points`` iteration
    points) into at most ``threads`` contiguous pieces worth running."""
    pieces = min(threads, extent, max(1, points // MIN_POINTS_PER_THREAD))
    if pieces <= 1:
        return [(0, extent)]
    bounds = [extent * k // pieces for k in range(pieces + 1)]
    return [(bounds[k], bounds[k + 1]) for k in range(pieces)]


def run_split(fn, args: tuple, ranges) -> None:
    """Call ``fn(*args, lo, hi)`` on every range; all but the last on pool
    threads."""
    if len(ranges) == 1:
        lo, hi = ranges[0]
        fn(*args, lo, hi)
        return
    pool = Pool.executor(len(ranges) - 1)
    futures = [pool.submit(fn, *args, lo, hi) for lo, hi in ranges[:-1]]
    lo, hi = ranges[-1]
    fn(*args, lo, hi)
    for f in futures:
        f.result()
