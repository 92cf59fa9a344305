"""Argument leaves -> the arrays a compiled program reads.

Each leaf of a call's (flattened) arguments becomes a numpy array (a CuPy
array on the CUDA backend) plus a weak flag, or a clear error naming the
argument's path (``x``, ``args[1]``, ``xs[0]``), the jitted function and
the line of the call.  Errors are built only when raised, so a call that
passes pays nothing for them.

Refused on purpose:

* ndarray subclasses that carry meaning beyond their values: a masked
  array's mask, ``np.matrix``'s 2-D shape and ``*`` as matrix product, or
  whatever a user subclass adds.  jit computes on the values alone and
  returns plain arrays, so it would silently drop that meaning.
  ``np.memmap`` is accepted: it is an ndarray whose memory is a file, and
  numpy itself returns plain ndarrays from ufuncs and reductions on it,
  which is what jit returns.
* dtypes the kernels do not compute in (object, structured, strings,
  float16, complex, ...).
"""
from __future__ import annotations

import numpy as np

from .errors import UnsupportedError
from .tracing import SUPPORTED_DTYPES
from .tracing.context import user_location

# ndarray subclasses whose values are all there is to them (see above)
PLAIN_SUBCLASSES = (np.memmap,)


def to_array(leaf, path: str, backend: str = "cpu", fun_name: str = "f"):
    """(array, weak) for one argument leaf, or a clear error.  On the
    CUDA backend a CuPy array stays as it is."""
    if on_gpu(leaf):
        if backend != "cuda":
            raise TypeError(f"argument {path}: a {type_name(leaf)} lives on "
                            "the GPU; use jit(..., backend='cuda') or copy "
                            "it to the host")
        if np.dtype(leaf.dtype).name not in SUPPORTED_DTYPES:
            raise _dtype_error(np.dtype(leaf.dtype), path, fun_name)
        return leaf, False
    if isinstance(leaf, (bool, np.bool_)):
        return np.asarray(leaf, dtype=bool), False
    if isinstance(leaf, np.generic):
        # numpy scalars are strongly typed, even np.float64, which is a
        # subclass of Python float (NEP 50)
        return checked_array(np.asarray(leaf), path, fun_name), False
    if isinstance(leaf, int):
        if not -2**63 <= leaf < 2**63:
            raise OverflowError(f"argument {path}: Python int {leaf} does not "
                                "fit in int64")
        return np.asarray(leaf, dtype=np.int64), True
    if isinstance(leaf, float):
        return np.asarray(leaf, dtype=np.float64), True
    if not isinstance(leaf, np.ndarray):
        raise TypeError(
            f"argument {path} of {fun_name} ({_call_site()}): "
            f"{type_name(leaf)} is not a valid jit argument (numpy arrays, "
            "numpy or Python scalars, and tuples/lists/dicts/None of them); "
            "mark it static if it is configuration")
    if type(leaf) is not np.ndarray and \
            not isinstance(leaf, PLAIN_SUBCLASSES):
        raise _subclass_error(leaf, path, fun_name)
    return checked_array(np.asarray(leaf), path, fun_name), False


def checked_array(arr: np.ndarray, path: str, fun_name: str = "f"):
    """``arr`` in native byte order, or an error if jit cannot compute in
    its dtype."""
    if arr.dtype.name not in SUPPORTED_DTYPES:
        raise _dtype_error(arr.dtype, path, fun_name)
    if not arr.dtype.isnative:
        # the kernels read native byte order
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def on_gpu(leaf) -> bool:
    return hasattr(leaf, "__cuda_array_interface__")


def check_one_device(leaves, paths) -> None:
    """A CUDA call takes numpy arrays (copied to the device) or CuPy
    arrays, not both: a mix usually means a forgotten transfer."""
    gpu = [p for leaf, p in zip(leaves, paths) if on_gpu(leaf)]
    host = [p for leaf, p in zip(leaves, paths)
            if isinstance(leaf, np.ndarray)]
    if gpu and host:
        raise TypeError(f"argument {host[0]} is a numpy array (host memory) "
                        f"but argument {gpu[0]} is a CuPy array (GPU): pass "
                        "all arrays on one side (cupy.asarray / "
                        "cupy.asnumpy)")


def type_name(value) -> str:
    """``numpy.ma.MaskedArray``, ``numpy.matrix``, ``str``: the name a
    user would write (numpy 2 sets the public module on its classes)."""
    kind = type(value)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def _call_site() -> str:
    return f"called at {user_location()}"


def _subclass_error(leaf, path: str, fun_name: str) -> UnsupportedError:
    if isinstance(leaf, np.ma.MaskedArray):
        lost = "its mask (numpy's results keep it)"
        fix = (f"pass np.asarray({path}) to drop the mask, or "
               f"{path}.filled(value) to replace the masked entries first")
    elif isinstance(leaf, np.matrix):
        lost = ("its matrix semantics (`*` is a matrix product, results "
                "stay 2-D)")
        fix = (f"pass np.asarray({path}) and write `@` for matrix products "
               "if plain ndarray semantics are what you mean")
    else:
        lost = "whatever the subclass adds to ndarray"
        fix = (f"pass np.asarray({path}) if plain ndarray semantics are "
               "what you mean")
    return UnsupportedError(
        f"argument {path} of {fun_name} ({_call_site()}) is a "
        f"{type_name(leaf)}, an ndarray subclass: jit computes on the values "
        f"alone and returns plain ndarrays, so it would drop {lost}; {fix}")


def _dtype_error(dtype: np.dtype, path: str, fun_name: str):
    if dtype.fields is not None:
        what = "a structured dtype"
        fix = f"; pass its fields as separate arrays ({path}['name'])"
    elif dtype == object:
        what = ("dtype object (often a list of arrays of different shapes, "
                "or of Python objects)")
        fix = "; pass arrays of numbers"
    else:
        what, fix = f"dtype {dtype}", ""
    return UnsupportedError(
        f"argument {path} of {fun_name} ({_call_site()}): {what} is not "
        f"supported (supported: {', '.join(SUPPORTED_DTYPES)}){fix}")
