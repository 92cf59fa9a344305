"""Lower an HLO module to a Program of kernels and library calls.

Every value is a *reference*: a buffer plus the index map through which it is
read.  View primitives only transform the reference (no code, no copy), so a
transposed, broadcast, sliced or reshaped operand is read in place by its
consumer.  Elementwise primitives and reductions become one kernel each (loop
fusion, which puts several primitives in one kernel, is a later pass);
library primitives become library steps, with a copy kernel only where the
library cannot read the operand's layout.

The choice of what to do is made from each primitive's ``lowering``
attribute in the table, never from its name.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..hlo.module import Instruction, Module
from ..hlo.primitives import (PRIMITIVES, Library, Reduce, Scalar, Source,
                              View)
from ..layout.indexing import IndexMap, row_major_strides, var
from .kernel import BufferArg, Kernel, Reduction, ScalarOp, Store
from .program import Buffer, KernelStep, LibraryStep, Program


@dataclass(frozen=True)
class Ref:
    """A value as ``buffer`` read through ``index`` (over the value's shape)."""

    buffer: int
    index: IndexMap


def accumulator_dtype(combiner: str, dtype: str) -> str:
    """Float sums accumulate in float64 for accuracy."""
    return "float64" if combiner == "add" and dtype == "float32" else dtype


class Lowering:
    def __init__(self, module: Module):
        self.module = module
        self.program = Program(module.name)
        self.refs: dict[int, Ref] = {}

    def run(self) -> Program:
        for ins in self.module.instructions:
            self.refs[ins.id] = self.lower(ins)
        outputs = []
        for n, out_id in enumerate(self.module.outputs):
            outputs.append(self.output(n, out_id))
        self.program.outputs = tuple(outputs)
        return self.program

    # ---- buffers ---------------------------------------------------------
    def buffer(self, ref: Ref) -> Buffer:
        return self.program.buffers[ref.buffer]

    def arg_for(self, buf: Buffer, is_output=False) -> BufferArg:
        strides = None if buf.kind == "param" else row_major_strides(buf.shape)
        return BufferArg(f"b{buf.id}", buf.dtype, buf.shape, strides,
                         is_output)

    def temp(self, ins: Instruction) -> Buffer:
        return self.program.new_buffer("temp", ins.shape, ins.dtype)

    # ---- one instruction -------------------------------------------------
    def lower(self, ins: Instruction) -> Ref:
        how = PRIMITIVES[ins.op].lowering
        attrs = ins.attr_dict
        if isinstance(how, Source):
            if "value" in attrs:
                buf = self.program.new_buffer("const", ins.shape, ins.dtype,
                                              value=attrs["value"])
            else:
                buf = self.program.new_buffer("param", ins.shape, ins.dtype,
                                              param_index=attrs["index"])
            return Ref(buf.id, IndexMap.identity(ins.shape))
        if isinstance(how, View):
            src = self.refs[ins.operands[0]]
            view = getattr(src.index, how.method)   # attrs name its args
            return Ref(src.buffer, view(**attrs))
        if isinstance(how, Scalar):
            return self.elementwise(ins, how.op)
        if isinstance(how, Reduce):
            return self.reduction(ins, how.combiner, attrs["axes"])
        if isinstance(how, Library):
            return self.library(ins, how.name)
        raise NotImplementedError(f"no lowering for {ins.op}")

    def kernel_name(self, ins: Instruction) -> str:
        return f"k{len(self.program.kernels)}_{ins.op}"

    def elementwise(self, ins: Instruction, op: str) -> Ref:
        out = self.temp(ins)
        operands = [self.refs[o] for o in ins.operands]
        self.emit_map(self.kernel_name(ins), ins.shape, operands,
                      [self.module.get(o).dtype for o in ins.operands],
                      op, ins.dtype, out)
        return Ref(out.id, IndexMap.identity(ins.shape))

    def emit_map(self, name, shape, operands, dtypes, op, dtype, out) -> None:
        """A kernel computing ``op(*operands)`` at every point of ``shape``."""
        if int(np.prod(shape)) == 0:
            return
        args, slots = [], {}
        ops = []
        for ref, dt in zip(operands, dtypes):
            slot = slots.setdefault(ref.buffer, len(args))
            if slot == len(args):
                args.append(self.arg_for(self.program.buffers[ref.buffer]))
            ops.append(ScalarOp("load", dt, arg=slot, index=ref.index))
        ops.append(ScalarOp(op, dtype, args=tuple(range(len(operands)))))
        args.append(self.arg_for(out, is_output=True))
        store = Store(len(args) - 1, len(ops) - 1, IndexMap.identity(shape))
        kernel = Kernel(name, tuple(shape), tuple(args), tuple(ops), (store,))
        buffers = tuple(int(a.name[1:]) for a in args)
        self.program.steps.append(KernelStep(kernel, buffers))

    def reduction(self, ins: Instruction, combiner: str, axes) -> Ref:
        out = self.temp(ins)
        src = self.refs[ins.operands[0]]
        operand = self.module.get(ins.operands[0])
        if ins.aval.size == 0:
            return Ref(out.id, IndexMap.identity(ins.shape))
        acc = accumulator_dtype(combiner, ins.dtype)
        kept = [d for d in range(len(operand.shape)) if d not in axes]
        args = (self.arg_for(self.buffer(src)),
                self.arg_for(out, is_output=True))
        ops = (ScalarOp("load", operand.dtype, arg=0, index=src.index),)
        epilogue = (ScalarOp("reduced", ins.dtype, args=(0,)),)
        store_index = IndexMap(operand.shape, tuple(var(d) for d in kept))
        kernel = Kernel(self.kernel_name(ins), operand.shape, args, ops,
                        (Store(1, 0, store_index),), tuple(sorted(axes)),
                        (Reduction(0, combiner, acc),), epilogue)
        self.program.steps.append(
            KernelStep(kernel, (src.buffer, out.id)))
        return Ref(out.id, IndexMap.identity(ins.shape))

    def materialize(self, ref: Ref, shape, dtype: str, kind="temp") -> Buffer:
        """A contiguous buffer holding ``ref`` (a copy kernel if needed)."""
        src = self.buffer(ref)
        if kind == "temp" and ref.index.is_identity() and src.shape == tuple(
                shape) and src.kind in ("temp", "param", "const"):
            return src
        out = self.program.new_buffer(kind, shape, dtype)
        self.emit_map(f"k{len(self.program.kernels)}_copy", shape, [ref],
                      [dtype], "copy", dtype, out)
        return out

    def library(self, ins: Instruction, name: str) -> Ref:
        inputs = [self.materialize(self.refs[o], self.module.get(o).shape,
                                   self.module.get(o).dtype)
                  for o in ins.operands]
        out = self.temp(ins)
        self.program.steps.append(
            LibraryStep(name, tuple(b.id for b in inputs), out.id))
        return Ref(out.id, IndexMap.identity(ins.shape))

    def output(self, n: int, out_id: int) -> int:
        ins = self.module.get(out_id)
        ref = self.refs[out_id]
        buf = self.buffer(ref)
        taken = buf.kind == "output"
        if buf.kind == "temp" and ref.index.is_identity() and not taken \
                and buf.shape == ins.shape:
            buf.kind, buf.output_index = "output", n
            return buf.id
        out = self.materialize(ref, ins.shape, ins.dtype, kind="output")
        out.output_index = n
        return out.id


def lower(module: Module) -> Program:
    return Lowering(module).run()
