"""The CPU backend: kernels rendered to LLVM IR, compiled by llvmlite."""
from .executable import CpuExecutable

__all__ = ["CpuExecutable"]
