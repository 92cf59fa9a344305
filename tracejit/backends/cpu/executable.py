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
        self._params = [b for b in program.buffers if b.kind == "param"]
        self._outputs = sorted((b for b in program.buffers
                                if b.kind == "output"),
                               key=lambda b: b.output_index)

    def as_text(self) -> str:
        return self.ir_text

    def assembly(self) -> str:
        return self.native.assembly()

    def __call__(self, args: list[np.ndarray]) -> list[np.ndarray]:
        program = self.program
        arrays: dict[int, np.ndarray] = {}
        for buf in self._params:
            arr = args[buf.param_index]
            if any(s % arr.itemsize for s in arr.strides):
                arr = np.ascontiguousarray(arr)   # strides not in elements
            arrays[buf.id] = arr
        arena = np.empty(max(program.arena_bytes, 1), np.uint8)
        for buf in program.buffers:
            if buf.kind == "temp":
                view = arena[buf.offset:buf.offset + buf.nbytes]
                arrays[buf.id] = view.view(buf.dtype).reshape(buf.shape)
            elif buf.kind == "const":
                arrays[buf.id] = buf.value
        outputs = [np.empty(b.shape, b.dtype) for b in self._outputs]
        for buf, out in zip(self._outputs, outputs):
            arrays[buf.id] = out
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
        return [self._result(arrays, b) for b in program.outputs]

    def _result(self, arrays, buf_id: int) -> np.ndarray:
        buf = self.program.buffers[buf_id]
        out = arrays[buf_id]
        if buf.out_shape is not None and buf.out_shape != out.shape:
            out = out.reshape(buf.out_shape)
        return out
