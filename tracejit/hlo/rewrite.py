"""Small helpers shared by the rewriting passes: replacing uses, reading
constants through broadcasts."""
from __future__ import annotations

import numpy as np

from .module import Instruction, Module


def replace_uses(module: Module, mapping: dict[int, int]) -> None:
    """Point every use of ``old`` at ``mapping[old]`` (chains are followed)."""
    if not mapping:
        return

    def final(i: int) -> int:
        while i in mapping:
            i = mapping[i]
        return i

    rebuilt = []
    for ins in module.instructions:
        operands = tuple(final(o) for o in ins.operands)
        if operands != ins.operands:
            ins = Instruction(ins.id, ins.op, operands, ins.aval, ins.attrs,
                              ins.loc)
        rebuilt.append(ins)
    module.replace_all(rebuilt, tuple(final(o) for o in module.outputs))


def constant_value(module: Module, ins_id: int) -> np.ndarray | None:
    """The value of a constant, or of a broadcast of a constant."""
    ins = module.get(ins_id)
    if ins.op == "constant":
        return ins.attr("value")
    if ins.op == "broadcast":
        inner = module.get(ins.operands[0])
        if inner.op == "constant":
            value = inner.attr("value")
            expanded = [1] * len(ins.shape)
            for d, size in zip(ins.attr("dims"), value.shape):
                expanded[d] = size
            return np.broadcast_to(value.reshape(expanded), ins.shape)
    return None


def is_splat(module: Module, ins_id: int, scalar: float,
             negative_zero: bool | None = None) -> bool:
    """True when every element of the value equals ``scalar`` (and, for a
    zero with ``negative_zero`` given, has that sign bit)."""
    value = constant_value(module, ins_id)
    if value is None or value.size == 0:
        return False
    flat = np.asarray(value).reshape(-1)
    if not np.all(flat == scalar):
        return False
    if negative_zero is not None and flat.dtype.kind == "f":
        return bool(np.all(np.signbit(flat) == negative_zero))
    return True
