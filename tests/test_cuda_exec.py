"""Tests of the CUDA executable (tracejit.backends.cuda.executable).

Programs are built the way ``jit`` builds them (trace, HLO passes, lowering,
memory planning), run by CudaExecutable on the GPU, and compared with numpy.
``cuda``-marked tests skip without CuPy or a GPU; the others (the error for
a missing CuPy, the source text, launch shapes) run everywhere.

``python tests/test_cuda_exec.py`` prints host and device timings instead.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from tracejit.backends.cuda import executable as cuda_exec
from tracejit.backends.cuda import nvrtc
from tracejit.backends.cuda import (CudaCompileError, CudaExecutable,
                                    CudaOutOfMemory, CudaUnavailable,
                                    render_program)
from tracejit.fusion.program import LibraryStep

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


from backends import (device_ms, layernorm, program_of,  # noqa: E402
                      sample, softmax)
from strategies import assert_outputs_close  # noqa: E402


def mlp(x, w1, b1, w2):
    h = np.tanh(x @ w1 + b1)
    return h @ w2.T


# --------------------------------------------------------------------------
# Everywhere: no GPU needed.

def test_missing_cupy_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)   # import cupy fails
    program = program_of(lambda x: x + 1, np.ones(3, np.float32))
    with pytest.raises(CudaUnavailable, match="needs CuPy"):
        CudaExecutable(program)


def test_module_text_without_a_gpu():
    x = sample("float32", (4, 8))
    program = program_of(softmax, x)
    text = render_program(program)
    (kernel,) = program.kernels
    assert f"void {kernel.name}(" in text
    assert 'extern "C" __global__ __launch_bounds__(' in text
    assert text.count("#define TRACEJIT_CUDA_PRELUDE") == 1
    assert any(a.local for a in kernel.args)     # exp kept in a row scratch


def test_launch_shapes():
    def shape(f, *shapes):
        (kernel,) = program_of(f, *(np.ones(s, np.float32)
                                    for s in shapes)).kernels
        return cuda_exec.launch_shape(kernel, 132)
    most = cuda_exec.BLOCKS_PER_SM * 132
    assert shape(lambda x: x + 1, (8,)) == (1, 256)
    # a thread per group of 4 float32 (16-byte loads), up to the cap
    assert shape(lambda x: x + 1, (1 << 20,)) == (1 << 10, 256)
    assert shape(lambda x: x + 1, (1 << 26,)) == (min(most, 1 << 16), 256)
    # x.T is read point by point, the output written 16 bytes at a time
    assert shape(lambda x: x.T + 1, (1024, 1024)) == (1 << 10, 256)
    # float64: groups of 2
    assert shape(lambda x: x + np.float64(1), (1 << 20,)) == (1 << 11, 256)
    assert shape(lambda x: x + 1, ()) == (1, 256)


def test_row_kernel_launches():
    def launches(f, shape):
        (kernel,) = program_of(f, np.empty(shape, np.float32)).kernels
        return cuda_exec.kernel_launches(kernel, 132)
    # rows of 1000: a warp each, 8 rows per block of 256
    assert launches(lambda x: x.sum(1), (512, 1000)) == (
        (cuda_exec.rowplan.Launch("k0_reduce_sum", 64, 256),), 0)
    # rows of 8192: a block each; x, then exp(x - max), in shared memory
    ((one,), scratch) = launches(softmax, (64, 8192))
    assert (one.blocks, one.threads, one.shared, scratch) == (
        64, 512, 32768, 0)
    # a full sum: chunks to partials (scratch), then one block
    (first, second), scratch = launches(lambda x: x.sum(), (4096, 4096))
    assert second.name == first.name + "_finish"
    assert second.blocks == 1 and scratch == first.blocks * 8

# --------------------------------------------------------------------------
# On the GPU.



def run_cuda(cp, f, *args, device_args=None):
    """Compile ``f`` for the numpy ``args``; run it on ``device_args``
    (CuPy arrays of the same shapes and dtypes; default: copies of args).
    Returns (numpy results, executable)."""
    exe = CudaExecutable(program_of(f, *args))
    if device_args is None:
        device_args = [cp.asarray(a) for a in args]
    outs = exe(device_args)
    assert all(isinstance(o, cp.ndarray) for o in outs)
    return [cp.asnumpy(o) for o in outs], exe


def check(cp, f, *args, rtol=1e-6, atol=0.0, device_args=None):
    got, exe = run_cuda(cp, f, *args, device_args=device_args)
    assert_outputs_close(got, f(*args), rtol, atol)
    return exe


@pytest.mark.cuda
def test_elementwise_chain_with_broadcasting(cp):
    x, y, z = (sample("float32", s, k) for k, s in
               enumerate([(5, 7), (7,), (5, 1)]))
    exe = check(cp, lambda x, y, z: (x * 2 + y) * x - z * 3, x, y, z)
    assert exe.kernel_count == 1
    assert exe.call_text.count("launch(") == 1
    check(cp, lambda z, y: z + y, z, y)           # (5,1) + (7,) -> (5,7)


@pytest.mark.cuda
def test_zero_size_and_zero_d(cp):
    check(cp, lambda x: x * 2 + 1, sample("float32", (0, 3)))
    check(cp, lambda x: x.sum(1), sample("float32", (0, 3)))
    check(cp, lambda x: x.sum(0), sample("float32", (0, 3)))
    check(cp, lambda x: x * 2 + 1, np.array(1.5, np.float32))
    check(cp, lambda x, y: np.exp(x) - y, np.array(0.5), np.array(2.0))


@pytest.mark.cuda
def test_negative_stride_and_transposed_inputs(cp):
    base = cp.asarray(sample("float32", (12, 10), 1))
    views = {"reversed": base[::-2, ::-2], "transposed": base[:5, :6].T,
             "strided": base[1::2, 3:8], "contiguous": base[:6, :5].copy()}
    f = lambda x, y: x * 3 - y                      # noqa: E731
    y = sample("float32", (6, 5), 2)
    exe = CudaExecutable(program_of(f, np.empty((6, 5), np.float32), y))
    for name, view in views.items():
        assert view.shape == (6, 5), name
        (got,) = exe([view, cp.asarray(y)])
        np.testing.assert_allclose(cp.asnumpy(got), f(cp.asnumpy(view), y),
                                   rtol=1e-6, err_msg=name)
    assert len(exe._layouts) == len(views)    # one upload per layout
    # row kernels read strided rows too
    for f in (softmax, lambda x: x.sum(1), lambda x: x.sum(0)):
        for view in views.values():
            check(cp, f, cp.asnumpy(view), device_args=[view], rtol=1e-5)


@pytest.mark.cuda
def test_arguments_of_another_signature_are_refused(cp):
    exe = CudaExecutable(program_of(lambda x: x + 1, np.ones(4, np.float32)))
    with pytest.raises(TypeError, match=r"float64\[4\].*float32\[4\]"):
        exe([cp.ones(4, cp.float64)])
    with pytest.raises(TypeError, match="expected 1 arrays"):
        exe([cp.ones(4, cp.float32)] * 2)


@pytest.mark.cuda
def test_numpy_arguments_are_copied_to_the_device(cp):
    x = sample("float64", (9, 4))[::-1]
    got, _ = run_cuda(cp, lambda x: x + 1, x, device_args=[x])
    np.testing.assert_array_equal(got[0], x + 1)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", ["float64", "int32", "int64", "bool"])
def test_dtypes(cp, dtype):
    a, b = sample(dtype, (33, 17), 3), sample(dtype, (17,), 4)
    if dtype == "bool":
        check(cp, lambda a, b: (a ^ b) | ~a, a, b)
        check(cp, lambda a: a.sum(1), a)
        return
    check(cp, lambda a, b: (a + b) * a - b, a, b)
    check(cp, lambda a: a.sum(0), a)
    if dtype != "float64":
        b = np.where(b == 0, 3, b).astype(dtype)
        check(cp, lambda a, b: (a // b, a % b, a << 2, a > b), a, b)
    else:
        check(cp, lambda a: np.exp(a) / (1 + a * a), a, rtol=1e-14)


def ulp_distance(got, want):
    """Units in the last place between two float arrays of one dtype."""
    ints = {np.float32: np.int32, np.float64: np.int64}[want.dtype.type]

    def ordered(x):
        i = x.view(ints).astype(np.int64)
        return np.where(i < 0, np.iinfo(ints).min - i, i)
    return np.abs(ordered(got) - ordered(want))


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,lo,hi", [
    ("exp", -80, 80), ("log", 1e-30, 1e30), ("tanh", -10, 10),
    ("sin", -100, 100), ("cos", -100, 100)])
def test_math_accuracy(cp, dtype, name, lo, hi):
    rng = np.random.default_rng(5)
    if name == "log":
        x = np.exp(rng.uniform(np.log(lo), np.log(hi), 100_000))
    else:
        x = rng.uniform(lo, hi, 100_000)
    x = x.astype(dtype)
    fn = getattr(np, name)
    (got,), _ = run_cuda(cp, fn, x)
    # float32: against the float64 result rounded once; float64: against
    # numpy (CUDA's functions are within 2 ULP, glibc's within 1)
    want = fn(x.astype(np.float64)).astype(dtype)
    assert ulp_distance(got, want).max() <= 3


@pytest.mark.cuda
def test_softmax_and_layernorm(cp):
    x = sample("float32", (64, 1000), 6) * 4
    exe = check(cp, softmax, x, rtol=2e-6, atol=1e-9)
    assert any(a.local for k in exe.program.kernels for a in k.args)
    g, b = sample("float32", (1000,), 7), sample("float32", (1000,), 8)
    check(cp, layernorm, x, g, b, rtol=1e-5, atol=1e-5)
    check(cp, softmax, sample("float64", (3, 5, 7), 9), rtol=1e-13)


@pytest.mark.cuda
def test_long_rows_keep_the_row_scratch_in_shared_memory(cp):
    # 16000 float32 per row: close to the 64 KiB a row scratch may take;
    # more than the 48 KiB of shared memory a block gets without asking
    x = sample("float32", (8, 16000), 12)
    exe = check(cp, softmax, x, rtol=2e-6, atol=1e-12)
    (kernel,) = exe.program.kernels
    assert [a.local_size for a in kernel.args if a.local] == [16000]


@pytest.mark.cuda
def test_sums(cp):
    x = sample("float32", (300, 257), 10)
    ref = x.astype(np.float64)
    for f, r in ((lambda a: a.sum(), ref.sum()),
                 (lambda a: a.sum(0), ref.sum(0)),
                 (lambda a: a.sum(1), ref.sum(1)),
                 (lambda a: a.mean(1), ref.mean(1))):
        (got,), _ = run_cuda(cp, f, x)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, r, rtol=1e-6, atol=1e-5)
    check(cp, lambda a: a.sum(0), sample("int32", (300, 257)))


def gemm_error(got, want64):
    return float(np.abs(got - want64).max() / np.abs(want64).max())


@pytest.mark.cuda
def test_mlp_gemm_is_true_float32(cp):
    x, w1, b1, w2 = (sample("float32", s, k) for k, s in enumerate(
        [(128, 512), (512, 1024), (1024,), (256, 1024)]))
    (got,), exe = run_cuda(cp, mlp, x, w1, b1, w2)
    steps = exe.program.steps
    gemms = [s for s in steps if isinstance(s, LibraryStep)]
    assert len(gemms) == 2 and ("transpose_b", True) in gemms[1].attrs
    assert exe.program.arena_bytes > 0
    want = mlp(*(a.astype(np.float64) for a in (x, w1, b1, w2)))
    # float32 rounding: ~1e-7 to 1e-6 relative; TF32 would be ~1e-3
    assert gemm_error(got, want) < 2e-5
    check(cp, lambda a, b: a.T @ b, x[:, :64], x[:, 64:96], rtol=1e-4,
          atol=1e-4)


@pytest.mark.cuda
def test_gemm_stays_float32_when_cupy_tf32_is_set(cp):
    script = textwrap.dedent("""
        import numpy as np, cupy
        from test_cuda_exec import mlp, program_of, sample, gemm_error
        from tracejit.backends.cuda import CudaExecutable
        args = [sample("float32", s, k) for k, s in enumerate(
            [(128, 512), (512, 1024), (1024,), (256, 1024)])]
        raw = cupy.asnumpy(cupy.asarray(args[0]) @ cupy.asarray(args[1]))
        exact = args[0].astype(np.float64) @ args[1].astype(np.float64)
        (got,) = CudaExecutable(program_of(mlp, *args))(
            [cupy.asarray(a) for a in args])
        want = mlp(*(a.astype(np.float64) for a in args))
        print(gemm_error(raw, exact), gemm_error(cupy.asnumpy(got), want))
    """)
    env = dict(os.environ, CUPY_TF32="1",
               PYTHONPATH=os.pathsep.join([REPO, os.path.join(REPO, "tests")]))
    proc = subprocess.run([sys.executable, "-c", script], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    plain, ours = map(float, proc.stdout.split())
    assert ours < 2e-5, (plain, ours)


@pytest.mark.cuda
def test_temporaries_and_several_kernels(cp):
    def f(x):
        a = np.exp(x)
        s = a.sum(0)
        m = (a / s).max(1, keepdims=True)
        return np.tanh(a - m) + s.mean(), s
    x = sample("float32", (300, 70), 11)
    exe = check(cp, f, x, rtol=1e-5, atol=1e-6)
    assert exe.kernel_count >= 3 and exe.program.arena_bytes > 0
    # outputs that repeat, and an executable called twice
    g = lambda a: (a + 1, a + 1, a * 2)            # noqa: E731
    exe = check(cp, g, x)
    first = [cp.asnumpy(o) for o in exe([cp.asarray(x)])]
    second = [cp.asnumpy(o) for o in exe([cp.asarray(x * 0)])]
    np.testing.assert_array_equal(first[0], x + 1)
    np.testing.assert_array_equal(second[2], x * 0)


@pytest.mark.cuda
def test_module_is_compiled_once_per_source(cp):
    program = program_of(softmax, sample("float32", (4, 8)))
    a, b = CudaExecutable(program), CudaExecutable(program)
    assert a.module is b.module
    assert a.as_text() == render_program(program)


def test_nvrtc_options_keep_denormals():
    """CuPy's RawModule appends -ftz=true; our own compile keeps IEEE."""
    assert "--ftz=false" in nvrtc.OPTIONS
    assert not any("fast_math" in o or "ftz=true" in o
                   for o in nvrtc.OPTIONS)


@pytest.mark.cuda
def test_denormals_are_kept(cp):
    """float32 denormals in, out and in between, as numpy keeps them."""
    import tracejit
    tiny = np.array([1e-40, -3e-39, 1e-45, 0.0], np.float32)
    cases = [(lambda x: x * np.float32(1.0), tiny),
             (lambda x: x.astype(np.float64), tiny),
             (lambda x: np.exp(x), np.float32([-88.0, -100.0, -103.0])),
             (lambda x: x * np.float32(1e-30), np.float32([1e-9, 3.0]))]
    for f, x in cases:
        got = cp.asnumpy(tracejit.jit(f, backend="cuda")(x))
        want = f(x)
        assert np.any(want != 0) and np.all(got != 0) == np.all(want != 0)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)


@pytest.mark.cuda
def test_compiled_binary_is_cached_on_disk(cp, tmp_path, monkeypatch):
    monkeypatch.setenv("CUPY_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(nvrtc, "_MODULES", {})
    source = 'extern "C" __global__ void k(float* x) { x[0] = 1e-40f; }'
    nvrtc.compile_module(cp, source, ["k"])
    files = list((tmp_path / "tracejit").iterdir())
    assert len(files) == 1 and files[0].stat().st_size > 32
    monkeypatch.setattr(nvrtc, "_MODULES", {})
    x = cp.zeros(1, cp.float32)
    files[0].write_bytes(b"damaged")             # recompiled, not loaded
    nvrtc.compile_module(cp, source, ["k"]).get_function("k")(
        (1,), (1,), (x,))
    assert float(x[0]) == np.float32(1e-40)
    assert files[0].stat().st_size > 32


@pytest.mark.cuda
def test_compile_error_names_the_saved_source(cp):
    source = 'extern "C" __global__ void broken() { this is not C++; }'
    with pytest.raises(CudaCompileError, match=r"saved to (\S+\.cu)") as err:
        cuda_exec.compile_module(cp, source, ["broken"], "broken")
    path = err.value.args[0].split("saved to ")[1].split(")")[0]
    with open(path) as f:
        assert f.read() == source


@pytest.mark.cuda
def test_out_of_memory_is_a_clear_error(cp):
    program = program_of(lambda x: np.exp(x) @ x, sample("float32", (4, 4)))
    assert program.arena_bytes > 0
    program.arena_bytes = 1 << 50                   # a petabyte of temps
    exe = CudaExecutable(program)
    with pytest.raises(CudaOutOfMemory, match="no room"):
        exe([cp.ones((4, 4), cp.float32)])


# --------------------------------------------------------------------------
# Timings: python tests/test_cuda_exec.py

def _host_times(fn, n=1000):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def measure() -> None:
    import cupy as cp
    small = cp.arange(8, dtype=cp.float32)
    exe = CudaExecutable(program_of(lambda x: x + 1, cp.asnumpy(small)))
    args = [small]
    for _ in range(100):
        exe(args)
    sync = cp.cuda.Device().synchronize
    no_sync = _host_times(lambda: exe(args))
    with_sync = _host_times(lambda: (exe(args), sync()))
    raw_fn = exe.module.get_function(exe.program.kernels[0].name)
    out, strides = cp.empty(8, cp.float32), cp.zeros(1, cp.int64)
    bare = _host_times(lambda: raw_fn((1,), (256,), (small, out, strides)))
    (step,) = exe._steps
    step.values[:] = (small.data.ptr, out.data.ptr, strides.data.ptr)
    launch, f32 = cp.cuda.driver.launchKernel, np.dtype(np.float32)
    floor = _host_times(lambda: (cp.ndarray((8,), f32), launch(
        step.launches[0][0], 1, 1, 1, 256, 1, 1, 0, 0, step.argv_address,
        0)))
    sync()
    print(f"x+1 on (8,) float32, host time per call (median of 1000): "
          f"{no_sync:.1f} us without synchronize, {with_sync:.1f} us with; "
          f"floor (allocate the output, cuLaunchKernel): {floor:.1f} us; "
          f"a bare CuPy RawKernel launch: {bare:.1f} us")

    n = 1 << 26
    big = cp.random.standard_normal(n, dtype=cp.float32)
    exe = CudaExecutable(program_of(lambda x: x * 2 + 1,
                                    np.empty(n, np.float32)))
    exe([big])
    ours = device_ms(cp, lambda: exe([big]))
    cupy_ms = device_ms(cp, lambda: big * 2 + 1)
    gib = 1 << 30
    src, dst = cp.ones(gib // 4, cp.float32), cp.empty(gib // 4, cp.float32)
    cp.copyto(dst, src)
    copy_ms = device_ms(cp, lambda: cp.copyto(dst, src))
    bandwidth = 2 * gib / (copy_ms / 1e3)            # read + write, B/s
    floor = 2 * 4 * n / bandwidth * 1e3
    print(f"x*2+1 on 2**26 float32 (median of 20): {ours:.3f} ms "
          f"(cupy's own x*2+1: {cupy_ms:.3f} ms); copy bandwidth "
          f"{bandwidth / 1e9:.0f} GB/s -> floor {floor:.3f} ms "
          f"({floor / ours:.0%} of it)")


if __name__ == "__main__":
    measure()
