"""Indexing on traced values: basic indexing (``x[i, 1:, None, ...]``,
one ``slice`` plus one ``reshape``) and ``np.where`` (numpy lists it among
its indexing routines)."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from . import ops
from .binding import implements
from .context import user_location
from .ops import reshape
from .tracer import Tracer


@implements(np.where)
def where(condition, x=None, y=None, /):
    if x is None or y is None:
        raise UnsupportedError("numpy.where with one argument has a data-"
                               "dependent shape and cannot be traced at "
                               f"{user_location()}")
    return ops.where(condition, x, y)


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
