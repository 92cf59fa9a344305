"""What a fused expression reads: views resolved to index maps, inlined
values looked through.

Every walk here is iterative and visits each (value, map) pair once, so
its cost is the number of distinct reads, never the number of paths
through the program (a chain of diamonds has exponentially many) and
never bounded by Python's recursion limit.
"""
from __future__ import annotations

import functools

from ..hlo.module import Module
from ..hlo.primitives import PRIMITIVES, Reduce, View
from ..layout.indexing import IndexMap


@functools.lru_cache(maxsize=4096)
def _view_map(method: str, shape: tuple[int, ...], attrs: tuple) -> IndexMap:
    return getattr(IndexMap.identity(shape), method)(**dict(attrs))


def view_map(module: Module, ins) -> IndexMap:
    """Map from the view's index space into its operand's index space
    (cached by value: the same view of the same shape is one map)."""
    operand = module.get(ins.operands[0])
    method = PRIMITIVES[ins.op].lowering.method
    return _view_map(method, operand.shape, ins.attrs)


VIEW_OPS = frozenset(name for name, prim in PRIMITIVES.items()
                     if isinstance(prim.lowering, View))


def resolve(module: Module, value: int, at: IndexMap):
    """Follow views from ``value`` read at ``at``: (producer id, map)."""
    ins = module.get(value)
    if ins.op not in VIEW_OPS:
        return value, at
    while ins.op in VIEW_OPS:
        vm = view_map(module, ins)
        at = vm.compose(at.exprs, at.extents)
        ins = module.get(ins.operands[0])
    return ins.id, at


def read_space(module: Module, ins) -> tuple[int, ...]:
    """The index space a compute instruction reads its operands over."""
    if isinstance(PRIMITIVES[ins.op].lowering, Reduce):
        return module.get(ins.operands[0]).shape
    return ins.shape


def root_reads(module: Module, root: int, inlined: set[int]):
    """Every distinct (producer, map over the root's read space) the
    root's expression reads, looking through views and inlined values.
    Each pair appears once, in first-visit order of a depth-first walk
    (last operand first)."""
    ins = module.get(root)
    start = IndexMap.identity(read_space(module, ins))
    out, seen = [], set()
    stack = [(o, start) for o in ins.operands]
    while stack:
        value, at = stack.pop()
        key = resolve(module, value, at)
        if key in seen:
            continue
        seen.add(key)
        src, at = key
        if src in inlined:
            stack += [(o, at) for o in module.get(src).operands]
        else:
            out.append(key)
    return out
