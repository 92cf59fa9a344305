"""numpy's reductions on traced values: ``sum``, ``prod``, ``max`` /
``amax``, ``min`` / ``amin``, ``mean`` and their ndarray methods.

Accumulation dtypes are numpy's own, found by asking numpy on a
one-element probe.  ``axis`` (int or tuple), ``dtype`` and ``keepdims`` are
honoured; ``out``, ``initial`` and ``where`` are refused by the binding.
"""
from __future__ import annotations

import numpy as np

from .binding import implements, method
from .context import check_dtype, user_location
from .ops import as_tracer, convert, normalize_axes, reshape
from .tracer import Tracer

# numpy reduction -> (primitive, numpy function used to find the dtype)
REDUCTIONS = {
    "sum": ("reduce_sum", np.sum),
    "prod": ("reduce_prod", np.prod),
    "max": ("reduce_max", np.max),
    "min": ("reduce_min", np.min),
}


def _reduction_dtype(fn, dtype: str, requested) -> str:
    probe = np.ones(1, dtype=dtype)
    with np.errstate(all="ignore"):
        if requested is None:
            result = fn(probe)
        else:
            result = fn(probe, dtype=requested)
    return check_dtype(np.asarray(result).dtype, fn.__name__)


def reduce(name: str, x, axis=None, dtype=None, keepdims=False) -> Tracer:
    x = as_tracer(x)
    prim, fn = REDUCTIONS[name]
    shape = x.aval.shape
    if not shape and isinstance(axis, (int, np.integer)) and axis in (0, -1):
        axis = ()       # numpy accepts an int axis 0 / -1 on a 0-d reduce
    axes = normalize_axes(axis, len(shape), name)
    if prim in ("reduce_max", "reduce_min") and \
            any(shape[a] == 0 for a in axes):
        raise ValueError(f"{name}: zero-size array {x.aval} to reduction "
                         f"operation {name} over axes {list(axes)}, which has "
                         f"no identity, at {user_location()}")
    out_dtype = _reduction_dtype(fn, x.aval.dtype, dtype)
    x = convert(x, out_dtype)
    out = x.ctx.emit(prim, [x], {"axes": axes}) if axes else x
    if keepdims:
        kept = [1 if k in axes else n for k, n in enumerate(shape)]
        out = reshape(out, kept)
    return out


def mean(x, axis=None, dtype=None, keepdims=False) -> Tracer:
    x = as_tracer(x)
    shape = x.aval.shape
    axes = normalize_axes(axis, len(shape), "mean")
    count = int(np.prod([shape[a] for a in axes]))
    requested = dtype
    if dtype is None:
        kind = np.dtype(x.aval.dtype).kind
        dtype = "float64" if kind in "biu" else x.aval.dtype
    total = reduce("sum", x, axes, dtype, keepdims)
    out = total / count if count else total / 0.0
    if requested is not None:
        # numpy divides, then casts back to the requested dtype (unsafe)
        out = convert(out, check_dtype(requested, "mean"))
    return out


def _with_dtype(name):
    def impl(a, axis=None, dtype=None, keepdims=False):
        return reduce(name, a, axis, dtype, keepdims)
    return impl


def _no_dtype(name):
    def impl(a, axis=None, keepdims=False):
        return reduce(name, a, axis, None, keepdims)
    return impl


def _mean(a, axis=None, dtype=None, keepdims=False):
    return mean(a, axis, dtype, keepdims)


# ndarray.sum and friends are documented as the numpy functions of the
# same name, so the methods bind against those signatures
for _fn, _impl in [(np.sum, _with_dtype("sum")), (np.prod, _with_dtype("prod")),
                   (np.max, _no_dtype("max")), (np.min, _no_dtype("min")),
                   (np.mean, _mean)]:
    implements(_fn)(_impl)
    method(_fn.__name__, _fn)(_impl)
implements(np.amax)(_no_dtype("max"))
implements(np.amin)(_no_dtype("min"))
