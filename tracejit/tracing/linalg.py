"""Matrix products on traced values: ``matmul`` / ``@`` and ``dot`` on
1-D and 2-D operands (a GEMM library call after lowering)."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeMismatchError, UnsupportedError
from .binding import implements, method
from .context import user_location
from .ops import as_tracer, convert, describe, reshape, resolve
from .tracer import Tracer


def matmul(a, b, name: str = "matmul", dtype=None,
           casting="same_kind") -> Tracer:
    """numpy.matmul / numpy.dot; ``dtype`` and ``casting`` as matmul's
    ufunc keywords."""
    a, b = as_tracer(a), as_tracer(b)
    ra, rb = len(a.aval.shape), len(b.aval.shape)
    if ra == 0 or rb == 0 or ra > 2 or rb > 2:
        raise UnsupportedError(f"numpy.{name} of {describe([a, b])}: only 1-D "
                               f"and 2-D operands are supported at "
                               f"{user_location()}")
    (da, db), (out_dtype,) = resolve(np.matmul, [a, b], dtype, casting)
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


@implements(np.dot)
def dot(a, b):
    return matmul(a, b, "dot")


@method("dot")
def _dot_method(self, other, /):
    return matmul(self, other, "dot")
