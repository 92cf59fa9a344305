"""numpy's ufuncs (and ``np.clip``) on traced values.

``UFUNCS`` maps a numpy ufunc to the HLO primitive it becomes and whether
its inputs are converted to bool first (the logical ufuncs); a few ufuncs
are compositions (``COMPOSED_UFUNCS``: ``square``, ``reciprocal``,
``positive``, ``matmul``).  Every ufunc is registered with the binding
module against its own signature: ``dtype``, ``casting``, ``order`` (the
layouts tracejit produces) and ``subok`` are honoured, ``out`` and
``where`` refused until writes exist.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from . import linalg, ops
from .binding import (ArgumentError, FUNCTIONS, Traced, implements,
                      public_name, refuse_value)
from .context import user_location
from .ops import as_tracer, describe

_NO_VALUE = np._NoValue

# ufunc -> (primitive, inputs converted to bool first?)
UFUNCS = {
    np.add: ("add", False), np.subtract: ("subtract", False),
    np.multiply: ("multiply", False), np.true_divide: ("divide", False),
    np.floor_divide: ("floor_divide", False),
    np.remainder: ("remainder", False), np.power: ("power", False),
    np.maximum: ("maximum", False), np.minimum: ("minimum", False),
    np.negative: ("negate", False), np.absolute: ("abs", False),
    np.fabs: ("abs", False),
    np.sign: ("sign", False), np.exp: ("exp", False), np.log: ("log", False),
    np.sqrt: ("sqrt", False), np.expm1: ("expm1", False),
    np.log1p: ("log1p", False), np.tanh: ("tanh", False),
    np.sin: ("sine", False), np.cos: ("cosine", False),
    np.less: ("compare_lt", False), np.less_equal: ("compare_le", False),
    np.equal: ("compare_eq", False), np.not_equal: ("compare_ne", False),
    np.greater: ("compare_gt", False),
    np.greater_equal: ("compare_ge", False),
    np.bitwise_and: ("and", False), np.bitwise_or: ("or", False),
    np.bitwise_xor: ("xor", False), np.invert: ("not", False),
    np.logical_and: ("and", True), np.logical_or: ("or", True),
    np.logical_xor: ("xor", True), np.logical_not: ("not", True),
    np.left_shift: ("shift_left", False),
    np.right_shift: ("shift_right", False),
}

# the layouts a traced result may be asked for: tracejit's outputs are
# fresh C-ordered arrays, which 'K' and 'C' both allow
_ORDERS = ("K", "C")


def apply(ufunc, inputs, dtype=None, casting="same_kind", order="K",
          subok=True):
    """``ufunc(*inputs)`` with numpy's promotion, broadcasting and the
    ``dtype`` / ``casting`` keywords.  ``subok`` has nothing to do: every
    traced value is a base ndarray (subclass arguments are refused)."""
    if order not in _ORDERS:
        raise refuse_value(public_name(ufunc), "order", order,
                           "results are C-ordered arrays")
    if ufunc in COMPOSED_UFUNCS:
        return COMPOSED_UFUNCS[ufunc](*inputs, dtype=dtype, casting=casting)
    prim, pre_bool = UFUNCS[ufunc]
    if pre_bool and (dtype is not None or casting != "same_kind"):
        # numpy's loop for another dtype computes the same truth values
        # (x != 0), then stores them in that dtype
        _, (out,) = ops.resolve(ufunc, [as_tracer(x) for x in inputs],
                                dtype, casting)
        result = ops.elementwise(ufunc, prim, inputs, pre_bool)
        return ops.convert(result, out)
    return ops.elementwise(ufunc, prim, inputs, pre_bool, dtype, casting)


def _square(x, dtype=None, casting="same_kind"):
    # numpy.square has no bool loop (bool squares in int8): check its own
    # loop dtypes, not multiply's (which would give bool).
    (dt,), _ = ops.resolve(np.square, [as_tracer(x)], dtype, casting)
    return np.multiply(x, x, dtype=dt, casting="unsafe")


def _reciprocal(x, dtype=None, casting="same_kind"):
    x = as_tracer(x)
    (dt,), _ = ops.resolve(np.reciprocal, [x], dtype, casting)
    if np.dtype(dt).kind != "f":
        raise UnsupportedError(f"numpy.reciprocal on {x.aval}: only float "
                               f"inputs are supported at {user_location()}")
    return np.true_divide(1, ops.convert(x, dt), dtype=dt)


def _positive(x, dtype=None, casting="same_kind"):
    x = as_tracer(x)
    (dt,), (out,) = ops.resolve(np.positive, [x], dtype, casting)
    return ops.convert(ops.convert(x, dt, x.weak), out, x.weak)


def _matmul(a, b, dtype=None, casting="same_kind"):
    return linalg.matmul(a, b, "matmul", dtype, casting)


COMPOSED_UFUNCS = {np.square: _square, np.reciprocal: _reciprocal,
                   np.positive: _positive, np.matmul: _matmul}


def _ufunc_impl(ufunc):
    def impl(*inputs, dtype=None, casting="same_kind", order="K",
             subok=True):
        return apply(ufunc, inputs, dtype, casting, order, subok)
    impl.__name__ = ufunc.__name__
    return impl


for _ufunc in list(UFUNCS) + list(COMPOSED_UFUNCS):
    FUNCTIONS[_ufunc] = Traced(_ufunc, public_name(_ufunc),
                               _ufunc_impl(_ufunc))


def apply_ufunc(ufunc, method, inputs, kwargs):
    """numpy's ``__array_ufunc__``: bind, then trace (or refuse)."""
    if method != "__call__":
        raise UnsupportedError(f"{public_name(ufunc)}.{method} is not "
                               f"supported under jit at {user_location()}")
    traced = FUNCTIONS.get(ufunc)
    if traced is None:
        raise UnsupportedError(
            f"{public_name(ufunc)} is not supported under jit (operands "
            f"{describe(inputs)}) at {user_location()}")
    return traced(*inputs, **kwargs)


@implements(np.clip)
def clip(a, a_min=_NO_VALUE, a_max=_NO_VALUE, *, min=_NO_VALUE,
         max=_NO_VALUE):
    """``np.clip`` with numpy's argument rules (numpy 2's ``min=`` /
    ``max=`` or the old ``a_min`` / ``a_max``, never both) and its dtype
    rules: one bound is ``maximum`` / ``minimum``; two are numpy's clip
    ufunc, whose loop promotes the array and both bounds together."""
    if a_min is _NO_VALUE and a_max is _NO_VALUE:
        a_min = None if min is _NO_VALUE else min
        a_max = None if max is _NO_VALUE else max
    elif a_min is _NO_VALUE or a_max is _NO_VALUE:
        missing = "a_min" if a_min is _NO_VALUE else "a_max"
        raise ArgumentError(f"numpy.clip: missing required argument "
                            f"{missing!r} at {user_location()}")
    elif min is not _NO_VALUE or max is not _NO_VALUE:
        raise ValueError("numpy.clip: passing min or max together with "
                         f"a_min and a_max is forbidden at {user_location()}")
    a = as_tracer(a)
    if a.dtype.kind in "iu":
        # Python ints beyond the dtype's range bound nothing (NEP 50)
        info = np.iinfo(a.dtype)
        if type(a_min) is int and a_min <= info.min:
            a_min = None
        if type(a_max) is int and a_max >= info.max:
            a_max = None
    if a_min is None and a_max is None:
        return np.positive(a)
    if a_min is None:
        return np.minimum(a, a_max)
    if a_max is None:
        return np.maximum(a, a_min)
    operands = [a, as_tracer(a_min), as_tracer(a_max)]
    (dt, _, _), _ = ops.resolve(np._core.umath.clip, operands)
    x, low, high = (ops.convert(t, dt) for t in operands)
    return np.minimum(np.maximum(x, low), high)
