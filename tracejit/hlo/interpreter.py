"""The reference interpreter: evaluates a module with numpy.

Every primitive's numpy reference comes from the primitive table, so this
is the executable specification the compiled code is tested against.
"""
from __future__ import annotations

import numpy as np

from .module import Module
from .primitives import PRIMITIVES


def evaluate(module: Module, args: list) -> list[np.ndarray]:
    """Run ``module`` on numpy ``args`` (one per parameter, in order)."""
    params = module.parameters
    if len(args) != len(params):
        raise TypeError(f"{module.name} takes {len(params)} arguments, "
                        f"got {len(args)}")
    env: dict[int, np.ndarray] = {}
    for ins in module.instructions:
        if ins.op == "parameter":
            value = np.asarray(args[ins.attr("index")], dtype=ins.dtype)
        elif ins.op == "constant":
            value = ins.attr("value")
        else:
            ref = PRIMITIVES[ins.op].reference
            value = ref(*(env[o] for o in ins.operands), **ins.attr_dict)
            value = np.asarray(value).astype(ins.dtype, copy=False)
        if value.shape != ins.shape:
            raise AssertionError(f"{ins.text()} evaluated to shape "
                                 f"{value.shape}")
        env[ins.id] = value
    return [np.array(env[o]) for o in module.outputs]
