"""Argument binding: every traced numpy function, ufunc and ndarray method
takes its arguments through numpy's own signature, here and nowhere else.

A traced name is an *implementation* registered against the numpy callable
whose signature it follows.  A call is first bound with
``inspect.signature`` of that numpy callable, so a call numpy would reject
is rejected the same way.  Then every parameter the caller passed is
either

* honoured: the implementation has a parameter of that name (so the name
  cannot drift from numpy's: a test checks every implementation's names
  against numpy's signature), or
* numpy's default (passing ``out=None`` is the same call as leaving it
  out), or
* refused with an UnsupportedError naming the parameter, the function and
  the user's line.

Nothing a user passes is ever dropped.  Implementations take numpy's
positional-only and ``*args`` parameters positionally, everything else by
keyword, with numpy's defaults.
"""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass

import numpy as np

from ..errors import TracejitError, UnsupportedError
from .context import user_location

_NO_VALUE = np._NoValue
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY,
               inspect.Parameter.VAR_POSITIONAL)


class ArgumentError(TracejitError, TypeError):
    """A call numpy itself would reject (a missing or unknown argument)."""


def public_name(fn) -> str:
    """Where numpy users find ``fn``: ``numpy.linalg.norm``, not
    ``numpy.norm``; ``numpy.ndarray.sum`` for a method."""
    qualname = getattr(fn, "__qualname__", None) or \
        getattr(fn, "__name__", repr(fn))
    module = getattr(fn, "__module__", None) or "numpy"
    if qualname.startswith("ndarray."):
        module = "numpy"
    return f"{module}.{qualname}"


@functools.lru_cache(maxsize=None)
def numpy_signature(fn) -> inspect.Signature:
    return inspect.signature(fn)


@dataclass(frozen=True)
class Traced:
    """One traced numpy name: the numpy callable whose signature binds a
    call, the public name errors use, and the implementation."""

    numpy_fn: object
    name: str
    impl: object

    @functools.cached_property
    def honoured(self) -> frozenset:
        """numpy parameters the implementation takes.  One with ``*args``
        takes all of numpy's positional-only and ``*args`` parameters."""
        own = inspect.signature(self.impl).parameters
        names = {n for n, p in own.items() if p.kind not in (
            p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        if any(p.kind is p.VAR_POSITIONAL for p in own.values()):
            names |= {n for n, p in self.parameters.items()
                      if p.kind in _POSITIONAL}
        return frozenset(names)

    @functools.cached_property
    def parameters(self):
        return numpy_signature(self.numpy_fn).parameters

    def __call__(self, *args, **kwargs):
        positional, keywords = self.bind(args, kwargs)
        return self.impl(*positional, **keywords)

    @functools.cached_property
    def leading(self) -> tuple:
        """numpy's parameters that a plain positional call fills in order
        (the common call, bound without ``inspect``'s general binder)."""
        out = []
        for p in self.parameters.values():
            if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                break
            out.append(p)
        return tuple(out)

    def bind(self, args, kwargs) -> tuple[list, dict]:
        """(positional, keyword) arguments for the implementation."""
        leading = self.leading
        if not kwargs and len(args) <= len(leading) and all(
                p.default is not p.empty for p in leading[len(args):]):
            pairs = [(p.name, v) for p, v in zip(leading, args)]
        else:
            try:
                bound = numpy_signature(self.numpy_fn).bind(*args, **kwargs)
            except TypeError as err:
                raise ArgumentError(f"{self.name}: {err} at "
                                    f"{user_location()}") from None
            pairs = bound.arguments.items()
        positional, keywords = [], {}
        for name, value in pairs:
            param = self.parameters[name]
            if param.kind is param.VAR_KEYWORD:
                for key, item in value.items():
                    self.refuse(key, item)
                continue
            if value is _NO_VALUE:
                continue
            if name not in self.honoured:
                if not _is_default(value, param.default):
                    self.refuse(name, value)
                continue
            if param.kind is param.VAR_POSITIONAL:
                positional.extend(value)
            elif param.kind is param.POSITIONAL_ONLY:
                positional.append(value)
            else:
                keywords[name] = value
        return positional, keywords

    def refuse(self, param: str, value) -> None:
        honoured = ", ".join(sorted(self.honoured)) or "none"
        raise UnsupportedError(
            f"{self.name}: parameter {param}={_short(value)} is not "
            f"supported under jit (supported: {honoured}) at "
            f"{user_location()}")


def refuse_value(function: str, param: str, value, why: str):
    """The error for an honoured parameter given a value tracejit cannot
    honour (``order='F'``, ``copy=False``)."""
    return UnsupportedError(f"{function}: {param}={_short(value)} is not "
                            f"supported under jit ({why}) at "
                            f"{user_location()}")


def _is_default(value, default) -> bool:
    if value is default:
        return True
    if default is inspect.Parameter.empty or default is _NO_VALUE:
        return False
    simple = (bool, int, float, str, type(None))
    return type(value) is type(default) and isinstance(value, simple) \
        and value == default


def _short(value) -> str:
    text = repr(value) if not hasattr(value, "aval") else str(value.aval)
    return text if len(text) <= 40 else text[:37] + "..."


# ---- the registry ------------------------------------------------------------

FUNCTIONS: dict = {}      # numpy function or ufunc -> Traced
METHODS: dict = {}        # ndarray method name -> Traced


def implements(numpy_fn, name: str | None = None):
    """Register the decorated function as numpy_fn's traced form."""
    def register(impl):
        FUNCTIONS[numpy_fn] = Traced(numpy_fn, name or public_name(numpy_fn),
                                     impl)
        return impl
    return register


def method(name: str, numpy_fn=None):
    """Register the decorated function as ``ndarray.<name>``, bound
    against ``numpy_fn``'s signature (the numpy function numpy documents
    the method as equivalent to, ``self`` taking its first parameter) or,
    by default, the method's own."""
    def register(impl):
        sig_of = numpy_fn if numpy_fn is not None else \
            getattr(np.ndarray, name)
        METHODS[name] = Traced(sig_of, f"numpy.ndarray.{name}", impl)
        return impl
    return register
