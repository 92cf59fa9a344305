"""LLVM IR text -> native code, through llvmlite.

The target machine is the host CPU with all its features; the optimization
pipeline is LLVM's new pass manager at O3 with loop and SLP vectorization on.
"""
from __future__ import annotations

import functools

import llvmlite.binding as llvm


@functools.cache
def target_machine():
    """The shared target machine for optimizing and printing assembly.  Never
    hand it to an execution engine: llvmlite makes the engine its owner, and
    it would be freed with that engine."""
    return _new_target_machine()


def _new_target_machine():
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(
        cpu=llvm.get_host_cpu_name(),
        features=llvm.get_host_cpu_features().flatten(),
        opt=3, reloc="default", codemodel="jitdefault", jit=True)


def optimize(ir_text: str):
    """Parse, verify and optimize; returns the llvmlite module."""
    tm = target_machine()
    module = llvm.parse_assembly(ir_text)
    module.triple = tm.triple
    module.data_layout = str(tm.target_data)
    module.verify()
    pto = llvm.PipelineTuningOptions(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pto.loop_unrolling = True
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(module, pb)
    return module


class NativeCode:
    """A JIT-compiled module; keeps its engine (and so its code) alive."""

    def __init__(self, ir_text: str):
        self.ir_text = ir_text
        self.module = optimize(ir_text)
        self.engine = llvm.create_mcjit_compiler(self.module,
                                                 _new_target_machine())
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
