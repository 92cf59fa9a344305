"""The compiler pipeline, readable in one screen.

    HLO passes   simplify, constant_fold, cse, dce    (to a fixed point)
                 split_reductions                      (CPU: threads share them)
                 assign_layouts, cse, dce
                 fuse                                  (plan on the module)
    lowering     kernels and library calls per fused group, in the plan's
                 topological order (the schedule)
    memory       liveness and buffer assignment into one arena

With TRACEJIT_VERIFY=1 the verifier runs after every HLO pass (and the plan
verifier after fusion); TRACEJIT_DUMP=DIR writes the module after every
pass and the lowered program at the end.
"""
from __future__ import annotations

from .fusion.lower import lower
from .fusion.plan import fuse
from .fusion.program import Program
from .fusion.split import split_reductions
from .hlo.cse import cse
from .hlo.module import Module
from .hlo.passes import FixedPoint, dce, dump_text, run_pipeline
from .hlo.simplify import constant_fold, simplify
from .layout.assign import assign_layouts
from .memory import assign_buffers

HLO_PASSES = [
    FixedPoint(simplify, constant_fold, cse, dce),
    split_reductions,
    assign_layouts, cse, dce,
    fuse,
]
# The GPU splits reductions across blocks inside its own kernels.
BACKEND_SKIPS = {"cuda": (split_reductions,)}


def optimize(module: Module, backend: str = "cpu") -> Module:
    """Run the HLO passes for ``backend``; the module ends with its fusion
    plan."""
    skipped = BACKEND_SKIPS.get(backend, ())
    return run_pipeline(module, [p for p in HLO_PASSES if p not in skipped])


def to_program(module: Module) -> Program:
    """Lower the fused module and plan its memory."""
    program = assign_buffers(lower(module, module.fusion))
    dump_text(module, "program", program.describe() + "\n")
    return program
