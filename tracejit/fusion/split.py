"""Split large reductions so that threads can share them.

A backend parallelizes a kernel over its outermost kept axis.  A reduction
over every axis (``x.sum()``) has none, and one over a leading axis
(``x.sum(axis=0)``) has only the columns, whose halves interleave in
memory.  Both then run on one thread, or read memory in short pieces.

``split_reductions`` rewrites such a reduction, when it reads at least
SPLIT_MIN_ELEMENTS, as two: the leading axis of n is viewed as
(PARTS, n / PARTS) (a reshape: an index map, no copy); the first reduction
keeps the PARTS axis, so its kernel splits into PARTS contiguous slabs of
rows that threads take in parallel; the second combines the PARTS partial
results.  Float32 sums keep their float64 accumulation across both steps:
the partials are float64 and the result is rounded once, as before.

Passes read attributes, never names: the reduction's ``Reduce`` lowering
and its combiner, the table's ``convert`` and ``reshape`` rows.
"""
from __future__ import annotations

from ..hlo.module import Aval, Instruction, Module
from ..hlo.primitives import PRIMITIVES, Reduce

SPLIT_MIN_ELEMENTS = 1 << 20
PARTS = 8


def _wide_dtype(combiner: str, dtype: str) -> str:
    """The dtype partial results keep (float32 sums: float64)."""
    return "float64" if combiner == "add" and dtype == "float32" else dtype


def _should_split(x: Aval, axes: tuple[int, ...]) -> bool:
    kept = [a for a in range(len(x.shape)) if a not in axes]
    leading_reduced = bool(axes) and min(axes) == 0 and \
        (not kept or min(kept) > 0)
    n = x.shape[0] if x.shape else 0
    return leading_reduced and x.size >= SPLIT_MIN_ELEMENTS and \
        n % PARTS == 0 and n >= 4 * PARTS


def split_reductions(module: Module) -> bool:
    """Rewrite each large reduction whose leading axis is reduced (and
    outer to every kept axis) into a per-slab reduction and a combine."""
    rebuilt: list[Instruction] = []
    changed = False
    for ins in module.instructions:
        prim = PRIMITIVES[ins.op]
        if isinstance(prim.lowering, Reduce):
            x = module.get(ins.operands[0]).aval
            axes = tuple(sorted(ins.attr("axes")))
            if _should_split(x, axes):
                rebuilt += _split(module, ins, x, axes, prim.lowering)
                changed = True
                continue
        rebuilt.append(ins)
    if changed:
        module.replace_all(rebuilt, module.outputs)
    return changed


def _split(module, ins, x: Aval, axes, lowering) -> list[Instruction]:
    made: list[Instruction] = []

    def new(op, operand, aval, attrs):
        module.add(op, (operand,), aval, attrs, ins.loc)
        made.append(module.instructions.pop())
        return made[-1].id

    wide = _wide_dtype(lowering.combiner, x.dtype)
    source = ins.operands[0]
    if wide != x.dtype:
        source = new("convert", source, Aval(x.shape, wide),
                     (("dtype", wide),))
    n = x.shape[0]
    slabs = (PARTS, n // PARTS) + x.shape[1:]
    source = new("reshape", source, Aval(slabs, wide), (("shape", slabs),))
    inner = (1,) + tuple(a + 1 for a in axes if a > 0)
    kept = tuple(d for k, d in enumerate(x.shape) if k not in axes)
    partial = new(ins.op, source, Aval((PARTS,) + kept, wide),
                  (("axes", inner),))
    if wide == x.dtype:
        return made + [Instruction(ins.id, ins.op, (partial,), ins.aval,
                                   (("axes", (0,)),), ins.loc)]
    combined = new(ins.op, partial, Aval(kept, wide), (("axes", (0,)),))
    return made + [Instruction(ins.id, "convert", (combined,), ins.aval,
                               (("dtype", ins.dtype),), ins.loc)]

