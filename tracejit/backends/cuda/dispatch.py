"""The host side of a CUDA call: the function each executable generates.

Why this module exists: for small arrays a call costs what the host does,
not what the GPU does.  A generic loop over steps and argument kinds costs
microseconds of Python per call, as much as the launch itself, so each
executable generates its own call function (``build_call``) that does only
what its program needs, every constant (grids, handles, shapes, offsets)
written in, and launches through ``cuLaunchKernel`` with a prebuilt
parameter block.

Allocation is the other cost (a pooled ``cupy.ndarray`` takes microseconds).
Small outputs are therefore *kept*: the call remembers the last two arrays
it returned for each output and hands one back again only when nobody else
can reach it any more: the array, its MemoryPointer and the memory behind
it are held by nothing but the call (reference counts equal to those taken
when it was made), no weak reference points at it, its shape and strides
are as made, and the current stream is the one it was made on (so every
use of the old contents was queued before the new kernels).  That is what
freeing it and allocating it again would give, minus the allocator.
Internal memory (the arena of temporaries, reduction scratch) is kept per
stream the same way, with nothing to check: the user never sees it.
"""
from __future__ import annotations

import ctypes
import struct
import sys
import weakref

import numpy as np

__all__ = ["KEEP_BYTES", "Launch", "build_call", "array_state"]

KEEP_BYTES = 1 << 20     # outputs and internal buffers up to this are kept
PARAM, OUTPUT, TEMP, FIXED = range(4)   # where a kernel's pointer comes from

_getrefcount, _getweakrefcount = sys.getrefcount, weakref.getweakrefcount


# What must not change for a kept array to be handed out again (see the
# module doc), written into the call function: its stream, then the state
# taken when it was made, in the same frame layout, so the counts include
# the call's own references.
_STATE = ("(stream, getrefcount({a}), getrefcount({a}.data), "
          "getrefcount({a}.data.mem), getweakrefcount({a}), {a}.shape, "
          "{a}.strides)")


def array_state(a):
    """The parts of _STATE that describe array ``a`` (for timing it)."""
    d = a.data
    return (_getrefcount(a), _getrefcount(d), _getrefcount(d.mem),
            _getweakrefcount(a), a.shape, a.strides)


class Launch:
    """One kernel step's launches: its functions (one, or two for a
    two-pass reduction) with their grids, where each pointer argument comes
    from, and the parameter block cuLaunchKernel reads (one 8-byte slot per
    argument, all pointers: ``argv`` points at the slots of ``values``;
    every function of a kernel takes the same arguments).  The call
    function fills ``values`` and launches under a lock; the driver copies
    the block during the launch call, so it is free again right after."""

    def __init__(self, functions, sources, scratch: int = 0):
        self.functions = [f for f, _ in functions]   # cupy Functions, alive
        self.launches = [(f.ptr, launch) for f, launch in functions]
        self.sources = sources
        self.scratch = scratch            # bytes of global scratch it needs
        # + the strides pointer, + the scratch pointer where it takes one
        count = len(sources) + 1 + (scratch > 0)
        self.values = (ctypes.c_uint64 * count)()
        base = ctypes.addressof(self.values)
        self.argv = (ctypes.c_void_p * count)(
            *[base + 8 * k for k in range(count)])
        self.argv_address = ctypes.addressof(self.argv)
        self.pack = struct.Struct("=" + "Q" * count).pack_into


def _pointer_expr(kind: int, what: int) -> str:
    """The call function's expression for one kernel pointer argument."""
    if kind == PARAM:
        return f"p{what}.data.ptr"
    if kind == OUTPUT:
        return f"out{what}.data.ptr"
    if kind == TEMP:
        return f"arena_base + {what}"
    return str(what)                      # FIXED: a constant's address


def _launch_lines(exe, steps, listed: str, named: dict) -> list[str]:
    """The lines that pack each kernel step's parameter block and launch
    its functions on ``stream`` (gemm steps call ``gemm``).  ``named``
    maps pointer expressions to the names they go by (in ``launch_all``)."""
    lines = []
    for n, pointers in steps:
        if pointers is None:
            lines.append(f"gemm(steps[{n}], {listed}, outs, arena)")
            continue
        step = exe._steps[n]
        lines.append(f"pack{n}(values{n}, 0, " + ", ".join(
            named.get(p, p) for p in pointers) + ")")
        lines += [f"launch({handle}, {c.blocks}, 1, 1, {c.threads}, 1, 1, "
                  f"{c.shared}, stream, {step.argv_address}, 0)"
                  for handle, c in step.launches]
    return lines


def _kept_output(k: int, shape, names: dict) -> list[str]:
    """Lines that set ``out<k>``: a kept array nobody else holds, else a
    new one (kept in place of the older of the two)."""
    names[f"kept{k}"] = [[None, None], [None, None]]
    state = _STATE.format(a=f"out{k}")
    taken = f"out{k} is None or {state} != s[1]"
    return [f"s = kept{k}[0]", f"out{k} = s[0]",
            f"if {taken}:",
            f"    s = kept{k}[1]", f"    out{k} = s[0]",
            f"    if {taken}:",
            f"        out{k} = ndarray({shape!r}, dtype{k})",
            f"        kept{k}.reverse()",
            f"        s = kept{k}[0]",
            f"        s[0] = out{k}",
            f"        s[1] = {state}"]


def _kept_internal(name: str, nbytes: int, names: dict) -> list[str]:
    """Lines that set ``<name>``: internal memory kept for the stream
    (kernels queued on one stream run in order), else a new array."""
    if nbytes > KEEP_BYTES:
        return [f"{name} = ndarray({nbytes}, uint8)"]
    names[f"kept_{name}"] = [None, None]
    return [f"{name} = kept_{name}[0]",
            f"if kept_{name}[1] != stream or {name} is None:",
            f"    {name} = ndarray({nbytes}, uint8)",
            f"    kept_{name}[0] = {name}",
            f"    kept_{name}[1] = stream"]


def build_call(exe, single: bool = False):
    """(the call function of CudaExecutable ``exe``, its source).  It
    takes the argument sequence and returns the list of outputs, or with
    ``single`` the one output itself."""
    cp = exe._cp
    names = {"ndarray": cp.ndarray, "upload": exe._upload,
             "uint8": np.uint8, "layouts": exe._layouts,
             "new_layout": exe._new_layout, "stream_ptr": exe._stream_ptr,
             "lock": exe._lock, "launch": exe._driver.launchKernel,
             "getrefcount": _getrefcount, "getweakrefcount": _getweakrefcount,
             "OutOfMemoryError": cp.cuda.memory.OutOfMemoryError,
             "DriverError": exe._driver.CUDADriverError,
             "RuntimeApiError": cp.cuda.runtime.CUDARuntimeError,
             "out_of_memory": exe._out_of_memory,
             "launch_failed": exe._launch_failed, "gemm": exe._gemm,
             "wrong_count": exe._wrong_count, "steps": exe._steps,
             "thread": exe._thread, "make_ready": exe._make_ready}
    ps = [f"p{i}" for i in range(len(exe._param_specs))]
    listed = "[" + ", ".join(ps) + "]"
    lines = ["def call(args):",
             "    try:",             # free unless this thread is new
             "        thread.ready",
             "    except AttributeError:",
             "        make_ready()",
             "    try:",
             f"        ({''.join(p + ', ' for p in ps)}) = args",
             "    except ValueError:",
             "        raise wrong_count(args) from None"]
    for p in ps:
        lines.append(f"    if type({p}) is not ndarray: {p} = upload({p})")
    lines += ["    layout = layouts.get((" + "".join(
                  f"{p}.strides, " for p in ps) + "))",
              "    if layout is None:",
              f"        layout, {listed} = new_layout({listed})",
              "    strides = layout[0]",
              "    stream = stream_ptr()",
              "    try:",
              "        with lock:"]
    body = []
    for k, (shape, dtype) in enumerate(exe._out_specs):
        names[f"dtype{k}"] = dtype
        nbytes = int(np.prod(shape)) * dtype.itemsize
        if nbytes <= KEEP_BYTES:
            body += _kept_output(k, shape, names)
        else:
            body.append(f"out{k} = ndarray({shape!r}, dtype{k})")
    arena = exe.program.arena_bytes
    gemms = any(not isinstance(s, Launch) for s in exe._steps)
    if arena:
        body += _kept_internal("arena", arena, names)
        body.append("arena_base = arena.data.ptr")
    elif gemms:
        body.append("arena = None")
    scratch = max([s.scratch for s in exe._steps if isinstance(s, Launch)],
                  default=0)
    if scratch:   # one scratch for every step: they run in order
        body += _kept_internal("scratch", scratch, names)
        body.append("scratch_base = scratch.data.ptr")
    if gemms:
        body.append("outs = (" + "".join(
            f"out{k}, " for k in range(len(exe._out_specs))) + ")")
    steps = []                  # (step number, its pointer expressions)
    used = []                   # every pointer expression, first use first
    for n, step in enumerate(exe._steps):
        if not isinstance(step, Launch):
            steps.append((n, None))
            continue
        pointers = [_pointer_expr(kind, what) for kind, what in
                    step.sources] + [f"strides[{n}]"]
        if step.scratch:
            pointers.append("scratch_base")
        used += [p for p in dict.fromkeys(pointers) if p not in used]
        names[f"values{n}"], names[f"pack{n}"] = step.values, step.pack
        steps.append((n, pointers))
    named = {p: f"a{k}" for k, p in enumerate(used)}
    graphs = exe._graphs
    if graphs is None:
        body += _launch_lines(exe, steps, listed, {})
        prelude = []
    else:                       # graphs.py: replay by the pointers used
        prelude = ["def launch_all(stream, " + ", ".join(named.values()) +
                   "):"]
        prelude += ["    " + line for line in
                    _launch_lines(exe, steps, listed, named)] + [""]
        names.update(graph_get=graphs.get, remember=graphs.remember,
                     graph_launch=graphs.launch)
        body += ["key = (stream, " + "".join(p + ", " for p in used) + ")",
                 "graph = graph_get(key)",
                 "if graph is None:",
                 "    launch_all(*key)",
                 "    remember(key, launch_all)",
                 "else:",
                 "    graph_launch(graph, stream)"]
    lines = prelude + lines
    lines += ["            " + line for line in body or ["pass"]]
    lines += ["    except OutOfMemoryError as exc:",
              "        raise out_of_memory(exc) from None",
              "    except (DriverError, RuntimeApiError) as exc:",
              "        launch_failed(exc)",
              "        raise"]
    if single:
        lines.append(f"    return out{exe._picks[0]}")
    else:
        lines.append("    return [" + ", ".join(f"out{k}" for k in exe._picks)
                     + "]")
    text = "\n".join(lines) + "\n"
    exec(compile(text, f"<tracejit cuda {exe.program.name}>", "exec"), names)
    return names["call"], text
