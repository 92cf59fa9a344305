"""Tracing: run a Python function on abstract arrays and record an HLO
module of everything it computes."""
from __future__ import annotations

from dataclasses import dataclass

from ..hlo.module import Aval, Module
from .context import SUPPORTED_DTYPES, TraceContext, check_dtype, tracing
from .intercept import intercepting
from .ops import as_tracer
from .tracer import Tracer

# The numpy protocols' implementations, imported by the tracer on its first
# ufunc or function call (a circular import otherwise).  Loaded here, with
# the package, they are not part of a user's first call.
from . import numpy_protocol, random  # noqa: E402,F401  isort: skip


@dataclass(frozen=True)
class LeafSpec:
    """One array argument leaf: its aval, weak type and name for errors."""

    aval: Aval
    weak: bool
    name: str


def trace(flat_fun, leaves: list[LeafSpec], name: str, watch=()):
    """Call ``flat_fun(*tracers)`` and return (module, output weak flags).

    ``flat_fun`` must return a flat list of outputs (tracers, numpy values or
    Python scalars).  ``watch``: the user's function and static values,
    whose reachable random states must not change while tracing.
    """
    ctx = TraceContext(name)
    before = random.reachable_states(watch)
    with tracing(ctx), intercepting():
        params = [ctx.parameter(k, leaf.aval, leaf.weak, leaf.name)
                  for k, leaf in enumerate(leaves)]
        outs = [as_tracer(o) for o in flat_fun(*params)]
    random.check_unchanged(before, watch, name)
    ctx.module.outputs = tuple(t.id for t in outs)
    return ctx.module, [t.weak for t in outs]


__all__ = ["LeafSpec", "trace", "Tracer", "SUPPORTED_DTYPES", "check_dtype"]
