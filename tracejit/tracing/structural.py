"""Reductions, indexing and matrix products on traced values."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeMismatchError, UnsupportedError
from .context import check_dtype, user_location
from .ops import (as_tracer, convert, describe, normalize_axes, reshape,
                  resolve)
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


def getitem(x: Tracer, key) -> Tracer:
    if not isinstance(key, tuple):
        key = (key,)
    shape = x.aval.shape
    for k in key:
        if not (k is None or k is Ellipsis or isinstance(k, slice)
                or isinstance(k, (int, np.integer)) and not isinstance(k, bool)):
            raise UnsupportedError(
                f"indexing {x.aval} with {type(k).__name__} is not supported "
                f"(only ints, slices, None and ...; no advanced indexing) at "
                f"{user_location()}")
    if sum(k is Ellipsis for k in key) > 1:
        raise IndexError(f"an index can only have a single ellipsis at "
                         f"{user_location()}")
    used = sum(1 for k in key if k is not None and k is not Ellipsis)
    if used > len(shape):
        raise IndexError(f"too many indices for {x.aval}: {used} at "
                         f"{user_location()}")
    if Ellipsis in key:
        at = key.index(Ellipsis)
        key = key[:at] + (slice(None),) * (len(shape) - used) + key[at + 1:]
    else:
        key = key + (slice(None),) * (len(shape) - used)
    starts, steps, sizes, final = [], [], [], []
    dim = 0
    for k in key:
        if k is None:
            final.append(1)
            continue
        n = shape[dim]
        if isinstance(k, slice):
            start, stop, step = k.indices(n)
            size = len(range(start, stop, step))
            starts.append(start if size else 0)
            steps.append(step if size else 1)
            sizes.append(size)
            final.append(size)
        else:
            i = int(k)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for axis {dim} "
                                 f"with size {n} at {user_location()}")
            starts.append(i % n)
            steps.append(1)
            sizes.append(1)
        dim += 1
    out = x
    if tuple(sizes) != shape or any(starts) or any(s != 1 for s in steps):
        out = x.ctx.emit("slice", [x], {"starts": tuple(starts),
                                        "steps": tuple(steps),
                                        "shape": tuple(sizes)}, x.weak)
    return reshape(out, final)


def matmul(a, b, name: str = "matmul") -> Tracer:
    a, b = as_tracer(a), as_tracer(b)
    ra, rb = len(a.aval.shape), len(b.aval.shape)
    if ra == 0 or rb == 0 or ra > 2 or rb > 2:
        raise UnsupportedError(f"numpy.{name} of {describe([a, b])}: only 1-D "
                               f"and 2-D operands are supported at "
                               f"{user_location()}")
    (da, db), (out_dtype,) = resolve(np.matmul, [a, b])
    a2 = reshape(a, (1, a.aval.shape[0])) if ra == 1 else a
    b2 = reshape(b, (b.aval.shape[0], 1)) if rb == 1 else b
    if a2.aval.shape[1] != b2.aval.shape[0]:
        raise ShapeMismatchError(
            f"numpy.{name}: shapes {list(a.aval.shape)} and "
            f"{list(b.aval.shape)} do not align (inner dimensions "
            f"{a2.aval.shape[1]} != {b2.aval.shape[0]}) at {user_location()}")
    out = a.ctx.emit("dot", [convert(a2, da), convert(b2, db)], {})
    final = a.aval.shape[:-1] + b.aval.shape[1:] if rb == 2 else \
        a.aval.shape[:-1]
    return convert(reshape(out, final), out_dtype)
