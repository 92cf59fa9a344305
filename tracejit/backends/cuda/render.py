"""CUDA C source text for a fusion Kernel.

Why this module exists: the CUDA backend compiles kernels at run time with
NVRTC (through CuPy), which takes C++ source.  This is the one place that
turns the backend-neutral :class:`~tracejit.fusion.kernel.Kernel` into it.
It owns two concerns:

* loop structure: a grid-stride loop over the flat iteration space for a
  kernel without reduce axes, in groups of 16 bytes where the accesses
  allow (:mod:`.vector`); kernels with reduce axes (rows, columns, full
  reductions) are laid out by :mod:`.rowplan` (which also says how to
  launch them) and written by :mod:`.rows` and :mod:`.team`;
* scalar semantics: C++ leaves integer overflow, division by zero, wide
  shifts and out-of-range float-to-int casts undefined, and nvcc contracts
  multiplies into FMAs.  Each op renders as a plain C operator where C
  agrees with numpy, else as a PRELUDE helper spelling numpy's rule out
  (see the comment above SCALAR_OPS).  Float multiplies use ``__fmul_rn`` /
  ``__dmul_rn`` (IEEE, never fused); math uses the accurate library
  functions, never fast-math intrinsics.

It reads only the kernel description and index expressions, so it can be
tested on hand-built kernels on a machine without a GPU.
"""
from __future__ import annotations

import math
import re

import numpy as np

from ...fusion.kernel import COMBINERS, SCALAR_OPS, Kernel
from ...layout.indexing import Affine, FloorDiv, IndexMap, Var
from .prelude import PRELUDE

__all__ = ["PRELUDE", "function_names", "render_kernel", "render_module"]

# dtype name -> C type of a value, and of a buffer element.
CTYPES = {"bool": "bool", "int32": "int", "int64": "long long",
          "float32": "float", "float64": "double"}
BUFFER_CTYPES = {**CTYPES, "bool": "unsigned char"}
_KIND = {"bool": "b", "int32": "i", "int64": "i", "float32": "f",
         "float64": "f"}


# Scalar expressions.

def _calls(names: str, arity: int) -> dict[str, str]:
    args = ", ".join("{%d}" % k for k in range(arity))
    return {name: f"tj_{name}({args})" for name in names.split()}


# Format of each op's C expression per operand kind: {0}.. are the operands,
# {f} is the float function suffix ("f" for float32), {m} "f" or "d".
# Plain C operators where C already agrees with numpy, else prelude helpers.
_ANY_KIND = {"copy": "{0}", "select": "({0} ? {1} : {2})", **{
    op: f"({{0}} {c} {{1}})" for op, c in (
        ("lt", "<"), ("le", "<="), ("eq", "=="), ("ne", "!="), ("gt", ">"),
        ("ge", ">="))}}
_BY_KIND = {
    # bool: add/max are or, mul/min and; sub (numpy refuses it) is xor.
    "b": {"add": "({0} || {1})", "sub": "({0} != {1})", "mul": "({0} && {1})",
          "max": "({0} || {1})", "min": "({0} && {1})", "and": "({0} && {1})",
          "or": "({0} || {1})", "xor": "({0} != {1})", "not": "(!{0})",
          "neg": "{0}", "abs": "{0}", "sign": "{0}"},
    "i": {"and": "({0} & {1})", "or": "({0} | {1})", "xor": "({0} ^ {1})",
          "not": "(~{0})", **_calls("neg abs sign", 1),
          **_calls("add sub mul floordiv mod pow max min shl shr", 2)},
    "f": {"add": "({0} + {1})", "sub": "({0} - {1})", "div": "({0} / {1})",
          "mul": "__{m}mul_rn({0}, {1})",  # never contracted into an FMA
          "neg": "(-{0})", "abs": "fabs{f}({0})", "pow": "pow{f}({0}, {1})",
          **{op: op + "{f}({0})"
             for op in ("exp", "log", "sqrt", "tanh", "sin", "cos",
                        "expm1", "log1p")},
          **_calls("sign", 1), **_calls("floordiv mod max min", 2)},
}


def literal(value, dtype: str) -> str:
    """A C literal of ``value`` as ``dtype`` (exact; inf and NaN included)."""
    kind = _KIND[dtype]
    if kind == "b":
        return "true" if bool(value) else "false"
    if kind == "i":
        half = 2 ** (np.iinfo(dtype).bits - 1)
        value = (int(value) + half) % (2 * half) - half  # wrap, as astype
        suffix = "LL" if dtype == "int64" else ""
        if value == -half:  # the literal `half` itself would not fit
            return f"(-{half - 1}{suffix} - 1)"
        return f"{value}{suffix}" if value >= 0 else f"({value}{suffix})"
    x = np.dtype(dtype).type(value)
    suffix = "_F" if dtype == "float32" else ""
    if np.isnan(x):
        return f"TJ_NAN{suffix}"
    if np.isinf(x):
        return f"TJ_INF{suffix}" if x > 0 else f"(-TJ_INF{suffix})"
    # numpy's shortest round-trip text for the dtype: exact as a C literal.
    text = str(x) + ("f" if dtype == "float32" else "")
    return f"({text})" if text.startswith("-") else text


def convert(x: str, src: str, dst: str) -> str:
    """numpy's ``astype`` from ``src`` to ``dst`` of the C expression x."""
    if src == dst:
        return x
    if dst == "bool":
        return f"({x} != 0)"
    if _KIND[src] == "f" and _KIND[dst] == "i":
        return f"tj_to_{dst}({x})"
    return f"(({CTYPES[dst]}){x})"


def scalar_expr(op: str, src: str, dst: str, xs: list[str]) -> str:
    """The C expression of scalar op ``op`` on operand expressions ``xs``.

    ``src`` is the operands' dtype (for ``select``: of the two values),
    ``dst`` the result's.  Raises ValueError where ``op`` is undefined for
    ``src`` (e.g. ``exp`` of an integer).
    """
    if op == "convert":
        return convert(xs[0], src, dst)
    formats = {**_ANY_KIND, **_BY_KIND[_KIND[src]]}
    if op not in formats:
        raise ValueError(f"scalar op {op!r} is not defined for {src}")
    f = "f" if src == "float32" else ""
    return formats[op].format(*xs, f=f, m=f or "d")


# Index expressions and addresses.  ``names[k]`` is the C name of iteration
# variable k, or None where it is out of scope (reduced axes after the loop).

def _affine(expr: Affine, names: tuple) -> str:
    parts = []
    for atom, coeff in expr.terms:
        if isinstance(atom, Var):
            if names[atom.index] is None:
                raise ValueError(f"index uses i{atom.index}, which is out of"
                                 " scope here (a reduced axis?)")
            text = names[atom.index]
        else:  # arguments are non-negative: C's truncating / and % are exact
            c_op = "/" if isinstance(atom, FloorDiv) else "%"
            text = f"(({_affine(atom.expr, names)}) {c_op} {atom.divisor}LL)"
        parts.append(text if coeff == 1 else f"{coeff}LL * {text}")
    if expr.const or not parts:
        parts.append(f"{expr.const}LL")
    return " + ".join(parts)


def _offset(kernel: Kernel, k: int, index: IndexMap, names: tuple) -> str:
    """The element offset of buffer ``k`` at ``index``."""
    buf = kernel.args[k]
    if len(index.exprs) != len(buf.shape):
        raise ValueError(f"index {index} has {len(index.exprs)} dims; "
                         f"arg{k} has {len(buf.shape)}")
    if len(index.extents) != len(kernel.shape):  # a map over the kept axes
        names = tuple(names[a] for a in kernel.kept_axes)
    if buf.strides is not None:
        total = Affine()
        for expr, stride in zip(index.exprs, buf.strides):
            total = total + expr.scale(stride)
        return _affine(total, names)
    slot = kernel.stride_slots()[k]
    parts = [(f"strides[{slot + j}]", _affine(expr, names))
             for j, expr in enumerate(index.exprs) if expr != Affine()]
    return " + ".join(f"{s} * {e}" if e.isidentifier() else f"{s} * ({e})"
                      for s, e in parts) or "0LL"


# Statements and loops.  The values of stage s are named as
# Kernel.describe() lists them: ``s<s>v<k>`` in the row loop, ``s<s>p<k>``
# after it; reduction r accumulates in ``r<r>``.

def _part(kernel: Kernel, s: int, after: bool):
    """(ops, stores, value-name prefix) of stage ``s``'s row loop, or of
    its per-point work after the loop."""
    st = kernel.stages[s]
    return ((st.after, st.after_stores, f"s{s}p") if after
            else (st.ops, st.stores, f"s{s}v"))


def _ops(kernel: Kernel, s: int, after: bool, names: tuple,
         loads: dict[int, str] | None = None) -> list[str]:
    """One ``const T <prefix><k> = ...;`` line per op (see _part).

    ``loads`` maps a load op's index to the C expression that replaces it
    (a row kept in shared memory by an earlier stage)."""
    ops, _, prefix = _part(kernel, s, after)
    # reductions finished so far: earlier stages', plus this one's if after
    done = kernel.first_reduction[s + after]
    lines = []
    for k, op in enumerate(ops):
        if loads and k in loads:
            value = loads[k]
        elif op.op == "load":
            buf = kernel.args[op.arg]
            value = f"a{op.arg}[{_offset(kernel, op.arg, op.index, names)}]"
            if buf.dtype == "bool":
                value = f"({value} != 0)"
            value = convert(value, buf.dtype, op.dtype)
        elif op.op == "const":
            value = literal(op.value, op.dtype)
        elif op.op == "reduced":  # args: (reduction number,)
            (r,) = op.args
            if not 0 <= r < done:
                raise ValueError(f"{prefix}{k}: r{r} is not finished here")
            value = convert(f"r{r}", kernel.reductions[r].acc_dtype, op.dtype)
        elif op.op == "point":  # args: (stage, index into its after list)
            t, n = op.args
            if not (0 <= t < s and 0 <= n < len(kernel.stages[t].after)):
                raise ValueError(f"{prefix}{k}: s{t}p{n} is not computed "
                                 "before this stage")
            value = convert(f"s{t}p{n}", kernel.stages[t].after[n].dtype,
                            op.dtype)
        else:
            if SCALAR_OPS.get(op.op) != len(op.args):
                raise ValueError(f"{prefix}{k}: bad op {op.op!r} with "
                                 f"{len(op.args)} operands")
            if any(not 0 <= a < k for a in op.args):
                raise ValueError(f"{prefix}{k}: operands must be earlier ops")
            src = ops[op.args[1 if op.op == "select" else 0]].dtype
            value = scalar_expr(op.op, src, op.dtype,
                                [f"{prefix}{a}" for a in op.args])
        lines.append(f"const {CTYPES[op.dtype]} {prefix}{k} = {value};")
    return lines


def _stores(kernel: Kernel, s: int, after: bool, names: tuple) -> list[str]:
    ops, stores, prefix = _part(kernel, s, after)
    if any(not kernel.args[st.arg].is_output for st in stores):
        raise ValueError(f"kernel {kernel.name!r} stores to an input")
    return [f"a{st.arg}[{_offset(kernel, st.arg, st.index, names)}] = "
            + convert(f"{prefix}{st.value}", ops[st.value].dtype,
                      kernel.args[st.arg].dtype) + ";" for st in stores]


def _unravel(flat: str, axes: tuple[int, ...], shape) -> list[str]:
    """Declare ``i<a>`` for each of ``axes`` from the row-major position
    ``flat`` over those axes."""
    lines, rest = [], flat
    for pos in range(len(axes) - 1, -1, -1):
        a, extent = axes[pos], shape[axes[pos]]
        if pos == 0:
            lines.append(f"const long long i{a} = {rest};")
        elif extent == 1:
            lines.append(f"const long long i{a} = 0;")
        else:
            lines.append(f"const long long i{a} = {rest} % {extent}LL;")
            lines.append(f"const long long q{a} = {rest} / {extent}LL;")
            rest = f"q{a}"
    return lines


def _indent(lines: list[str]) -> list[str]:
    return ["  " + line for line in lines]


def _grid_stride(var: str, count: int, body: list[str]) -> list[str]:
    if count == 0:
        return ["// empty iteration space: nothing to do"]
    return [f"for (long long {var} = (long long)blockIdx.x * blockDim.x"
            f" + threadIdx.x; {var} < {count}LL;",
            f"     {var} += (long long)blockDim.x * gridDim.x) {{",
            *_indent(body), "}"]


def _elementwise(kernel: Kernel) -> list[str]:
    """One stage, every point of the iteration space independent."""
    axes = tuple(range(len(kernel.shape)))
    names = tuple(f"i{a}" for a in axes)
    body = [*_unravel("flat", axes, kernel.shape),
            *_ops(kernel, 0, False, names),
            *_stores(kernel, 0, False, names)]
    return _grid_stride("flat", math.prod(kernel.shape), body)


def _check(kernel: Kernel) -> None:
    if not re.fullmatch(r"[A-Za-z_]\w*", kernel.name):
        raise ValueError(f"kernel name {kernel.name!r} is not a C identifier")
    if {buf.dtype for buf in kernel.args} - set(CTYPES):
        raise ValueError(f"kernel {kernel.name!r}: unsupported dtype")
    if any(red.combiner not in COMBINERS for red in kernel.reductions):
        raise ValueError(f"kernel {kernel.name!r}: unknown combiner")
    if not kernel.reduce_axes and (
            len(kernel.stages) != 1 or kernel.reductions
            or kernel.stages[0].after or kernel.stages[0].after_stores):
        raise ValueError(f"kernel {kernel.name!r}: without reduce_axes a "
                         "kernel is one stage of row ops and stores")


def signature(kernel: Kernel, name: str, threads: int | None = None,
              scratch: bool = False) -> str:
    """The opening line of function ``name`` of ``kernel``: one pointer per
    argument but the row scratch (``const`` for inputs), the run-time
    strides, then ``scratch`` (global memory the launcher provides) where
    the layout needs it.  ``threads``: the most threads per block it is
    launched with (``__launch_bounds__``, so the registers fit)."""
    params = [f"{'' if buf.is_output else 'const '}{BUFFER_CTYPES[buf.dtype]}"
              f"* __restrict__ a{k}" for k, buf in enumerate(kernel.args)
              if not buf.local]
    params.append("const long long* __restrict__ strides")
    if scratch:
        params.append("unsigned char* __restrict__ scratch")
    bounds = f"__launch_bounds__({threads}) " if threads else ""
    return (f'extern "C" __global__ {bounds}void {name}('
            + ", ".join(params) + ") {")


def describe_comment(kernel: Kernel) -> list[str]:
    """The kernel's description as C comments, above its function(s)."""
    return ["// " + line.rstrip("\\")  # no line-continuing comments
            for line in kernel.describe().splitlines()]


def _render_function(kernel: Kernel) -> str:
    _check(kernel)
    if kernel.reduce_axes:
        from . import rows   # rows builds on this module's helpers
        return rows.render_functions(kernel)
    from . import vector   # groups of points build on this module
    lines = describe_comment(kernel) + [signature(kernel, kernel.name)]
    body = vector.elementwise(kernel) or _elementwise(kernel)
    return "\n".join(lines + _indent(body) + ["}", ""])


def function_names(kernel: Kernel) -> tuple[str, ...]:
    """The ``__global__`` functions rendered for ``kernel``, in launch
    order (a two-pass reduction has two)."""
    if kernel.reduce_axes:
        from .rowplan import plan
        return plan(kernel).functions
    return (kernel.name,)


def render_kernel(kernel: Kernel) -> str:
    """Self-contained CUDA C source (prelude included) of the
    ``extern "C" __global__`` functions of ``kernel`` (function_names: one
    named ``kernel.name``, and ``<name>_finish`` for a two-pass reduction).

    Parameters: one pointer per argument but the row scratch (``const`` for
    inputs), then ``const long long* strides``, the run-time element
    strides of the arguments whose strides are None (see
    Kernel.stride_slots), then, where ``rowplan.launches`` asks for scratch
    bytes, ``unsigned char* scratch``.  The loops are grid-stride loops, so
    any grid works; blocks of 1 thread or a multiple of 32, up to the
    function's ``__launch_bounds__``, with the dynamic shared memory
    ``rowplan.launches`` gives.
    """
    return PRELUDE + "\n" + _render_function(kernel)


def render_module(kernels) -> str:
    """Several kernels in one source, sharing one prelude."""
    return PRELUDE + "\n" + "\n".join(_render_function(k) for k in kernels)
