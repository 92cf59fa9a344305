"""Static memory planning: place every temporary buffer in one arena.

Each temporary gets a byte offset, aligned to 64 bytes, so a call allocates
the arena once instead of one array per temporary.  This first plan gives
every temporary its own range; reuse across disjoint lifetimes comes with
liveness analysis.
"""
from __future__ import annotations

from ..fusion.program import Program

ALIGN = 64


def assign_buffers(program: Program) -> Program:
    cursor = 0
    for buf in program.buffers:
        if buf.kind != "temp":
            continue
        buf.offset = cursor
        cursor += -(-max(buf.nbytes, 1) // ALIGN) * ALIGN
    program.arena_bytes = cursor
    return program
