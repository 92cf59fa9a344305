"""The trace context: records primitives into an HLO module as a traced
function runs, and knows where in the user's source each one came from."""
from __future__ import annotations

import os
import sys
import threading

import numpy as np

from ..errors import ShapeMismatchError, UnsupportedError
from ..hlo.module import Aval, Module
from ..hlo.primitives import PRIMITIVES, ShapeError

SUPPORTED_DTYPES = ("bool", "int32", "int64", "float32", "float64")

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_NUMPY_DIR = os.path.dirname(os.path.abspath(np.__file__))
_state = threading.local()


_internal: dict[str, bool] = {}     # code filename -> inside tracejit/numpy


def _is_internal(filename: str) -> bool:
    known = _internal.get(filename)
    if known is None:
        path = os.path.abspath(filename)
        known = _internal[filename] = (path.startswith(_PACKAGE_DIR)
                                       or path.startswith(_NUMPY_DIR)
                                       or path.startswith("<frozen"))
    return known


def user_location() -> str:
    """``file:line`` of the innermost frame outside tracejit and numpy
    (called for every traced op, so each file is classified once)."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not _is_internal(filename):
            return f"{filename}:{frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>"


def check_dtype(dtype, what: str) -> str:
    """The dtype's name if tracejit supports it, else a clear TypeError."""
    name = np.dtype(dtype).name
    if name not in SUPPORTED_DTYPES:
        raise UnsupportedError(
            f"{what}: dtype {name} is not supported (supported: "
            f"{', '.join(SUPPORTED_DTYPES)}) at {user_location()}")
    return name


class TraceContext:
    """Collects instructions while one function is traced."""

    def __init__(self, name: str):
        self.module = Module(name)
        self.constants: dict[tuple, int] = {}

    def emit(self, op: str, operands: list, attrs: dict, weak: bool = False):
        """Append ``op`` applied to tracers ``operands``; returns a Tracer."""
        from .tracer import Tracer

        avals = [t.aval for t in operands]
        try:
            aval = PRIMITIVES[op].abstract_eval(avals, attrs)
        except ShapeError as err:
            shapes = ", ".join(str(a) for a in avals)
            raise ShapeMismatchError(f"{op}: {err} (operands {shapes}) at "
                                     f"{user_location()}") from None
        ins = self.module.add(op, [t.id for t in operands], aval,
                              sorted(attrs.items()), user_location())
        deps = frozenset().union(*(t.deps for t in operands))
        return Tracer(self, ins, aval, weak, deps)

    def parameter(self, index: int, aval: Aval, weak: bool, name: str):
        from .tracer import Tracer

        ins = self.module.add("parameter", [], aval, [("index", index)])
        return Tracer(self, ins, aval, weak, frozenset([name]))

    def constant(self, value: np.ndarray, weak: bool = False):
        from .tracer import Tracer

        value = np.array(value, order="C")
        dtype = check_dtype(value.dtype, "constant")
        key = (dtype, value.shape, value.tobytes(), weak)
        ins = self.constants.get(key)
        if ins is None:
            frozen = value.copy()
            frozen.flags.writeable = False
            ins = self.module.add("constant", [], Aval(value.shape, dtype),
                                  [("value", frozen)])
            self.constants[key] = ins
        return Tracer(self, ins, Aval(value.shape, dtype), weak, frozenset())


def current() -> TraceContext | None:
    stack = getattr(_state, "stack", None)
    return stack[-1] if stack else None


class tracing:
    """``with tracing(ctx):`` makes ``ctx`` the current trace."""

    def __init__(self, ctx: TraceContext):
        self.ctx = ctx

    def __enter__(self):
        if not hasattr(_state, "stack"):
            _state.stack = []
        _state.stack.append(self.ctx)
        return self.ctx

    def __exit__(self, *exc):
        _state.stack.pop()
