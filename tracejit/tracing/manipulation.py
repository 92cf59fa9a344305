"""numpy's array-manipulation functions and methods on traced values:
``reshape``, ``transpose``, ``broadcast_to``, ``expand_dims``,
``squeeze``, ``astype``, ``copy``, ``ravel`` / ``flatten``, and the
``ndim`` / ``shape`` / ``size`` queries.  Each is a view (an index map
after lowering) or a conversion; none copies data by itself.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from . import ops
from .binding import implements, method, refuse_value
from .context import check_dtype, user_location
from .ops import as_tracer


def reshape(a, shape, order="C", what="numpy.reshape"):
    """C order is the row-major reshape; F order is the same on the
    reversed axes (transpose, reshape, transpose back)."""
    a = as_tracer(a)
    if order == "C":
        return ops.reshape(a, shape)
    if order != "F":
        raise refuse_value(what, "order", order, "only 'C' and 'F' are "
                           "traced; 'A' depends on the argument's layout")
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    flipped = ops.reshape(ops.transpose(a), tuple(reversed(tuple(shape))))
    return ops.transpose(flipped)


def _copy_allowed(copy, what: str) -> None:
    if copy is False:
        raise refuse_value(what, "copy", copy, "whether numpy could avoid "
                           "a copy depends on the argument's strides")


@implements(np.reshape)
def _reshape(a, /, shape, order="C", *, copy=None):
    _copy_allowed(copy, "numpy.reshape")
    return reshape(a, shape, order)


@method("reshape")
def _reshape_method(self, /, *shape, order="C", copy=None):
    _copy_allowed(copy, "numpy.ndarray.reshape")
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
        shape = shape[0]
    return reshape(self, shape, order, "numpy.ndarray.reshape")


def _flat(name):
    def impl(self, /, order="C"):
        return reshape(self, (-1,), order, f"numpy.ndarray.{name}")
    return impl


method("flatten")(_flat("flatten"))
method("ravel")(_flat("ravel"))


@implements(np.transpose)
def _transpose(a, axes=None):
    return ops.transpose(a, axes)


@method("transpose")
def _transpose_method(self, /, *axes):
    if len(axes) == 1 and not isinstance(axes[0], (int, np.integer)):
        axes = axes[0]
    return ops.transpose(self, axes or None)


@implements(np.broadcast_to)
def _broadcast_to(array, shape, subok=False):
    # subok has nothing to do: traced values are base ndarrays
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    return ops.broadcast_to(as_tracer(array), tuple(shape))


@implements(np.expand_dims)
def _expand_dims(a, axis):
    return ops.expand_dims(a, axis)


@implements(np.squeeze)
def _squeeze(a, axis=None):
    return ops.squeeze(a, axis)


@method("squeeze")
def _squeeze_method(self, /, axis=None):
    return ops.squeeze(self, axis)


def _layout_order(order, what: str) -> None:
    if order == "F":
        raise refuse_value(what, "order", order,
                           "results are C-ordered arrays")


@implements(np.astype)
def _astype(x, dtype, /, *, copy=True, device=None):
    """copy= has nothing to do: a traced value is never modified in place
    and every output of a jitted call is a fresh array."""
    if device not in (None, "cpu"):
        raise refuse_value("numpy.astype", "device", device,
                           "numpy arrays live on the CPU")
    return ops.astype(x, dtype)


@method("astype")
def _astype_method(self, /, dtype, order="K", casting="unsafe", subok=True,
                   copy=True):
    _layout_order(order, "numpy.ndarray.astype")
    x = as_tracer(self)
    target = check_dtype(dtype, "astype")
    if not np.can_cast(x.dtype, target, casting=casting):
        raise TypeError(f"numpy.ndarray.astype: cannot cast array data from "
                        f"{x.dtype} to {target} according to the rule "
                        f"{casting!r} at {user_location()}")
    return ops.convert(x, target)


@implements(np.copy)
def _copy(a, order="K", subok=False):
    """The value itself: traced values are never modified in place, and
    every output is a fresh array."""
    _layout_order(order, "numpy.copy")
    return as_tracer(a)


@method("copy")
def _copy_method(self, /, order="C"):
    _layout_order(order, "numpy.ndarray.copy")
    return self


@implements(np.ndim)
def _ndim(a):
    return as_tracer(a).ndim


@implements(np.shape)
def _shape(a):
    return as_tracer(a).shape


@implements(np.size)
def _size(a, axis=None):
    a = as_tracer(a)
    if axis is None:
        return a.size
    if isinstance(axis, tuple):
        raise UnsupportedError(f"numpy.size: a tuple axis at "
                               f"{user_location()}")
    return a.shape[ops.normalize_axes(axis, a.ndim, "numpy.size")[0]]
