"""Which numpy ufuncs and functions tracejit traces, and into what.

``UFUNCS`` maps a numpy ufunc to the HLO primitive it becomes; a few ufuncs
are compositions (``square``, ``reciprocal``, ``positive``).  ``FUNCTIONS``
maps numpy functions reached through ``__array_function__``.  Anything else
raises an error naming the function, the operand shapes and the user's line.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from . import ops, structural
from .context import user_location
from .ops import as_tracer, describe, elementwise

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


def _square(x):
    # numpy.square has no bool loop (bool squares in int8): check its own
    # loop dtypes, not multiply's (which would give bool).
    ops.resolve(np.square, [as_tracer(x)])
    return np.multiply(x, x)


def _reciprocal(x):
    x = as_tracer(x)
    if x.dtype.kind != "f":
        raise UnsupportedError(f"numpy.reciprocal on {x.aval}: only float "
                               f"inputs are supported at {user_location()}")
    return np.true_divide(1, x)


def _positive(x):
    ops.resolve(np.positive, [as_tracer(x)])
    return as_tracer(x)


COMPOSED_UFUNCS = {np.square: _square, np.reciprocal: _reciprocal,
                   np.positive: _positive,
                   np.matmul: lambda a, b: structural.matmul(a, b)}


def apply_ufunc(ufunc, method, inputs, kwargs):
    if method != "__call__":
        raise UnsupportedError(f"numpy.{ufunc.__name__}.{method} is not "
                               f"supported under jit at {user_location()}")
    extra = {k: v for k, v in kwargs.items() if v is not None}
    if extra.pop("casting", "same_kind") != "same_kind" or extra:
        raise UnsupportedError(
            f"numpy.{ufunc.__name__}: keyword arguments {sorted(kwargs)} are "
            f"not supported under jit at {user_location()}")
    if ufunc in COMPOSED_UFUNCS:
        return COMPOSED_UFUNCS[ufunc](*inputs)
    if ufunc not in UFUNCS:
        raise UnsupportedError(
            f"numpy.{ufunc.__name__} is not supported under jit (operands "
            f"{describe(inputs)}) at {user_location()}")
    prim, pre_bool = UFUNCS[ufunc]
    return elementwise(ufunc, prim, inputs, pre_bool)


def _reduction(name):
    def fn(a, axis=None, dtype=None, out=None, keepdims=False, **kw):
        _no_out(name, out, kw)
        return structural.reduce(name, a, axis, dtype, keepdims)
    return fn


def _minmax(name):
    def fn(a, axis=None, out=None, keepdims=False, **kw):
        _no_out(name, out, kw)
        return structural.reduce(name, a, axis, None, keepdims)
    return fn


def _mean(a, axis=None, dtype=None, out=None, keepdims=False, **kw):
    _no_out("mean", out, kw)
    return structural.mean(a, axis, dtype, keepdims)


def _no_out(name, out, kw):
    if out is not None or kw:
        raise UnsupportedError(f"numpy.{name}: out= and {sorted(kw)} are not "
                               f"supported under jit at {user_location()}")


def _where(condition, x=None, y=None):
    if x is None or y is None:
        raise UnsupportedError("numpy.where with one argument has a data-"
                               "dependent shape and cannot be traced at "
                               f"{user_location()}")
    return ops.where(condition, x, y)


def _clip(a, a_min=None, a_max=None, **kw):
    out = a
    if a_min is not None:
        out = np.maximum(out, a_min)
    if a_max is not None:
        out = np.minimum(out, a_max)
    return as_tracer(out)


FUNCTIONS = {
    np.sum: _reduction("sum"), np.prod: _reduction("prod"),
    np.max: _minmax("max"), np.amax: _minmax("max"),
    np.min: _minmax("min"), np.amin: _minmax("min"),
    np.mean: _mean, np.where: _where,
    np.reshape: lambda a, shape=None, order="C", **kw:
        as_tracer(a).reshape(shape if shape is not None else kw["newshape"],
                             order=order),
    np.transpose: lambda a, axes=None: ops.transpose(a, axes),
    np.broadcast_to: lambda array, shape, subok=False:
        ops.broadcast_to(as_tracer(array), tuple(shape)),
    np.dot: lambda a, b, out=None: structural.matmul(a, b, "dot"),
    np.expand_dims: ops.expand_dims, np.squeeze: ops.squeeze,
    np.astype: lambda x, dtype, copy=True, **kw: ops.astype(x, dtype),
    np.clip: _clip,
    # traced values are never modified in place and every output is a
    # fresh array, so a copy is the value itself
    np.copy: lambda a, order="K", subok=False: as_tracer(a),
    np.ndim: lambda a: as_tracer(a).ndim,
    np.shape: lambda a: as_tracer(a).shape,
    np.size: lambda a, axis=None: as_tracer(a).size if axis is None
        else as_tracer(a).shape[axis],
}


def apply_function(func, args, kwargs):
    handler = FUNCTIONS.get(func)
    if handler is None:
        raise UnsupportedError(
            f"numpy.{func.__name__} is not supported under jit (arguments "
            f"{describe([a for a in args if _arraylike(a)])}) at "
            f"{user_location()}")
    return handler(*args, **kwargs)


def _arraylike(a) -> bool:
    from .tracer import Tracer
    return isinstance(a, (Tracer, np.ndarray, np.generic, int, float, bool))
