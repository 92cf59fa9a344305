"""Layout assignment.

Views (transpose, broadcast, slice, reshape) never become copies: lowering
reads through their index maps.  The one consumer that cannot index is a
library call, which needs its operands in memory in row-major order, or
transposed where the library has a flag for it.  This pass folds a 2-D
transpose feeding such an operand into the primitive's transpose flag
(``transpose_flags`` in the primitive table), so ``x.T @ y`` calls GEMM
with a transposed operand instead of copying ``x.T`` first.  Any other view
feeding a library call is copied by lowering.
"""
from __future__ import annotations

from ..hlo.module import Instruction, Module
from ..hlo.primitives import PRIMITIVES, View


def assign_layouts(module: Module) -> bool:
    """Folds 2-D transposes into library operands' transpose flags; the
    module computes the same values, with fewer copies."""
    changed = False
    rebuilt = []
    for ins in module.instructions:
        flags = PRIMITIVES[ins.op].transpose_flags
        if flags:
            operands, attrs = list(ins.operands), ins.attr_dict
            for k, flag in enumerate(flags):
                producer = module.get(operands[k])
                how = PRIMITIVES[producer.op].lowering
                if isinstance(how, View) and how.method == "transpose" and \
                        producer.attr("perm") == (1, 0):
                    operands[k] = producer.operands[0]
                    attrs[flag] = not attrs.get(flag, False)
                    changed = True
            ins = Instruction(ins.id, ins.op, tuple(operands), ins.aval,
                              tuple(sorted(attrs.items())), ins.loc)
        rebuilt.append(ins)
    module.replace_all(rebuilt, module.outputs)
    return changed
