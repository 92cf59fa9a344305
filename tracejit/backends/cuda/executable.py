"""The CUDA executable: runs a lowered program's steps on the current GPU.

Why it looks the way it does:

* One CUDA C module per program (render_module), compiled once by NVRTC
  with denormals kept (nvrtc.py); modules are cached in memory by source
  text and on disk in CuPy's kernel cache folder, so a second executable
  of the same program compiles nothing.
* Every step is queued on the current stream, back to back, with no host
  synchronization: the caller gets CuPy arrays whose values are ready when
  the stream gets there, like any CuPy operation's result.
* Parameters are read in place whatever their strides (negative and
  non-contiguous views included): kernels receive element strides at run
  time, as on the CPU.  Those strides live in one small device array per
  layout, cached by the parameters' strides, so a repeated call uploads
  nothing.  The host path matters as much as the kernels for small arrays:
  each executable generates its own call function (dispatch.py) that
  launches through ``cuLaunchKernel`` with a prebuilt parameter block and
  hands out small outputs nobody holds any more instead of allocating.
* Temporaries live in one arena (``arena_bytes``) at the offsets memory
  planning assigned; outputs are arrays nobody else holds; constants are
  uploaded once, when the executable is built.
* Kernels with reduce axes are laid out by ``rowplan`` (a block or a warp per
  row, two passes for full and column reductions), which says how each of
  their functions is launched and how much global scratch they need; one
  scratch array per call serves every step in turn (the steps run in
  order on one stream).
* GEMM is ``cupy.matmul`` with the planned transpose flags, in true float32
  (never TF32, whatever ``CUPY_TF32`` says): tracejit promises numpy's
  answers within float32 rounding, and TF32 keeps 10 mantissa bits.

CuPy is imported only when an executable is built, so the rest of tracejit
(and ``render_program``) works on machines without it.
"""
from __future__ import annotations

import contextlib
import functools
import math
import os
import threading
import warnings

import numpy as np

from ...fusion.program import KernelStep, LibraryStep, Program
from . import cublaslt, graphs, rowplan
from .epilogue import fold_epilogues
from .nvrtc import CudaCompileError, compile_module, set_max_shared
from .dispatch import FIXED, OUTPUT, PARAM, TEMP, Launch, build_call
from .render import function_names, render_module
from .vector import elementwise_width

__all__ = ["CudaExecutable", "CudaUnavailable", "CudaCompileError",
           "CudaOutOfMemory", "render_program"]

BLOCK = 256                 # threads per block of an elementwise kernel
# Grid-stride loops: at most this many blocks per SM.  On an H100, x*2+1
# over 2**26 float32 in groups of 4 (16-byte loads) took 0.213 ms with 8,
# 0.203 with 32, 0.201 with 128, 0.193 with 256: about one group per
# thread (copy floor 0.187 ms).  (Point by point it was 0.203 with 32 and
# 0.296 with a thread per point.)
BLOCKS_PER_SM = 256
STRIDE_CACHE_SIZE = 64      # distinct parameter layouts remembered per program
_driver = None              # cupy.cuda.driver, once import_cupy succeeded


class CudaUnavailable(RuntimeError):
    """CuPy is not installed, or no CUDA device can be used."""


class CudaOutOfMemory(MemoryError):
    """The device has no room for a call's outputs or temporaries."""


def render_program(program: Program) -> str:
    """The CUDA C source of every kernel of ``program`` (no GPU needed)."""
    return render_module(program.kernels)


def import_cupy():
    """The cupy module, once a usable device is confirmed; else
    CudaUnavailable saying what is missing."""
    try:
        import cupy
    except Exception as exc:  # ImportError, or a CUDA library missing
        raise CudaUnavailable(
            "the CUDA backend needs CuPy (pip install cupy-cuda13x, or the "
            f"wheel matching your CUDA version), which failed to import: "
            f"{exc}") from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver, driver too old, ...
        raise CudaUnavailable(
            f"CuPy is installed but no CUDA device is usable: {exc}") from exc
    if count == 0:
        raise CudaUnavailable("CuPy is installed but found no CUDA device")
    global _driver
    _driver = cupy.cuda.driver
    return cupy


def upload(cupy, x):
    """``x`` as a CuPy array: numpy arrays copied byte for byte on the
    current stream.  (``cupy.asarray`` fills a 0-d array through
    ``ndarray.fill``, which writes +0.0 for -0.0 and runs a kernel that
    flushes denormals.)  Anything else goes to ``cupy.asarray``."""
    if not isinstance(x, np.ndarray):
        return cupy.asarray(x)
    out = cupy.empty(x.shape, x.dtype)
    if x.size:
        out.set(np.asarray(x, order="C"))   # (keeps 0-d arrays 0-d)
    return out


def _stream_pointer(cupy):
    """A function returning the current stream's handle, the cheapest this
    CuPy offers."""
    fast = getattr(cupy.cuda.stream, "get_current_stream_ptr", None)
    return fast or (lambda: cupy.cuda.get_current_stream().ptr)


# ---- launch shapes ---------------------------------------------------------

def launch_shape(kernel, sm_count: int) -> tuple[int, int]:
    """(blocks, threads per block) for a kernel without reduce axes.

    The rendered loop is a grid-stride loop, so any shape is correct; this
    one is about speed: one thread per group of points (vector.py), blocks
    of 256, at most BLOCKS_PER_SM blocks per SM.  Kernels with reduce axes:
    see ``rowplan.launches``.
    """
    items = -(-math.prod(kernel.shape) // elementwise_width(kernel))
    blocks = min(-(-items // BLOCK), BLOCKS_PER_SM * sm_count)
    return max(blocks, 1), BLOCK


def kernel_launches(kernel, sm_count: int):
    """(the launches of ``kernel``'s functions in order, the scratch bytes
    they need)."""
    if kernel.reduce_axes:
        return rowplan.launches(kernel, sm_count)
    blocks, threads = launch_shape(kernel, sm_count)
    return (rowplan.Launch(kernel.name, blocks, threads),), 0


# ---- the executable --------------------------------------------------------

class CudaExecutable:
    """Runs ``program`` on the current CUDA device; see the module doc."""

    def __init__(self, program: Program):
        cupy = import_cupy()
        self._cp = cupy
        self._lt = _cublaslt(cupy, program)
        if self._lt is not None:        # GEMM epilogues into cuBLASLt
            program = fold_epilogues(program)
        self.program = program
        self.kernel_count = len(program.kernels)
        self.source = render_program(program)
        self.module = compile_module(
            cupy, self.source,
            [n for k in program.kernels for n in function_names(k)],
            program.name)
        device = cupy.cuda.Device()
        self.device_id = device.id
        sm_count = device.attributes["MultiProcessorCount"]
        buffers = program.buffers
        used = {b for s in program.steps for b in _step_buffers(s)}
        try:
            self._consts = {b.id: upload(cupy, np.asarray(b.value))
                            for b in buffers
                            if b.kind == "const" and b.id in used}
        except cupy.cuda.memory.OutOfMemoryError as exc:
            raise _out_of_memory(program.name, exc) from None
        out_ids = [b.id for b in buffers if b.kind == "output"]
        self._out_specs = [(buffers[b].returned_shape,
                            np.dtype(buffers[b].dtype)) for b in out_ids]
        self._out_slot = {b: k for k, b in enumerate(out_ids)}
        self._picks = [self._out_slot[b] for b in program.outputs]
        self._param_ids = {b.id: b.param_index for b in buffers
                           if b.kind == "param"}
        self._param_specs = sorted(
            (b.param_index, b.shape, np.dtype(b.dtype))
            for b in buffers if b.kind == "param")
        self._steps = [self._plan_step(s, sm_count) for s in program.steps]
        self._stride_layout = self._plan_strides()
        self._layouts: dict = {}     # param strides -> (pointers, array)
        self._tf32_guard = _fp32_gemm_guard(cupy, program)
        self._stream_ptr = _stream_pointer(cupy)
        self._upload = functools.partial(upload, cupy)
        self._driver, self._lock = _driver, threading.Lock()
        self._thread = threading.local()
        self._graphs = _graph_cache(cupy, self._steps)
        self._call, self.call_text = build_call(self)
        self._single = None

    # ---- planning ----------------------------------------------------------
    def _source_of(self, buf_id: int):
        """How a call finds buffer ``buf_id``: (kind, what)."""
        b = self.program.buffers[buf_id]
        if b.kind == "param":
            return (PARAM, b.param_index)
        if b.kind == "const":
            return (FIXED, self._consts[buf_id].data.ptr)
        if b.kind == "temp":
            return (TEMP, b.offset)
        if b.kind == "output":
            return (OUTPUT, self._out_slot[buf_id])
        raise ValueError(f"buffer b{buf_id}: unknown kind {b.kind!r}")

    def _plan_step(self, step, sm_count: int):
        if isinstance(step, LibraryStep):
            if step.name != "gemm":
                raise NotImplementedError(f"library call {step.name!r}")
            return step
        kernel = step.kernel
        for k in kernel.runtime_stride_args:
            if self.program.buffers[step.buffers[k]].kind != "param":
                raise ValueError("only parameters have run-time strides")
        launches, scratch = kernel_launches(kernel, sm_count)
        functions = []
        for launch in launches:
            fn = self.module.get_function(launch.name)
            set_max_shared(self._cp, fn, launch.shared)
            functions.append((fn, launch))
        return Launch(functions, [self._source_of(b) for b in step.buffers],
                      scratch)

    def _plan_strides(self):
        """Per step: [(param index, itemsize, rank)] whose element strides
        it receives, in the order its strides array holds them."""
        layout = []
        for step in self.program.steps:
            entries = []
            if isinstance(step, KernelStep):
                for k in step.kernel.runtime_stride_args:
                    arg = step.kernel.args[k]
                    entries.append((self._param_ids[step.buffers[k]],
                                    np.dtype(arg.dtype).itemsize,
                                    len(arg.shape)))
            layout.append(entries)
        return layout

    # ---- text --------------------------------------------------------------
    def as_text(self) -> str:
        return self.source

    # ---- calls -------------------------------------------------------------
    def __call__(self, args) -> list:
        """Run on the leaf arrays ``args`` (in parameter order: numpy arrays
        are copied to the device, CuPy arrays read in place); returns fresh
        CuPy arrays, computed in order on the current stream.

        Shapes and dtypes are checked when a parameter layout (strides) is
        first seen; later calls with the same strides trust the caller, as
        the jit keys executables by shape and dtype."""
        return self._call(args)

    def _make_ready(self) -> None:
        """Make the current device's primary context current on a thread
        calling for the first time: kernels launch through the driver,
        which (unlike CuPy's runtime calls) finds no context on a new
        thread that has made no runtime call yet."""
        runtime = self._cp.cuda.runtime
        runtime.setDevice(runtime.getDevice())
        runtime.free(0)
        self._thread.ready = True

    def _wrong_count(self, args) -> TypeError:
        return TypeError(f"{self.program.name}: expected "
                         f"{len(self._param_specs)} arrays, got {len(args)}")

    def _out_of_memory(self, exc) -> CudaOutOfMemory:
        return _out_of_memory(self.program.name, exc)

    def _launch_failed(self, exc) -> None:
        """Explain a launch error caused by calling on another GPU."""
        current = self._cp.cuda.runtime.getDevice()
        if current != self.device_id:
            raise RuntimeError(
                f"{self.program.name}: compiled for GPU {self.device_id}, "
                f"called with GPU {current} current") from exc

    def _new_layout(self, params):
        """(per-step strides pointers, device array holding them) for a
        parameter layout not seen before, and the parameters as kernels
        read them (copied where they cannot be read in place)."""
        current = self._cp.cuda.runtime.getDevice()
        if current != self.device_id:
            raise RuntimeError(
                f"{self.program.name}: compiled for GPU {self.device_id}, "
                f"called with GPU {current} current")
        params = self._checked(params)
        key = tuple([a.strides for a in params])
        if key in self._layouts:
            return self._layouts[key], params
        spans, flat = [], []
        for entries in self._stride_layout:
            start = len(flat)
            for index, itemsize, rank in entries:
                flat += [s // itemsize for s in params[index].strides[:rank]]
            spans.append((start, len(flat)))
        device = self._cp.asarray(np.array(flat or [0], np.int64))
        pointers = [device.data.ptr + 8 * lo for lo, _ in spans]
        if len(self._layouts) >= STRIDE_CACHE_SIZE:
            self._layouts.clear()
        self._layouts[key] = (pointers, device)
        return self._layouts[key], params

    def _checked(self, params) -> list:
        """``params`` after checking shapes and dtypes, with copies of any
        array kernels cannot read in place (strides not whole elements,
        misaligned data)."""
        if len(params) != len(self._param_specs):
            raise self._wrong_count(params)
        fixed = []
        for a, (index, shape, dtype) in zip(params, self._param_specs):
            if a.shape != shape or a.dtype != dtype:
                raise TypeError(
                    f"{self.program.name}: argument {index} is "
                    f"{a.dtype}{list(a.shape)}, the executable was compiled "
                    f"for {dtype}{list(shape)}")
            if a.data.ptr % a.itemsize or any(s % a.itemsize
                                               for s in a.strides):
                a = self._cp.ascontiguousarray(a.copy())
            fixed.append(a)
        return fixed

    def runner(self, single: bool = False):
        """A function of the argument tuple for repeated calls (the
        interface CpuExecutable offers the jit's fast path); ``single``:
        it returns the first output itself, not a list."""
        if not single:
            return self._call
        if self._single is None:
            self._single, _ = build_call(self, single=True)
        return self._single

    # ---- library steps -----------------------------------------------------
    def _array(self, buf_id: int, params, outs, arena):
        """Buffer ``buf_id`` as a CuPy array of its planned shape."""
        b = self.program.buffers[buf_id]
        if b.kind == "param":
            return params[b.param_index]
        if b.kind == "const":
            return self._consts[buf_id]
        if b.kind == "output":
            return outs[self._out_slot[buf_id]].reshape(b.shape)
        return arena[b.offset:b.offset + b.nbytes].view(b.dtype).reshape(
            b.shape)

    def _gemm(self, step: LibraryStep, params, outs, arena) -> None:
        flags = dict(step.attrs)
        a, b, *bias = (self._array(i, params, outs, arena)
                       for i in step.inputs)
        out = self._array(step.output, params, outs, arena)
        if flags.get("epilogue"):       # epilogue.py, through cuBLASLt
            contiguous = self._cp.ascontiguousarray
            self._lt.matmul(contiguous(a), contiguous(b), out,
                            bool(flags.get("transpose_a")),
                            bool(flags.get("transpose_b")),
                            flags["epilogue"], contiguous(bias[0]),
                            self._stream_ptr())
            return
        a = a.T if flags.get("transpose_a") else a
        b = b.T if flags.get("transpose_b") else b
        with self._tf32_guard():
            self._cp.matmul(a, b, out=out)


def _cublaslt(cupy, program: Program):
    """cuBLASLt (cublaslt.py) for a program with a GEMM, where it loads."""
    if not any(isinstance(s, LibraryStep) for s in program.steps) or \
            os.environ.get("TRACEJIT_CUBLASLT", "1") == "0":
        return None
    return cublaslt.load(cupy)


def _graph_cache(cupy, steps):
    """A GraphCache where replaying graphs pays (graphs.py), else None."""
    launches = [s for s in steps if isinstance(s, Launch)]
    count = sum(len(s.launches) for s in launches)
    if (len(launches) < len(steps) or count < graphs.MIN_LAUNCHES
            or not graphs.graphs_enabled()):
        return None
    return graphs.GraphCache(cupy)


def _step_buffers(step) -> tuple[int, ...]:
    if isinstance(step, KernelStep):
        return step.buffers
    return (*step.inputs, step.output)


def _out_of_memory(label: str, exc) -> CudaOutOfMemory:
    return CudaOutOfMemory(
        f"tracejit: the GPU has no room for {label!r}'s arrays "
        f"(outputs, temporaries or constants): {exc}")


def _fp32_gemm_guard(cupy, program: Program):
    """A context manager that makes CuPy's float32 GEMM use full float32
    (not TF32) inside it.

    CuPy picks a GEMM compute type per dtype once, from ``CUPY_TF32``
    (TF32 when set to 1); by default float32 GEMM is true float32 and this
    guard does nothing.  Where TF32 was chosen, the guard switches float32
    to plain float32 for the call and back after it.
    """
    gemm_f32 = any(isinstance(s, LibraryStep)
                   and program.buffers[s.output].dtype == "float32"
                   for s in program.steps)
    try:
        from cupy._core import _routines_linalg as linalg
        get, put = linalg.get_compute_type, linalg.set_compute_type
        tf32, fp32 = linalg.COMPUTE_TYPE_TF32, linalg.COMPUTE_TYPE_DEFAULT
    except (ImportError, AttributeError):
        if gemm_f32 and os.environ.get("CUPY_TF32", "0") not in ("", "0"):
            warnings.warn("CUPY_TF32 is set and this CuPy offers no way to "
                          "turn TF32 off per call: float32 GEMM results "
                          "will carry TF32 rounding (about 1e-3)")
        return contextlib.nullcontext
    if not gemm_f32 or get(np.float32) != tf32:
        return contextlib.nullcontext

    @contextlib.contextmanager
    def guard():
        before = get(np.float32)
        put(np.float32, fp32)
        try:
            yield
        finally:
            put(np.float32, before)
    return guard
