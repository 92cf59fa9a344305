"""How kernels with reduce axes are laid out on the GPU, and launched.

Why this module exists: reductions are memory-bound, so how threads map
onto the data decides their speed, and a float sum must give the same bits
on every run.  ``plan`` picks one layout per kernel from its description
alone, so the renderer (``rows``, which writes the C) and the launcher
(the executable, through ``launches``) agree without talking:

* ``block``: the reduce axes are the trailing ones (rows) and rows hold
  1024 points or more: one block per row.  Each stage loops over the row
  with a block-stride loop; partial results are combined with warp shuffles
  (``__shfl_xor_sync``), then the warps' results, through shared memory,
  by the same shuffle tree in every warp, so every thread holds the row's
  result to the bit (``reduced`` values and per-row ``after`` work need no
  broadcast).  Per-row stores are done by thread 0.  Blocks of up to
  ROW_MAX_THREADS, about ROW_POINTS points per thread (team.py keeps a
  thread's points in registers across stages when they fit).
* ``warp``: rows shorter than 1024: one warp per row, combined by
  shuffles alone (lane 0's result is then taken by every lane).  (A warp
  per row of a (8192, 8192) row sum took 0.102 ms on an H100, a block per
  row 0.097.)
* ``split_rows``: one stage and nothing stored in the row loop, few long
  rows (a full reduction is one row): pass 1 gives each block a chunk of a
  row and writes its combined result to a scratch array; pass 2
  (``<name>_finish``) gives each row a block that combines the row's chunks
  and does the per-row work.  No atomics: chunk bounds, the thread of each
  element and the combining order are fixed by the kernel, so the result
  is the same bits on every run.
* ``split_columns``: reduce axes that are not trailing (a sum over axis 0),
  one stage, nothing stored in the row loop: one thread per (chunk of the
  reduce axes, kept point), consecutive threads on consecutive kept points
  (coalesced; where they allow, a thread takes a group of 4 consecutive
  kept points with 16-byte loads), partials to scratch; pass 2 has one
  thread per kept point
  combine its chunks in order.  Chunks are added until about COLUMN_THREADS
  threads run, enough to keep HBM busy.
* ``columns``: the other kernels with reduce axes that are not trailing:
  one thread per kept point running every stage (coalesced along the
  innermost kept axis).

Row storage (``block`` and ``warp``): when a team has the planned size
and a thread's share fits its registers, team.py keeps the row scratch
(``local`` args) and copies of input rows that several stages load
(softmax's and layernorm's ``x``) in registers.  Otherwise they live in
dynamic shared memory, one slice per row in flight, when a
block's slices fit SHARED_BUDGET; a row is then read from HBM once.  A
copy read for the last time in the stage that writes a row scratch shares
the scratch's slot (softmax keeps one row, not two, so more blocks fit an
SM).  Where
the row scratch does not fit (rows of ~24K float32 and more), it lives in
global ``scratch`` memory instead, one row slot per team of the grid (the
launcher allocates blocks x slot bytes; blocks are then capped to what is
resident), and later stages re-read inputs through L2.  The ``columns``
layout keeps its row scratch in global scratch, interleaved so that
consecutive kept points are adjacent.

Launch contract: ``launches`` gives each function's grid, block and dynamic
shared memory, and the scratch bytes; every loop is grid-stride, so any
grid is correct, and any block of 1 thread or a multiple of 32 up to the
function's ``__launch_bounds__``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ...fusion.kernel import Kernel
from ...layout.indexing import IndexMap
from .render import BUFFER_CTYPES, CTYPES
from .vector import plan_groups

__all__ = ["Launch", "RowPlan", "launches", "plan"]

SHORT_ROW = 1024            # rows shorter than this get one warp each
WARP_BLOCK = 256            # threads per block of a warp layout (8 rows)
ROW_MAX_THREADS = 512       # threads per block of a block layout, at most
ROW_POINTS = 8              # ... and at least 128, about this many points
                            # per thread, or where later stages read a row
ROW_WORDS = 32              # again (team.py: registers), about this many
                            # 32-bit values of it per thread.  On an H100,
                            # (8192, 8192) softmax (2 values per point) took
                            # 0.191-0.197 ms with 512 threads, 0.200-0.210
                            # with 256; layernorm (1 value) 0.211-0.213 with
                            # 512, 0.202-0.207 with 256.
SHARED_BUDGET = 96 * 1024   # row storage per block (2 blocks fit an SM)
# The split sizes are the best of those timed on an H100 (see
# tests/test_cuda_rows.py --sweep): 1024 row chunks of 512 threads for a
# full sum, about 2**16 threads for a column sum.
SPLIT_MIN_ROW = 16384       # split rows only from this length on
SPLIT_BLOCKS = 1024         # split rows: aim at this many (row, chunk) blocks
SPLIT_CHUNK = 4096          # ... each chunk at least this many points
SPLIT_THREADS = 512         # threads per block of a split-rows pass 1
FINISH_THREADS = 256        # threads per block of a split-rows pass 2
COLUMN_BLOCK = 256          # threads per block of the column layouts
COLUMN_THREADS = 1 << 16    # split columns until about this many threads
                            # (a (8192, 8192) sum over axis 0 on an H100:
                            # 0.110 ms with 2**16, 0.115 with 2**17, 0.125
                            # with 2**18, threads of 4 columns each)
COLUMN_CHUNK = 64           # ... each chunk at least this many points
MAX_BLOCKS = 1 << 24        # grid cap (loops are grid-stride anyway)
THREADS_PER_SM = 2048       # resident threads per SM (sm_80 and later)
BLOCKS_PER_SM = 32          # column layouts: at most this many blocks per SM


@dataclass(frozen=True)
class Slot:
    """One array of a team's row storage: its C name, element type, byte
    offset into the storage and what it holds."""

    name: str
    ctype: str
    offset: int
    what: str


@dataclass(frozen=True)
class Cache:
    """A shared-memory copy of an input row: loads of ``arg`` at ``index``
    as ``dtype`` in stages after ``first`` read ``name[j]`` instead."""

    arg: int
    index: IndexMap
    dtype: str
    first: int
    name: str


@dataclass(frozen=True)
class RowPlan:
    """How one kernel with reduce axes is laid out (see the module doc)."""

    name: str
    kind: str                 # block, warp, split_rows, split_columns, columns
    threads: int              # threads per block of the first function
    points: int               # kept points (rows); 1 for a full reduction
    length: int               # points of the reduce axes (row length)
    chunks: int = 1           # split layouts: partials per kept point
    slots: tuple[Slot, ...] = ()
    caches: tuple[Cache, ...] = ()
    team_bytes: int = 0       # row storage bytes per row in flight
    in_shared: bool = True    # row storage in shared memory, else scratch
    width: int = 1            # split layouts: points per group (vector.py)
                              # of a row, or of kept points (columns)

    @property
    def functions(self) -> tuple[str, ...]:
        if self.kind.startswith("split"):
            return (self.name, self.name + "_finish")
        return (self.name,)

    @property
    def teams_per_block(self) -> int:
        return self.threads // 32 if self.kind == "warp" else 1

    @property
    def chunk(self) -> int:
        """Reduce points per chunk of a split layout (whole groups)."""
        width = self.width if self.kind == "split_rows" else 1
        groups = -(-self.length // width)
        return -(-groups // self.chunks) * width

    @property
    def uses_scratch(self) -> bool:
        """Whether the functions take a ``scratch`` pointer: partials of a
        split layout, or row storage kept in global memory."""
        if self.kind.startswith("split"):
            return True
        if self.kind == "columns":
            return bool(self.slots)
        return not self.in_shared and bool(self.slots)


@dataclass(frozen=True)
class Launch:
    """One function launch: grid blocks, threads per block, dynamic shared
    memory bytes."""

    name: str
    blocks: int
    threads: int
    shared: int = 0


def _align(n: int) -> int:
    return -(-n // 16) * 16


def _itemsize(dtype: str) -> int:
    return np.dtype(dtype).itemsize


# ---- planning --------------------------------------------------------------

def plan(kernel: Kernel) -> RowPlan:
    """The layout of ``kernel`` (which has reduce axes); see the module doc."""
    shape, nd, nr = kernel.shape, len(kernel.shape), len(kernel.reduce_axes)
    points = math.prod(shape[a] for a in kernel.kept_axes)
    length = math.prod(shape[a] for a in kernel.reduce_axes)
    one_pass = (len(kernel.stages) == 1 and not kernel.stages[0].stores
                and kernel.reductions
                and not any(a.local for a in kernel.args))
    if tuple(kernel.reduce_axes) == tuple(range(nd - nr, nd)):
        if one_pass and length >= SPLIT_MIN_ROW and \
                1 <= points < SPLIT_BLOCKS // 2:
            chunks = min(-(-SPLIT_BLOCKS // points), -(-length // SPLIT_CHUNK))
            width = plan_groups(kernel, kernel.reduce_axes).width
            if chunks >= 2:
                return RowPlan(kernel.name, "split_rows", SPLIT_THREADS,
                               points, length, chunks,
                               width=1 if length % width else width)
        if length < SHORT_ROW:
            return _with_storage(kernel, RowPlan(
                kernel.name, "warp", WARP_BLOCK, points, length))
        words = _carried_words(kernel)
        per_thread = max(1, ROW_WORDS // words) if words else ROW_POINTS
        threads = 128
        while threads < ROW_MAX_THREADS and threads * per_thread < length:
            threads *= 2
        return _with_storage(kernel, RowPlan(
            kernel.name, "block", threads, points, length))
    if one_pass and points >= 1:
        groups = plan_groups(kernel, kernel.kept_axes)
        width = groups.width if points % groups.width == 0 else 1
        chunks = min(-(-COLUMN_THREADS * width // points),
                     length // COLUMN_CHUNK)
        if chunks >= 2:
            return RowPlan(kernel.name, "split_columns", COLUMN_BLOCK, points,
                           length, chunks, width=width)
    slots, offset = [], 0
    for k, arg in enumerate(kernel.args):
        if arg.local:   # one row per kept point, interleaved (see _columns)
            slots.append(Slot(f"a{k}", BUFFER_CTYPES[arg.dtype], offset,
                              f"row scratch of {arg.name}"))
            offset += _align(points * arg.local_size * _itemsize(arg.dtype))
    return RowPlan(kernel.name, "columns", COLUMN_BLOCK, points, length,
                   slots=tuple(slots), team_bytes=offset, in_shared=False)


def _carried_words(kernel: Kernel) -> int:
    """32-bit words per point that later stages read again: copies of
    input rows loaded by several stages, and row scratch."""
    if len(kernel.stages) < 2:
        return 0
    dtypes = [dtype for _, _, dtype, _ in _repeated_loads(kernel)]
    dtypes += [arg.dtype for arg in kernel.args if arg.local]
    return sum(-(-_itemsize(d) // 4) for d in dtypes)


def _with_storage(kernel: Kernel, p: RowPlan) -> RowPlan:
    """``p`` with its row storage: the row scratch first, then copies of
    rows several stages load, while a block's storage fits SHARED_BUDGET
    (a copy read for the last time where a row scratch is written shares
    its slot, see _can_share).  A row scratch that does not fit goes to
    global scratch, and then no row is copied."""
    teams, slots, offset = p.teams_per_block, [], 0
    for k, arg in enumerate(kernel.args):
        if arg.local:
            slots.append(Slot(f"a{k}", BUFFER_CTYPES[arg.dtype], offset,
                              f"row scratch of {arg.name}"))
            offset += _align(arg.local_size * _itemsize(arg.dtype))
    if teams * offset > SHARED_BUDGET:
        return dataclasses.replace(p, slots=tuple(slots), team_bytes=offset,
                                   in_shared=False)
    caches, free = [], list(slots)
    for arg, index, dtype, stages in _repeated_loads(kernel):
        name, what = f"c{len(caches)}", (f"arg{arg}'s row, read from memory "
                                         f"in stage {stages[0]} only")
        shared = [x for x in free if _can_share(kernel, p, x, dtype, stages)]
        if shared:
            free.remove(shared[0])
            slots.append(Slot(name, CTYPES[dtype], shared[0].offset,
                              what + f"; shares {shared[0].name}'s slot"))
        else:
            size = _align(p.length * _itemsize(dtype))
            if teams * (offset + size) > SHARED_BUDGET:
                continue
            slots.append(Slot(name, CTYPES[dtype], offset, what))
            offset += size
        caches.append(Cache(arg, index, dtype, stages[0], name))
    return dataclasses.replace(p, slots=tuple(slots), caches=tuple(caches),
                               team_bytes=offset, in_shared=True)


def _can_share(kernel: Kernel, p: RowPlan, slot: Slot, dtype: str,
               stages: list[int]) -> bool:
    """Whether a row copy loaded in ``stages`` may live in the row scratch
    ``slot``: one C type (so the compiler sees that they alias); the
    scratch is stored once, at every point of the row
    (identity index, row-major in the row, so element j sits at j), in a
    stage w after the copy is made and no earlier than its last read, and
    read only after w.  Then in stage w the thread that handles j reads
    copy[j] before it stores scratch[j], and no other thread touches j:
    softmax keeps one row in shared memory instead of two."""
    k = int(slot.name[1:])
    arg = kernel.args[k]
    reduce_extents = [kernel.shape[a] for a in kernel.reduce_axes]
    row_major = tuple(int(np.prod(reduce_extents[i + 1:]))
                      for i in range(len(reduce_extents)))
    if BUFFER_CTYPES[arg.dtype] != CTYPES[dtype] or \
            tuple(arg.strides[a] for a in kernel.reduce_axes) != row_major \
            or any(arg.strides[a] for a in kernel.kept_axes):
        return False
    stores = [(s, x) for s, st in enumerate(kernel.stages)
              for x in st.stores if x.arg == k]
    loads = [s for s, st in enumerate(kernel.stages)
             for op in st.ops + st.after if op.op == "load" and op.arg == k]
    if len(stores) != 1:
        return False
    w, store = stores[0]
    return (store.index == IndexMap.identity(kernel.shape)
            and stages[0] < w and stages[-1] <= w
            and min(loads, default=w + 1) > w)


def _repeated_loads(kernel: Kernel) -> list[tuple]:
    """(arg, index, dtype, stages) of each input load that the row loops
    of two stages or more make, in order of first appearance."""
    stages_of: dict[tuple, list[int]] = {}
    for s, stage in enumerate(kernel.stages):
        for op in stage.ops:
            arg = kernel.args[op.arg] if op.op == "load" else None
            if arg is None or arg.is_output or arg.local:
                continue
            seen = stages_of.setdefault((op.arg, op.index, op.dtype), [])
            if s not in seen:
                seen.append(s)
    return [(*key, seen) for key, seen in stages_of.items() if len(seen) > 1]


def _partial_offsets(kernel: Kernel, p: RowPlan) -> tuple[list[int], int]:
    """Byte offsets of each reduction's partials in scratch, and the total
    (split layouts: chunks x points accumulators per reduction)."""
    offsets, total = [], 0
    for red in kernel.reductions:
        offsets.append(total)
        total += _align(p.chunks * p.points * _itemsize(red.acc_dtype))
    return offsets, total


def launches(kernel: Kernel, sm_count: int) -> tuple[tuple[Launch, ...], int]:
    """(the launches of ``kernel``'s functions, in order; the scratch bytes
    they need, more than 0 exactly when they take a ``scratch`` pointer)
    on a GPU of ``sm_count`` SMs."""
    p = plan(kernel)
    found, scratch = _launches(kernel, p, sm_count)
    return found, (max(scratch, 16) if p.uses_scratch else 0)


def _launches(kernel: Kernel, p: RowPlan, sm_count: int):
    name = p.functions[0]
    if p.kind in ("block", "warp"):
        teams = p.teams_per_block
        cap = MAX_BLOCKS
        if not p.in_shared and p.team_bytes:   # one slot per team: stay few
            cap = sm_count * max(1, THREADS_PER_SM // p.threads)
        blocks = max(1, min(-(-p.points // teams), cap))
        if p.in_shared:
            return (Launch(name, blocks, p.threads,
                           teams * p.team_bytes),), 0
        return ((Launch(name, blocks, p.threads),),
                blocks * teams * p.team_bytes)
    if p.kind == "columns":
        blocks = min(-(-p.points // p.threads), BLOCKS_PER_SM * sm_count)
        return (Launch(name, max(blocks, 1), p.threads),), p.team_bytes
    _, scratch = _partial_offsets(kernel, p)
    items, finish = p.points * p.chunks, p.functions[1]
    if p.kind == "split_rows":
        return (Launch(name, min(items, MAX_BLOCKS), p.threads),
                Launch(finish, min(p.points, MAX_BLOCKS),
                       FINISH_THREADS)), scratch
    items //= p.width                       # a thread per group of points
    return (Launch(name, min(-(-items // p.threads), MAX_BLOCKS), p.threads),
            Launch(finish, min(-(-p.points // p.threads), MAX_BLOCKS),
                   p.threads)), scratch
