"""The backend-neutral kernel description.

A Kernel is everything a backend needs to emit one loop nest, and nothing
about how to emit it:

* ``shape``: the iteration space, one loop per dimension;
* ``args``: the buffers it touches, each with a dtype, a shape and element
  strides that are either known now (temporaries, constants, outputs) or
  passed at run time (the caller's arrays, which may have any strides);
* ``ops``: a DAG of scalar operations in SSA order.  ``load`` reads an
  argument through an :class:`~tracejit.layout.indexing.IndexMap`; every other
  op names a scalar operation (``add``, ``exp``, ``select`` ...) that each
  backend renders in its own language;
* ``reductions``: optional; each folds the value of one op over the
  ``reduce_axes`` of the iteration space with a combiner;
* ``epilogue``: scalar ops evaluated once per output point after the
  reductions (they may read reduction results with ``reduced``);
* ``stores``: which value goes to which output argument and where.

The CPU renderer (LLVM IR) and the CUDA renderer (CUDA C) both consume this
one description; they differ in loop structure and math library only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import math

from ..layout.indexing import IndexMap

# Scalar operations a kernel may contain.  Arity is fixed per name; result
# dtypes are stored on each op.  Backends must render every name here, with
# numpy's semantics for the operand dtype (bool, int32, int64, float32,
# float64); operands of an op share one dtype except where noted:
#   add, sub, mul     integers wrap; bool: add is `or`, mul is `and`.
#   div               floats only, IEEE.
#   floordiv, mod     integers: floor semantics, the remainder takes the
#                     divisor's sign; a zero divisor gives 0; MIN // -1 wraps
#                     to MIN (never trap).  floats: numpy's divmod algorithm
#                     (fmod, then sign fix-up, floor, round-half fix-up).
#   pow               floats: C pow.  integers: square-and-multiply with
#                     wrapping; a negative exponent gives 1 for base 1,
#                     +-1 for base -1 and 0 otherwise.
#   max, min          NaN-propagating: max = (a >= b or isnan(a)) ? a : b,
#                     min = (a <= b or isnan(a)) ? a : b; bool: or / and.
#   neg, abs          integers wrap; bool abs is the identity.
#   sign              (a > 0) - (a < 0); floats keep NaN.
#   exp ... cos       floats only, the platform math library's accuracy.
#   lt ... ge         result bool; float compares are ordered except ne.
#   and, or, xor, not bool (logical) or integers (bitwise).
#   shl, shr          integers; a count < 0 or >= the bit width gives 0
#                     (shr: -1 for negative a); shr is arithmetic.
#   select            select(cond: bool, a, b).
#   convert           numpy astype: float -> int truncates (saturating: the
#                     out-of-range and NaN cases numpy leaves undefined never
#                     produce poison); x -> bool is x != 0 (NaN -> True).
#   copy              the identity.
SCALAR_OPS: dict[str, int] = {
    # arithmetic
    "add": 2, "sub": 2, "mul": 2, "div": 2, "floordiv": 2, "mod": 2,
    "pow": 2, "max": 2, "min": 2,
    "neg": 1, "abs": 1, "sign": 1,
    # transcendental and roots
    "exp": 1, "log": 1, "sqrt": 1, "tanh": 1, "sin": 1, "cos": 1,
    # comparisons (result bool)
    "lt": 2, "le": 2, "eq": 2, "ne": 2, "gt": 2, "ge": 2,
    # bitwise / logical (bool or integer operands)
    "and": 2, "or": 2, "xor": 2, "not": 1, "shl": 2, "shr": 2,
    # selection and conversion
    "select": 3, "convert": 1, "copy": 1,
}

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
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    strides: tuple[int, ...] | None
    is_output: bool = False


@dataclass(frozen=True)
class ScalarOp:
    """One scalar operation.

    ``op`` is ``load``, ``const``, ``reduced`` or a name in SCALAR_OPS.
    ``args`` index earlier ops of the same list (for ``reduced``: the
    reduction number).  ``load`` carries ``arg`` (an index into Kernel.args)
    and ``index`` (an IndexMap over the kernel's iteration space).  ``const``
    carries ``value``.
    """

    op: str
    dtype: str
    args: tuple[int, ...] = ()
    arg: int | None = None
    index: IndexMap | None = None
    value: object = None


@dataclass(frozen=True)
class Reduction:
    """Fold ``ops[value]`` over the kernel's reduce axes with ``combiner``.

    ``acc_dtype`` is the dtype of the accumulator (at least as wide as the
    value's dtype).
    """

    value: int
    combiner: str
    acc_dtype: str


@dataclass(frozen=True)
class Store:
    """Write ``value`` (an op index: of ``epilogue`` when the kernel has
    reductions, else of ``ops``) to argument ``arg`` at ``index``."""

    arg: int
    value: int
    index: IndexMap


@dataclass(frozen=True)
class Kernel:
    name: str
    shape: tuple[int, ...]
    args: tuple[BufferArg, ...]
    ops: tuple[ScalarOp, ...]
    stores: tuple[Store, ...]
    reduce_axes: tuple[int, ...] = ()
    reductions: tuple[Reduction, ...] = ()
    epilogue: tuple[ScalarOp, ...] = field(default=())

    @property
    def kept_axes(self) -> tuple[int, ...]:
        return tuple(a for a in range(len(self.shape))
                     if a not in self.reduce_axes)

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
            kind = "out" if a.is_output else "in"
            strides = "runtime" if a.strides is None else list(a.strides)
            lines.append(f"  arg{k} {kind} {a.name}: {a.dtype}{list(a.shape)}"
                         f" strides={strides}")
        lines += _describe_ops("v", self.ops)
        for r, red in enumerate(self.reductions):
            lines.append(f"  r{r} = reduce_{red.combiner}(v{red.value})"
                         f" acc {red.acc_dtype}")
        lines += _describe_ops("e", self.epilogue)
        prefix = "e" if self.reductions else "v"
        for st in self.stores:
            lines.append(f"  store arg{st.arg}{st.index} = {prefix}{st.value}")
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
        else:
            rhs = op.op + "(" + ", ".join(f"{prefix}{a}" for a in op.args) + ")"
        lines.append(f"  {prefix}{k}: {op.dtype} = {rhs}")
    return lines
