"""LLVM IR text -> native code, through llvmlite.

The target machine is the host CPU with all its features; the optimization
pipeline is LLVM's new pass manager at O3 with loop and SLP vectorization on
(see ``pipeline_options``); kernel bodies are never inlined into their
callers (see ``keep_bodies_apart``).  Huge programs get a quick tier
instead (``QUICK_PASSES``): LLVM's time per op is what it is, and a
program of 10**5 ops must not compile for half a minute.

Compile time is most of a first call's cost, so fixed costs are paid once
per process: LLVM's target initialization, the host's CPU name and feature
string (``host``) and the target machine used for optimizing
(``target_machine``).  Each engine still gets a target machine of its own,
because llvmlite makes the engine its owner; made from the cached host
description, that costs a fraction of a millisecond.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import llvmlite.binding as llvm


@dataclass(frozen=True)
class Host:
    target: object          # llvm.Target
    cpu: str
    features: str


@functools.cache
def host() -> Host:
    """The native target, initialized once.  LLVM recomputes the host's
    feature string on every query (~0.3 ms), so it is asked once."""
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    return Host(llvm.Target.from_default_triple(), llvm.get_host_cpu_name(),
                llvm.get_host_cpu_features().flatten())


@functools.cache
def target_machine():
    """The shared target machine for optimizing and printing assembly.  Never
    hand it to an execution engine: llvmlite makes the engine its owner, and
    it would be freed with that engine."""
    return _new_target_machine()


def _new_target_machine(opt: int = 3):
    h = host()
    return h.target.create_target_machine(
        cpu=h.cpu, features=h.features, opt=opt, reloc="default",
        codemodel="jitdefault", jit=True)


# The renderer marks big modules with a tier (``tier_mark``).  Large: O3 without the SLP vectorizer, which straight-line
# code needs and the vectorized loops of big kernels do not (-16% of LLVM
# time on a kernel of 1000 elementwise ops).  Quick: below.
LARGE_MARK = "; tracejit tier: large"
QUICK_MARK = "; tracejit tier: quick"
# Quick tier: promote the loop counters to registers (SROA), fold what
# the scalar rules leave (instcombine), tidy the branches; then the fast
# instruction selector (codegen level 0).  Measured on a chain of 10**4
# elementwise ops in 20 kernels: O3 takes 2.5 s, this 0.2 s; the code
# runs scalar, not vectorized.
QUICK_PASSES = ("sroa", "instruction_combine", "simplify_cfg")


# Scalar ops past which a program gets the large or the quick tier: LLVM's
# O3 costs about 0.25 ms per op, so 10**5 ops would take half a minute.
LARGE_OPS = 512
QUICK_OPS = 20000


def tier_mark(ops: int) -> str | None:
    """The first line of a module of ``ops`` scalar ops (None: O3)."""
    return QUICK_MARK if ops > QUICK_OPS else \
        LARGE_MARK if ops > LARGE_OPS else None


def is_quick(ir_text: str) -> bool:
    return QUICK_MARK in ir_text[:200]


def is_large(ir_text: str) -> bool:
    return LARGE_MARK in ir_text[:200]


def pipeline_options(slp: bool = True):
    """O3 with both vectorizers and the unroller.

    Measured alternatives (LLVM time of the benchmark kernels, and their
    speed): O1 or O2 instead of O3 save nothing reliable; without the
    unroller the MLP's kernels compile ~30% faster and the benchmark
    kernels run as fast, but a reduction over a short constant axis (sum
    over axis 0 of a (4, N) array) runs ~5x slower: that loop needs the
    full unrolling, and PipelineTuningOptions cannot keep full unrolling
    without partial and runtime unrolling.  So the unroller stays on."""
    pto = llvm.PipelineTuningOptions(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = slp
    pto.loop_unrolling = True
    return pto


def keep_bodies_apart(module) -> None:
    """Mark the module's internal functions ``noinline``, unless they ask
    for ``alwaysinline``.

    Why: in our modules those are the kernel bodies, each called by one or
    a few small wrappers (``k0_add_entry``, and the entry points that call
    those).  Once inlined, a body is simplified again in every caller it
    was copied into, and with constant ranges the inliner specializes it
    there too.  Kept apart, each body is optimized once, as itself, with
    its ``noalias`` arguments; the call per thread chunk costs nothing
    measurable.  Measured on the benchmark workloads: 7-38% less LLVM
    time, kernel speed unchanged (within 2%)."""
    for fn in module.functions:
        if fn.is_declaration or fn.linkage != llvm.Linkage.internal:
            continue
        attrs = b" ".join(fn.attributes).split()
        if b"alwaysinline" not in attrs and b"noinline" not in attrs:
            fn.add_function_attribute("noinline")


def optimize(ir_text: str):
    """Parse, verify and optimize; returns the llvmlite module."""
    tm = target_machine()
    module = llvm.parse_assembly(ir_text)
    module.triple = tm.triple
    module.data_layout = str(tm.target_data)
    module.verify()
    keep_bodies_apart(module)
    pb = llvm.create_pass_builder(
        tm, pipeline_options(slp=not is_large(ir_text)))
    if is_quick(ir_text):
        passes = llvm.create_new_module_pass_manager()
        for name in QUICK_PASSES:
            getattr(passes, f"add_{name}_pass")()
        passes.run(module, pb)
    else:
        pb.getModulePassManager().run(module, pb)
    return module


class NativeCode:
    """A JIT-compiled module; keeps its engine (and so its code) alive."""

    def __init__(self, ir_text: str):
        self.ir_text = ir_text
        self.module = optimize(ir_text)
        self.engine = llvm.create_mcjit_compiler(
            self.module, _new_target_machine(0 if is_quick(ir_text) else 3))
        self.engine.finalize_object()

    def address(self, name: str) -> int:
        addr = self.engine.get_function_address(name)
        if not addr:
            raise RuntimeError(f"symbol {name} missing from compiled module")
        return addr

    def assembly(self) -> str:
        return target_machine().emit_assembly(self.module)

    def optimized_ir(self) -> str:
        return str(self.module)
