"""The CUDA executable's host path (tracejit.backends.cuda.dispatch), run
everywhere against a stand-in for CuPy.

The stand-in records every cuLaunchKernel with the pointers in its
parameter block, and gives out fake device memory, so the generated call
functions are checked without a GPU: which pointers each launch gets, and
when a kept output may be handed out again (never while anything can still
reach it).  ``cuda``-marked tests in test_cuda_exec.py run the same paths
on a GPU.
"""
from __future__ import annotations

import ctypes
import gc
import itertools
import sys
import types
import weakref

import numpy as np
import pytest

import tracejit
from tracejit import pipeline

_addresses = itertools.count(1 << 20, 1 << 12)


class Memory:
    def __init__(self, size):           # empty arrays: address 0, as CuPy
        self.ptr, self.size = next(_addresses) if size else 0, size


class MemoryPointer:
    def __init__(self, mem, offset=0):
        self.mem, self.ptr = mem, mem.ptr + offset

    def __add__(self, offset):
        return MemoryPointer(self.mem, self.ptr - self.mem.ptr + offset)


class ndarray:
    """Enough of cupy.ndarray for the executable: shape, dtype, strides,
    data (a MemoryPointer), views that keep their base alive."""

    def __init__(self, shape, dtype=float, memptr=None, strides=None):
        self._shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.dtype = np.dtype(dtype)
        self.data = memptr if memptr is not None else MemoryPointer(
            Memory(int(np.prod(self._shape)) * self.dtype.itemsize))
        self._strides = strides or tuple(
            int(np.prod(self._shape[k + 1:])) * self.dtype.itemsize
            for k in range(len(self._shape)))
        self.base = None

    shape = property(lambda self: self._shape)

    def set(self, host):                # a host-to-device copy
        assert host.shape == self._shape

    @shape.setter
    def shape(self, value):
        self._shape = tuple(value)
        self._strides = ndarray(value, self.dtype, self.data)._strides

    strides = property(lambda self: self._strides)
    itemsize = property(lambda self: self.dtype.itemsize)
    size = property(lambda self: int(np.prod(self._shape)))

    def view_of(self):
        v = ndarray(self._shape, self.dtype, self.data, self._strides)
        v.base = self
        return v


class Function:
    def __init__(self, name):
        self.name, self.ptr = name, next(_addresses)


class Module:
    """nvrtc.Module without NVRTC: Function handles by name."""

    def __init__(self, code):
        self.code, self.functions = code, {}

    def get_function(self, name):
        assert f"void {name}(" in self.code
        return self.functions.setdefault(name, Function(name))


def compile_module(cupy, source, names, label="program"):
    return Module(source)


class Recorder:
    """cuLaunchKernel: records (function handle, grid, block, shared
    bytes, stream, the parameter block's pointers); launches on a stream
    under capture go to its graph instead, and a graph launch records its
    launches again on the stream it is launched on."""

    CAPTURE_STREAM = 99

    def __init__(self):
        self.calls, self.counts, self.stream = [], {}, 7
        self.graphs, self.capturing, self.replays = {}, None, 0

    def launch(self, f, gx, gy, gz, bx, by, bz, shared, stream, argv, extra):
        count = self.counts[argv]
        slots = [ctypes.c_void_p.from_address(argv + 8 * k).value
                 for k in range(count)]
        values = [ctypes.c_uint64.from_address(s).value for s in slots]
        call = (f, gx, bx, shared, stream, values)
        if stream == self.capturing:
            self.graphs[self.capturing].append(call)
        else:
            self.calls.append(call)

    def begin_capture(self, stream):
        self.capturing = stream
        self.graphs[stream] = []

    def end_capture(self, stream):
        self.capturing = None
        graph = next(_addresses)
        self.graphs[graph] = self.graphs.pop(stream)
        return graph

    def instantiate(self, graph):
        graph_exec = next(_addresses)
        self.graphs[graph_exec] = list(self.graphs[graph])
        return graph_exec

    def graph_launch(self, graph_exec, stream):
        self.replays += 1
        self.calls += [c[:4] + (stream,) + c[5:]
                       for c in self.graphs[graph_exec]]


def fake_cupy(recorder):
    cp = types.ModuleType("cupy")
    cp.ndarray = ndarray

    def asarray(a):
        if isinstance(a, ndarray):
            return a
        a = np.asarray(a)
        return ndarray(a.shape, a.dtype)
    cp.asarray = asarray
    cp.empty = ndarray
    cp.ascontiguousarray = lambda a: ndarray(a.shape, a.dtype)
    cuda = types.SimpleNamespace()
    cuda.Device = lambda: types.SimpleNamespace(
        id=0, attributes={"MultiProcessorCount": 132})
    cuda.runtime = types.SimpleNamespace(
        getDeviceCount=lambda: 1, getDevice=lambda: 0,
        setDevice=lambda d: None, free=lambda p: None,
        CUDARuntimeError=RuntimeError,
        streamBeginCapture=recorder.begin_capture,
        streamEndCapture=recorder.end_capture,
        graphInstantiate=recorder.instantiate,
        graphLaunch=recorder.graph_launch,
        graphDestroy=lambda g: None, graphExecDestroy=lambda g: None)
    cuda.Stream = lambda non_blocking: types.SimpleNamespace(
        ptr=recorder.CAPTURE_STREAM)

    class CUDADriverError(RuntimeError):
        pass
    cuda.driver = types.SimpleNamespace(launchKernel=recorder.launch,
                                        funcSetAttribute=lambda *a: None,
                                        CUDADriverError=CUDADriverError)
    cuda.memory = types.SimpleNamespace(OutOfMemoryError=MemoryError)
    cuda.compiler = types.SimpleNamespace(CompileException=SyntaxError)
    cuda.stream = types.SimpleNamespace(
        get_current_stream_ptr=lambda: recorder.stream)
    cp.cuda = cuda
    return cp


@pytest.fixture
def fake(monkeypatch):
    recorder = Recorder()
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(recorder))
    from tracejit.backends.cuda import executable
    monkeypatch.setattr(executable, "compile_module", compile_module)
    return recorder


def build(recorder, f, *args):
    from tracejit.backends.cuda import CudaExecutable
    from tracejit.backends.cuda.dispatch import Launch
    lowered = tracejit.jit(f).lower(*args)
    exe = CudaExecutable(pipeline.to_program(lowered._traced.module))
    for step in exe._steps:
        if isinstance(step, Launch):
            recorder.counts[step.argv_address] = len(step.values)
    return exe


def test_one_launch_with_the_arrays_pointers(fake):
    exe = build(fake, lambda x: x + 1, np.ones(8, np.float32))
    x = ndarray((8,), np.float32)
    (out,) = exe([x])
    ((f, blocks, threads, shared, stream, values),) = fake.calls
    assert (blocks, threads, shared, stream) == (1, 256, 0, 7)
    assert values[:2] == [x.data.ptr, out.data.ptr]
    assert out.shape == (8,) and out.dtype == np.float32
    assert "ndarray((8,), dtype0)" in exe.call_text


def test_single_runner_returns_the_array(fake):
    exe = build(fake, lambda x: x * 2, np.ones(8, np.float32))
    run = exe.runner(single=True)
    out = run((ndarray((8,), np.float32),))
    assert isinstance(out, ndarray) and exe.runner(single=True) is run


def test_a_dropped_output_is_handed_out_again(fake):
    exe = build(fake, lambda x: x + 1, np.ones(8, np.float32))
    x = ndarray((8,), np.float32)
    first = exe([x])[0]
    ptr = first.data.ptr
    del first
    again = exe([x])[0]
    assert again.data.ptr == ptr                 # nobody held it: reused
    held = exe([x])[0]                           # again is still held
    assert held.data.ptr != ptr
    # a loop that keeps the last result alternates between two arrays
    seen = set()
    y = None
    for _ in range(6):
        y = exe([x])[0]
        seen.add(y.data.ptr)
    assert len(seen) <= 3


@pytest.mark.parametrize("hold", ["view", "data", "mem", "offset_pointer",
                                  "weakref", "reshaped", "in_a_list"])
def test_an_output_anything_can_reach_is_never_reused(fake, hold):
    exe = build(fake, lambda x: x + 1, np.ones(8, np.float32))
    x = ndarray((8,), np.float32)
    keep = []
    for _ in range(2):   # both kept slots filled, then dropped by us
        out = exe([x])[0]
        ptr = out.data.ptr
        if hold == "view":
            keep.append(out.view_of())
        elif hold == "data":
            keep.append(out.data)
        elif hold == "mem":
            keep.append(out.data.mem)
        elif hold == "offset_pointer":
            keep.append(out.data + 4)
        elif hold == "weakref":
            keep.append(weakref.ref(out))
        elif hold == "reshaped":
            out.shape = (2, 4)
        else:
            keep.append([out])
        keep.append(ptr)
        del out
        gc.collect()
    fresh = exe([x])[0]
    assert fresh.data.ptr not in keep
    assert fresh.shape == (8,)


def test_another_stream_gets_a_new_output(fake):
    exe = build(fake, lambda x: x + 1, np.ones(8, np.float32))
    x = ndarray((8,), np.float32)
    ptr = exe([x])[0].data.ptr
    fake.stream = 9
    assert exe([x])[0].data.ptr != ptr
    assert fake.calls[-1][4] == 9


def test_large_outputs_are_not_kept(fake):
    exe = build(fake, lambda x: x + 1, np.ones(1 << 19, np.float32))
    x = ndarray((1 << 19,), np.float32)
    ptr = exe([x])[0].data.ptr
    assert exe([x])[0].data.ptr != ptr
    assert "kept0" not in exe.call_text


def test_row_kernels_get_scratch_and_shared_memory(fake):
    exe = build(fake, lambda x: x.sum(), np.ones((64, 1024), np.float32))
    x = ndarray((64, 1024), np.float32)
    exe([x])
    first, second = fake.calls
    assert first[5][-1] == second[5][-1]          # one scratch for both
    assert first[5][0] == x.data.ptr
    exe([x])
    assert fake.calls[2][5][-1] == first[5][-1]   # kept for the stream
    exe = build(fake, lambda x: np.exp(x) / np.exp(x).sum(1, keepdims=True),
                np.ones((8, 8192), np.float32))
    exe([ndarray((8, 8192), np.float32)])
    assert fake.calls[-1][3] == 32768   # the row in shared memory


def test_repeated_launches_are_replayed_from_a_graph(fake):
    """A two-launch program: the first call with a set of pointers
    launches directly, the second launches directly and captures, later
    ones replay the graph, which launches what a direct call would."""
    exe = build(fake, lambda x: x.sum(), np.ones((64, 1024), np.float32))
    assert "graph_launch(graph, stream)" in exe.call_text
    x = ndarray((64, 1024), np.float32)
    for _ in range(2):
        exe([x])
    assert fake.replays == 0 and exe._graphs.captures == 1
    direct = fake.calls[2:]
    exe([x])
    assert fake.replays == 1 and fake.calls[4:] == direct
    fake.stream = 8                         # another stream: another key
    exe([x])
    assert fake.replays == 1 and fake.calls[6][4] == 8
    y = ndarray((64, 1024), np.float32)     # other pointers: launched
    exe([y])
    assert fake.replays == 1 and fake.calls[-2][5][0] == y.data.ptr


def test_graphs_are_off_for_one_launch_or_on_request(fake, monkeypatch):
    exe = build(fake, lambda x: x + 1, np.ones(8, np.float32))
    assert exe._graphs is None and "graph" not in exe.call_text
    monkeypatch.setenv("TRACEJIT_CUDA_GRAPHS", "0")
    exe = build(fake, lambda x: x.sum(), np.ones((64, 1024), np.float32))
    assert exe._graphs is None


@pytest.mark.cuda
def test_graph_replays_compute_the_new_values(cp):
    """Replays read the arrays' current contents: the same input array
    refilled between calls, another array, outputs dropped (so the kept
    ones come back and the pointers repeat) or held, each give numpy's
    answer."""
    def f(x):
        return x.sum(0)[:, None] + x.sum(1), (x * x).mean()
    jitted = tracejit.jit(f, backend="cuda")
    x = cp.asarray(np.arange(64, dtype=np.float32).reshape(8, 8))
    held = []
    for k in range(12):
        if k == 6:
            x = x * 2                       # another array
        else:
            x += 1                          # same pointer, new values
        got = jitted(x)
        if k >= 8:
            held.append(got)                # fresh outputs from now on
        want = f(cp.asnumpy(x))
        for g, w in zip(got, want):
            np.testing.assert_allclose(cp.asnumpy(g), w, rtol=1e-6)
    exe = jitted.lower(x).compile().executable
    assert exe._graphs is not None and exe._graphs.captures >= 2


def test_a_pointer_passed_twice_is_one_graph_argument(fake):
    """Empty constants share address 0: the launch key lists it once."""
    exe = build(fake, lambda x: np.where(x > x.max(axis=0) * 0.5, x,
                                         0).sum(axis=1),
                np.ones((1, 0), np.float32))
    x = ndarray((1, 0), np.float32)
    for _ in range(3):
        exe([x])
    assert exe._graphs.captures == 1
