"""Static memory planning: liveness, then offsets in one arena.

The program's steps run in the order fusion scheduled them.  A temporary is
live from the step that writes it to the last step that reads it
(inclusive: inside one step its inputs and outputs are all live).  Each
temporary gets a 64-byte-aligned byte offset in one arena such that no two
temporaries live at the same time overlap; temporaries with disjoint
lifetimes share bytes.  Placement is greedy, largest first, at the lowest
offset that fits.  Parameters are the caller's arrays and outputs are fresh
arrays, so neither lives in the arena.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..fusion.program import KernelStep, Program

ALIGN = 64


def _aligned(nbytes: int) -> int:
    return -(-max(nbytes, 1) // ALIGN) * ALIGN


def step_buffers(step) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(buffers read, buffers written) by one step."""
    if isinstance(step, KernelStep):
        reads = tuple(b for b, a in zip(step.buffers, step.kernel.args)
                      if not a.is_output)
        writes = tuple(b for b, a in zip(step.buffers, step.kernel.args)
                       if a.is_output)
        return reads, writes
    return tuple(step.inputs), (step.output,)


def liveness(program: Program) -> dict[int, tuple[int, int]]:
    """Temporary buffer id -> (first step, last step) it is live in."""
    live: dict[int, list[int]] = {}
    temps = {b.id for b in program.buffers if b.kind == "temp"}
    for n, step in enumerate(program.steps):
        reads, writes = step_buffers(step)
        for b in reads + writes:
            if b in temps:
                span = live.setdefault(b, [n, n])
                span[1] = n
    return {b: (s, e) for b, (s, e) in live.items()}


def assign_buffers(program: Program) -> Program:
    """Place every temporary (see the module docstring).  Each temporary
    is checked only against those placed ones live at one of its own
    steps (an index per step), so a long program of short-lived
    temporaries costs about its length, not its length squared."""
    spans = liveness(program)
    live_at: list[list[tuple[int, int]]] = [[] for _ in program.steps]
    temps = sorted((program.buffers[b] for b in spans),
                   key=lambda buf: (-buf.nbytes, buf.id))
    top = 0
    for buf in temps:
        start, end = spans[buf.id]
        size = _aligned(buf.nbytes)
        busy = sorted({r for n in range(start, end + 1) for r in live_at[n]})
        offset = 0
        for lo, hi in busy:
            if offset + size <= lo:
                break
            offset = max(offset, hi)
        buf.offset = offset
        for n in range(start, end + 1):
            live_at[n].append((offset, offset + size))
        top = max(top, offset + size)
    for buf in program.buffers:          # written, never read: still placed
        if buf.kind == "temp" and buf.offset is None:
            buf.offset = top
            top += _aligned(buf.nbytes)
    program.arena_bytes = top
    return program


@dataclass(frozen=True)
class MemoryAnalysis:
    """Bytes a call touches: arguments (the caller's), outputs (fresh),
    temporaries (sum of their sizes), arena (the one temporary allocation,
    after reuse), peak (arena + outputs: what one call allocates)."""

    argument_bytes: int
    output_bytes: int
    temp_bytes: int
    arena_bytes: int
    peak_bytes: int


def memory_analysis(program: Program) -> MemoryAnalysis:
    def total(kind):
        return int(sum(b.nbytes for b in program.buffers if b.kind == kind))
    outputs = total("output")
    return MemoryAnalysis(total("param"), outputs, total("temp"),
                          program.arena_bytes,
                          program.arena_bytes + outputs)
