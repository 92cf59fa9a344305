"""One native entry point per executable.

Calling each kernel through ctypes costs microseconds per kernel: Python
reads every array's address, packs pointer and stride arrays, and ctypes
converts the arguments.  For a small array that is ten times the work
itself.  So the module of an executable also gets functions that do all of
that in native code (only those its executable uses):

* ``__tj_run(params, outs, arena) -> i32`` takes the tuple of parameter
  arrays, the output array (one output buffer) or tuple of them (any other
  count), and an array holding the temporaries (anything when there are
  none).  It reads data pointers and byte strides straight out of the numpy
  array structs, checks that each parameter's strides are whole elements
  and its data aligned (else returns 1, and the caller copies that
  parameter), and calls every kernel in program order over its full range.
  It only reads the objects it is given, so it may run without the GIL.
* ``__tj_pyrun(self, args, nargs)`` does the same as a CPython
  METH_FASTCALL function, taking the temporaries from ``PyMem_RawMalloc``
  (small programs have small arenas): called as ``pyrun(params, outs)`` it
  returns ``outs``, or None where the caller must copy misaligned
  parameters first.  A builtin function costs tens of nanoseconds to call,
  where a ctypes call costs half a microsecond; it holds the GIL, so
  executables use it only for small programs (see ``GIL_HOLD_POINTS`` in
  executable.py).
* ``__tj_step{i}(params, outs, arena, lo, hi)`` runs kernel step ``i`` over
  ``[lo, hi)`` of its split axis (``arena``: a numpy array holding the
  temporaries, or anything when there are none).  Executables that split
  kernels across threads or call a library (GEMM) run their steps one by
  one through these.

The struct offsets come from numpy's and CPython's public headers
(``PyArrayObject_fields``: data, nd, dimensions, strides after the object
header; ``PyTupleObject``: items after the variable-size header).  They are
checked at import on probe objects; where any disagrees (a debug or
free-threaded interpreter, another numpy) ``LAYOUT`` is None and executables
fall back to packing pointers in Python.
"""
from __future__ import annotations

import ctypes
import sysconfig
from dataclasses import dataclass

import numpy as np

from ...fusion.program import KernelStep, Program

RUN, PYRUN, STEP = "__tj_run", "__tj_pyrun", "__tj_step"
CONSTS, RUNS = "__tj_consts", "__tj_runs"
METH_FASTCALL = 0x80
# The entry functions are a few loads and calls each: optimizing them buys
# nanoseconds and costs milliseconds of compile time (and, inlined, a second
# optimization of every kernel for its constant range).  So they are
# compiled as written.
ATTRS = "nounwind noinline optnone"
# symbols the generated code calls, registered with LLVM under these names
_PY_SYMBOLS = {"__tj_incref": "Py_IncRef",
               "__tj_nomemory": "PyErr_NoMemory",
               "__tj_malloc": "PyMem_RawMalloc",
               "__tj_free": "PyMem_RawFree"}


@dataclass(frozen=True)
class Layout:
    """Byte offsets of the fields the generated code reads."""

    array_data: int       # PyArrayObject: char *data
    array_strides: int    # PyArrayObject: npy_intp *strides
    tuple_items: int      # PyTupleObject: PyObject *ob_item[]


def _read_ptr(address: int) -> int:
    return ctypes.c_void_p.from_address(address).value or 0


def _probe() -> Layout | None:
    """The standard-build offsets, if probe objects confirm every one."""
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        return None
    if ctypes.sizeof(ctypes.c_void_p) != 8 or np.dtype(np.intp).itemsize != 8:
        return None
    head = 2 * ctypes.sizeof(ctypes.c_void_p)      # ob_refcnt, ob_type
    layout = Layout(array_data=head, array_strides=head + 24,
                    tuple_items=head + 8)
    base = np.arange(2 * 3 * 10, dtype=np.float64).reshape(2, 3, 10)
    probe = base[:, ::-1, ::3].transpose(2, 0, 1)
    at = id(probe)
    if _read_ptr(at + layout.array_data) != probe.ctypes.data:
        return None
    if ctypes.c_int.from_address(at + head + 8).value != probe.ndim:
        return None
    for offset, want in ((head + 16, probe.shape), (head + 24, probe.strides)):
        values = (ctypes.c_int64 * probe.ndim).from_address(
            _read_ptr(at + offset))
        if tuple(values) != want:
            return None
    items = (probe, base, None)
    if [_read_ptr(id(items) + layout.tuple_items + 8 * k)
            for k in range(3)] != [id(x) for x in items]:
        return None
    return layout


def _register_symbols() -> bool:
    import llvmlite.binding as llvm

    try:
        _new_function.restype = ctypes.py_object
        _new_function.argtypes = [ctypes.c_void_p] * 3
        for name, py_name in _PY_SYMBOLS.items():
            function = getattr(ctypes.pythonapi, py_name)
            llvm.add_symbol(name, ctypes.cast(function, ctypes.c_void_p).value)
        llvm.add_symbol("__tj_none", id(None))
    except (AttributeError, OSError, TypeError):
        return False
    return True


_new_function = getattr(ctypes.pythonapi, "PyCFunction_NewEx", None)
LAYOUT = _probe()
if LAYOUT is not None and not _register_symbols():
    LAYOUT = None


def full_range(step: KernelStep) -> tuple[int, int]:
    """The ``(lo, hi)`` that covers a kernel's whole split axis."""
    axis = step.kernel.split_axis
    return (0, 1) if axis is None else (0, step.kernel.shape[axis])


class _Function:
    """Lines of one LLVM function with fresh value names."""

    def __init__(self, head: str):
        self.lines = [head, "entry:"]
        self.allocas: list[str] = []     # kept in the entry block
        self.count = 0

    def alloca(self, t: str) -> str:
        self.count += 1
        name = f"%v{self.count}"
        self.allocas.append(f"  {name} = alloca {t}")
        return name

    def emit(self, rhs: str) -> str:
        self.count += 1
        name = f"%v{self.count}"
        self.lines.append(f"  {name} = {rhs}")
        return name

    def raw(self, line: str) -> None:
        self.lines.append(line if line.endswith(":") else f"  {line}")

    def field(self, base: str, offset: int, t: str = "ptr") -> str:
        """Load a ``t`` at ``base + offset`` bytes."""
        ptr = base if not offset else self.emit(
            f"getelementptr inbounds i8, ptr {base}, i64 {offset}")
        return self.emit(f"load {t}, ptr {ptr}")

    def text(self) -> str:
        lines = self.lines[:2] + self.allocas + self.lines[2:]
        return "\n".join(lines + ["}"]) + "\n"


class EntryRenderer:
    """Renders the entry functions of one program (see the module doc)."""

    def __init__(self, program: Program, layout: Layout):
        self.program, self.layout = program, layout
        self.outputs = [b.id for b in program.buffers if b.kind == "output"]
        self.output_slot = {b: n for n, b in enumerate(self.outputs)}
        self.steps = [s for s in program.steps if isinstance(s, KernelStep)]
        used = sorted({b for s in self.steps for b in s.buffers})
        self.consts = [b for b in used if program.buffers[b].kind == "const"]
        self.const_slot = {b: n for n, b in enumerate(self.consts)}
        self.params = [b for b in used if program.buffers[b].kind == "param"]

    # ---- reading objects ---------------------------------------------------
    def param_object(self, f: _Function, params: str, buf: int) -> str:
        index = self.program.buffers[buf].param_index
        return f.field(params, self.layout.tuple_items + 8 * index)

    def output_object(self, f: _Function, outs: str, buf: int) -> str:
        if len(self.outputs) == 1:
            return outs
        slot = self.output_slot[buf]
        return f.field(outs, self.layout.tuple_items + 8 * slot)

    def data(self, f: _Function, buf: int, params: str, outs: str,
             arena: str) -> str:
        b = self.program.buffers[buf]
        if b.kind == "param":
            obj = self.param_object(f, params, buf)
            return f.field(obj, self.layout.array_data)
        if b.kind == "output":
            obj = self.output_object(f, outs, buf)
            return f.field(obj, self.layout.array_data)
        if b.kind == "temp":
            return f.emit(f"getelementptr inbounds i8, ptr {arena}, "
                          f"i64 {b.offset}")
        if b.kind == "const":
            slot = f.emit(f"getelementptr inbounds [{len(self.consts)} x "
                          f"ptr], ptr @{CONSTS}, i64 0, "
                          f"i64 {self.const_slot[buf]}")
            return f.emit(f"load ptr, ptr {slot}")
        raise ValueError(f"buffer kind {b.kind!r}")

    # ---- function bodies ---------------------------------------------------
    def call_kernel(self, f: _Function, n: int, arena: str, lo: str,
                    hi: str) -> None:
        """Gather step n's pointers and element strides (into stack
        arrays) and call its kernel over ``[lo, hi)``."""
        step = self.steps[n]
        kernel = step.kernel
        args = f.alloca(f"[{len(step.buffers)} x ptr]")
        count = sum(len(kernel.args[k].shape)
                    for k in kernel.runtime_stride_args)
        strides = f.alloca(f"[{max(count, 1)} x i64]")
        for k, buf in enumerate(step.buffers):
            ptr = self.data(f, buf, "%params", "%outs", arena)
            slot = f.emit(f"getelementptr inbounds ptr, ptr {args}, i64 {k}")
            f.raw(f"store ptr {ptr}, ptr {slot}")
        cursor = 0
        for k in kernel.runtime_stride_args:
            buf = step.buffers[k]
            if self.program.buffers[buf].kind != "param":
                raise ValueError("only parameters have run-time strides")
            itemsize = np.dtype(kernel.args[k].dtype).itemsize
            obj = self.param_object(f, "%params", buf)
            byte_strides = f.field(obj, self.layout.array_strides)
            for dim in range(len(kernel.args[k].shape)):
                value = f.field(byte_strides, 8 * dim, "i64")
                value = f.emit(f"sdiv i64 {value}, {itemsize}")
                slot = f.emit(f"getelementptr inbounds i64, ptr {strides}, "
                              f"i64 {cursor}")
                f.raw(f"store i64 {value}, ptr {slot}")
                cursor += 1
        f.raw(f"call void @{kernel.name}_entry(ptr {args}, ptr {strides}, "
              f"i64 {lo}, i64 {hi})")

    def check_params(self, f: _Function) -> None:
        """Branch to ``%misaligned`` unless every parameter's strides are
        whole elements and its data is aligned for its dtype."""
        for buf in self.params:
            b = self.program.buffers[buf]
            dtype = np.dtype(b.dtype)
            obj = self.param_object(f, "%params", buf)
            address = f.emit(f"ptrtoint ptr "
                             f"{f.field(obj, self.layout.array_data)} to i64")
            bad = f.emit(f"and i64 {address}, {dtype.alignment - 1}")
            if b.shape:
                byte_strides = f.field(obj, self.layout.array_strides)
                for dim in range(len(b.shape)):
                    stride = f.field(byte_strides, 8 * dim, "i64")
                    rest = f.emit(f"srem i64 {stride}, {dtype.itemsize}")
                    bad = f.emit(f"or i64 {bad}, {rest}")
            is_bad = f.emit(f"icmp ne i64 {bad}, 0")
            label = f"param{buf}.ok"
            f.raw(f"br i1 {is_bad}, label %misaligned, label %{label}")
            f.raw(f"{label}:")

    def run_body(self, f: _Function, arena_obj: str | None) -> None:
        """Check the parameters, run every kernel; then branch to
        ``%done``, ``%misaligned`` or ``%nomemory``.  Reads ``%params``
        and ``%outs``.  The arena is the data of the array ``arena_obj``,
        or without one, memory taken here and freed after."""
        self.check_params(f)
        arena, owned = "null", False
        if self.program.arena_bytes and arena_obj is not None:
            arena = f.field(arena_obj, self.layout.array_data)
        elif self.program.arena_bytes:
            arena, owned = f.emit(f"call ptr @__tj_malloc(i64 "
                                  f"{self.program.arena_bytes})"), True
            failed = f.emit(f"icmp eq ptr {arena}, null")
            f.raw(f"br i1 {failed}, label %nomemory, label %allocated")
            f.raw("allocated:")
        for n, step in enumerate(self.steps):
            lo, hi = full_range(step)
            self.call_kernel(f, n, arena, str(lo), str(hi))
        if owned:
            f.raw(f"call void @__tj_free(ptr {arena})")
        f.emit(f"atomicrmw add ptr @{RUNS}, i64 1 monotonic")
        f.raw("br label %done")

    # ---- functions ---------------------------------------------------------
    # Each is one function with its kernel calls written out: a function
    # costs a fixed part of a millisecond in LLVM's code generator.
    def step(self, n: int) -> str:
        """``__tj_step{n}``: kernel step n, the arena given as an array."""
        f = _Function(f"define void @{STEP}{n}(ptr %params, ptr %outs, "
                      f"ptr %arena_obj, i64 %lo, i64 %hi) {ATTRS} {{")
        arena = "null"
        if self.program.arena_bytes:
            arena = f.field("%arena_obj", self.layout.array_data)
        self.call_kernel(f, n, arena, "%lo", "%hi")
        f.raw("ret void")
        return f.text()

    def run(self) -> str:
        f = _Function(f"define i32 @{RUN}(ptr %params, ptr %outs, "
                      f"ptr %arena_obj) {ATTRS} {{")
        self.run_body(f, "%arena_obj")
        for label, status in (("done", 0), ("misaligned", 1),
                              ("nomemory", 2)):
            f.raw(f"{label}:")
            f.raw(f"ret i32 {status}")
        return f.text()

    def pyrun(self) -> str:
        f = _Function(f"define ptr @{PYRUN}(ptr %self, ptr %args, "
                      f"i64 %nargs) {ATTRS} {{")
        two = f.emit("icmp eq i64 %nargs, 2")
        f.raw(f"br i1 {two}, label %call, label %misaligned")
        f.raw("call:")
        f.lines.append("  %params = load ptr, ptr %args")
        outs = f.emit("getelementptr inbounds ptr, ptr %args, i64 1")
        f.lines.append(f"  %outs = load ptr, ptr {outs}")
        self.run_body(f, None)
        f.raw("done:")
        f.raw("call void @__tj_incref(ptr %outs)")
        f.raw("ret ptr %outs")
        f.raw("misaligned:")             # (or called wrongly): the caller
        f.raw("call void @__tj_incref(ptr @__tj_none)")     # falls back
        f.raw("ret ptr @__tj_none")
        f.raw("nomemory:")
        f.emit("call ptr @__tj_nomemory()")
        f.raw("ret ptr null")
        return f.text()

    def render(self, parts) -> str:
        """The declarations and the functions named in ``parts`` (of
        "steps", "run", "pyrun")."""
        head = ["; entry points (entry.py)",
                "declare void @__tj_incref(ptr)",
                "declare ptr @__tj_nomemory()",
                "declare ptr @__tj_malloc(i64)",
                "declare void @__tj_free(ptr)",
                "@__tj_none = external global i8",
                f"@{RUNS} = global i64 0"]
        if self.consts:
            head.append(f"@{CONSTS} = global [{len(self.consts)} x ptr] "
                        "zeroinitializer")
        text = ["\n".join(head) + "\n"]
        if "steps" in parts:
            text += [self.step(n) for n in range(len(self.steps))]
        if "run" in parts:
            text.append(self.run())
        if "pyrun" in parts:
            text.append(self.pyrun())
        return "\n".join(text)


def render_entry(program: Program, layout: Layout,
                 parts=("steps", "run", "pyrun")) -> tuple[str, list[int]]:
    """(IR text of the entry functions in ``parts``, the const buffer id
    per slot of ``__tj_consts``, which the executable fills after
    compiling)."""
    renderer = EntryRenderer(program, layout)
    return renderer.render(parts), renderer.consts


class _MethodDef(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("meth", ctypes.c_void_p),
                ("flags", ctypes.c_int), ("doc", ctypes.c_char_p)]


def builtin_function(address: int, name: str):
    """A CPython builtin function (METH_FASTCALL) calling ``address``.
    Returns (function, method def); keep the def alive with the function,
    and the native code alive with both."""
    method = _MethodDef(name.encode(), address, METH_FASTCALL, None)
    return _new_function(ctypes.addressof(method), None, None), method
