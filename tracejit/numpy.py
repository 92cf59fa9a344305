"""``tracejit.numpy``: the numpy surface tracejit traces, by name.

Each name is numpy's own function or ufunc: outside jit it runs eagerly in
numpy; inside jit, numpy hands traced values to the tracer through its
``__array_ufunc__`` / ``__array_function__`` protocols, so the same call
records an HLO primitive.  ``supported()`` lists what is here.
"""
import numpy as _np

_UFUNCS = [
    "add", "subtract", "multiply", "divide", "true_divide", "floor_divide",
    "remainder", "mod", "power", "maximum", "minimum", "negative",
    "positive", "absolute", "abs", "fabs", "sign", "square", "reciprocal",
    "exp", "log", "sqrt", "tanh", "sin", "cos", "expm1", "log1p",
    "less", "less_equal", "equal", "not_equal", "greater", "greater_equal",
    "logical_and", "logical_or", "logical_xor", "logical_not",
    "bitwise_and", "bitwise_or", "bitwise_xor", "invert", "bitwise_not",
    "left_shift", "right_shift", "matmul",
]
_FUNCTIONS = [
    "sum", "prod", "max", "min", "amax", "amin", "mean", "where", "reshape",
    "transpose", "broadcast_to", "dot", "expand_dims", "squeeze", "astype",
    "clip", "copy", "ndim", "shape", "size",
]
_DTYPES = ["bool_", "int32", "int64", "float32", "float64", "dtype"]

for _name in _UFUNCS + _FUNCTIONS + _DTYPES:
    globals()[_name] = getattr(_np, _name)


def supported() -> list[str]:
    """The names of every numpy function and ufunc traced under jit."""
    return sorted(_UFUNCS + _FUNCTIONS)


__all__ = _UFUNCS + _FUNCTIONS + _DTYPES + ["supported"]
