"""Common subexpression elimination."""
from __future__ import annotations

import numpy as np

from .module import Module
from .rewrite import replace_uses


def _attr_key(value):
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, (tuple, list)):
        return tuple(_attr_key(v) for v in value)
    return value


def cse(module: Module) -> bool:
    """Instructions with the same primitive, operands, attributes and aval
    compute the same value (every primitive is pure): all uses are pointed at
    the first one.  ``(x*2) + (x*2)`` then computes one multiply.
    Parameters are never merged."""
    seen: dict = {}
    mapping: dict[int, int] = {}
    for ins in module.instructions:
        if ins.op == "parameter":
            continue
        operands = tuple(mapping.get(o, o) for o in ins.operands)
        key = (ins.op, operands, ins.aval,
               tuple((k, _attr_key(v)) for k, v in ins.attrs))
        first = seen.setdefault(key, ins.id)
        if first != ins.id:
            mapping[ins.id] = first
    replace_uses(module, mapping)
    return bool(mapping)
