"""The CUDA backend: CUDA C source for fusion kernels, compiled with NVRTC."""
from .render import render_kernel, render_module

__all__ = ["render_kernel", "render_module"]
