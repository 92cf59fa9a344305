"""The CPU executable: runs a lowered program's steps over its buffers.

Parameters are the caller's arrays, read in place whatever their strides
(the kernels receive element strides at run time); temporaries live in one
arena allocated per call; outputs are fresh arrays.  Nothing the caller
passed in is written.

A call takes one of three paths, fixed when the executable is built
(``mode``):

* ``"program"``: one native call runs every kernel in order.  Used when no
  kernel is split across threads and there is no library step.  Small
  programs (``gil_held``) call entry.py's ``__tj_pyrun``, a builtin
  function that holds the GIL and takes its small arena from malloc: tens
  of nanoseconds.  Larger ones call ``__tj_run`` through ctypes, which
  releases the GIL for the run, with an arena from ``_arena``.
* ``"steps"``: one native call per kernel step (``__tj_step{i}``, reading
  pointers and strides from the array objects), split across threads where
  the kernel is large; library steps (GEMM) call numpy.
* ``"portable"``: where entry.py could not confirm the object layouts: the
  same steps, with pointers and strides packed in Python.

Outputs are allocated in ``_fresh_outputs`` and ``runner`` (the cached-call
path, which does the least Python work it can), arenas in ``_arena``.
Large outputs and arenas come from pool.py, which recycles blocks the
caller has dropped, so a loop of calls does not pay for fresh pages.
"""
from __future__ import annotations

import ctypes

import numpy as np

from ...fusion.program import KernelStep, Program
from . import entry
from .compiler import NativeCode
from .pool import POOL
from .render import render_module
from .threads import chunks, num_threads, run_split

ENTRY = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p,
                         ctypes.c_int64, ctypes.c_int64)
STEP = ctypes.CFUNCTYPE(None, ctypes.py_object, ctypes.py_object,
                        ctypes.py_object, ctypes.c_int64, ctypes.c_int64)
RUN = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.py_object, ctypes.py_object,
                       ctypes.py_object)

# Programs iterating over at most this many points in all run holding the
# GIL (a builtin-function call); larger ones release it (a ctypes call, half
# a microsecond more) so other Python threads run meanwhile.
GIL_HOLD_POINTS = 1 << 16


def _address(arr: np.ndarray) -> int:
    return arr.__array_interface__["data"][0]


def _usable(arr: np.ndarray) -> bool:
    """Whether kernels can read ``arr`` in place: data aligned for its
    dtype and strides in whole elements (the test ``__tj_run`` makes; not
    numpy's ``aligned`` flag, which passes any empty array)."""
    size = arr.itemsize
    return not (_address(arr) % arr.dtype.alignment or
                any(st % size for st in arr.strides))


class CpuExecutable:
    def __init__(self, program: Program):
        self.program = program
        self.kernel_count = len(program.kernels)
        self.threads = num_threads()
        buffers = program.buffers
        kernel_steps = [s for s in program.steps if isinstance(s, KernelStep)]
        ranges = [self._ranges(s) for s in kernel_steps]
        split = any(len(r) > 1 for r in ranges)
        library = len(kernel_steps) < len(program.steps)
        layout = entry.LAYOUT
        if layout is None:
            self.mode = "portable"
        else:
            self.mode = "steps" if split or library else "program"
        self.gil_held = self.mode == "program" and sum(
            int(np.prod(k.shape)) for k in program.kernels) <= GIL_HOLD_POINTS
        self.ir_text = render_module(program.kernels, program.name)
        const_ids = []
        if layout is not None:
            parts = ("steps",) if self.mode == "steps" else \
                ("pyrun",) if self.gil_held else ("run",)
            entry_text, const_ids = entry.render_entry(program, layout, parts)
            self.ir_text += "\n" + entry_text
        self.native = NativeCode(self.ir_text)
        # constants, contiguous, at the addresses the entry code reads
        self._consts = [np.ascontiguousarray(buffers[b].value)
                        for b in const_ids]
        if self._consts:
            table = (ctypes.c_void_p * len(self._consts)).from_address(
                self.native.engine.get_global_value_address(entry.CONSTS))
            for slot, value in enumerate(self._consts):
                table[slot] = _address(value)
        # outputs: one fresh array per output buffer, in the shape returned
        out_ids = [b.id for b in buffers if b.kind == "output"]
        self._out_specs = [(buffers[b].returned_shape,
                            np.dtype(buffers[b].dtype)) for b in out_ids]
        self._picks = [out_ids.index(b) for b in program.outputs]
        self._params = [(b.id, b.param_index) for b in buffers
                        if b.kind == "param"]
        self._steps = []
        if self.mode == "program":
            if self.gil_held:
                self._pyrun, self._method = entry.builtin_function(
                    self.native.address(entry.PYRUN), program.name)
            else:
                self._ctrun = RUN(self.native.address(entry.RUN))
        else:
            self._init_steps(kernel_steps, ranges)
        self.step_runs = 0      # calls through the steps or portable path

    def _ranges(self, step: KernelStep) -> list[tuple[int, int]]:
        kernel = step.kernel
        axis = kernel.split_axis
        if axis is None:
            return [(0, 1)]
        return chunks(kernel.shape[axis], int(np.prod(kernel.shape)),
                      self.threads)

    def _init_steps(self, kernel_steps, ranges) -> None:
        buffers = self.program.buffers
        n = 0
        for step in self.program.steps:
            if not isinstance(step, KernelStep):
                self._steps.append(("library", step))
                continue
            if self.mode == "steps":
                fn = STEP(self.native.address(f"{entry.STEP}{n}"))
                self._steps.append(("kernel", fn, ranges[n]))
            else:
                fn = ENTRY(self.native.address(step.kernel.name + "_entry"))
                stride_args = [step.buffers[k]
                               for k in step.kernel.runtime_stride_args]
                self._steps.append(("kernel", fn, step.buffers, stride_args,
                                    ranges[n]))
            n += 1
        self._temps = [(b.id, b.offset, b.nbytes, np.dtype(b.dtype), b.shape)
                       for b in buffers if b.kind == "temp"]
        self._template = [b.value if b.kind == "const" else None
                          for b in buffers]
        out_ids = [b.id for b in buffers if b.kind == "output"]
        self._out_slots = [(b, out_ids.index(b)) for b in out_ids]

    @property
    def native_runs(self) -> int:
        """Calls that ran the whole program in one native call."""
        address = self.native.engine.get_global_value_address(entry.RUNS)
        return ctypes.c_int64.from_address(address).value if address else 0

    def as_text(self) -> str:
        return self.ir_text

    def assembly(self) -> str:
        return self.native.assembly()

    # ---- calls -------------------------------------------------------------
    def _fresh_outputs(self):
        """(output arrays, the object the entry code reads them from)."""
        outs = [POOL.array(shape, dtype) for shape, dtype in self._out_specs]
        return outs, (outs[0] if len(outs) == 1 else tuple(outs))

    def _fixed(self, params: tuple) -> tuple:
        """``params`` with copies of the arrays kernels cannot read in
        place (record fields, unaligned data)."""
        return tuple(a if _usable(a) else a.copy() for a in params)

    def __call__(self, args) -> list[np.ndarray]:
        """Run on the leaf arrays ``args`` (in parameter order)."""
        params = tuple(args)
        outs, outs_obj = self._fresh_outputs()
        if self.mode == "program":
            if not self._run_program(params, outs_obj) and \
                    not self._run_program(self._fixed(params), outs_obj):
                raise RuntimeError("tracejit: parameters still unusable "
                                   "after copying")
        elif self.mode == "steps":
            self._run_steps(self._fixed(params), outs, outs_obj)
        else:
            self._run_portable(self._fixed(params), outs)
        return [outs[k] for k in self._picks]

    def _run_program(self, params: tuple, outs_obj) -> bool:
        """One native call; False when a parameter needs copying first."""
        if self.gil_held:
            return self._pyrun(params, outs_obj) is not None
        return self._ctrun(params, outs_obj, self._arena()) == 0

    def runner(self, kind: str = "list"):
        """A function of the argument tuple, for repeated calls whose
        arrays match this executable's signature (shapes and dtypes, as
        the caller has checked).  It returns the results as a list
        (``kind="list"``), as a tuple (``"tuple"``), or the only result
        (``"single"``)."""
        finish = {"list": list, "tuple": tuple,
                  "single": lambda results: results[0]}[kind]
        if self.mode != "program" or not self.gil_held:
            return lambda args: finish(self(args))
        pyrun, empty, picks = self._pyrun, np.empty, self._picks
        specs = self._out_specs

        def fallback(args):                 # a parameter needs copying
            return finish(self(args))

        if len(specs) == 1:
            (shape, dtype), = specs
            if kind == "single":
                def run_one(args):
                    out = pyrun(args, empty(shape, dtype))
                    return fallback(args) if out is None else out
                return run_one

            def run_one_of(args):
                out = pyrun(args, empty(shape, dtype))
                if out is None:
                    return fallback(args)
                return finish([out] * len(picks))
            return run_one_of
        direct = kind == "tuple" and picks == list(range(len(specs)))
        if len(specs) == 2:
            (shape0, dtype0), (shape1, dtype1) = specs

            def allocate():
                return empty(shape0, dtype0), empty(shape1, dtype1)
        else:
            def allocate():
                return tuple([empty(shape, dtype) for shape, dtype in specs])

        def run(args):
            outs = allocate()
            if pyrun(args, outs) is None:
                return fallback(args)
            return outs if direct else finish([outs[k] for k in picks])
        return run

    def _arena(self):
        size = self.program.arena_bytes
        return POOL.take(size) if size else None

    def _arrays(self, params, outs, arena) -> list:
        """Every buffer as an array (library steps read these)."""
        arrays = list(self._template)
        for bid, index in self._params:
            arrays[bid] = params[index]
        for bid, offset, nbytes, dtype, shape in self._temps:
            view = arena[offset:offset + nbytes]
            arrays[bid] = view.view(dtype).reshape(shape)
        for bid, slot in self._out_slots:
            shape = self.program.buffers[bid].shape
            arrays[bid] = outs[slot].reshape(shape)
        return arrays

    def _run_steps(self, params, outs, outs_obj) -> None:
        self.step_runs += 1
        arena = self._arena()
        arrays = None
        for step in self._steps:
            if step[0] == "kernel":
                _, fn, ranges = step
                run_split(fn, (params, outs_obj, arena), ranges)
            else:
                if arrays is None:
                    arrays = self._arrays(params, outs, arena)
                _library(step[1], arrays)

    def _run_portable(self, params, outs) -> None:
        self.step_runs += 1
        arrays = self._arrays(params, outs, self._arena())
        for step in self._steps:
            if step[0] == "kernel":
                _, fn, buffers, stride_args, ranges = step
                ptrs = (ctypes.c_void_p * len(buffers))(
                    *[_address(arrays[b]) for b in buffers])
                strides = [s // arrays[b].itemsize for b in stride_args
                           for s in arrays[b].strides]
                packed = (ctypes.c_int64 * max(len(strides), 1))(*strides)
                run_split(fn, (ptrs, packed), ranges)
            else:
                _library(step[1], arrays)


def _library(step, arrays) -> None:
    flags = dict(step.attrs)
    a, b = (arrays[i] for i in step.inputs)
    a = a.T if flags.get("transpose_a") else a
    b = b.T if flags.get("transpose_b") else b
    np.matmul(a, b, out=arrays[step.output])
