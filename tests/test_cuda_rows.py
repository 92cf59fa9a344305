"""Tests of the CUDA row layouts (tracejit.backends.cuda.rowplan, .rows).

* Text and plan checks that run everywhere: which layout each shape gets,
  what the generated C holds (shuffles, shared memory, no atomics, no
  per-thread row arrays), launch shapes and scratch sizes.
* ``cuda``-marked tests (skipped without CuPy or a GPU): every layout
  against numpy on the shapes that sit at its edges (rows of 1, 31, 32, 33,
  1000, 8192, 70000; few and many rows; 0-size; 3-D arrays; keepdims),
  NaN in max/min, and full sums giving the same bits on every run.

``python tests/test_cuda_rows.py`` prints the timing table of the
benchmark workloads 1-6 (CUDA-event median of 30 calls after warm-up, the
HBM floor and the ratio) and the host cost of a cached one-kernel call and
its parts; ``--sweep`` also times other launch and layout constants.
"""
from __future__ import annotations

import os
import statistics
import sys

import numpy as np
import pytest

import tracejit
from tracejit.backends.cuda import executable as cuda_exec
from tracejit.backends.cuda import nvrtc
from tracejit.backends.cuda import (render_kernel, render_module,
                                    render_program, rowplan)
from tracejit.fusion.kernel import (BufferArg, Kernel, Reduction, ScalarOp,
                                    Stage, Store)
from tracejit.layout.indexing import IndexMap, row_major_strides


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from backends import (device_ms, layernorm, program_of,  # noqa: E402
                      softmax)


def variance(x):
    return ((x - x.mean(-1, keepdims=True)) ** 2).mean(-1)


def sample(shape, seed=0, dtype="float32"):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def kernel_of(f, *shapes):
    """The single kernel ``f`` lowers to on float32 arrays of ``shapes``."""
    (kernel,) = program_of(f, *(np.empty(s, np.float32)
                                for s in shapes)).kernels
    return kernel


def local_softmax_kernel(rows_, cols):
    """Row softmax whose exp lives in a row scratch (a ``local`` arg), as
    lowering makes it, for any row length (lowering stops at 64 KiB)."""
    shape, f32 = (rows_, cols), "float32"
    idx = IndexMap.identity(shape)
    args = (BufferArg("x", f32, shape, None),
            BufferArg("out", f32, shape, row_major_strides(shape), True),
            BufferArg("e", f32, shape, (0, 1), True, local=True))
    stage0 = Stage(ops=(ScalarOp("load", f32, arg=0, index=idx),),
                   reductions=(Reduction(0, "max", f32),))
    stage1 = Stage(ops=(ScalarOp("load", f32, arg=0, index=idx),
                        ScalarOp("reduced", f32, (0,)),
                        ScalarOp("sub", f32, (0, 1)),
                        ScalarOp("exp", f32, (2,))),
                   reductions=(Reduction(3, "add", "float64"),),
                   stores=(Store(2, 3, idx),))
    stage2 = Stage(ops=(ScalarOp("load", f32, arg=2, index=idx),
                        ScalarOp("reduced", f32, (1,)),
                        ScalarOp("div", f32, (0, 1))),
                   stores=(Store(1, 2, idx),))
    return Kernel(f"local_softmax_{cols}", shape, args,
                  (stage0, stage1, stage2), reduce_axes=(1,))


# --------------------------------------------------------------------------
# Everywhere: plans and text.

@pytest.mark.parametrize("f, shape, kind", [
    (lambda x: x.sum(1), (100, 1), "warp"),
    (lambda x: x.sum(1), (100, 33), "warp"),
    (lambda x: x.sum(1), (100, 1000), "warp"),
    (lambda x: x.sum(1), (100, 8192), "block"),
    (lambda x: x.sum(1), (2048, 8192), "block"),
    (lambda x: x.sum(1), (8192, 8192), "block"),    # many rows, one stage
    (lambda x: x.sum(1), (4, 70000), "split_rows"),
    (lambda x: x.sum(), (8192, 8192), "split_rows"),
    (lambda x: x.sum(), (5, 7), "warp"),
    (lambda x: x.sum(0), (8192, 8192), "split_columns"),
    (lambda x: x.sum(0), (8, 3), "columns"),
    (lambda x: x.sum(1), (3, 5, 7), "columns"),
    (lambda x: x - x.mean(0), (300, 20), "columns"),
    (softmax, (8192, 8192), "block"),
    (softmax, (4, 70000), "block"),
])
def test_layout_of_each_shape_class(f, shape, kind):
    assert rowplan.plan(kernel_of(f, shape)).kind == kind


def test_block_row_kernel_text():
    src = render_program(program_of(softmax, np.empty((64, 8192),
                                                      np.float32)))
    body = src[src.index("void k0_divide("):]
    assert "__shfl_xor_sync" in src and "tj_shfl_xor(r0, o)" in body
    assert "__shared__ float tj_red0[32];" in body
    assert "__shared__ double tj_red1[32];" in body   # the float64 sum
    assert "TJ_DYNAMIC_SHARED(tj_smem);" in body
    assert "__syncthreads();" in body
    # blocks of the planned 512 threads keep each thread's 16 points of x,
    # then of exp(x - max), in registers: x is read from memory once, 16
    # bytes at a time (4 loads in flight per thread)
    regs = body[:body.index("} else {  // any other team: row storage")]
    assert "if (blockDim.x == 512) {" in regs
    assert "float tj_r0[16];" in regs and "float tj_r1[16];" in regs
    assert "tj_vec<float, 4> tj_l0[4];" in regs
    assert "tj_l0[tj_k] = *(const tj_vec<float, 4>*)(a0 + tj_p + " \
        "8192LL * i0);" in regs
    assert "tj_r1[tj_k * 4 + tj_e] = s1v3;" in regs
    assert "const float s2v0 = tj_r1[tj_k * 4 + tj_e];" in regs
    assert "*(tj_vec<float, 4>*)(a1 + tj_p + 8192LL * i0) = tj_o0;" in regs
    assert "c0[" not in regs and "a2[" not in regs
    # other blocks: x is read from memory in stage 0 only (16 bytes at a
    # time, or point by point); exp stays in shared memory
    body, head = body[len(regs):], regs
    assert body.count("a0[") == 1 and "c0[j] = s0v0;" in body
    assert "const float s1v0 = c0[j];" in body
    assert "float* const a2 = (float*)(tj_row + 0);" in head
    # stage 1 reads x's copy at j, then stores exp at j: one slot for both
    assert "float* const c0 = (float*)(tj_row + 0);" in head
    # one thread stores nothing per row here; no per-thread row arrays
    assert "float a2[" not in body and "atomic" not in src


def test_per_row_stores_are_made_by_one_thread():
    src = render_program(program_of(lambda x: x.max(1, keepdims=True),
                                    np.empty((16, 4096), np.float32)))
    at = src.index("if (threadIdx.x == 0) {")
    assert src.index("a1[i0] = s0p0;") > at


def test_long_rows_keep_the_row_scratch_in_global_scratch():
    kernel = local_softmax_kernel(4, 70000)
    p = rowplan.plan(kernel)
    assert (p.kind, p.in_shared, p.caches) == ("block", False, ())
    src = render_kernel(kernel)
    assert "TJ_DYNAMIC_SHARED" not in src.split("void local_softmax")[1]
    assert "unsigned char* const tj_row = scratch + (blockIdx.x) * " \
        "280000LL;" in src
    (launch,), scratch = rowplan.launches(kernel, 132)
    assert launch.blocks == 4 and scratch == 4 * 280000
    # many rows: the grid stops at what is resident, one slot per block
    (launch,), scratch = rowplan.launches(local_softmax_kernel(5000, 70000),
                                       132)
    resident = 132 * (rowplan.THREADS_PER_SM // launch.threads)
    assert launch.blocks == resident and scratch == resident * 280000


def test_rows_that_fit_keep_the_row_scratch_in_shared_memory():
    # 16000 float32: the row scratch (64000 bytes) fits, and x's copy
    # shares its slot (read for the last time where exp is stored)
    p = rowplan.plan(local_softmax_kernel(8, 16000))
    assert p.in_shared and p.caches and p.team_bytes == 64000
    (launch,), scratch = rowplan.launches(local_softmax_kernel(8, 16000), 132)
    assert launch.shared == 64000 and scratch == 0


def test_full_sum_is_two_passes_without_atomics():
    kernel = kernel_of(lambda x: x.sum(), (8192, 8192))
    src = render_kernel(kernel)
    assert "atomic" not in src
    assert "void k0_reduce_sum(" in src and "void k0_reduce_sum_finish(" in src
    assert "tj_part0[tj_item] = r0;" in src
    assert "r0 = (r0 + tj_part0[row * 1024LL + c]);" in src
    first, second = rowplan.launches(kernel, 132)[0]
    assert (first.blocks, first.threads) == (1024, 512)
    assert (second.blocks, second.threads) == (1, 256)


def test_column_sum_is_coalesced_and_two_passes():
    kernel = kernel_of(lambda x: x.sum(0), (8192, 8192))
    src = render_kernel(kernel)
    # a thread per (chunk of rows, 4 consecutive columns): coalesced,
    # 16 bytes per row, one accumulator per column
    p = rowplan.plan(kernel)
    assert p.width == 4
    assert "const long long tj_q = tj_item % 2048LL * 4LL;" in src
    assert "for (long long j = tj_lo; j < tj_hi; ++j) {" in src
    assert "tj_l0 = *(const tj_vec<float, 4>*)(a0 + tj_p + 8192LL * i0);" \
        in src
    assert "r0[tj_e] = (r0[tj_e] + ((double)s0v0));" in src
    assert "tj_part0[tj_c * 8192LL + tj_q + tj_e] = r0[tj_e];" in src
    assert "r0 = (r0 + tj_part0[c * 8192LL + flat]);" in src
    (first, second), scratch = rowplan.launches(kernel, 132)
    assert scratch == p.chunks * 8192 * 8 and second.name.endswith("_finish")
    assert first.blocks * first.threads == 8192 // 4 * p.chunks
    # 7 columns: no groups (the plain thread per kept point)
    src = render_kernel(kernel_of(lambda x: x.sum(0), (300, 7)))
    assert "const long long flat = tj_item % 7LL;" in src


# --------------------------------------------------------------------------
# Everywhere with g++: the kernels run as real threads of an emulated GPU
# (a block at a time, one OS thread per CUDA thread, barriers and shuffles
# made of mutexes), so combines, barriers and shared-memory slices are
# checked for races and lost lanes without a GPU.  A lane that skips a
# shuffle its warp makes hangs here as it faults on a GPU: a timeout fails.

EMULATOR = r"""
#include <math.h>
#include <string.h>
#include <condition_variable>
#include <mutex>
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __launch_bounds__(n)
#define __shared__ static
#define TJ_DYNAMIC_SHARED(name) alignas(16) static unsigned char name[1 << 22]
#define TJ_UNROLL
struct tj_dim3 { unsigned int x, y, z; };
static thread_local tj_dim3 threadIdx, blockIdx;
static tj_dim3 blockDim, gridDim;
struct tj_barrier {
  std::mutex m; std::condition_variable cv;
  unsigned count = 0, arrived = 0; unsigned long gen = 0;
  void wait() {
    std::unique_lock<std::mutex> lock(m);
    unsigned long g = gen;
    if (++arrived == count) { arrived = 0; ++gen; cv.notify_all(); }
    else cv.wait(lock, [&] { return gen != g; });
  }
};
static tj_barrier tj_block_barrier, tj_warp_barrier[32];
static unsigned long long tj_lanes[1024];
extern "C" void tj_grid(unsigned grid, unsigned block) {
  gridDim = {grid, 1, 1}; blockDim = {block, 1, 1};
  tj_block_barrier.count = block;
  for (unsigned w = 0; w < 32; ++w) tj_warp_barrier[w].count = 32;
}
extern "C" void tj_thread(unsigned block, unsigned thread) {
  blockIdx = {block, 0, 0}; threadIdx = {thread, 0, 0};
}
static inline void __syncthreads() { tj_block_barrier.wait(); }
static inline void __syncwarp() { tj_warp_barrier[threadIdx.x / 32].wait(); }
static inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
static inline double __longlong_as_double(long long i) {
  double d; memcpy(&d, &i, 8); return d;
}
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
template <class T> static inline T tj_from_lane(T v, unsigned lane) {
  tj_barrier& warp = tj_warp_barrier[threadIdx.x / 32];
  memcpy(&tj_lanes[threadIdx.x], &v, sizeof v);
  warp.wait();
  T got; memcpy(&got, &tj_lanes[threadIdx.x / 32 * 32 + lane], sizeof got);
  warp.wait();
  return got;
}
template <class T> static inline T __shfl_xor_sync(unsigned, T v, int mask) {
  return tj_from_lane(v, (threadIdx.x % 32) ^ mask);
}
template <class T> static inline T __shfl_sync(unsigned, T v, int lane) {
  return tj_from_lane(v, lane);
}
"""


TIMEOUT = 60   # seconds a block may take on the emulator


class EmulatedGpu:
    """Runs the functions of ``kernels`` on the emulator: at most
    ``blocks`` blocks of ``threads`` threads each (fewer than planned, so
    loops wrap and blocks of several warps combine)."""

    xp = np

    def __init__(self, kernels, workdir, blocks=2, threads=64):
        import ctypes
        import shutil
        import subprocess
        gxx = shutil.which("g++")
        if gxx is None:
            pytest.skip("no host C++ compiler")
        cpp, lib = workdir / "emulated.cpp", workdir / "emulated.so"
        cpp.write_text(EMULATOR + render_module(kernels))
        proc = subprocess.run([gxx, "-std=c++17", "-O1", "-fPIC", "-shared",
                               "-ffp-contract=off", "-o", str(lib), str(cpp),
                               "-lpthread"], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        self.lib, self.ctypes = ctypes.CDLL(str(lib)), ctypes
        self.blocks, self.threads = blocks, threads

    def to_numpy(self, a):
        return a

    def launch(self, launch, arrays):
        import threading
        c = self.ctypes
        fn = getattr(self.lib, launch.name)
        fn.restype = None
        pointers = [c.c_void_p(a.ctypes.data) for a in arrays]
        grid = min(launch.blocks, self.blocks)
        threads = min(launch.threads, self.threads)
        self.lib.tj_grid(grid, threads)

        def one(b, t):
            self.lib.tj_thread(b, t)
            fn(*pointers)
        for b in range(grid):   # blocks one after another: statics are
            team = [threading.Thread(target=one, args=(b, t), daemon=True)
                    for t in range(threads)]   # shared memory
            for t in team:
                t.start()
            for t in team:
                t.join(timeout=TIMEOUT)
                assert not t.is_alive(), f"{launch.name}: threads hang"


EMULATED = {
    "softmax_warp": (softmax, [(5, 40)]),
    "softmax_block": (softmax, [(3, 1500)]),
    "layernorm_block": (layernorm, [(2, 2000), (2000,), (2000,)]),
    "bool_any_count": (lambda a: ((a > 0).max(1), (a > 0).sum(1)), [(4, 70)]),
    "sum_split_rows": (lambda a: (a.sum(), a.max()), [(40, 1000)]),
    "sum_split_columns": (lambda a: a.sum(0), [(300, 20)]),
    "middle_axis": (lambda a: a.min(1, keepdims=True), [(3, 200, 7)]),
    "columns_stages": (lambda a: a - a.mean(0), [(30, 9)]),
    "many_rows_warp": (lambda a: a.sum(1), [(4096, 40)]),
}


@pytest.mark.parametrize("case", sorted(EMULATED))
def test_layouts_on_an_emulated_gpu(case, tmp_path):
    from test_cuda_render import run_program   # noqa: E402 (test helper)
    f, shapes = EMULATED[case]
    args = [sample(s, k) * 3 for k, s in enumerate(shapes)]
    program = program_of(f, *args)
    gpu = EmulatedGpu(program.kernels, tmp_path)
    got = run_program(gpu, program, args)
    want = f(*(a.astype(np.float64) for a in args))
    for g, w in zip(got, want if isinstance(want, tuple) else [want]):
        np.testing.assert_allclose(g, np.asarray(w), rtol=3e-5, atol=3e-5)


@pytest.mark.parametrize("layout", ["aligned", "offset", "strided"])
@pytest.mark.parametrize("case", ["softmax_block", "layernorm_block",
                                  "softmax_odd"])
def test_rows_in_registers_emulated(case, layout, tmp_path):
    """Blocks of the planned size keep each thread's share of the row in
    registers across the stages (16-byte loads where the layout allows,
    point by point otherwise; rows of odd length in groups of one)."""
    from test_cuda_render import run_program   # noqa: E402 (test helper)
    f, shapes = {**EMULATED, "softmax_odd": (softmax, [(2, 1031)])}[case]
    args = [sample(s, k) * 3 for k, s in enumerate(shapes)]
    program = program_of(f, *args)
    (kernel,) = program.kernels
    p = rowplan.plan(kernel)
    from tracejit.backends.cuda import team
    assert p.kind == "block" and team.carried(kernel, p, team._width(
        kernel, p))
    gpu = EmulatedGpu(program.kernels, tmp_path, threads=p.threads)
    (got,) = run_program(gpu, program, args, layout)
    want = f(*(a.astype(np.float64) for a in args))
    np.testing.assert_allclose(got, want, rtol=3e-5, atol=3e-5)


def test_row_scratch_in_global_memory_emulated(tmp_path):
    kernel = local_softmax_kernel(3, 30000)
    assert not rowplan.plan(kernel).in_shared
    x = sample((3, 30000), 12) * 3
    gpu = EmulatedGpu([kernel], tmp_path, threads=96)
    launches, scratch = rowplan.launches(kernel, 132)
    out = np.zeros_like(x)
    for launch in launches:
        gpu.launch(launch, [x, out, np.array([30000, 1], np.int64),
                            np.zeros(scratch, np.uint8)])
    np.testing.assert_allclose(out, softmax(x.astype(np.float64)),
                               rtol=3e-6, atol=1e-9)


# --------------------------------------------------------------------------
# On the GPU.



def check(cp, f, *args, rtol=2e-6, atol=1e-6):
    """Run ``f`` through CudaExecutable and compare with numpy (float32
    sums are compared with float64 sums: the kernels add in float64)."""
    exe = cuda_exec.CudaExecutable(program_of(f, *args))
    got = [cp.asnumpy(o) for o in exe([cp.asarray(a) for a in args])]
    want = f(*(a.astype(np.float64) if a.dtype == np.float32 else a
               for a in args))
    want = list(want) if isinstance(want, tuple) else [want]
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert g.shape == w.shape, (g.shape, w.shape)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
    return exe, got


LENGTHS = [1, 31, 32, 33, 1000, 8192, 70000]


@pytest.mark.cuda
@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("count", [1, 3, 300])
def test_row_sums_and_maxima(cp, length, count):
    if count * length > 1 << 22:
        count = 5
    x = sample((count, length), length + count)
    check(cp, lambda a: a.sum(1), x, rtol=1e-6, atol=1e-5)
    check(cp, lambda a: a.max(-1, keepdims=True), x, rtol=0, atol=0)
    check(cp, lambda a: a.min(1), x, rtol=0, atol=0)
    check(cp, lambda a: a.mean(1), x, rtol=1e-6, atol=1e-6)


@pytest.mark.cuda
@pytest.mark.parametrize("length", LENGTHS)
def test_softmax_layernorm_variance(cp, length):
    count = 3 if length > 1000 else 67
    x = sample((count, length), length) * 3
    g, b = sample((length,), 1), sample((length,), 2)
    check(cp, softmax, x, rtol=3e-6, atol=1e-9)
    check(cp, layernorm, x, g, b, rtol=2e-5, atol=2e-5)
    check(cp, variance, x, rtol=2e-6, atol=1e-7)


@pytest.mark.cuda
def test_many_rows_softmax(cp):
    check(cp, softmax, sample((4096, 512), 3), rtol=3e-6, atol=1e-9)
    check(cp, softmax, sample((512, 8192), 4), rtol=3e-6, atol=1e-9)


@pytest.mark.cuda
def test_float64_and_integer_rows(cp):
    x = sample((50, 3000), 5, "float64")
    check(cp, softmax, x, rtol=1e-13, atol=1e-300)
    check(cp, lambda a: a.sum(), x, rtol=1e-13, atol=1e-12)
    xi = np.random.default_rng(6).integers(-2**31, 2**31, (7, 40000),
                                           dtype=np.int64).astype(np.int32)
    check(cp, lambda a: (a.sum(1), a.max(1), a.sum(0), a.sum()), xi)
    xb = np.random.default_rng(7).random((9, 2000)) < 0.01
    check(cp, lambda a: (a.max(1), a.min(1), a.sum(0), a.sum()), xb)


@pytest.mark.cuda
def test_zero_size(cp):
    for shape in [(0, 5), (5, 0), (0, 0), (0,), (0, 70000)]:
        x = np.zeros(shape, np.float32)
        check(cp, lambda a: a.sum(-1), x)
        check(cp, lambda a: a.sum(0), x)
        check(cp, lambda a: a.sum(), x)
        if shape[-1]:
            check(cp, softmax, x)
    check(cp, lambda a: a.max(0), np.zeros((5, 0), np.float32))


@pytest.mark.cuda
@pytest.mark.parametrize("shape", [(3, 5, 7), (4, 1000, 33), (2, 40, 9000),
                                   (64, 3, 128)])
def test_three_d_last_and_middle_axes(cp, shape):
    x = sample(shape, sum(shape))
    check(cp, lambda a: a.sum(-1), x, rtol=1e-6, atol=1e-5)
    check(cp, lambda a: a.sum(1), x, rtol=1e-6, atol=1e-5)
    check(cp, lambda a: a.max(1, keepdims=True), x, rtol=0, atol=0)
    check(cp, lambda a: a.sum(-1, keepdims=True), x, rtol=1e-6, atol=1e-5)
    check(cp, lambda a: a - a.mean(1, keepdims=True), x, rtol=1e-5,
          atol=1e-5)
    check(cp, softmax, x, rtol=3e-6, atol=1e-9)


@pytest.mark.cuda
@pytest.mark.parametrize("shape", [(8, 1), (4, 33), (5, 8192), (3, 70000),
                                   (300, 20), (1 << 20,)])
def test_max_and_min_propagate_nan(cp, shape):
    x = sample(shape, 8)
    flat = x.reshape(-1)
    flat[flat.size // 3] = np.nan
    f = (lambda a: (a.max(), a.min(), a.max(0), a.min(-1))) if x.ndim == 2 \
        else (lambda a: (a.max(), a.min()))
    exe, got = check(cp, f, x, rtol=0, atol=0)   # NaN == NaN here
    assert np.isnan(got[0]) and np.isnan(got[1])


@pytest.mark.cuda
@pytest.mark.parametrize("f, shape", [
    (lambda a: a.sum(), (1 << 24,)), (lambda a: a.sum(), (4096, 4096)),
    (lambda a: a.sum(0), (4096, 4096)), (lambda a: a.mean(1), (64, 70000))])
def test_sums_are_deterministic(cp, f, shape):
    x = sample(shape, 9) + 0.1
    exe, (first,) = check(cp, f, x, rtol=1e-6, atol=1e-4)
    dx = cp.asarray(x)
    for _ in range(5):
        (again,) = exe([dx])
        np.testing.assert_array_equal(cp.asnumpy(again).view(np.uint32),
                                      first.view(np.uint32))


@pytest.mark.cuda
def test_row_scratch_in_global_memory(cp):
    """Rows too long for shared memory keep their scratch in the scratch
    array the launcher allocates: run the hand-built kernel with the
    executable's launch plan."""
    for count, length in [(3, 70000), (300, 30000)]:
        kernel = local_softmax_kernel(count, length)
        assert not rowplan.plan(kernel).in_shared
        x = sample((count, length), 10) * 3
        module = nvrtc.compile_module(cp, render_kernel(kernel), [])
        dx, out = cp.asarray(x), cp.zeros((count, length), cp.float32)
        launches, scratch = rowplan.launches(
            kernel, cp.cuda.Device().attributes["MultiProcessorCount"])
        strides = cp.asarray(np.array([length, 1], np.int64))
        buf = cp.zeros(scratch, cp.uint8)
        for launch in launches:
            module.get_function(launch.name)(
                (launch.blocks,), (launch.threads,), (dx, out, strides, buf),
                shared_mem=launch.shared)
        np.testing.assert_allclose(cp.asnumpy(out), softmax(
            x.astype(np.float64)), rtol=3e-6, atol=1e-9)


@pytest.mark.cuda
def test_no_per_thread_local_memory(cp):
    """The old layout gave each thread a whole row in local memory, which
    the driver reserves for every resident thread (16 GiB for a softmax
    over (8, 16000) float32); row storage is now shared or global."""
    x = sample((8, 16000), 11)
    exe, _ = check(cp, softmax, x, rtol=3e-6, atol=1e-9)
    (kernel,) = exe.program.kernels
    fn = exe.module.get_function(kernel.name)
    local_size_bytes = 3            # CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES
    assert cp.cuda.driver.funcGetAttribute(local_size_bytes, fn.ptr) < 1024


# --------------------------------------------------------------------------
# Timings: python tests/test_cuda_rows.py [--sweep]

def _bandwidth(cp) -> float:
    """Device copy bandwidth (bytes read + written per second), from a
    1 GiB cupy.copyto."""
    gib = 1 << 30
    src, dst = cp.ones(gib // 4, cp.float32), cp.empty(gib // 4, cp.float32)
    cp.copyto(dst, src)
    ms = device_ms(cp, lambda: cp.copyto(dst, src))
    return 2 * gib / (ms / 1e3)


def _time(cp, f, args, moved: int, bandwidth: float):
    """(ms, floor ms, ratio) of ``f``'s executable on device ``args``."""
    exe = cuda_exec.CudaExecutable(program_of(
        f, *(np.empty(a.shape, a.dtype) for a in args)))
    for _ in range(10):   # and the clocks back up after compiling
        exe(args)
    ms = device_ms(cp, lambda: exe(args), n=30)
    floor = moved / bandwidth * 1e3
    return ms, floor, ms / floor


def measure(sweep: bool = False) -> None:
    """The benchmark workloads 1-6 and the dispatch cost; ``sweep``: also
    under other launch and layout constants."""
    import cupy as cp
    sys.path.insert(0, REPO_ROOT)
    from benchmarks.workloads import arith, gelu, transcendental
    bandwidth = _bandwidth(cp)
    n = 8192
    x = cp.random.standard_normal((n, n), dtype=cp.float32)
    g = cp.random.standard_normal(n, dtype=cp.float32)
    b = cp.random.standard_normal(n, dtype=cp.float32)
    flat = [cp.random.standard_normal(1 << 26, dtype=cp.float32)
            for _ in range(3)]
    big = 4 * n * n
    vec = 4 << 26
    elementwise = [("1 arith (2**26,)", arith, flat, 4 * vec),
                   ("2 transcendental (2**26,)", transcendental, flat,
                    4 * vec),
                   ("3 gelu (2**26,)", gelu, flat[:1], 2 * vec),
                   ("x*2+1 (2**26,)", lambda a: a * 2 + 1, flat[:1],
                    2 * vec)]
    rows = [("4 softmax (8192, 8192)", softmax, [x], 2 * big),
            ("5 layernorm (8192, 8192)", layernorm, [x, g, b], 2 * big),
            ("6a sum all (8192, 8192)", lambda a: a.sum(), [x], big),
            ("6b sum axis 0 (8192, 8192)", lambda a: a.sum(0), [x], big),
            ("6c sum axis 1 (8192, 8192)", lambda a: a.sum(1), [x], big)]
    print(f"copy bandwidth {bandwidth / 1e9:.0f} GB/s (1 GiB cupy.copyto)")
    print(f"{'case':28s} {'ms':>8s} {'floor':>8s} {'ratio':>6s}")
    for name, f, args, moved in elementwise + rows:
        ms, floor, ratio = _time(cp, f, args, moved, bandwidth)
        print(f"{name:28s} {ms:8.4f} {floor:8.4f} {ratio:6.3f}", flush=True)
    dispatch(cp)
    if sweep:
        _sweep(cp, elementwise, rows, bandwidth)


def _host_us(fn, batches=7, calls=1000, sync=None) -> float:
    """Median over ``batches`` of the host microseconds per call of
    ``calls`` calls of ``fn`` (no synchronization inside a batch)."""
    import time
    out = []
    for _ in range(batches):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        out.append((time.perf_counter() - t0) / calls * 1e6)
        if sync:
            sync()
    return statistics.median(out)


def dispatch(cp) -> None:
    """Host microseconds of a cached ``x + 1`` call on (8,) float32, and
    of its parts."""
    import itertools
    from tracejit.backends.cuda import dispatch as host
    f = tracejit.jit(lambda a: a + 1, backend="cuda")
    x = cp.ones(8, cp.float32)
    sync = cp.cuda.Device().synchronize
    for _ in range(200):
        f(x)
    sync()
    parts = {"jit call f(x)": lambda: f(x)}
    (exe, _, _), = f._compiled.values()
    run = exe.runner(single=True)
    parts["executable runner((x,))"] = lambda: run((x,))
    saved = host.KEEP_BYTES
    host.KEEP_BYTES = -1
    fresh, _ = host.build_call(exe, single=True)
    host.KEEP_BYTES = saved
    parts["runner, outputs always new"] = lambda: fresh((x,))
    f32 = np.dtype(np.float32)
    parts["cupy.ndarray((8,), f32)"] = lambda: cp.ndarray((8,), f32)
    out = cp.ndarray((8,), f32)
    mp = out.data
    parts["cupy.ndarray((8,), f32, memptr)"] = lambda: cp.ndarray(
        (8,), f32, mp)
    parts["array_state(out)"] = lambda: host.array_state(out)
    (step,) = exe._steps
    handle, c = step.launches[0]
    launch = cp.cuda.driver.launchKernel
    stream = exe._stream_ptr()
    step.pack(step.values, 0, x.data.ptr, out.data.ptr,
              exe._layouts[(x.strides,)][0][0])
    parts["cuLaunchKernel alone"] = lambda: launch(
        handle, 1, 1, 1, c.threads, 1, 1, 0, stream, step.argv_address, 0)
    parts["pack the parameter block"] = lambda: step.pack(
        step.values, 0, 1, 2, 3)
    parts["stream pointer"] = exe._stream_ptr
    layouts = exe._layouts
    parts["strides + layout lookup"] = lambda: layouts.get((x.strides,))
    parts["cupy x + 1"] = lambda: x + 1
    y = cp.ones(8, cp.float32)
    turn = itertools.cycle([(x,), (y,)]).__next__
    parts["jit call, two inputs in turn"] = lambda: f(*turn())
    rounds = {name: [] for name in parts}
    for _ in range(3):   # interleaved, so no part gets only a cold host
        for name, fn in parts.items():
            rounds[name].append(_host_us(fn, sync=sync))
    for name, got in rounds.items():
        print(f"  dispatch: {name:34s} {statistics.median(got):6.2f} us "
              f"(rounds: {', '.join(f'{t:.2f}' for t in got)})", flush=True)


def _sweep(cp, elementwise, rows, bandwidth) -> None:
    """Time the cases under other launch and layout constants."""
    from tracejit.backends.cuda import team
    trials = [(cuda_exec, {"BLOCKS_PER_SM": 32}, elementwise),
              (cuda_exec, {"BLOCKS_PER_SM": 1024}, elementwise),
              (rowplan, {"ROW_WORDS": 16}, rows[:2]),
              (rowplan, {"ROW_WORDS": 64}, rows[:2]),
              (team, {"REG_WORDS": 0}, rows[:2]),
              (rowplan, {"ROW_POINTS": 32}, rows[4:]),
              (rowplan, {"SPLIT_BLOCKS": 2048}, rows[2:3]),
              (rowplan, {"COLUMN_THREADS": 1 << 15}, rows[3:4]),
              (rowplan, {"COLUMN_THREADS": 1 << 17}, rows[3:4])]
    for modules, trial, cases in trials:
        modules = modules if isinstance(modules, tuple) else (modules,)
        saved = [(m, k, getattr(m, k)) for m in modules for k in trial
                 if hasattr(m, k)]
        for m, k, _ in saved:
            setattr(m, k, trial[k])
        try:
            for name, f, args, moved in cases:
                ms, floor, ratio = _time(cp, f, args, moved, bandwidth)
                print(f"  {trial} {name:28s} {ms:8.4f} {ratio:6.3f}",
                      flush=True)
        finally:
            for m, k, v in saved:
                setattr(m, k, v)


if __name__ == "__main__":
    if "--dispatch" in sys.argv:
        import cupy
        dispatch(cupy)
    else:
        measure(sweep="--sweep" in sys.argv)
