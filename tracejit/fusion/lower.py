"""Lower an HLO module and its fusion plan to a Program.

Each group of the plan becomes one kernel (or one library call).  Inside a
kernel, values are generated on demand by ``emit``: a view composes index
maps, an inlined elementwise value becomes scalar ops, a value of another
group (or a parameter or constant) becomes a load through the composed map,
a reduction of this kernel becomes its accumulator.  So transposed,
broadcast, sliced and reshaped data are read in place, and only the values
the plan marks as roots that someone outside their stage reads are stored.

Kernel stages: a reduction reads values of its own stage or results of
earlier stages; everything a row needs is ordered that way (see ``levels``).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..hlo.module import Instruction, Module
from ..hlo.primitives import PRIMITIVES, Reduce, Source
from ..layout.indexing import IndexMap, row_major_strides
from .generate import ValueGenerator
from .kernel import BufferArg, Kernel, Reduction, ScalarOp, Stage, Store
from .plan import FusionPlan, Group, resolve, root_reads
from .program import Buffer, KernelStep, LibraryStep, Program


def accumulator_dtype(combiner: str, dtype: str) -> str:
    """Float32 sums accumulate in float64 for accuracy."""
    return "float64" if combiner == "add" and dtype == "float32" else dtype


class Lowering:
    def __init__(self, module: Module, plan: FusionPlan):
        self.m, self.plan = module, plan
        self.program = Program(module.name)
        self.buffer_of: dict[int, int] = {}     # value id -> buffer id
        self.needs_buffer = self.stored_roots()

    # ---- which roots are stored ---------------------------------------------
    def stored_roots(self) -> set[int]:
        """Roots read outside their group, by a library call, or as output."""
        plan, need = self.plan, set()
        for group in plan.groups:
            for root in group.roots:
                for src, _ in self.reads(root):
                    if src in plan.group_of and \
                            plan.group_of[src] != group.id:
                        need.add(src)
        for o in self.m.outputs:
            src, _ = resolve(self.m, o, IndexMap.identity(
                self.m.get(o).shape))
            if src in plan.group_of:
                need.add(src)
        return need

    def reads(self, root: int):
        """The root's reads, walked once (the plan keeps those it made)."""
        cached = self.plan.reads.get(root)
        if cached is None:
            cached = root_reads(self.m, root, self.plan.inlined)
            self.plan.reads[root] = cached
        return cached

    # ---- buffers -------------------------------------------------------------
    def source_buffer(self, ins: Instruction) -> int:
        if ins.id not in self.buffer_of:
            if "value" in ins.attr_dict:          # a constant
                buf = self.program.new_buffer("const", ins.shape, ins.dtype,
                                              value=ins.attr("value"))
            else:
                buf = self.program.new_buffer("param", ins.shape, ins.dtype,
                                              param_index=ins.attr("index"))
            self.buffer_of[ins.id] = buf.id
        return self.buffer_of[ins.id]

    def temp_for(self, value: int) -> int:
        if value not in self.buffer_of:
            ins = self.m.get(value)
            buf = self.program.new_buffer("temp", ins.shape, ins.dtype)
            self.buffer_of[value] = buf.id
        return self.buffer_of[value]

    def arg_for(self, buf: Buffer, is_output=False) -> BufferArg:
        strides = None if buf.kind == "param" else row_major_strides(buf.shape)
        return BufferArg(f"b{buf.id}", buf.dtype, buf.shape, strides,
                         is_output)

    # ---- the program -----------------------------------------------------------
    def run(self) -> Program:
        for ins in self.m.instructions:
            if isinstance(PRIMITIVES[ins.op].lowering, Source):
                self.source_buffer(ins)
        for gid in self.plan.order:
            group = self.plan.groups[gid]
            if group.library:
                self.library(group.roots[0])
            else:
                KernelBuilder(self, group).build()
        self.program.outputs = tuple(
            self.output(n, o) for n, o in enumerate(self.m.outputs))
        return self.program

    def library(self, root: int) -> None:
        ins = self.m.get(root)
        inputs = []
        for o in ins.operands:
            src, at = resolve(self.m, o, IndexMap.identity(
                self.m.get(o).shape))
            buf = self.buffer_of.get(src)
            if buf is None or not at.is_identity() or \
                    self.program.buffers[buf].shape != self.m.get(o).shape:
                buf = self.copy(o, "temp").id
            inputs.append(buf)
        out = self.temp_for(root)
        self.program.steps.append(LibraryStep(
            PRIMITIVES[ins.op].lowering.name, tuple(inputs), out,
            tuple(sorted(ins.attr_dict.items()))))

    def copy(self, value: int, kind: str) -> Buffer:
        """A fresh contiguous buffer holding ``value`` (a copy kernel)."""
        ins = self.m.get(value)
        out = self.program.new_buffer(kind, ins.shape, ins.dtype)
        if ins.aval.size:
            group = Group(-1, ins.shape, ())
            builder = KernelBuilder(self, group)
            builder.build_copy(value, out)
        return out

    def output(self, n: int, value: int) -> int:
        ins = self.m.get(value)
        src, at = resolve(self.m, value, IndexMap.identity(ins.shape))
        buf_id = self.buffer_of.get(src)
        if buf_id is not None:
            buf = self.program.buffers[buf_id]
            plain = IndexMap.identity(buf.shape).reshape(ins.shape) == at \
                and buf.nbytes == ins.aval.size * np.dtype(ins.dtype).itemsize
            if buf.kind == "temp" and plain:
                buf.kind, buf.output_index = "output", n
                buf.out_shape = ins.shape
                return buf.id
        out = self.copy(value, "output")
        out.output_index = n
        return out.id


class KernelBuilder(ValueGenerator):
    """Builds the kernel of one group: levels, stages, scalar ops."""

    def __init__(self, lowering: Lowering, group: Group):
        self.low, self.g, self.m = lowering, group, lowering.m
        self.args: list[BufferArg] = []
        self.arg_of: dict[int, int] = {}
        self.rows: list[list[ScalarOp]] = []
        self.afters: list[list[ScalarOp]] = []
        self.reductions: list[list[Reduction]] = []
        self.stores: list[list[Store]] = []
        self.after_stores: list[list[Store]] = []
        self.red_index: dict[int, int] = {}
        self.memo: dict = {}
        self.local_of: dict[int, int | None] = {}   # value -> local arg
        self.level: dict[int, int] = {}
        self.kept_members: set[int] = set()
        self.reduction_count = 0

    def stage(self, s: int) -> None:
        while len(self.rows) <= s:
            for lst in (self.rows, self.afters, self.reductions,
                        self.stores, self.after_stores):
                lst.append([])

    def arg(self, buf_id: int, is_output=False) -> int:
        if buf_id not in self.arg_of:
            buf = self.low.program.buffers[buf_id]
            self.arg_of[buf_id] = len(self.args)
            self.args.append(self.low.arg_for(buf, is_output))
        return self.arg_of[buf_id]

    # ---- levels ------------------------------------------------------------------
    def levels(self) -> None:
        """Stage of each root: a reduction's stage follows everything it
        reads; a full-space root sits in the stage after the reductions it
        reads; a per-row root sits after its reductions' loop."""
        g = self.g
        full = IndexMap.identity(g.space)
        for root in g.roots:
            ins = self.m.get(root)
            if g.placement(ins.shape) != full and not isinstance(
                    PRIMITIVES[ins.op].lowering, Reduce):
                self.kept_members.add(root)
            level = 0
            for src, _ in self.low.reads(root):
                if self.low.plan.group_of.get(src) != g.id:
                    continue
                if self.is_row_value(src):
                    level = max(level, self.level[src])
                else:
                    bump = 0 if root in self.kept_members else 1
                    level = max(level, self.level[src] + bump)
            self.level[root] = level

    def is_row_value(self, value: int) -> bool:
        ins = self.m.get(value)
        return not isinstance(PRIMITIVES[ins.op].lowering, Reduce) and \
            value not in self.kept_members

    # ---- building ------------------------------------------------------------------
    def build(self) -> None:
        self.levels()
        g = self.g
        later_reads = self.later_stage_reads()
        self.read_maps: dict[int, set[IndexMap]] = {}
        for root in g.roots:
            for src, at in self.low.reads(root):
                if src in later_reads:
                    self.read_maps.setdefault(src, set()).add(at)
        self.local_of = {v: None for v in later_reads if self.row_local(v)}
        # stage by stage: reductions are numbered as they are made, and a
        # kernel numbers them stage by stage (``Kernel.reductions``), so a
        # root of an earlier stage listed after one of a later stage must
        # not be made after it (it read the wrong accumulator)
        for root in sorted(g.roots, key=self.level.__getitem__):
            s = self.level[root]
            self.stage(s)
            ins = self.m.get(root)
            stored = root in self.low.needs_buffer or root in later_reads
            if isinstance(PRIMITIVES[ins.op].lowering, Reduce):
                self.reduction(root, s, stored)
            elif root in self.kept_members:
                v = self.emit(("after", s), root, g.placement(ins.shape))
                if stored:
                    self.store(("after", s), root, v)
            elif stored:
                v = self.emit(("row", s), root, IndexMap.identity(g.space))
                self.store(("row", s), root, v)
        self.finish()

    def later_stage_reads(self) -> set[int]:
        out = set()
        for root in self.g.roots:
            for src, _ in self.low.reads(root):
                if self.low.plan.group_of.get(src) == self.g.id and \
                        self.is_row_value(src) and \
                        self.level[src] < self.level[root]:
                    out.add(src)
        return out

    def row_local(self, value: int) -> bool:
        """Whether ``value`` can live in a row scratch: only this kernel
        reads it, always at the point where it was computed, and one row
        of it is small enough for the stack."""
        g = self.g
        if value in self.low.needs_buffer or not g.row_axes:
            return False
        row = int(np.prod([g.space[a] for a in g.row_axes]))
        if row * np.dtype(self.m.get(value).dtype).itemsize > \
                LOCAL_ROW_BYTES:
            return False
        return self.read_maps[value] <= {IndexMap.identity(g.space)}

    def local_arg(self, value: int) -> int:
        """The row-scratch arg holding ``value`` (made on first use)."""
        if self.local_of[value] is None:
            ins = self.m.get(value)
            strides = [0] * len(self.g.space)
            step = 1
            for a in reversed(self.g.row_axes):
                strides[a], step = step, step * self.g.space[a]
            self.local_of[value] = len(self.args)
            self.args.append(BufferArg(f"l{value}", ins.dtype, ins.shape,
                                       tuple(strides), True, local=True))
        return self.local_of[value]

    def reduction(self, root: int, s: int, stored: bool) -> None:
        ins = self.m.get(root)
        combiner = PRIMITIVES[ins.op].lowering.combiner
        operand = ins.operands[0]
        value = self.emit(("row", s), operand, IndexMap.identity(self.g.space))
        self.red_index[root] = self.reduction_count
        self.reduction_count += 1
        self.reductions[s].append(Reduction(
            value, combiner, accumulator_dtype(combiner, ins.dtype)))
        if stored:
            v = self.push(("after", s), ScalarOp(
                "reduced", ins.dtype, args=(self.red_index[root],)))
            self.store(("after", s), root, v)

    def store(self, ctx, value: int, op_index: int) -> None:
        ins = self.m.get(value)
        index = self.g.placement(ins.shape)
        if value in self.local_of:
            arg = self.local_arg(value)
        else:
            arg = self.arg(self.low.temp_for(value), is_output=True)
        st = Store(arg, op_index, index)
        (self.stores if ctx[0] == "row" else self.after_stores)[ctx[1]] \
            .append(st)

    def build_copy(self, value: int, out: Buffer) -> None:
        self.stage(0)
        v = self.emit(("row", 0), value, IndexMap.identity(self.g.space))
        copied = self.push(("row", 0), ScalarOp(
            "copy", out.dtype, args=(v,)))
        self.stores[0].append(Store(self.arg(out.id, is_output=True), copied,
                                    IndexMap.identity(self.g.space)))
        self.finish(name="copy")

    def finish(self, name: str | None = None) -> None:
        if not any(self.stores) and not any(self.after_stores):
            return
        stages = tuple(Stage(tuple(r), tuple(red), tuple(st), tuple(a),
                             tuple(ast)) for r, red, st, a, ast in zip(
            self.rows, self.reductions, self.stores, self.afters,
            self.after_stores))
        program = self.low.program
        label = name or self.m.get(self.g.roots[-1]).op
        kernel = locals_last(Kernel(
            f"k{len(program.kernels)}_{label}", self.g.space,
            tuple(self.args), stages, self.g.row_axes))
        buffers = tuple(int(a.name[1:]) for a in kernel.buffer_args)
        if int(np.prod(self.g.space)) == 0 and not self.g.row_axes:
            return
        if self.g.row_axes and int(np.prod(
                [self.g.space[a] for a in self.g.kept_axes])) == 0:
            return
        program.steps.append(KernelStep(kernel, buffers))


LOCAL_ROW_BYTES = 1 << 16      # largest row scratch a kernel keeps


def locals_last(kernel: Kernel) -> Kernel:
    """The same kernel with its local args moved after the others, so
    arg k is the caller's k-th buffer for every k the caller passes."""
    order = sorted(range(len(kernel.args)),
                   key=lambda k: (kernel.args[k].local, k))
    if order == list(range(len(order))):
        return kernel
    new_index = {old: new for new, old in enumerate(order)}

    def ops(seq):
        return tuple(replace(op, arg=new_index[op.arg])
                     if op.op == "load" else op for op in seq)

    def stores(seq):
        return tuple(replace(st, arg=new_index[st.arg]) for st in seq)

    stages = tuple(replace(st, ops=ops(st.ops), after=ops(st.after),
                           stores=stores(st.stores),
                           after_stores=stores(st.after_stores))
                   for st in kernel.stages)
    return replace(kernel, args=tuple(kernel.args[k] for k in order),
                   stages=stages)


def lower(module: Module, plan: FusionPlan) -> Program:
    return Lowering(module, plan).run()
