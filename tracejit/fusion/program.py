"""A lowered program: buffers and the ordered steps that fill them.

This is what backends execute.  Buffers are parameters (the caller's arrays,
any strides), constants (owned by the program), temporaries (placed in one
arena by memory planning) and outputs (fresh arrays returned to the caller).
Steps are kernels (rendered by a backend) or library calls (GEMM).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .kernel import Kernel


@dataclass
class Buffer:
    id: int
    kind: str                      # "param" | "const" | "temp" | "output"
    shape: tuple[int, ...]
    dtype: str
    param_index: int | None = None
    value: np.ndarray | None = None
    output_index: int | None = None
    offset: int | None = None      # byte offset in the arena (temps)
    out_shape: tuple[int, ...] | None = None   # outputs: shape returned

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize

    @property
    def returned_shape(self) -> tuple[int, ...]:
        """The shape an output is handed back in (``out_shape``, which may
        be ``()``, else its own shape)."""
        return self.shape if self.out_shape is None else self.out_shape


@dataclass
class KernelStep:
    kernel: Kernel
    buffers: tuple[int, ...]       # buffer id per kernel argument


@dataclass
class LibraryStep:
    name: str                      # "gemm"
    inputs: tuple[int, ...]
    output: int
    attrs: tuple = ()              # e.g. (("transpose_a", True),)

    def describe(self) -> str:
        args = ", ".join(f"b{i}" for i in self.inputs)
        flags = "".join(f", {k}={v}" for k, v in self.attrs)
        return f"call {self.name}({args}{flags}) -> b{self.output}"


@dataclass
class Program:
    name: str
    buffers: list[Buffer] = field(default_factory=list)
    steps: list[KernelStep | LibraryStep] = field(default_factory=list)
    outputs: tuple[int, ...] = ()  # buffer id per output (may repeat)
    arena_bytes: int = 0

    def new_buffer(self, kind: str, shape, dtype: str, **extra) -> Buffer:
        buf = Buffer(len(self.buffers), kind, tuple(shape), dtype, **extra)
        self.buffers.append(buf)
        return buf

    @property
    def kernels(self) -> list[Kernel]:
        return [s.kernel for s in self.steps if isinstance(s, KernelStep)]

    def describe(self) -> str:
        lines = [f"program {self.name}: {len(self.kernels)} kernels, "
                 f"arena {self.arena_bytes} bytes"]
        for b in self.buffers:
            where = f" @arena+{b.offset}" if b.offset is not None else ""
            lines.append(f"  b{b.id} {b.kind} {b.dtype}{list(b.shape)}{where}")
        for step in self.steps:
            if isinstance(step, KernelStep):
                args = ", ".join(f"b{i}" for i in step.buffers)
                lines.append(f"  kernel {step.kernel.name}({args})")
            else:
                lines.append("  " + step.describe())
        lines.append("  outputs " + ", ".join(f"b{o}" for o in self.outputs))
        return "\n".join(lines)
