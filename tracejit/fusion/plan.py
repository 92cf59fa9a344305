"""The fusion planner: which HLO instructions share a kernel, and why.

Vocabulary.  A *compute* instruction lowers to code (Scalar, Reduce or
Library); views only change index maps and sources are buffers.  A compute
value is either *inlined* (recomputed inside every consumer's expression,
never stored) or a *root* (computed once, by one kernel).  Roots are:
reductions, library calls, module outputs, operands of library calls, and
expensive elementwise values (exp, log, tanh, divide, pow ...) that have
more than one use or are read through a broadcast; inlining those would
duplicate expensive work.

Every root belongs to one *group* = one kernel, with an iteration space S
and row axes R (the reduced axes; empty for a loop fusion).  Inside a group
a value is placed either over all of S (full-space) or once per point of
the kept axes (kept-level: reduction results and values computed from
them, in the kept or keepdims shape).  A root joins a group when its space
matches, when every value of the group it reads is read exactly at its
placement (no other point of an unfinished kernel is visible), and when the
merge leaves the graph of groups acyclic.  Decisions and refusals are
recorded, with their reasons, in ``FusionPlan.report``.

Budgets (budget.py) bound what inlining costs: a value recomputed for
too many distinct readers, or read through too big an index map, becomes
a root, and so do values whose expressions would make a kernel too big
for the compiler; a group takes roots while their code fits one kernel.
Every step is one pass over the program or over each root's distinct
reads, so planning is linear in the program's size.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..hlo.module import Module
from ..hlo.primitives import (PRIMITIVES, FusionKind, Library, Reduce, Scalar,
                              Source, View)
from ..layout.indexing import IndexMap, const, var
from .budget import (KERNEL_OPS, Cone, bound_duplication,
                     bound_kernel_size, op_weights)
from .graph import KernelGraph
from .reads import read_space, resolve, root_reads, view_map  # noqa: F401

# Sibling kernels (reading the same inputs) a root tries to join, the most
# recent first: enough for multi-output fusion, and no scan of every
# kernel that ever read a popular input.
SIBLING_TRIES = 4

@dataclass
class Group:
    id: int
    space: tuple[int, ...]
    row_axes: tuple[int, ...]
    roots: list[int] = field(default_factory=list)
    library: bool = False
    sources: set[int] = field(default_factory=set)   # buffers it reads
    cone: Cone = field(default_factory=lambda: Cone(set(), 0))

    @property
    def kept_axes(self) -> tuple[int, ...]:
        return tuple(a for a in range(len(self.space))
                     if a not in self.row_axes)

    def placement(self, shape) -> IndexMap | None:
        """Map from a point of the space to a value of ``shape`` placed in
        this group: identity (full space) or the kept projection."""
        space = self.space
        if tuple(shape) == space:
            return IndexMap.identity(space)
        if not self.row_axes:
            return None
        kept = tuple(space[a] for a in self.kept_axes)
        keepdims = tuple(1 if a in self.row_axes else n
                         for a, n in enumerate(space))
        if tuple(shape) == kept:
            return IndexMap(space, tuple(var(a) for a in self.kept_axes))
        if tuple(shape) == keepdims:
            return IndexMap(space, tuple(const(0) if a in self.row_axes
                                         else var(a)
                                         for a in range(len(space))))
        return None


@dataclass
class FusionPlan:
    groups: list[Group]
    group_of: dict[int, int]          # root id -> group id
    inlined: set[int]                 # compute ids recomputed in consumers
    order: list[int]                  # group ids in execution order
    report: list[str]
    reads: dict[int, list] = field(default_factory=dict)  # root_reads

    def text(self) -> str:
        return "\n".join(self.report)


class Planner:
    def __init__(self, module: Module):
        self.m = module
        self.report: list[str] = []
        self.kinds = {ins.id: _kind(ins) for ins in module.instructions}
        self.uses: dict[int, list[tuple[int | None, IndexMap]]] = {}
        self.sources_of: dict[int, list[int]] = {}
        for ins in module.instructions:
            if self.kind(ins.id) in ("scalar", "reduce", "library"):
                space = read_space(module, ins)
                srcs = self.sources_of[ins.id] = []
                for o in ins.operands:
                    src, at = resolve(module, o, IndexMap.identity(space))
                    self.uses.setdefault(src, []).append((ins.id, at))
                    srcs.append(src)
        self.outputs = set()
        for o in module.outputs:
            src, _ = resolve(module, o, IndexMap.identity(module.get(o).shape))
            self.outputs.add(src)

    def operand_sources(self, ins_id: int) -> list[int]:
        """The producers a compute instruction reads, views resolved."""
        return self.sources_of.get(ins_id, [])

    def kind(self, ins_id: int) -> str:
        """What the planner does with an instruction (see ``_kind``)."""
        return self.kinds[ins_id]

    def say(self, text: str) -> None:
        self.report.append(text)

    def name(self, ins_id: int) -> str:
        ins = self.m.get(ins_id)
        return f"%{ins_id} {ins.op}{list(ins.shape)}"

    # ---- roots -----------------------------------------------------------
    def is_root(self, ins_id: int) -> bool:
        kind = self.kind(ins_id)
        if kind in ("reduce", "library"):
            return True
        if kind != "scalar":
            return False
        uses = self.uses.get(ins_id, [])
        if ins_id in self.outputs:
            self.say(f"root {self.name(ins_id)}: it is an output of the program")
            return True
        if any(self.kind(c) == "library" for c, _ in uses):
            self.say(f"root {self.name(ins_id)}: a library call reads it from memory")
            return True
        prim = PRIMITIVES[self.m.get(ins_id).op]
        op = prim.name
        if prim.expensive:
            if len(uses) > 1:
                self.say(f"root {self.name(ins_id)}: expensive ({op}) with {len(uses)} "
                         "uses; computed once, not duplicated")
                return True
            injective = all(_injective(at) for _, at in uses)
            if not injective:
                self.say(f"root {self.name(ins_id)}: expensive ({op}) read through a "
                         "broadcast; computed once, not duplicated")
                return True
        return False

    # ---- groups ------------------------------------------------------------
    def root_reads(self, root: int, inlined: set[int]):
        return root_reads(self.m, root, inlined)

    def plan(self) -> FusionPlan:
        chosen = {i.id for i in self.m.instructions if self.is_root(i.id)}
        bound_duplication(self, chosen)
        self.weights = op_weights(self.m)
        self.cones = bound_kernel_size(self, chosen)
        roots = [i.id for i in self.m.instructions if i.id in chosen]
        inlined = {i.id for i in self.m.instructions
                   if self.kind(i.id) == "scalar" and i.id not in chosen}
        groups: list[Group] = []
        group_of: dict[int, int] = {}
        readers_of: dict[int, list[int]] = {}   # source -> group ids
        all_reads: dict[int, list] = {}
        graph = KernelGraph()
        for root in roots:
            reads = self.root_reads(root, inlined)
            all_reads[root] = reads
            target = self.choose(root, reads, groups, group_of, graph,
                                 readers_of)
            if target is None:
                target = self.new_group(root, groups)
                graph.add_node(target.id)
                self.say(f"new kernel {target.id} for {self.name(root)}")
            target.roots.append(root)
            target.cone.absorb(self.cones[root], self.weights)
            group_of[root] = target.id
            for src, _ in reads:
                if self.kind(src) == "source" and \
                        src not in target.sources:
                    target.sources.add(src)
                    readers_of.setdefault(src, []).append(target.id)
                if src in group_of and group_of[src] != target.id:
                    graph.add_edge(group_of[src], target.id)
        order = graph.order()
        return FusionPlan(groups, group_of, inlined, order, self.report,
                          all_reads)

    def new_group(self, root: int, groups: list[Group]) -> Group:
        ins = self.m.get(root)
        kind = self.kind(root)
        if kind == "reduce":
            group = Group(len(groups), read_space(self.m, ins),
                          tuple(sorted(ins.attr("axes"))))
        else:
            group = Group(len(groups), ins.shape, (), library=kind == "library")
        groups.append(group)
        return group

    def choose(self, root, reads, groups, group_of, graph,
               readers_of) -> Group | None:
        """The first existing group ``root`` may join, or None: the latest
        few groups reading the same inputs, then its producers' groups."""
        if self.kind(root) == "library":
            self.say(f"kernel for {self.name(root)}: library call (opaque)")
            return None
        producers = [group_of[s] for s, _ in reads if s in group_of]
        shared = {s for s, _ in reads if self.kind(s) == "source"}
        siblings = sorted({g for s in shared
                           for g in readers_of.get(s, ())[-SIBLING_TRIES:]},
                          reverse=True)[:SIBLING_TRIES]
        candidates = list(dict.fromkeys(siblings + producers[::-1]))
        for gid in candidates:
            group = groups[gid]
            reason = self.refusal(root, reads, group, group_of, graph)
            if reason is None:
                how = "input" if self.kind(root) == "reduce" else "loop"
                self.say(f"fuse {self.name(root)} into kernel {gid} "
                         f"({how} fusion over {list(group.space)})")
                if self.kind(root) == "reduce" and not group.row_axes:
                    group.row_axes = tuple(sorted(self.m.get(root)
                                                  .attr("axes")))
                return group
            self.say(f"not fusing {self.name(root)} into kernel {gid}: "
                     f"{reason}")
        return None

    def refusal(self, root, reads, group, group_of, graph) -> str | None:
        if group.library:
            return "the kernel is a library call"
        extra = group.cone.extra(self.cones[root], self.weights)
        if group.cone.weight + extra > KERNEL_OPS:
            return (f"the kernel would exceed {KERNEL_OPS} scalar ops "
                    "(compile time grows faster than its size)")
        ins = self.m.get(root)
        if self.kind(root) == "reduce":
            axes = tuple(sorted(ins.attr("axes")))
            if read_space(self.m, ins) != group.space:
                return (f"iteration spaces differ ({list(read_space(self.m, ins))}"
                        f" vs {list(group.space)})")
            if group.row_axes and axes != group.row_axes:
                return (f"reduces axes {list(axes)}, the kernel reduces "
                        f"{list(group.row_axes)}")
            trial = Group(-1, group.space, axes)
            placement = IndexMap.identity(group.space)
        else:
            trial = group
            placement = group.placement(ins.shape)
            if placement is None:
                return (f"shape {list(ins.shape)} is neither the iteration "
                        f"space {list(group.space)} nor its kept part")
            if placement != IndexMap.identity(group.space) and not any(
                    group_of.get(s) == group.id for s, _ in reads):
                return "a per-row value that depends on no reduction here"
        for src, at in reads:
            if group_of.get(src) != group.id:
                continue
            member = self.m.get(src)
            want = trial.placement(member.shape)
            seen = at.compose(placement.exprs, placement.extents)
            if want is None or seen != want:
                return (f"reads {self.name(src)} at other points than the "
                        "kernel computes it")
        others = {group_of[s] for s, _ in reads if s in group_of}
        others.discard(group.id)
        cyclic = others & graph.descendants(group.id) if others else set()
        for src, _ in reads:
            if group_of.get(src) in cyclic:
                other = group_of[src]
                return (f"reads {self.name(src)}, computed by kernel {other} "
                        f"which needs kernel {group.id} first (a cycle)")
        return None


def _kind(ins) -> str:
    """What the planner does with an instruction, from its fusion kind:
    elementwise ops fuse, broadcasts and injective ops are index maps,
    reductions anchor row kernels, out-fusable and opaque ops run alone
    (library calls); parameters and constants are buffers."""
    prim = PRIMITIVES[ins.op]
    if isinstance(prim.lowering, Source):
        return "source"
    if prim.kind == FusionKind.ELEMENTWISE:
        return "scalar"
    if prim.kind in (FusionKind.BROADCAST, FusionKind.INJECTIVE):
        return "view"
    if prim.kind == FusionKind.REDUCTION:
        return "reduce"
    return "library"


def _injective(at: IndexMap) -> bool:
    """Conservative: every iteration variable appears in the map."""
    used = set()
    for ex in at.exprs:
        used |= ex.variables()
    return used == {k for k, n in enumerate(at.extents) if n > 1}


def plan_fusion(module: Module) -> FusionPlan:
    return Planner(module).plan()


def fuse(module: Module) -> bool:
    """Fusion: groups the module's instructions into kernels (see the
    module docstring) and records the plan on ``module.fusion``, with one
    note per instruction saying where it went.  Instructions are unchanged,
    so the module computes exactly what it did."""
    plan = plan_fusion(module)
    module.fusion = plan
    notes = {}
    for ins in module.instructions:
        how = PRIMITIVES[ins.op].lowering
        if ins.id in plan.group_of:
            group = plan.groups[plan.group_of[ins.id]]
            what = "library call" if group.library else "root"
            notes[ins.id] = f"kernel {group.id} {what}"
        elif ins.id in plan.inlined:
            notes[ins.id] = "inlined into its consumers"
        elif isinstance(how, View):
            notes[ins.id] = "view: index map, no copy"
    module.notes = notes
    return True


def verify_plan(module: Module) -> None:
    """Every compute instruction is a root of one group or inlined; the
    groups' graph is acyclic and ``order`` is a topological order of it."""
    plan = module.fusion
    for ins in module.instructions:
        how = PRIMITIVES[ins.op].lowering
        if isinstance(how, (Scalar, Reduce, Library)):
            placed = (ins.id in plan.group_of) + (ins.id in plan.inlined)
            assert placed == 1, f"{ins.text()} placed {placed} times"
    position = {g: n for n, g in enumerate(plan.order)}
    assert sorted(position) == [g.id for g in plan.groups]
    for group in plan.groups:
        for root in group.roots:
            for src, _ in root_reads(module, root, plan.inlined):  # fresh
                other = plan.group_of.get(src)
                if other is not None and other != group.id:
                    assert position[other] < position[group.id], \
                        f"kernel {other} must run before kernel {group.id}"


fuse.verify = verify_plan
