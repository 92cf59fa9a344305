"""A recycling pool for the large blocks a call allocates.

Why: a fresh large numpy array is fresh memory from the operating system,
and the kernel zeroes every page on first touch.  For a 64 MiB output that
costs about as much as writing the output itself, so a kernel at the memory
bandwidth floor would run at half speed.  CuPy and PyTorch keep a caching
allocator for the same reason; this is the CPU version of that idea.

How: every output and temporary arena of at least ``MIN_POOLED_BYTES`` is a
view of a block the pool owns.  The pool keeps one reference to each block;
any array handed out keeps another (numpy views point at the block as their
``base``).  When the caller has dropped every array over a block, its
reference count is back to the pool's own, and the next call of that size
reuses the block: the pages are already mapped, nothing is zeroed.  A block
still referenced anywhere is never handed out twice.

The pool holds at most TRACEJIT_POOL_BYTES (default 1 GiB; 0 turns pooling
off); past that, blocks are allocated as usual and freed by numpy.
``clear()`` returns the idle blocks' memory.
"""
from __future__ import annotations

import os
import sys
import threading

import numpy as np

MIN_POOLED_BYTES = 1 << 20      # smaller arrays come from malloc's free lists
DEFAULT_LIMIT = 1 << 30


def _limit_from_env() -> int:
    value = os.environ.get("TRACEJIT_POOL_BYTES")
    if not value:
        return DEFAULT_LIMIT
    try:
        return max(0, int(value))
    except ValueError:
        raise ValueError(f"TRACEJIT_POOL_BYTES={value!r} is not an integer "
                         "number of bytes") from None


class BlockPool:
    """Blocks of uint8 by size; a block is free when only the pool holds
    it."""

    # references to a free block seen inside ``take``: the pool's list,
    # the loop variable and getrefcount's own argument
    _FREE_REFS = 3

    def __init__(self, limit: int | None = None):
        self.limit = _limit_from_env() if limit is None else limit
        self.held = 0
        self._blocks: dict[int, list[np.ndarray]] = {}
        self._lock = threading.Lock()
        self.reused = 0

    def take(self, nbytes: int) -> np.ndarray:
        """A uint8 block of ``nbytes`` that nobody else references."""
        if nbytes < MIN_POOLED_BYTES or self.limit == 0:
            return np.empty(nbytes, np.uint8)
        with self._lock:
            same_size = self._blocks.setdefault(nbytes, [])
            for block in same_size:
                if sys.getrefcount(block) == self._FREE_REFS:
                    self.reused += 1
                    return block
            block = np.empty(nbytes, np.uint8)
            if self.held + nbytes <= self.limit:
                same_size.append(block)
                self.held += nbytes
            return block

    def array(self, shape, dtype: np.dtype) -> np.ndarray:
        """An uninitialized C-contiguous array of ``shape`` and ``dtype``."""
        nbytes = int(np.prod(shape)) * dtype.itemsize
        if nbytes < MIN_POOLED_BYTES or self.limit == 0:
            return np.empty(shape, dtype)
        return self.take(nbytes).view(dtype).reshape(shape)

    def clear(self) -> None:
        """Forget every block (memory of blocks in use stays with their
        arrays and is freed with them)."""
        with self._lock:
            self._blocks.clear()
            self.held = 0


POOL = BlockPool()
