"""The planner's two budgets: recomputation and kernel size.

Inlining a cheap value into its consumers saves a store and a load, but
each distinct (root, map) that reads an inlined value recomputes it, and
every kernel's code is compiled by LLVM (or NVRTC), whose time grows
faster than linearly in the size of one function.  So the planner bounds
both (and the size of the index maps read through inlined values), in
one pass over the program each, consumers or producers first:

* ``DUPLICATION_BUDGET``: an inlined value read by more distinct
  (root, map) pairs becomes a root (XLA's fusion bounds its code
  duplication the same way).  Kernel code and the planner's walks over
  the roots' reads stay within a constant factor of the program.
* ``KERNEL_OPS``: the scalar code a root's expression inlines (its cone:
  the inlined values it reads, each counted once, expensive math counted
  ``EXPENSIVE_WEIGHT`` times) stays below the budget: where a value's
  cone would exceed it, its inlined operands become roots.  A group takes
  roots while their cones add up to at most the budget.  Long chains
  (a loop unrolled by tracing) become a sequence of kernels of bounded
  size instead of one function LLVM needs minutes for.
"""
from __future__ import annotations

from ..hlo.primitives import PRIMITIVES

DUPLICATION_BUDGET = 8
# Terms an index map composed through inlined values may hold.  Reading
# through reshapes that are not plain splits or merges (after a
# transpose) nests divisions and modulos, and a chain of them grows the
# map exponentially; a value read through a bigger map becomes a root,
# and its readers start again from its buffer.
INDEX_TERMS = 64
CONE_OPS = 512
KERNEL_OPS = 1024
EXPENSIVE_WEIGHT = 16


def op_weight(module, ins_id: int) -> int:
    """Rough size of one value's generated code, in scalar ops."""
    prim = PRIMITIVES[module.get(ins_id).op]
    return EXPENSIVE_WEIGHT if prim.expensive else 1


def bound_duplication(planner, roots: set[int]) -> None:
    """Add to ``roots`` every inlined value that more than
    DUPLICATION_BUDGET distinct (root, map) pairs would evaluate.
    Consumers first; each value keeps at most budget + 1 pairs, so this
    costs O(budget * edges)."""
    readers: dict[int, set] = {}
    for ins in reversed(planner.m.instructions):
        if ins.id in roots or planner.kind(ins.id) != "scalar":
            continue
        seen: set = set()
        tangled = False
        for consumer, at in planner.uses.get(ins.id, []):
            if consumer in roots:
                seen.add((consumer, at))
            else:
                plain = at.is_identity()     # then read is m: checked
                for r, m in readers[consumer]:
                    read = at.compose(m.exprs, m.extents)
                    tangled = tangled or not plain and \
                        read.size() > INDEX_TERMS
                    seen.add((r, read))
            if len(seen) > DUPLICATION_BUDGET or tangled:
                break
        if len(seen) > DUPLICATION_BUDGET:
            roots.add(ins.id)
            planner.say(f"root {planner.name(ins.id)}: inlined, it would be "
                        f"recomputed for more than {DUPLICATION_BUDGET} "
                        "distinct readers; computed once instead")
        elif tangled:
            roots.add(ins.id)
            planner.say(f"root {planner.name(ins.id)}: its readers' index "
                        f"maps would exceed {INDEX_TERMS} terms; stored, "
                        "and read back through a fresh map")
        else:
            readers[ins.id] = seen


class Cone:
    """The inlined values one expression evaluates (ids, each once) and
    their weight in scalar ops."""

    __slots__ = ("ids", "weight")

    def __init__(self, ids: set[int], weight: int):
        self.ids, self.weight = ids, weight

    def absorb(self, other: "Cone", weights: dict[int, int]) -> None:
        fresh = other.ids - self.ids
        self.ids |= fresh
        self.weight += sum(weights[v] for v in fresh)

    def extra(self, other: "Cone", weights: dict[int, int]) -> int:
        """Weight ``other`` adds to this cone."""
        return sum(weights[v] for v in other.ids - self.ids)


def op_weights(module) -> dict[int, int]:
    return {ins.id: op_weight(module, ins.id) for ins in module.instructions}


def bound_kernel_size(planner, roots: set[int]) -> dict[int, Cone]:
    """Add roots so that no root's cone weighs more than CONE_OPS; returns
    each root's cone.  Producers first.  Where a value's cone would be too
    heavy, its heaviest inlined operands become roots until it is not.
    A cone is kept until its last consumer has read it, and the last
    consumer takes it over (a chain adds one id per step), so this costs
    O(instructions) for chains and O(CONE_OPS * instructions) at worst."""
    m = planner.m
    weights = planner.weights
    pending: dict[int, int] = {}       # value -> consumer edges not seen
    for ins in m.instructions:
        for src in planner.operand_sources(ins.id):
            pending[src] = pending.get(src, 0) + 1
    cones: dict[int, Cone] = {}        # inlined value -> its cone
    root_cones: dict[int, Cone] = {}
    for ins in m.instructions:
        srcs = planner.operand_sources(ins.id)
        if planner.kind(ins.id) not in ("scalar", "reduce", "library"):
            continue
        inlined = [s for s in dict.fromkeys(srcs) if s in cones]
        cone = _gather(ins.id, inlined, cones, pending, srcs, weights)
        while cone.ids is None:
            heaviest = max(inlined, key=lambda v: cones[v].weight)
            inlined.remove(heaviest)
            roots.add(heaviest)
            root_cones[heaviest] = cones.pop(heaviest)
            planner.say(f"root {planner.name(heaviest)}: its consumer "
                        f"{planner.name(ins.id)} would inline more than "
                        f"{CONE_OPS} scalar ops; a kernel boundary keeps "
                        "compile time linear")
            cone = _gather(ins.id, inlined, cones, pending, srcs, weights)
        (root_cones if ins.id in roots else cones)[ins.id] = cone
        for src in srcs:
            pending[src] -= 1
            if not pending[src]:
                cones.pop(src, None)
    return root_cones


def _gather(ins_id, inlined, cones, pending, srcs, weights) -> Cone:
    """The cone of ``ins_id``: its own op and its inlined operands' cones
    (``ids`` None when it weighs more than CONE_OPS: nothing is built).
    The heaviest operand's cone is taken over, not copied, when this is
    its last consumer."""
    if not inlined:
        return Cone({ins_id}, weights[ins_id])
    heaviest = max(inlined, key=lambda v: cones[v].weight)
    base = cones[heaviest]
    fresh = {ins_id}.union(*(cones[v].ids for v in inlined
                             if v != heaviest)) - base.ids
    weight = base.weight + sum(weights[v] for v in fresh)
    if weight > CONE_OPS:
        return Cone(None, weight)
    if pending[heaviest] == srcs.count(heaviest):
        del cones[heaviest]          # nobody else reads it: take it over
        ids = base.ids
    else:
        ids = set(base.ids)
    ids |= fresh
    return Cone(ids, weight)
