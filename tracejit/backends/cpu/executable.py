"""The CPU executable: runs a lowered program's steps over its buffers.

Parameters are the caller's arrays, read in place whatever their strides
(the kernels receive element strides at run time); temporaries live in one
arena allocated per call; outputs are fresh arrays.  Nothing the caller
passed in is written.
"""
from __future__ import annotations

import ctypes

import numpy as np

from ...fusion.program import KernelStep, LibraryStep, Program
from .compiler import NativeCode
from .render import render_module
from .threads import chunks, num_threads, run_split

ENTRY = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p,
                         ctypes.c_int64, ctypes.c_int64)


def _address(arr: np.ndarray) -> int:
    return arr.__array_interface__["data"][0]


class CpuExecutable:
    def __init__(self, program: Program):
        self.program = program
        self.ir_text = render_module(program.kernels, program.name)
        self.native = NativeCode(self.ir_text)
        self.kernel_count = len(program.kernels)
        self.threads = num_threads()
        self._steps = []
        for step in program.steps:
            if isinstance(step, KernelStep):
                fn = ENTRY(self.native.address(step.kernel.name + "_entry"))
                stride_args = [step.buffers[k]
                               for k in step.kernel.runtime_stride_args]
                kernel = step.kernel
                axis = kernel.split_axis
                extent = 1 if axis is None else kernel.shape[axis]
                points = int(np.prod(kernel.shape))
                ranges = chunks(extent, points, self.threads) \
                    if axis is not None else [(0, 1)]
                self._steps.append(("kernel", fn, step.buffers, stride_args,
                                    ranges))
            else:
                self._steps.append(("library", step))
        # what a call fills in, decided once
        buffers = program.buffers
        self._template = [b.value if b.kind == "const" else None
                          for b in buffers]
        self._params = [(b.id, b.param_index) for b in buffers
                        if b.kind == "param"]
        self._temps = [(b.id, b.offset, b.nbytes, np.dtype(b.dtype), b.shape)
                       for b in buffers if b.kind == "temp"]
        self._outputs = [(b.id, b.shape, np.dtype(b.dtype)) for b in buffers
                         if b.kind == "output"]
        self._results = [(b, buffers[b].out_shape) for b in program.outputs]

    def as_text(self) -> str:
        return self.ir_text

    def assembly(self) -> str:
        return self.native.assembly()

    def __call__(self, args) -> list[np.ndarray]:
        arrays = list(self._template)
        for bid, index in self._params:
            arr = args[index]
            if any(st % arr.itemsize for st in arr.strides):
                arr = np.ascontiguousarray(arr)   # strides not in elements
            arrays[bid] = arr
        if self._temps:
            arena = np.empty(self.program.arena_bytes, np.uint8)
            for bid, offset, nbytes, dtype, shape in self._temps:
                view = arena[offset:offset + nbytes]
                arrays[bid] = view.view(dtype).reshape(shape)
        for bid, shape, dtype in self._outputs:
            arrays[bid] = np.empty(shape, dtype)
        for step in self._steps:
            if step[0] == "kernel":
                _, fn, buffers, stride_args, ranges = step
                ptrs = (ctypes.c_void_p * len(buffers))(
                    *[_address(arrays[b]) for b in buffers])
                strides = [s // arrays[b].itemsize for b in stride_args
                           for s in arrays[b].strides]
                packed = (ctypes.c_int64 * max(len(strides), 1))(*strides)
                run_split(fn, ptrs, packed, ranges)
            else:
                lib = step[1]
                flags = dict(lib.attrs)
                a, b = (arrays[i] for i in lib.inputs)
                a = a.T if flags.get("transpose_a") else a
                b = b.T if flags.get("transpose_b") else b
                np.matmul(a, b, out=arrays[lib.output])
        return [arrays[b] if shape is None or shape == arrays[b].shape
                else arrays[b].reshape(shape) for b, shape in self._results]
