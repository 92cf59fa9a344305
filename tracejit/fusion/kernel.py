"""The backend-neutral kernel description.

A Kernel is everything a backend needs to emit one loop nest, and nothing
about how to emit it:

* ``shape``: the iteration space, one loop per dimension;
* ``args``: the buffers it touches, each with a dtype, a shape and element
  strides that are either known now (temporaries, constants, outputs) or
  passed at run time (the caller's arrays, which may have any strides);
* scalar ops: DAGs of scalar operations in SSA order.  ``load`` reads an
  argument through an :class:`~tracejit.layout.indexing.IndexMap`; every other
  op names a scalar operation (``add``, ``exp``, ``select`` ...) that each
  backend renders in its own language;
* ``reduce_axes``: the row axes; the other (kept) axes form the outer loop
  nest.  Without reduce axes the kernel is one loop nest over everything;
* ``stages``: each a loop over the row axes computing scalar ops,
  reductions and stores, then per-row work after the loop (see Stage).

The CPU renderer (LLVM IR) and the CUDA renderer (CUDA C) both consume this
one description; they differ in loop structure and math library only.
"""
from __future__ import annotations

from dataclasses import dataclass
import functools
import math

from ..layout.indexing import IndexMap

# The scalar-op vocabulary (names, arity, numpy semantics) is defined with
# the primitive table, which names these ops as lowerings.
from ..hlo.scalar_ops import SCALAR_OPS  # noqa: E402,F401  (re-exported)

# Reduction combiners: name -> identity as a function of the dtype name.
COMBINERS = ("add", "mul", "max", "min")


def combiner_identity(combiner: str, dtype: str):
    """The value a reduction over zero elements produces."""
    import numpy as np

    dt = np.dtype(dtype)
    if combiner == "add":
        return dt.type(0)
    if combiner == "mul":
        return dt.type(1)
    if dt.kind == "f":
        return dt.type(-math.inf if combiner == "max" else math.inf)
    if dt.kind == "b":
        return dt.type(combiner == "min")
    info = np.iinfo(dt)
    return dt.type(info.min if combiner == "max" else info.max)


@dataclass(frozen=True)
class BufferArg:
    """One buffer a kernel reads or writes.

    ``strides`` are element strides; ``None`` means they arrive at run time
    (in the strides array the kernel receives, ``len(shape)`` of them, in
    argument order).

    ``local`` marks a row scratch: a value one stage stores and a later
    stage of the same kernel reads back at the same point (softmax's exp).
    It is not a program buffer; the kernel allocates one row of it (its
    strides are 0 on the kept axes) and reuses it row after row, so the
    value stays in cache instead of going to memory.  Local args come
    after all others.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    strides: tuple[int, ...] | None
    is_output: bool = False
    local: bool = False

    @property
    def local_size(self) -> int:
        """Elements a local arg's row holds (span of its strides)."""
        return 1 + sum((n - 1) * st for n, st in zip(self.shape, self.strides)
                       if n > 0)


@dataclass(frozen=True)
class ScalarOp:
    """One scalar operation.

    ``op`` is ``load``, ``const``, ``reduced``, ``point`` or a name in
    SCALAR_OPS.  ``args`` index earlier ops of the same list, except for
    ``reduced`` (args = (reduction number,), counted over the whole kernel)
    and ``point`` (args = (stage, index into that stage's ``after`` list)).
    ``load`` carries ``arg`` (an index into Kernel.args) and ``index`` (an
    IndexMap over the kernel's iteration space).  ``const`` carries ``value``.
    """

    op: str
    dtype: str
    args: tuple[int, ...] = ()
    arg: int | None = None
    index: IndexMap | None = None
    value: object = None


@dataclass(frozen=True)
class Reduction:
    """Fold ``ops[value]`` of its stage over the reduce axes with
    ``combiner``; ``acc_dtype`` is the accumulator's dtype."""

    value: int
    combiner: str
    acc_dtype: str


@dataclass(frozen=True)
class Store:
    """Write op ``value`` of its list to argument ``arg`` at ``index``."""

    arg: int
    value: int
    index: IndexMap


@dataclass(frozen=True)
class Stage:
    """One loop over the row (reduce) axes, then per-row work.

    ``ops``, ``reductions`` and ``stores`` run at every point of the row
    loop (for a kernel without reduce axes: at every point of the whole
    iteration space).  ``after`` and ``after_stores`` run once per point of
    the kept axes when the loop is done; they may read this stage's and
    earlier stages' reductions (``reduced``).  Later stages may read
    ``after`` values (``point``), so a row can be reduced several times in
    one kernel (softmax: max, then sum of exp, then the normalized row).
    """

    ops: tuple[ScalarOp, ...] = ()
    reductions: tuple[Reduction, ...] = ()
    stores: tuple[Store, ...] = ()
    after: tuple[ScalarOp, ...] = ()
    after_stores: tuple[Store, ...] = ()


@dataclass(frozen=True)
class Kernel:
    name: str
    shape: tuple[int, ...]
    args: tuple[BufferArg, ...]
    stages: tuple[Stage, ...]
    reduce_axes: tuple[int, ...] = ()

    @property
    def kept_axes(self) -> tuple[int, ...]:
        return tuple(a for a in range(len(self.shape))
                     if a not in self.reduce_axes)

    @property
    def split_axis(self) -> int | None:
        """The axis a backend may split across threads: the outermost kept
        axis (rows of a row kernel, axis 0 of a loop kernel).  None when
        nothing may be split (a 0-d kernel, a full reduction)."""
        kept = self.kept_axes
        return kept[0] if kept else None

    @functools.cached_property
    def reductions(self) -> tuple[Reduction, ...]:
        """Every reduction, numbered as ``reduced`` ops count them."""
        return tuple(r for st in self.stages for r in st.reductions)

    @functools.cached_property
    def first_reduction(self) -> tuple[int, ...]:
        """Number of stage s's first reduction, for every s (and the total
        at the end): renderers look it up instead of summing stages."""
        out, count = [], 0
        for st in self.stages:
            out.append(count)
            count += len(st.reductions)
        return tuple(out + [count])

    @property
    def op_count(self) -> int:
        """Scalar ops in every stage (a measure of the code to compile)."""
        return sum(len(st.ops) + len(st.after) for st in self.stages)

    @property
    def buffer_args(self) -> tuple[BufferArg, ...]:
        """The args the caller passes (every one but the local scratch)."""
        return tuple(a for a in self.args if not a.local)

    @property
    def runtime_stride_args(self) -> tuple[int, ...]:
        """Indices of args whose strides arrive at run time, in order."""
        return tuple(k for k, a in enumerate(self.args) if a.strides is None)

    def stride_slots(self) -> dict[int, int]:
        """For each run-time-strided arg, its first slot in the strides array."""
        slots, cursor = {}, 0
        for k in self.runtime_stride_args:
            slots[k] = cursor
            cursor += len(self.args[k].shape)
        return slots

    def describe(self) -> str:
        """A readable listing, for dumps and tests."""
        lines = [f"kernel {self.name} over {list(self.shape)}"
                 + (f" reduce {list(self.reduce_axes)}"
                    if self.reduce_axes else "")]
        for k, a in enumerate(self.args):
            kind = "local" if a.local else "out" if a.is_output else "in"
            strides = "runtime" if a.strides is None else list(a.strides)
            lines.append(f"  arg{k} {kind} {a.name}: {a.dtype}{list(a.shape)}"
                         f" strides={strides}")
        count = 0
        for s, st in enumerate(self.stages):
            lines.append(f"  stage {s}:")
            lines += _describe_ops(f"s{s}v", st.ops)
            for red in st.reductions:
                lines.append(f"    r{count} = reduce_{red.combiner}"
                             f"(s{s}v{red.value}) acc {red.acc_dtype}")
                count += 1
            lines += [f"    store arg{x.arg}{x.index} = s{s}v{x.value}"
                      for x in st.stores]
            lines += _describe_ops(f"s{s}p", st.after)
            lines += [f"    store arg{x.arg}{x.index} = s{s}p{x.value}"
                      for x in st.after_stores]
        return "\n".join(lines)


def _describe_ops(prefix: str, ops: tuple[ScalarOp, ...]) -> list[str]:
    lines = []
    for k, op in enumerate(ops):
        if op.op == "load":
            rhs = f"load arg{op.arg}{op.index}"
        elif op.op == "const":
            rhs = f"const {op.value!r}"
        elif op.op == "reduced":
            rhs = f"r{op.args[0]}"
        elif op.op == "point":
            rhs = f"s{op.args[0]}p{op.args[1]}"
        else:
            rhs = op.op + "(" + ", ".join(f"{prefix}{a}" for a in op.args) + ")"
        lines.append(f"    {prefix}{k}: {op.dtype} = {rhs}")
    return lines
