"""numpy semantics on traced values: promotion, broadcasting, and the
primitives each numpy operation becomes.

Result dtypes come from numpy itself (``ufunc.resolve_dtypes``, which applies
NEP 50 with Python scalars as weak types), so they cannot drift from numpy's.
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeMismatchError, UnsupportedError
from .context import SUPPORTED_DTYPES, check_dtype, current, user_location
from .tracer import Tracer


def _ctx():
    ctx = current()
    if ctx is None:
        raise RuntimeError("no active trace")
    return ctx


def describe(values) -> str:
    parts = []
    for v in values:
        if isinstance(v, Tracer):
            parts.append(str(v.aval))
        elif isinstance(v, (bool, int, float)):
            parts.append(type(v).__name__)
        else:
            arr = np.asarray(v)
            parts.append(f"{arr.dtype}{list(arr.shape)}")
    return ", ".join(parts)


def as_tracer(value) -> Tracer:
    """Lift a Python scalar (weak), numpy scalar or array to a tracer."""
    if isinstance(value, Tracer):
        if value.ctx is not _ctx():
            raise UnsupportedError("a traced value from another jit trace "
                                   f"leaked into this one at {user_location()}")
        return value
    if isinstance(value, (bool, int, float)) and not isinstance(value, np.generic):
        weak = not isinstance(value, bool)
        return _ctx().constant(np.asarray(value, _default_dtype(value)), weak)
    arr = np.asarray(value)
    if arr.dtype == object:
        raise UnsupportedError(f"cannot use {type(value).__name__} as an "
                               f"array under jit at {user_location()}")
    return _ctx().constant(arr)


def _default_dtype(value) -> str:
    if isinstance(value, bool):
        return "bool"
    return "int64" if isinstance(value, int) else "float64"


def _weak_proxy(t: Tracer):
    """What to hand numpy's type resolution for ``t``."""
    if t.weak:
        return float if t.aval.dtype.startswith("float") else int
    return np.dtype(t.aval.dtype)


def _weak_value(t: Tracer):
    """What to hand ``np.result_type`` for ``t``: a Python scalar *value*
    for a weak type (result_type treats the types ``int``/``float`` as
    int64/float64, but values as weak, NEP 50)."""
    if t.weak:
        return 0.0 if t.aval.dtype.startswith("float") else 0
    return np.dtype(t.aval.dtype)


# numpy compares a Python int with an integer array exactly, even when it
# does not fit the array's dtype (int32 array < 2**31 is True, not an error)
_COMPARISONS = frozenset({np.less, np.less_equal, np.equal, np.not_equal,
                          np.greater, np.greater_equal})


def convert(t: Tracer, dtype: str, weak: bool = False) -> Tracer:
    if t.aval.dtype == dtype:
        return t if t.weak == weak else t.with_weak(weak)
    ins = t.ctx.module.get(t.id)
    if ins.op == "constant":
        value = ins.attr("value")
        if t.weak and np.dtype(dtype).kind in "iu":
            _check_int_range(value, dtype)
        with np.errstate(all="ignore"):
            return _ctx().constant(value.astype(dtype), weak)
    return t.ctx.emit("convert", [t], {"dtype": dtype}, weak)


def _check_int_range(value: np.ndarray, dtype: str) -> None:
    info = np.iinfo(dtype)
    if value.size and (value.min() < info.min or value.max() > info.max):
        raise OverflowError(f"Python integer {value.item()} out of bounds for "
                            f"{dtype} at {user_location()}")


def broadcast_shapes(op: str, shapes: list[tuple[int, ...]]):
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        listed = " and ".join(str(list(s)) for s in shapes)
        raise ShapeMismatchError(f"{op}: shapes {listed} cannot be broadcast "
                                 f"together at {user_location()}") from None


def broadcast_to(t: Tracer, shape: tuple[int, ...], op="broadcast_to"):
    shape = tuple(int(d) for d in shape)
    if t.aval.shape == shape:
        return t
    rank = len(shape)
    if len(t.aval.shape) > rank:
        raise ShapeMismatchError(f"{op}: cannot broadcast {t.aval} to "
                                 f"{list(shape)} at {user_location()}")
    dims = tuple(range(rank - len(t.aval.shape), rank))
    for d, size in zip(dims, t.aval.shape):
        if size not in (1, shape[d]):
            raise ShapeMismatchError(f"{op}: cannot broadcast {t.aval} to "
                                     f"{list(shape)} at {user_location()}")
    return t.ctx.emit("broadcast", [t], {"shape": shape, "dims": dims},
                      t.weak)


# supported dtype -> its name (``dtype.name`` costs a microsecond a call)
_NAMES = {np.dtype(name): name for name in SUPPORTED_DTYPES}


def resolve(ufunc, operands: list[Tracer], dtype=None,
            casting="same_kind"):
    """numpy's loop dtypes for ``ufunc`` on these operands: (input dtype
    names, output dtype names).  ``dtype`` and ``casting`` are the ufunc
    keywords of those names (``dtype`` fixes the output's type, as
    numpy's ``signature=(None, ..., dtype)``)."""
    if all(t.weak for t in operands):    # numpy has no loop for (int, int)
        proxies = tuple(np.dtype(t.aval.dtype) for t in operands)
    else:
        proxies = tuple(_weak_proxy(t) for t in operands)
    proxies += (None,) * ufunc.nout
    keywords = {"casting": casting}
    if dtype is not None:
        keywords["signature"] = (None,) * ufunc.nin + \
            (np.dtype(dtype),) * ufunc.nout
    try:
        dtypes = ufunc.resolve_dtypes(proxies, **keywords)
    except TypeError as err:
        raise UnsupportedError(f"numpy.{ufunc.__name__} on "
                               f"{describe(operands)}: {err} at "
                               f"{user_location()}") from None
    names = []
    for dt in dtypes:
        if dt not in _NAMES:
            raise UnsupportedError(
                f"numpy.{ufunc.__name__} on {describe(operands)} computes in "
                f"{dt.name}, which tracejit does not support at "
                f"{user_location()}")
        names.append(_NAMES[dt])
    return names[:ufunc.nin], names[ufunc.nin:]


def elementwise(ufunc, prim: str, args, pre_bool: bool = False,
                dtype=None, casting="same_kind"):
    """Apply primitive ``prim`` with numpy's promotion and broadcasting
    (and the ufunc's ``dtype`` / ``casting`` keywords)."""
    operands = [as_tracer(a) for a in args]
    weak = all(t.weak for t in operands)
    if pre_bool:
        operands = [convert(t, "bool") for t in operands]
        in_dtypes, out_dtype = ["bool"] * len(operands), "bool"
    else:
        in_dtypes, (out_dtype,) = resolve(ufunc, operands, dtype, casting)
        if dtype is None and ufunc in _COMPARISONS and \
                "int32" in in_dtypes and any(
                    t.weak and t.aval.dtype.startswith("int")
                    for t in operands):
            in_dtypes = ["int64"] * len(in_dtypes)
    shape = broadcast_shapes(f"numpy.{ufunc.__name__}",
                             [t.aval.shape for t in operands])
    ready = [broadcast_to(convert(t, dt, t.weak), shape)
             for t, dt in zip(operands, in_dtypes)]
    weak = weak and out_dtype != "bool" and dtype is None
    out = _ctx().emit(prim, ready, {}, weak)
    if out.aval.dtype != out_dtype:
        out = convert(out, out_dtype, weak)
    return out


def where(cond, x, y) -> Tracer:
    cond = convert(as_tracer(cond), "bool")
    x, y = as_tracer(x), as_tracer(y)
    dtype = np.result_type(_weak_value(x), _weak_value(y)).name
    dtype = check_dtype(dtype, "numpy.where")
    weak = x.weak and y.weak
    shape = broadcast_shapes("numpy.where", [cond.aval.shape, x.aval.shape,
                                             y.aval.shape])
    parts = [broadcast_to(cond, shape)] + [
        broadcast_to(convert(t, dtype, t.weak), shape) for t in (x, y)]
    return _ctx().emit("select", parts, {}, weak)


def astype(x, dtype) -> Tracer:
    x = as_tracer(x)
    return convert(x, check_dtype(dtype, "astype"))


# ---- shapes ---------------------------------------------------------------

def normalize_axes(axis, ndim: int, op: str) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(
                f"{op}: axis {a} is out of bounds for an array of dimension "
                f"{ndim} at {user_location()}")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis} at {user_location()}")
    return tuple(out)


def reshape(x, shape) -> Tracer:
    x = as_tracer(x)
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    shape = [int(d) for d in shape]
    if shape.count(-1) > 1:
        raise ValueError(f"reshape: only one -1 allowed in {shape} at "
                         f"{user_location()}")
    if -1 in shape:
        known = int(np.prod([d for d in shape if d != -1]))
        if known == 0 or x.aval.size % known:
            raise ShapeMismatchError(f"reshape: cannot reshape {x.aval} into "
                                     f"{shape} at {user_location()}")
        shape[shape.index(-1)] = x.aval.size // known
    if int(np.prod(shape)) != x.aval.size:
        raise ShapeMismatchError(f"reshape: cannot reshape {x.aval} into "
                                 f"{shape} at {user_location()}")
    if tuple(shape) == x.aval.shape:
        return x
    return x.ctx.emit("reshape", [x], {"shape": tuple(shape)}, x.weak)


def transpose(x, axes=None) -> Tracer:
    x = as_tracer(x)
    ndim = len(x.aval.shape)
    if axes is None:
        perm = tuple(reversed(range(ndim)))
    else:
        perm = normalize_axes(tuple(axes), ndim, "transpose")
        if len(perm) != ndim:
            raise ValueError(f"transpose: axes {axes} don't match {x.aval} "
                             f"at {user_location()}")
    if perm == tuple(range(ndim)):
        return x
    return x.ctx.emit("transpose", [x], {"perm": perm}, x.weak)


def expand_dims(x, axis) -> Tracer:
    x = as_tracer(x)
    ndim = len(x.aval.shape) + (len(axis) if isinstance(axis, tuple) else 1)
    axes = normalize_axes(axis, ndim, "expand_dims")
    shape = list(x.aval.shape)
    for a in sorted(axes):
        shape.insert(a, 1)
    return reshape(x, shape)


def squeeze(x, axis=None) -> Tracer:
    x = as_tracer(x)
    shape = x.aval.shape
    if not shape and isinstance(axis, (int, np.integer)) and axis in (0, -1):
        return x        # numpy accepts an int axis 0 / -1 on a 0-d squeeze
    if axis is None:
        axes = tuple(k for k, n in enumerate(shape) if n == 1)
    else:
        axes = normalize_axes(axis, len(shape), "squeeze")
        if any(shape[a] != 1 for a in axes):
            raise ValueError(f"squeeze: cannot select an axis to squeeze out "
                             f"which has size not equal to one at "
                             f"{user_location()}")
    return reshape(x, [n for k, n in enumerate(shape) if k not in axes])
