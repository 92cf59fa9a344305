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
from .binding import FUNCTIONS, Traced, implements, public_name, refuse_value
from .context import user_location
from .ops import as_tracer, describe

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
    if pre_bool and dtype is not None:
        raise refuse_value(public_name(ufunc), "dtype", dtype,
                           "logical ufuncs compute in bool")
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
    if dtype is not None:
        raise refuse_value("numpy.matmul", "dtype", dtype,
                           "matrix products compute in numpy's result type")
    return linalg.matmul(a, b)


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
def clip(a, a_min=None, a_max=None, *, min=None, max=None):
    """``np.clip``: numpy 2's ``min=`` / ``max=`` names or the old
    ``a_min`` / ``a_max``, never both; bounds may be arrays."""
    if (a_min is not None or a_max is not None) and \
            (min is not None or max is not None):
        raise ValueError("numpy.clip: passing min or max together with "
                         f"a_min or a_max is forbidden at {user_location()}")
    low = a_min if a_min is not None else min
    high = a_max if a_max is not None else max
    out = as_tracer(a)
    if low is not None:
        out = np.maximum(out, low)
    if high is not None:
        out = np.minimum(out, high)
    return as_tracer(out)
