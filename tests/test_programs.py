"""Random programs: jit(f)(*xs) against f(*xs) under numpy, and against the
reference interpreter (tracejit.hlo.evaluate) on the traced module.

A program is 1 to 10 operations over 1 to 3 inputs of mutually
broadcastable shapes and random dtypes.  Each operation is drawn from: unary
math (exp, log, sqrt, tanh, sin, cos, negative, abs, square), binary
arithmetic (+, -, *, /, //, %, maximum, minimum; operands of different but
broadcastable shapes, or a Python scalar), comparisons and where, logical
and bitwise ops, reductions (sum, prod, max, min, mean with axis None / int
/ tuple and keepdims), transpose, reshape, basic slicing, broadcast_to and
astype.  It returns the last value and sometimes another one.

The program is built while it is evaluated under numpy on the drawn inputs,
so each operation is checked for validity where it is chosen (numpy must
accept it, in a dtype tracejit supports), and alongside every value an
*error bound* is propagated: how far jit's value may be from numpy's.
Exact operations (IEEE +, -, *, /, sqrt, comparisons, casts ...) on exact
operands give bit-identical results, so their bound stays 0; the
transcendental functions add their ULP bound from the primitive table;
float reductions add 2 * n * eps * sum|x| (the summation order differs); and
bounds propagate through later operations by their derivatives.  Operations
whose result jumps (comparisons, //, %, float -> int / bool casts) are only
applied to values whose bound is 0, so the programs' NaN patterns and
branches are deterministic.  Values stay in safe ranges (log and sqrt take
abs(x) + 1, exp takes minimum(x, 30), division is by abs(y) + 1); inputs
hold NaN and infinities only in elementwise-only programs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, note, reject, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tracejit
from tracejit.hlo import evaluate
from tracejit.hlo.primitives import PRIMITIVES

from strategies import (DTYPES, SUPPORTED, FLOAT_DTYPES, assert_same,
                        assert_within, axes, broadcast_targets,
                        broadcastable_shapes, call_jitted, elements,
                        index_keys, known_bug, reshape_targets)
from backends import check_on, host, jit_on, laid_out, on_backends
MAX_SIZE = 4096
MAX_RANK = 6


# ---- values and their error bounds ------------------------------------------

@dataclass
class Value:
    """A value of the program under numpy, and a bound (float64, broadcast
    to its shape) on the distance of jit's value from it."""

    x: np.ndarray
    err: np.ndarray

    @property
    def exact(self) -> bool:
        return not np.any(self.err)          # NaN counts as inexact

    @property
    def is_float(self) -> bool:
        return self.x.dtype.kind == "f"


def _eps(dtype) -> float:
    dtype = np.dtype(dtype)
    return float(np.finfo(dtype).eps) if dtype.kind == "f" else 0.0


def _tiny(dtype) -> float:
    dtype = np.dtype(dtype)
    return float(np.finfo(dtype).tiny) if dtype.kind == "f" else 0.0


def _f64(x) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.asarray(x).astype(np.float64)


def _rounding(r: np.ndarray, ulps: float) -> np.ndarray:
    """``ulps`` units of rounding of the result ``r`` (at least of the
    smallest normal, so denormal results are covered)."""
    if r.dtype.kind != "f":
        return np.zeros(r.shape)
    return ulps * _eps(r.dtype) * np.maximum(np.abs(_f64(r)), _tiny(r.dtype))


def _clean(bound, active, shape) -> np.ndarray:
    """``bound`` where ``active``, else 0; NaN bounds become inf."""
    with np.errstate(all="ignore"):
        bound = np.where(active, np.nan_to_num(bound, nan=np.inf,
                                               posinf=np.inf), 0.0)
    return np.broadcast_to(bound, shape).astype(np.float64)


# ---- operations -------------------------------------------------------------
#
# An operation is drawn by a builder: builder(draw, pool) returns
# (label, fn, operand indices, bound function) or None when it does not
# apply to the values at hand.  fn takes the operand values (numpy arrays or
# tracers) and must use only numpy's API; bound(operands, result) gives the
# result's error bound.

ULP = {name: PRIMITIVES[prim].ulp for name, prim in [
    ("exp", "exp"), ("log", "log"), ("tanh", "tanh"), ("sin", "sine"),
    ("cos", "cosine"), ("sqrt", "sqrt")]}


def _pick(draw, pool, pred=lambda v: True, label="operand"):
    """Index of a pool value satisfying ``pred`` (biased to recent ones)."""
    ok = [k for k, v in enumerate(pool) if pred(v)]
    if not ok:
        return None
    if draw(st.booleans(), label=f"{label}: latest"):
        return ok[-1]
    return draw(st.sampled_from(ok), label=label)


def _unary_math(name):
    """exp, log, sqrt, tanh, sin, cos on safe arguments."""
    fns = {
        "exp": lambda a: np.exp(np.minimum(a, 30)),
        "log": lambda a: np.log(np.abs(a) + 1),
        "sqrt": lambda a: np.sqrt(np.abs(a) + 1),
        "tanh": np.tanh, "sin": np.sin, "cos": np.cos,
    }
    labels = {"exp": "exp(minimum(a, 30))", "log": "log(abs(a) + 1)",
              "sqrt": "sqrt(abs(a) + 1)"}

    def bound(ops, r):
        (a,) = ops
        ea = a.err
        if name == "exp":     # d/da exp(a) = exp(a)
            with np.errstate(all="ignore"):
                prop = np.abs(_f64(r)) * np.expm1(np.minimum(ea, 700))
        elif name == "sqrt":  # derivative <= 1/2; the + 1 rounds when inexact
            prop = 0.5 * (ea + _eps(r.dtype) * (np.abs(_f64(a.x)) + 1))
        elif name == "log":   # derivative <= 1; the + 1 rounds
            prop = ea + _eps(r.dtype)
        else:                 # |derivative| <= 1, |result| <= 1
            prop = np.minimum(ea, 2.0)
        if name == "sqrt":    # correctly rounded: exact on exact input
            return _clean(prop + _rounding(r, 1), ea > 0, r.shape)
        return _clean(prop * (ea > 0) + _rounding(r, ULP[name] + 1), True,
                      r.shape)

    def build(draw, pool):
        i = _pick(draw, pool, lambda v: v.x.dtype.kind in "if")
        if i is None:
            return None
        return f"{labels.get(name, name + '(a)')}", fns[name], (i,), bound
    return build


def _exact_unary(name):
    fns = {"negative": np.negative, "abs": np.abs, "square": np.square,
           "invert": np.invert}

    def bound(ops, r):
        (a,) = ops
        if name == "square":
            ax = np.abs(_f64(a.x))
            return _clean(2 * ax * a.err + a.err ** 2 + _rounding(r, 1),
                          a.err > 0, r.shape)
        return _clean(a.err, a.err > 0, r.shape)

    def build(draw, pool):
        i = _pick(draw, pool, lambda v: name != "invert" or v.exact)
        if i is None:
            return None
        return f"{name}(a)", fns[name], (i,), bound
    return build


def _broadcastable(*shapes_) -> bool:
    try:
        shape = np.broadcast_shapes(*shapes_)
    except ValueError:
        return False
    return math.prod(shape) <= MAX_SIZE and len(shape) <= MAX_RANK


SCALARS = [2, -3, 0, 1, 0.5, -1.5, 2.0, True]


def _floaty(b) -> bool:
    """Is ``b`` (array, tracer or Python scalar) a float?"""
    if isinstance(b, (bool, int)):
        return False
    return isinstance(b, float) or b.dtype.kind == "f"


def _binary(name):
    """Binary arithmetic, maximum/minimum, comparisons, logical ops."""
    discontinuous = name in ("floor_divide", "remainder", "less", "equal",
                             "greater_equal", "not_equal", "and", "or",
                             "xor")
    fns = {
        "add": np.add, "subtract": np.subtract, "multiply": np.multiply,
        "divide": lambda a, b: a / (np.abs(b) + 1),
        # abs: maximum/minimum may give either sign of zero, which would
        # decide the sign of an infinite quotient
        "floor_divide": lambda a, b: a // (np.abs(b) if _floaty(b) else b),
        "remainder": lambda a, b: a % (np.abs(b) if _floaty(b) else b),
        "maximum": np.maximum, "minimum": np.minimum,
        "less": np.less, "equal": np.equal,
        "greater_equal": np.greater_equal, "not_equal": np.not_equal,
        "and": lambda a, b: a & b, "or": lambda a, b: a | b,
        "xor": lambda a, b: a ^ b,
    }

    def bound(ops, r):
        if discontinuous:
            return np.zeros(r.shape)
        a, b = ops
        ea, eb = a.err, b.err
        active = (ea > 0) | (eb > 0)
        ax, bx = np.abs(_f64(a.x)), np.abs(_f64(b.x))
        with np.errstate(all="ignore"):
            if name in ("add", "subtract"):
                prop = ea + eb + _rounding(r, 1)
            elif name == "multiply":
                prop = ax * eb + bx * ea + ea * eb + _rounding(r, 1)
            elif name == "divide":    # divisor abs(b) + 1 >= 1
                prop = ea + np.abs(_f64(r)) * (eb + _eps(r.dtype) * (bx + 1)) \
                    + _rounding(r, 1)
            else:                     # maximum, minimum
                prop = np.maximum(ea, eb)
        return _clean(prop, active, r.shape)

    def build(draw, pool):
        need_exact = (lambda v: v.exact) if discontinuous else \
            (lambda v: True)
        i = _pick(draw, pool, need_exact, "a")
        if i is None:
            return None
        a = pool[i]
        if draw(st.integers(0, 3), label="scalar operand?") == 0:
            s = draw(st.sampled_from(SCALARS), label="scalar")
            const = Value(np.asarray(s), np.zeros(()))

            def fn(x, f=fns[name], s=s):
                return f(x, s)

            def scalar_bound(ops, r, const=const):
                return bound([ops[0], const], r)
            return f"{name}(a, {s!r})", fn, (i,), scalar_bound
        j = _pick(draw, pool, lambda v: need_exact(v) and _broadcastable(
            v.x.shape, a.x.shape), "b")
        if j is None:
            return None
        return f"{name}(a, b)", fns[name], (i, j), bound
    return build


def _where(draw, pool):
    """where(c, x, y) with an exact bool c, or where(a > 0, x, y)."""
    c = _pick(draw, pool, lambda v: v.x.dtype == bool, "cond")
    inline = c is None or draw(st.booleans(), label="inline compare")
    if inline:
        c = _pick(draw, pool, lambda v: v.exact and v.x.dtype != bool,
                  "compared")
        if c is None:
            return None
    shape_c = pool[c].x.shape
    i = _pick(draw, pool, lambda v: _broadcastable(v.x.shape, shape_c), "x")
    j = _pick(draw, pool, lambda v: _broadcastable(
        v.x.shape, shape_c, pool[i].x.shape), "y")
    if j is None:
        return None

    def fn(cond, x, y):
        return np.where(cond > 0 if inline else cond, x, y)

    def bound(ops, r):
        cond, x, y = ops
        cv = cond.x > 0 if inline else cond.x
        return _clean(np.where(cv, x.err, y.err), True, r.shape)
    label = "where(c > 0, x, y)" if inline else "where(c, x, y)"
    return label, fn, (c, i, j), bound


def _reduction(kind):
    def build(draw, pool):
        i = _pick(draw, pool)
        a = pool[i]
        ndim = a.x.ndim
        axis = draw(axes(ndim, allow_bad=False), label="axis")
        keepdims = draw(st.booleans(), label="keepdims")
        axes_ = tuple(range(ndim)) if axis is None else tuple(
            ax % ndim for ax in (axis if isinstance(axis, tuple) else
                                 (axis,)))
        n = math.prod(a.x.shape[ax] for ax in axes_)
        finite = np.abs(_f64(a.x))[np.isfinite(_f64(a.x))]
        if kind in ("max", "min") and n == 0 and axes_:
            return None                  # numpy raises: nothing to reduce
        if a.is_float and kind in ("sum", "mean") and finite.size and \
                finite.sum() > (1e36 if a.x.dtype == np.float32 else 1e300):
            return None                  # overflow order is unspecified
        if a.is_float and kind == "prod" and finite.size and \
                finite.max() > 1:
            return None                  # keep partial products <= 1
        fn_np = {"sum": np.sum, "prod": np.prod, "max": np.max,
                 "min": np.min, "mean": np.mean}[kind]
        method = draw(st.booleans(), label="method form")

        def fn(x):
            if method:
                return getattr(x, kind)(axis=axis, keepdims=keepdims)
            return fn_np(x, axis=axis, keepdims=keepdims)

        def bound(ops, r):
            (v,) = ops
            ea = np.broadcast_to(v.err, v.x.shape)
            with np.errstate(all="ignore"):
                if kind in ("max", "min"):
                    e = np.max(ea, axis=axis, keepdims=keepdims,
                               initial=0.0)
                    return _clean(e, e > 0, r.shape)
                if r.dtype.kind != "f":
                    return np.zeros(r.shape)
                nn = max(n, 1)
                eps = _eps(r.dtype)
                esum = np.sum(ea, axis=axis, keepdims=keepdims)
                if kind == "prod":
                    e = esum + 2 * nn * eps + _tiny(r.dtype)
                else:
                    s = np.sum(np.abs(_f64(v.x)), axis=axis,
                               keepdims=keepdims)
                    e = esum + 2 * nn * eps * s + _tiny(r.dtype)
                    if kind == "mean":
                        e = e / nn + _rounding(r, 1)
            return _clean(e, True, r.shape)
        form = f"a.{kind}" if method else f"np.{kind}"
        return f"{form}(axis={axis}, keepdims={keepdims})", fn, (i,), bound
    return build


def _structural(kind):
    """transpose, reshape, slicing, broadcast_to: the bound goes through the
    same view."""
    def build(draw, pool):
        i = _pick(draw, pool)
        shape = pool[i].x.shape
        if kind == "transpose":
            perm = tuple(draw(st.permutations(range(len(shape))),
                              label="perm"))
            if draw(st.booleans(), label=".T"):
                label, fn = "a.T", (lambda x: x.T)
            else:
                label, fn = f"transpose(a, {perm})", \
                    (lambda x: np.transpose(x, perm))
        elif kind == "reshape":
            target = draw(reshape_targets(shape), label="target")
            label, fn = f"a.reshape({target})", (lambda x: x.reshape(target))
        elif kind == "slice":
            key = draw(index_keys(shape, allow_bad=False), label="key")
            label, fn = f"a[{key}]", (lambda x: x[key])
        else:
            target = draw(broadcast_targets(shape), label="target")
            if math.prod(target) > MAX_SIZE or len(target) > MAX_RANK:
                return None
            label, fn = f"broadcast_to(a, {target})", \
                (lambda x: np.broadcast_to(x, target))

        def bound(ops, r):
            (v,) = ops
            return np.asarray(fn(np.broadcast_to(v.err, v.x.shape)),
                              np.float64).copy()
        return label, fn, (i,), bound
    return build


def _astype(draw, pool):
    dst = draw(st.sampled_from(DTYPES), label="astype")
    i = _pick(draw, pool)
    a = pool[i]
    to_int = np.dtype(dst).kind in "iu"
    if a.is_float and (to_int or dst == "bool"):
        if not a.exact:
            return None
        if to_int:
            # NaN and out-of-range casts are undefined in numpy: sanitize
            def fn(x):
                return np.where(x == x, np.clip(x, -1e9, 1e9), 0).astype(dst)
            label = f"where(a == a, clip(a, -1e9, 1e9), 0).astype({dst})"
            return label, fn, (i,), lambda ops, r: np.zeros(r.shape)

    def fn(x):
        return x.astype(dst)

    def bound(ops, r):
        (v,) = ops
        return _clean(v.err + _rounding(r, 1), v.err > 0, r.shape)
    return f"a.astype({dst})", fn, (i,), bound


ELEMENTWISE_OPS = {
    **{f: _unary_math(f) for f in ("exp", "log", "sqrt", "tanh", "sin",
                                   "cos")},
    **{f: _exact_unary(f) for f in ("negative", "abs", "square", "invert")},
    **{f: _binary(f) for f in ("add", "subtract", "multiply", "divide",
                               "floor_divide", "remainder", "maximum",
                               "minimum", "less", "equal", "greater_equal",
                               "not_equal", "and", "or", "xor")},
    "where": _where, "astype": _astype,
}
OPS = {
    **ELEMENTWISE_OPS,
    **{f"reduce_{k}": _reduction(k) for k in ("sum", "prod", "max", "min",
                                              "mean")},
    **{k: _structural(k) for k in ("transpose", "reshape", "slice",
                                   "broadcast_to")},
}


# ---- programs ---------------------------------------------------------------

@dataclass
class Program:
    steps: list          # (label, fn, operand indices)
    outputs: tuple       # pool indices returned
    n_inputs: int

    def __call__(self, *xs):
        vals = list(xs)
        for _, fn, idx in self.steps:
            out = fn(*(vals[k] for k in idx))
            if isinstance(out, np.generic):     # numpy scalar -> 0-d array
                out = np.asarray(out)
            vals.append(out)
        return tuple(vals[k] for k in self.outputs)

    def text(self) -> str:
        lines = [f"v{k} = input {k}" for k in range(self.n_inputs)]
        for n, (label, _, idx) in enumerate(self.steps):
            args = ", ".join(f"v{k}" for k in idx)
            lines.append(f"v{self.n_inputs + n} = {label}  [{args}]")
        lines.append("return " + ", ".join(f"v{k}" for k in self.outputs))
        return "\n".join(lines)


INPUT_DTYPES = ["float64", "float32", "float32", "float64", "int32",
                "int64", "bool"]


@st.composite
def program_inputs(draw, elementwise_only: bool):
    n = draw(st.integers(1, 3), label="inputs")
    in_shapes = draw(broadcastable_shapes(n, max_dims=4, max_side=4),
                     label="shapes")
    xs = []
    for k, shape in enumerate(in_shapes):
        dtype = draw(st.sampled_from(INPUT_DTYPES), label=f"dtype {k}")
        if dtype in ("float32", "float64"):
            elems = elements(dtype, special=elementwise_only,
                             max_magnitude=100.0)
        elif dtype == "bool":
            elems = elements(dtype)
        else:
            elems = elements(dtype, min_value=-2**20, max_value=2**20)
        xs.append(draw(hnp.arrays(np.dtype(dtype), shape, elements=elems),
                       label=f"x{k}"))
    return xs


def build_program(draw, xs, elementwise_only: bool):
    """Draw 1 to 10 operations, evaluating each under numpy as it goes."""
    pool = [Value(x, np.zeros(x.shape)) for x in xs]
    table = ELEMENTWISE_OPS if elementwise_only else OPS
    # the first name is what hypothesis draws most (its "simplest" choice):
    # make it a binary op, which broadcasts values against each other
    names = ["add"] + sorted(set(table) - {"add"})
    steps = []
    n_ops = draw(st.integers(1, 10), label="ops")
    for _ in range(n_ops):
        for _attempt in range(20):
            name = draw(st.sampled_from(names), label="op")
            made = table[name](draw, pool)
            if made is None:
                continue
            label, fn, idx, bound = made
            try:
                with np.errstate(all="ignore"):
                    r = fn(*(pool[k].x for k in idx))
            except (TypeError, ValueError, IndexError):
                continue                    # numpy refuses: draw another
            r = np.asarray(r)
            if r.dtype.name not in SUPPORTED or r.size > MAX_SIZE or \
                    r.ndim > MAX_RANK:
                continue
            with np.errstate(all="ignore"):
                err = np.asarray(bound([pool[k] for k in idx], r),
                                 np.float64)
            pool.append(Value(r, np.broadcast_to(err, r.shape)))
            steps.append((label, fn, idx))
            break
    if not steps:
        reject()
    outputs = (len(pool) - 1,)
    if draw(st.booleans(), label="second output"):
        outputs += (draw(st.integers(0, len(pool) - 1), label="output 2"),)
    return Program(steps, outputs, len(xs)), pool


def compare_outputs(actual, pool, program, what):
    actual = list(actual)
    assert len(actual) == len(program.outputs), what
    for n, (a, k) in enumerate(zip(actual, program.outputs)):
        v = pool[k]
        where = f"{what}, output {n} (v{k})"
        if v.x.dtype.kind == "f":
            assert_within(a, v.x, v.err, where)
        else:
            assert_same(a, v.x, where)


def check_program(data, elementwise_only: bool, backend: str = "cpu"):
    xs = data.draw(program_inputs(elementwise_only), label="inputs")
    program, pool = build_program(data.draw, xs, elementwise_only)
    note(program.text())
    copies = [x.copy() for x in xs]

    # numpy runs the same program to the same values
    with np.errstate(all="ignore"):
        expected = program(*xs)
    for e, k in zip(expected, program.outputs):
        assert_same(np.asarray(e), pool[k].x, f"numpy rerun of v{k}",
                    signed_zeros=False)

    jitted = jit_on(backend, program)
    for label, _, passed in laid_out(backend, xs):
        actual = host(backend, call_jitted(jitted, passed))
        compare_outputs(actual, pool, program, f"jit {backend} [{label}]")
    for x, c in zip(xs, copies):
        assert np.array_equal(x, c, equal_nan=x.dtype.kind == "f"), \
            "jit modified its input"
    assert jitted.cache_info().compiles == 1, jitted.cache_info()
    if backend != "cpu":
        return      # the traced module does not depend on the backend

    # the reference interpreter on the traced (optimized) module
    try:
        module = jitted.lower(*xs)._traced.module
        with np.errstate(all="ignore"):
            interpreted = evaluate(module, list(xs))
    except Exception as err:
        if known_bug(err):
            reject()
        raise
    compare_outputs(interpreted, pool, program, "hlo.evaluate")


PROGRAMS = max(300, settings().max_examples * 12)


@on_backends
@settings(max_examples=PROGRAMS)
@given(data=st.data())
def test_random_programs(backend, data):
    """300 random programs in the ci profile (the acceptance test asks for
    at least 200), 12x the profile's max_examples otherwise."""
    check_program(data, elementwise_only=False, backend=backend)


@on_backends
@settings(max_examples=max(50, PROGRAMS // 4))
@given(data=st.data())
def test_random_elementwise_programs_with_nan(backend, data):
    """Elementwise-only programs over inputs holding NaN and infinities."""
    check_program(data, elementwise_only=True, backend=backend)


@pytest.mark.slow
@on_backends
@settings(max_examples=max(5000, PROGRAMS * 4), derandomize=False)
@given(data=st.data())
def test_random_programs_slow(backend, data):
    """Thousands of random programs, randomized (``-m slow``)."""
    check_program(data, elementwise_only=data.draw(st.booleans()),
                  backend=backend)


# ---- composite patterns ---------------------------------------------------------
#
# Hand-written programs with the shapes fusion cares about: reductions
# broadcast back against their input (softmax, normalization), values used
# several times (diamonds), several outputs sharing work, elementwise code
# around a matrix product, reductions of views.  Inputs are bounded floats;
# the tolerance is relative to the magnitudes involved.

PATTERNS = {
    "softmax": lambda x, y: (lambda e: e / e.sum(axis=-1, keepdims=True))(
        np.exp(x - x.max(axis=-1, keepdims=True))),
    "logsumexp": lambda x, y: (lambda m: m + np.log(np.exp(x - m).sum(
        axis=-1, keepdims=True)))(x.max(axis=-1, keepdims=True)),
    "standardize": lambda x, y: (lambda c: c / np.sqrt(
        (c * c).mean(axis=0) + 1e-3))(x - x.mean(axis=0)),
    "shared outputs": lambda x, y: (lambda t: (t, t.sum(), t * 2, t.T,
                                               t[::-1]))(np.tanh(x)),
    "diamond": lambda x, y: (lambda a: ((a + 1) * (a - 1)).sum(axis=0))(
        x * 2),
    "outer": lambda x, y: (x[:, :1] * y[None, :]).sum(axis=1),
    "gemm epilogue": lambda x, y: np.tanh(x @ x.T + y.sum()) * 0.5,
    # (compared with an exact reduction: a mean's rounding would decide)
    "where of max": lambda x, y: np.where(x > x.max(axis=0) * 0.5, x,
                                          0).sum(axis=1),
    "reduce a view": lambda x, y: (x.T[::-1] * 2 + 1).sum(axis=1),
    "reshape fused": lambda x, y: (np.exp(x) + 1).reshape(-1)[::2],
    "reduce twice": lambda x, y: x.sum(axis=0).max() + x.min(axis=1).sum(),
    "broadcast, reduce, broadcast": lambda x, y: (
        x - x.sum(axis=0, keepdims=True) / max(x.shape[0], 1)) *
        x.max(axis=1, keepdims=True) if x.size else x,
    "cast chain": lambda x, y: (x > 0).astype(np.int32).sum(axis=0) +
        (x * 3).astype(np.int64).max(axis=0) + y.astype(np.float32).sum(),
}


# the float32 sum inside "cast chain" rounds in float32
EPS_DTYPE = {"cast chain": "float32"}


def _relative(rtol_ulps: float, eps_dtype=None):
    def compare(actual, expected, what, args):
        if expected.dtype.kind != "f":
            assert_same(actual, expected, what)
            return
        scale = max([float(np.abs(np.asarray(a, np.float64)).sum())
                     for a in args if isinstance(a, np.ndarray)] + [1.0])
        eps = np.finfo(eps_dtype or expected.dtype).eps
        bound = rtol_ulps * eps * (np.abs(_f64(expected)) + scale)
        assert_within(actual, expected, bound,
                      f"{what} (bound {rtol_ulps}*eps*(|r| + sum|x|))")
    return compare


@on_backends
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", list(PATTERNS))
@settings(max_examples=max(5, settings().max_examples // 2))
@given(data=st.data())
def test_composite_pattern(backend, name, dtype, data):
    m = data.draw(st.integers(0, 5), label="m")
    n = data.draw(st.integers(0, 5), label="n")
    elems = elements(dtype, special=False, max_magnitude=5.0)
    x = data.draw(hnp.arrays(np.dtype(dtype), (m, n), elements=elems),
                  label="x")
    y = data.draw(hnp.arrays(np.dtype(dtype), (n,), elements=elems),
                  label="y")
    check_on(backend, PATTERNS[name], [x, y],
             _relative(64, EPS_DTYPE.get(name)), what=name)


def test_reductions_of_an_earlier_stage_listed_later_keep_their_number():
    """Was: a row kernel numbered reductions in the order its roots were
    listed, but read them stage by stage; here the sum of tanh(a) (stage
    0, listed after the stage-1 sum of d) read d's accumulator and both
    outputs were silently wrong."""
    def f(a):
        t = np.tanh(a)
        d = a + (a - a.sum(axis=1, keepdims=True) * 0.25)
        e = d - d.sum(axis=1, keepdims=True) * 0.25
        u = t - t.sum(axis=1, keepdims=True) * 0.25
        return u, e

    a = np.random.default_rng(0).uniform(-1, 1, (4, 4))
    for got, want in zip(tracejit.jit(f)(a), f(a)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
