"""The one table of primitives.

Each primitive is described in one row: its shape/dtype rule, its numpy
reference (used by the interpreter, by constant folding and by tests), its
fusion kind, how it lowers into a kernel, and, for floating-point math, the
largest error (in ULP, against numpy) that tests allow.  Passes and backends
read these attributes; none of them special-cases a primitive's name.

Lowering says what a primitive becomes inside a kernel description:

* ``Scalar(op)``: one scalar operation (a name in fusion.kernel.SCALAR_OPS);
  each backend renders scalar operations in its own language.
* ``View(method)``: no code at all; the IndexMap method of that name turns the
  operand's index map into the result's.
* ``Reduce(combiner)``: a reduction over the ``axes`` attribute.
* ``Library(name)``: a call into a library routine (GEMM).
* ``Source()``: a parameter or a constant: a buffer, not a computation.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Callable

import numpy as np

from .module import Aval


class FusionKind(IntEnum):
    """Ordered as TVM orders them: cheaper to fuse first."""

    ELEMENTWISE = 0
    BROADCAST = 1
    INJECTIVE = 2
    REDUCTION = 3
    OUT_FUSABLE = 4
    OPAQUE = 5


@dataclass(frozen=True)
class Scalar:
    op: str


@dataclass(frozen=True)
class View:
    method: str


@dataclass(frozen=True)
class Reduce:
    combiner: str


@dataclass(frozen=True)
class Library:
    name: str


@dataclass(frozen=True)
class Source:
    pass


Lowering = Scalar | View | Reduce | Library | Source


class ShapeError(ValueError):
    """A shape or dtype rule does not hold."""


@dataclass(frozen=True)
class Primitive:
    name: str
    rule: Callable[[list[Aval], dict], Aval]
    reference: Callable[..., np.ndarray]
    kind: FusionKind
    lowering: Lowering
    dtypes: frozenset[str]        # operand dtypes the primitive accepts
    ulp: int = 0                  # float error bound vs numpy, 0 = exact
    expensive: bool = False       # fusion never duplicates it
    # Algebra read by the simplifier (see ALGEBRA below):
    left_identity: Callable | None = None   # dtype -> e with op(e, x) == x
    right_identity: Callable | None = None  # dtype -> e with op(x, e) == x
    involution: bool = False                # op(op(x)) == x
    compose: Callable | None = None         # (inner attrs, outer attrs) -> attrs
    noop: Callable | None = None            # (avals, attrs) -> op is identity
    transpose_flags: tuple[str, ...] = ()   # per operand: attr that reads it
                                            # transposed (layout assignment)
    repeated_by: str | None = None          # op(x, k) for a small integer k
                                            # is x combined k times by this

    def abstract_eval(self, avals: list[Aval], attrs: dict) -> Aval:
        for a in avals:
            if a.dtype not in self.dtypes:
                raise ShapeError(f"{self.name} does not accept {a.dtype} "
                                 f"(accepts {', '.join(sorted(self.dtypes))})")
        return self.rule(avals, attrs)


BOOL = frozenset({"bool"})
INT = frozenset({"int32", "int64"})
FLOAT = frozenset({"float32", "float64"})
NUM = INT | FLOAT
ALL = BOOL | NUM


# ---- shape rules ----------------------------------------------------------

def same_shape_rule(result_dtype: str | None = None):
    """Operands share one shape and dtype; result has it (or result_dtype)."""
    def rule(avals: list[Aval], attrs: dict) -> Aval:
        first = avals[0]
        for a in avals[1:]:
            if a != first:
                raise ShapeError(f"operands differ: {first} vs {a}")
        return Aval(first.shape, result_dtype or first.dtype)
    return rule


def select_rule(avals, attrs):
    pred, on_true, on_false = avals
    if pred.dtype != "bool":
        raise ShapeError(f"select predicate must be bool, got {pred}")
    if not (pred.shape == on_true.shape == on_false.shape):
        raise ShapeError(f"select shapes differ: {pred}, {on_true}, {on_false}")
    if on_true.dtype != on_false.dtype:
        raise ShapeError(f"select branches differ: {on_true} vs {on_false}")
    return on_true


def convert_rule(avals, attrs):
    return Aval(avals[0].shape, attrs["dtype"])


def broadcast_rule(avals, attrs):
    (x,), shape, dims = avals, tuple(attrs["shape"]), tuple(attrs["dims"])
    if len(dims) != len(x.shape) or list(dims) != sorted(set(dims)):
        raise ShapeError(f"broadcast dims {dims} do not fit {x}")
    for d, size in zip(dims, x.shape):
        if d >= len(shape) or size not in (1, shape[d]):
            raise ShapeError(f"cannot broadcast {x} to {list(shape)}")
    return Aval(shape, x.dtype)


def transpose_rule(avals, attrs):
    (x,), perm = avals, tuple(attrs["perm"])
    if sorted(perm) != list(range(len(x.shape))):
        raise ShapeError(f"bad permutation {perm} for {x}")
    return Aval(tuple(x.shape[p] for p in perm), x.dtype)


def reshape_rule(avals, attrs):
    (x,), shape = avals, tuple(attrs["shape"])
    if int(np.prod(shape)) != x.size:
        raise ShapeError(f"cannot reshape {x} to {list(shape)}")
    return Aval(shape, x.dtype)


def slice_rule(avals, attrs):
    (x,) = avals
    starts, steps, shape = attrs["starts"], attrs["steps"], attrs["shape"]
    for n, start, step, size in zip(x.shape, starts, steps, shape):
        last = start + step * (size - 1)
        if size and not (0 <= start < n and 0 <= last < n) or step == 0:
            raise ShapeError(f"slice out of range of {x}")
    return Aval(tuple(shape), x.dtype)


def reduce_rule(avals, attrs):
    (x,), axes = avals, tuple(attrs["axes"])
    if any(a < 0 or a >= len(x.shape) for a in axes) or \
            len(set(axes)) != len(axes):
        raise ShapeError(f"bad reduction axes {axes} for {x}")
    shape = tuple(n for k, n in enumerate(x.shape) if k not in axes)
    return Aval(shape, x.dtype)


def _dot_shapes(a, b, attrs):
    sa = a.shape[::-1] if attrs.get("transpose_a") else a.shape
    sb = b.shape[::-1] if attrs.get("transpose_b") else b.shape
    return sa, sb


def dot_rule(avals, attrs):
    a, b = avals
    if len(a.shape) != 2 or len(b.shape) != 2:
        raise ShapeError(f"dot needs 2-D operands, got {a} and {b}")
    sa, sb = _dot_shapes(a, b, attrs)
    if sa[1] != sb[0]:
        raise ShapeError(f"dot needs [m,k] x [k,n], got {a} and {b} "
                         f"(flags {attrs})")
    if a.dtype != b.dtype:
        raise ShapeError(f"dot operand dtypes differ: {a} vs {b}")
    return Aval((sa[0], sb[1]), a.dtype)


def _dot(a, b, transpose_a=False, transpose_b=False):
    return np.matmul(a.T if transpose_a else a, b.T if transpose_b else b)


def source_rule(avals, attrs):
    raise ShapeError("parameters and constants carry their own aval")


# ---- numpy references -----------------------------------------------------

def _quiet(fn):
    if fn is None:
        return None

    def ref(*args, **attrs):
        with np.errstate(all="ignore"):
            return np.asarray(fn(*args, **attrs))
    return ref


def _int_power(a, b):
    if a.dtype.kind != "i":
        return np.power(a, b)
    positive = np.power(a, np.maximum(b, 0))
    negative = np.where(a == 1, 1, np.where(a == -1, 1 - 2 * (b & 1), 0))
    return np.where(b < 0, negative.astype(a.dtype), positive)


def _shift(left: bool):
    def ref(a, b):
        bits = a.dtype.itemsize * 8
        ok = (b >= 0) & (b < bits)
        safe = np.where(ok, b, 0)
        if left:
            return np.where(ok, np.left_shift(a, safe), 0).astype(a.dtype)
        fill = np.where(a < 0, -1, 0)
        return np.where(ok, np.right_shift(a, safe), fill).astype(a.dtype)
    return ref


def _transpose(x, perm):
    return np.transpose(x, perm).copy()


def _reshape(x, shape):
    return np.reshape(x, shape).copy()


def _convert(x, dtype):
    return x.astype(dtype)


def _broadcast(x, shape, dims):
    expanded = [1] * len(shape)
    for d, size in zip(dims, x.shape):
        expanded[d] = size
    return np.broadcast_to(x.reshape(expanded), shape).copy()


def _slice(x, starts, steps, shape):
    index = tuple(slice(s, s + st * n, st) if st > 0 or s + st * n >= 0
                  else slice(s, None, st)
                  for s, st, n in zip(starts, steps, shape))
    return x[index].copy()


def _reduce(fn):
    def ref(x, axes):
        return np.asarray(fn(x, axis=tuple(axes))).astype(x.dtype)
    return ref


# ---- the table ------------------------------------------------------------

PRIMITIVES: dict[str, Primitive] = {}


def _def(name, rule, reference, kind, lowering, dtypes, ulp=0):
    PRIMITIVES[name] = Primitive(name, rule, _quiet(reference), kind,
                                 lowering, frozenset(dtypes), ulp)


E, SAME, CMP = FusionKind.ELEMENTWISE, same_shape_rule(), same_shape_rule("bool")

#    name            rule   numpy reference           kind  lowering          dtypes  ulp
_def("add",          SAME, np.add,                    E, Scalar("add"),      ALL)
_def("subtract",     SAME, np.subtract,               E, Scalar("sub"),      NUM)
_def("multiply",     SAME, np.multiply,               E, Scalar("mul"),      ALL)
_def("divide",       SAME, np.true_divide,            E, Scalar("div"),      FLOAT)
_def("floor_divide", SAME, np.floor_divide,           E, Scalar("floordiv"), NUM)
_def("remainder",    SAME, np.remainder,              E, Scalar("mod"),      NUM)
_def("power",        SAME, _int_power,                E, Scalar("pow"),      NUM, 2)
_def("maximum",      SAME, np.maximum,                E, Scalar("max"),      ALL)
_def("minimum",      SAME, np.minimum,                E, Scalar("min"),      ALL)
_def("negate",       SAME, np.negative,               E, Scalar("neg"),      NUM)
_def("abs",          SAME, np.abs,                    E, Scalar("abs"),      ALL)
_def("sign",         SAME, np.sign,                   E, Scalar("sign"),     NUM)
_def("exp",          SAME, np.exp,                    E, Scalar("exp"),      FLOAT, 4)
_def("log",          SAME, np.log,                    E, Scalar("log"),      FLOAT, 4)
_def("expm1",        SAME, np.expm1,                  E, Scalar("expm1"),    FLOAT, 4)
_def("log1p",        SAME, np.log1p,                  E, Scalar("log1p"),    FLOAT, 4)
_def("sqrt",         SAME, np.sqrt,                   E, Scalar("sqrt"),     FLOAT)
_def("tanh",         SAME, np.tanh,                   E, Scalar("tanh"),     FLOAT, 4)
_def("sine",         SAME, np.sin,                    E, Scalar("sin"),      FLOAT, 4)
_def("cosine",       SAME, np.cos,                    E, Scalar("cos"),      FLOAT, 4)
_def("compare_lt",   CMP,  np.less,                   E, Scalar("lt"),       ALL)
_def("compare_le",   CMP,  np.less_equal,             E, Scalar("le"),       ALL)
_def("compare_eq",   CMP,  np.equal,                  E, Scalar("eq"),       ALL)
_def("compare_ne",   CMP,  np.not_equal,              E, Scalar("ne"),       ALL)
_def("compare_gt",   CMP,  np.greater,                E, Scalar("gt"),       ALL)
_def("compare_ge",   CMP,  np.greater_equal,          E, Scalar("ge"),       ALL)
_def("and",          SAME, np.bitwise_and,            E, Scalar("and"),      BOOL | INT)
_def("or",           SAME, np.bitwise_or,             E, Scalar("or"),       BOOL | INT)
_def("xor",          SAME, np.bitwise_xor,            E, Scalar("xor"),      BOOL | INT)
_def("not",          SAME, np.invert,                 E, Scalar("not"),      BOOL | INT)
_def("shift_left",   SAME, _shift(True),              E, Scalar("shl"),      INT)
_def("shift_right",  SAME, _shift(False),             E, Scalar("shr"),      INT)
_def("select",       select_rule, np.where,           E, Scalar("select"),   ALL)
_def("convert",      convert_rule, _convert,          E, Scalar("convert"),  ALL)
_def("broadcast",    broadcast_rule, _broadcast,      FusionKind.BROADCAST, View("broadcast"), ALL)
_def("transpose",    transpose_rule, _transpose,      FusionKind.INJECTIVE, View("transpose"), ALL)
_def("reshape",      reshape_rule, _reshape,          FusionKind.INJECTIVE, View("reshape"), ALL)
_def("slice",        slice_rule, _slice,              FusionKind.INJECTIVE, View("slice"), ALL)
_def("reduce_sum",   reduce_rule, _reduce(np.sum),    FusionKind.REDUCTION, Reduce("add"), ALL)
_def("reduce_prod",  reduce_rule, _reduce(np.prod),   FusionKind.REDUCTION, Reduce("mul"), ALL)
_def("reduce_max",   reduce_rule, _reduce(np.max),    FusionKind.REDUCTION, Reduce("max"), ALL)
_def("reduce_min",   reduce_rule, _reduce(np.min),    FusionKind.REDUCTION, Reduce("min"), ALL)
_def("dot",          dot_rule, _dot,                  FusionKind.OUT_FUSABLE, Library("gemm"), ALL)
_def("parameter",    source_rule, None,               FusionKind.OPAQUE, Source(), ALL)
_def("constant",     source_rule, None,               FusionKind.OPAQUE, Source(), ALL)


# ---- algebra: exact (bitwise) identities only ------------------------------
# x + (-0.0) == x for every float x, but x + 0.0 is not (it turns -0.0 into
# 0.0); x - 0.0 == x always.  Nothing here reassociates or drops x * 0.

def _additive_identity(dtype: str):
    return {"bool": False, "float32": -0.0, "float64": -0.0}.get(dtype, 0)


def _multiplicative_identity(dtype: str):
    return True if dtype == "bool" else 1


def _compose_transpose(inner, outer):
    return {"perm": tuple(inner["perm"][p] for p in outer["perm"])}


def _compose_broadcast(inner, outer):
    return {"shape": outer["shape"],
            "dims": tuple(outer["dims"][d] for d in inner["dims"])}


def _compose_reshape(inner, outer):
    return {"shape": outer["shape"]}


ALGEBRA = {
    "add": dict(left_identity=_additive_identity,
                right_identity=_additive_identity),
    "subtract": dict(right_identity=lambda dtype:
                     0.0 if dtype.startswith("float") else 0),
    "multiply": dict(left_identity=_multiplicative_identity,
                     right_identity=_multiplicative_identity),
    "divide": dict(right_identity=lambda dtype: 1),
    "negate": dict(involution=True),
    "not": dict(involution=True),
    "transpose": dict(compose=_compose_transpose),
    "broadcast": dict(compose=_compose_broadcast),
    "reshape": dict(compose=_compose_reshape),
    "convert": dict(noop=lambda avals, attrs: avals[0].dtype == attrs["dtype"]),
    "dot": dict(transpose_flags=("transpose_a", "transpose_b")),
    # x**k for k in 2..4 as multiplies, as JAX's integer_pow: x**2 is
    # exact, x**3 and x**4 round twice (within the power row's 2 ULP).
    "power": dict(repeated_by="multiply"),
}
for _name, _fields in ALGEBRA.items():
    PRIMITIVES[_name] = replace(PRIMITIVES[_name], **_fields)

# Costly enough per element that fusion computes them once and stores the
# result rather than recompute them in several consumers.
for _name in ("exp", "expm1", "log", "log1p", "tanh", "sine", "cosine", "power", "divide",
              "sqrt", "floor_divide", "remainder"):
    PRIMITIVES[_name] = replace(PRIMITIVES[_name], expensive=True)


def primitive(name: str) -> Primitive:
    return PRIMITIVES[name]
