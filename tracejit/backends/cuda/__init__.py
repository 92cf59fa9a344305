"""The CUDA backend: CUDA C source for fusion kernels, compiled with NVRTC
(through CuPy) and run by CudaExecutable.  CuPy is imported only when an
executable is built."""
from .executable import (CudaCompileError, CudaExecutable, CudaOutOfMemory,
                         CudaUnavailable, render_program)
from .render import render_kernel, render_module

__all__ = ["render_kernel", "render_module", "render_program",
           "CudaExecutable", "CudaUnavailable", "CudaCompileError",
           "CudaOutOfMemory"]
