"""numpy's dispatch protocols on traced values.

``__array_ufunc__`` and ``__array_function__`` land here.  What is traced
is the registry in ``binding`` (``FUNCTIONS``: numpy function or ufunc ->
its traced form), filled by the modules laid out as numpy's namespace:
``ufuncs``, ``reductions``, ``manipulation``, ``indexing``, ``linalg``.
Anything else raises an error naming the function by its public path, the
array arguments (inside lists and tuples too) and the user's line.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
# the modules register their functions on import
from . import indexing, linalg, manipulation, reductions  # noqa: F401
from .binding import FUNCTIONS, METHODS, public_name
from .context import user_location
from .ops import describe
from .ufuncs import COMPOSED_UFUNCS, UFUNCS, apply_ufunc

__all__ = ["FUNCTIONS", "UFUNCS", "COMPOSED_UFUNCS", "apply_ufunc",
           "apply_function"]


def apply_function(func, args, kwargs):
    traced = FUNCTIONS.get(func)
    if traced is None:
        raise UnsupportedError(
            f"{public_name(func)} is not supported under jit (arguments "
            f"{describe(array_arguments(args, kwargs))}) at "
            f"{user_location()}")
    return traced(*args, **kwargs)


def array_arguments(args, kwargs) -> list:
    """The array-like arguments of a call, looking inside lists and
    tuples (``np.concatenate([a, b])``)."""
    out, stack = [], list(args) + list(kwargs.values())
    while stack:
        a = stack.pop(0)
        if isinstance(a, (list, tuple)):
            stack[:0] = list(a)
        elif _arraylike(a):
            out.append(a)
    return out


def _arraylike(a) -> bool:
    from .tracer import Tracer
    return isinstance(a, (Tracer, np.ndarray, np.generic, int, float, bool))


def _as_method(traced):
    def bound(self, *args, **kwargs):
        return traced(self, *args, **kwargs)
    bound.__name__ = traced.name.rsplit(".", 1)[-1]
    bound.__doc__ = f"{traced.name}, traced."
    return bound


def _install_methods() -> None:
    """The ndarray methods of the registry become Tracer methods."""
    from .tracer import Tracer
    for name, traced in METHODS.items():
        setattr(Tracer, name, _as_method(traced))


_install_methods()
