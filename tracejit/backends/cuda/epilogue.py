"""Folding a GEMM's bias (+ ReLU) epilogue kernel into the GEMM call.

The fusion planner leaves ``relu(x @ w + b)`` as a GEMM call followed by
one elementwise kernel over its product (the product cannot be fused into
a library call it does not generate).  On the GPU, cuBLASLt can add the
bias and apply the ReLU itself (cublaslt.py), which saves the kernel's
pass over the product.  ``fold_epilogues`` rewrites exactly that shape:

* a float32 ``gemm`` step whose product is a temporary read by nothing
  but the next step;
* that step an elementwise kernel over the product's 2-D shape, loading
  the product at the same point, a 1-D bias along the last axis, adding
  them, optionally ``max(sum, 0)`` (in that operand order, numpy's
  ``maximum(h, 0)``), and storing that one value at the same point into
  a row-major buffer of the same shape and dtype;
* the stored buffer not overlapping the GEMM's operands in the arena
  (memory planning could give it their space, as they died before it).

The GEMM step then takes the bias as a third input and writes the
kernel's buffer, with ``epilogue`` set to ``"bias"`` or ``"relu_bias"``.
"""
from __future__ import annotations

import dataclasses

from ...fusion.program import KernelStep, LibraryStep, Program
import numpy as np

from ...layout.indexing import IndexMap, Var, row_major_strides

__all__ = ["fold_epilogues"]


def fold_epilogues(program: Program) -> Program:
    """``program`` with every foldable GEMM epilogue folded (module doc);
    the same object when there is none."""
    steps, changed, n = [], False, 0
    while n < len(program.steps):
        step = program.steps[n]
        nxt = program.steps[n + 1] if n + 1 < len(program.steps) else None
        folded = _fold(program, step, nxt, n) if nxt is not None else None
        if folded is None:
            steps.append(step)
            n += 1
        else:
            steps.append(folded)
            changed = True
            n += 2
    return dataclasses.replace(program, steps=steps) if changed else program


def _fold(program: Program, gemm, step, n: int):
    if not (isinstance(gemm, LibraryStep) and gemm.name == "gemm"
            and isinstance(step, KernelStep)):
        return None
    buffers = program.buffers
    product = buffers[gemm.output]
    if (product.kind != "temp" or product.dtype != "float32"
            or len(product.shape) != 2 or dict(gemm.attrs).get("epilogue")
            or _read_elsewhere(program, gemm.output, n + 1)):
        return None
    match = _bias_epilogue(step, gemm.output, product.shape)
    if match is None:
        return None
    kind, bias, out = match
    if buffers[bias].dtype != "float32" or \
            any(_overlap(buffers[out], buffers[i]) for i in gemm.inputs):
        return None
    return LibraryStep("gemm", (*gemm.inputs, bias), out,
                       gemm.attrs + (("epilogue", kind),))


def _read_elsewhere(program: Program, buf: int, kernel_step: int) -> bool:
    if buf in program.outputs:
        return True
    for k, step in enumerate(program.steps):
        if k == kernel_step:
            continue
        ins = step.buffers if isinstance(step, KernelStep) else step.inputs
        if buf in ins:
            return True
    return False


def _overlap(a, b) -> bool:
    if a.offset is None or b.offset is None:     # not both in the arena
        return False
    return a.offset < b.offset + b.nbytes and b.offset < a.offset + a.nbytes


def _bias_epilogue(step: KernelStep, product: int, shape):
    """("bias" | "relu_bias", bias buffer, output buffer) when the kernel
    is exactly a bias epilogue of ``product`` (module doc), else None."""
    kernel = step.kernel
    if (kernel.reduce_axes or len(kernel.stages) != 1
            or tuple(kernel.shape) != tuple(shape)):
        return None
    stage = kernel.stages[0]
    if stage.reductions or stage.after or stage.after_stores or \
            len(stage.stores) != 1:
        return None
    ops, store = stage.ops, stage.stores[0]
    identity = IndexMap.identity(tuple(shape))
    loads = {k: op for k, op in enumerate(ops) if op.op == "load"}
    if len(loads) != 2 or len(ops) not in (3, 5) or set(loads) != {0, 1}:
        return None
    roles = {}
    for k, op in loads.items():
        buf = step.buffers[op.arg]
        if buf == product and op.index == identity:
            roles["product"] = k
        elif _is_row_vector(kernel.args[op.arg], op.index, shape):
            roles["bias"] = k
            bias = buf
    if set(roles) != {"product", "bias"}:
        return None
    add = ops[2]
    if add.op != "add" or sorted(add.args) != [0, 1]:
        return None
    kind = "bias"
    if len(ops) == 5:
        const, top = ops[3], ops[4]
        if not (const.op == "const" and const.value == 0
                and not np.signbit(const.value)
                and top.op == "max" and top.args == (2, 3)):
            return None
        kind = "relu_bias"
    out_arg = kernel.args[store.arg]
    if (store.value != len(ops) - 1 or store.index != identity
            or out_arg.dtype != "float32"
            or out_arg.strides != row_major_strides(tuple(shape))):
        return None
    return kind, bias, step.buffers[store.arg]


def _is_row_vector(arg, index, shape) -> bool:
    """A 1-D argument of the last axis' length read at that axis."""
    if len(arg.shape) != 1 or arg.shape[0] != shape[1] or \
            tuple(index.extents) != tuple(shape) or len(index.exprs) != 1:
        return False
    expr = index.exprs[0]
    return (expr.const == 0 and len(expr.terms) == 1
            and isinstance(expr.terms[0][0], Var)
            and expr.terms[0][0].index == 1 and expr.terms[0][1] == 1)
