"""Tests of the CPU backend (tracejit/backends/cpu) through ``jit``.

Generated code (packed SIMD for a contiguous add, ``noalias`` arguments),
parameters in every memory layout, zero-size arrays, outputs that must be
copied, and the lifetime of compiled code.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tracejit import jit

from backends import sample

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def assert_close(got, want):
    want = np.asarray(want)
    assert isinstance(got, np.ndarray)
    assert got.dtype == want.dtype and got.shape == want.shape, (got, want)
    if want.dtype.kind == "f":
        tol = 2e-5 if want.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(got, want)


# ---- generated code ---------------------------------------------------------------

PACKED_ADD = re.compile(
    r"^\s*v?addps\b[^\n]*%?\b[xyz]mm\d+", re.MULTILINE)


def test_contiguous_float32_add_uses_packed_simd():
    a = np.ones(4096, np.float32)
    compiled = jit(lambda a, b: a + b).lower(a, a).compile()
    asm = compiled.assembly()
    assert PACKED_ADD.search(asm), asm[:3000]
    # and not only scalar adds: packed adds are the bulk of the loop
    assert len(PACKED_ADD.findall(asm)) >= 2
    assert compiled.kernel_count == 1


def test_packed_simd_regex_is_not_vacuous():
    """Scalar adds (addss, addsd) do not match the pattern above; packed
    adds in any register width do."""
    assert not PACKED_ADD.search("  vaddss %xmm1, %xmm0, %xmm0\n"
                                 "  addsd %xmm1, %xmm0\n")
    assert PACKED_ADD.search("\tvaddps\t(%rcx,%rsi,4), %zmm0, %zmm0\n")
    assert PACKED_ADD.search("\taddps\t%xmm1, %xmm0\n")


def test_kernels_take_noalias_pointers():
    a = np.ones((8, 8), np.float32)
    ir = jit(lambda a, b: np.exp(a) * b.T).lower(a, a).compile().as_text()
    kernels = re.findall(r"^define internal void @(\w+)\(([^)]*)\)", ir,
                         re.MULTILINE)
    assert kernels, ir[:2000]
    for name, params in kernels:
        params = [p.strip() for p in params.split(",")]
        assert len(params) >= 4, name
        pointers, split_range = params[:-2], params[-2:]
        for p in pointers:
            assert p.startswith("ptr noalias %"), (name, p)
        assert split_range == ["i64 %lo", "i64 %hi"], name
    entries = re.findall(r"^define void @(\w+)_entry\(", ir, re.MULTILINE)
    assert sorted(entries) == sorted(n for n, _ in kernels)


# ---- parameters in every layout ----------------------------------------------------------

def layouts(base):
    """(name, array with ``base``'s values in some memory layout)."""
    yield "C", np.ascontiguousarray(base)
    if base.ndim >= 2:
        yield "F", np.asfortranarray(base)
        yield "transposed", np.ascontiguousarray(base.T).T
    big = np.zeros(tuple(2 * n for n in base.shape), base.dtype)
    neg = tuple(slice(None, None, -2) for _ in base.shape)
    big[neg] = base
    yield "negative-stride", big[neg]
    big = np.zeros(tuple(3 * n + 1 for n in base.shape), base.dtype)
    step = tuple(slice(1, 3 * n + 1, 3) for n in base.shape)
    big[step] = base
    yield "strided", big[step]
    rev = np.ascontiguousarray(base[(slice(None, None, -1),) * base.ndim])
    yield "reversed-view", rev[(slice(None, None, -1),) * base.ndim]
    rec = np.zeros(base.shape, dtype=[("pad", "u1"), ("v", base.dtype)])
    rec["v"] = base
    yield "struct-field", rec["v"]          # byte strides not in elements
    ro = base.copy()
    ro.flags.writeable = False
    yield "read-only", ro


def program(a, b, v):
    h = np.tanh(a @ b) * 2 + v
    return {"h": h,
            "s": h.sum(axis=0) - np.exp(a).max(axis=1).mean(),
            "t": (a.T * 3)[::-1],
            "r": b.reshape(-1)[1:7],
            "w": np.where(a > 0, a, -v[:4, None].T)}


def test_float_program_with_every_parameter_layout():
    base_a = sample("float32", (5, 4), 1)
    base_b = sample("float32", (4, 6), 2)
    base_v = sample("float32", (6,), 3)
    want = program(base_a, base_b, base_v)
    f = jit(program)
    for na, a in layouts(base_a):
        for nb, b in layouts(base_b):
            for nv, v in [("C", base_v), *list(layouts(base_v))[1:3]]:
                got = f(a, b, v)
                for key in want:
                    try:
                        assert_close(got[key], want[key])
                    except AssertionError as err:
                        raise AssertionError(f"{key}: a {na}, b {nb}, "
                                             f"v {nv}") from err
    info = f.cache_info()
    assert (info.traces, info.compiles) == (1, 1)


@pytest.mark.parametrize("dtype", ["bool", "int32", "int64", "float64"])
def test_every_layout_for_every_dtype(dtype):
    def fn(x, y):
        return (x + y, x * y, np.maximum(x, y.T.T), x[::-1, 1:] == y[:, :0:-1]
                .T.T[::-1], (x + y).sum(axis=1))

    base_x = sample(dtype, (3, 5), 4)
    base_y = sample(dtype, (3, 5), 5)
    want = fn(base_x, base_y)
    f = jit(fn)
    for nx, x in layouts(base_x):
        for ny, y in layouts(base_y):
            for g, w in zip(f(x, y), want):
                assert_close(g, w)


def test_broadcast_view_input():
    """A stride-0 input (np.broadcast_to) is read correctly."""
    row = np.arange(5, dtype=np.float64)
    x = np.broadcast_to(row, (4, 5))
    assert x.strides[0] == 0
    f = jit(lambda x: (x * 2, x.sum(axis=0), x.T + 1))
    for g, w in zip(f(x), (x * 2, x.sum(axis=0), x.T + 1)):
        assert_close(g, w)


def test_unaligned_input():
    buf = np.zeros(4 * 12 + 1, np.uint8)
    x = buf[1:].view(np.float32).reshape(3, 4)
    x[...] = np.arange(12).reshape(3, 4)
    assert not x.flags.aligned
    assert_close(jit(lambda x: x * 3 + 1)(x), x * 3 + 1)


@pytest.mark.parametrize("n", [1, 7, 31, 4096 + 3])
def test_vector_loop_remainders_and_mixed_strides(n):
    x = sample("float32", (2 * n,), 6)
    f = jit(lambda a, b: a * b + a)
    for a, b in [(x[:n], x[n:]), (x[::2], x[1::2]), (x[:n], x[::-2]),
                 (x[::-2], x[:n])]:
        assert_close(f(a, b), a * b + a)


def test_integer_wraparound_matches_numpy():
    x = np.array([2**31 - 1, -2**31, 5], np.int32)
    assert_close(jit(lambda a: a + 1)(x), x + np.int32(1))
    y = np.array([2**62, 3, -2**63], np.int64)
    assert_close(jit(lambda a: a * a)(y), y * y)


def test_bool_outputs_are_canonical():
    b = np.array([True, False, True, True])
    outs = jit(lambda a, c: (a & c, a > c, ~a, a + c))(b, b[::-1])
    for out, want in zip(outs, (b & b[::-1], b > b[::-1], ~b, b + b[::-1])):
        assert_close(out, want)
        assert set(out.view(np.uint8).tolist()) <= {0, 1}


# ---- zero-size arrays --------------------------------------------------------------------------

ZERO_SIZE = {
    "add": (lambda a: a + 1, [(0, 3)]),
    "broadcast": (lambda a, b: a * b, [(0, 3), (3,)]),
    "broadcast-to-empty": (lambda a, b: a - b, [(0, 3), (1, 3)]),
    "sum-empty-axis": (lambda a: a.sum(axis=0), [(0, 3)]),
    "sum-all": (lambda a: a.sum(), [(0, 3)]),
    "prod-empty-axis": (lambda a: a.prod(axis=1), [(3, 0)]),
    "max-nonempty-axis": (lambda a: a.max(axis=0), [(3, 0)]),
    "matmul-empty-inner": (lambda a, b: a @ b, [(3, 0), (0, 4)]),
    "matmul-empty-rows": (lambda a, b: a @ b, [(0, 2), (2, 4)]),
    "transpose": (lambda a: a.T, [(0, 3)]),
    "reverse": (lambda a: a[::-1, ::-1], [(0, 3)]),
    "empty-slice": (lambda a: a[2:2], [(4, 3)]),
    "exp-keepdims": (lambda a: np.exp(a).sum(axis=1, keepdims=True) + a,
                     [(2, 0)]),
    "identity": (lambda a: a, [(0, 3)]),
}


@pytest.mark.parametrize("case", sorted(ZERO_SIZE))
def test_zero_size(case):
    fn, shapes = ZERO_SIZE[case]
    args = [sample("float32", s, k) for k, s in enumerate(shapes)]
    got = jit(fn)(*args)
    assert_close(got, fn(*args))


def test_zero_size_pytree_outputs():
    x = np.ones((0, 3), np.float64)
    got = jit(lambda a: {"s": a.sum(axis=0), "e": a * 2, "n": None})(x)
    assert_close(got["s"], np.zeros(3))
    assert_close(got["e"], x * 2)
    assert got["n"] is None


ZERO_SIZE_RESHAPES = {
    "flatten": lambda a: a.reshape(-1),
    "reshape": lambda a: a.reshape(3, 0),
    "new-axis": lambda a: a[None],
    "reshape-then-add": lambda a: a.reshape(3, 0) + 1,
}


@pytest.mark.parametrize("case", sorted(ZERO_SIZE_RESHAPES))
def test_zero_size_reshape(case):
    fn = ZERO_SIZE_RESHAPES[case]
    x = np.ones((0, 3), np.float32)
    assert_close(jit(fn)(x), fn(x))


# ---- outputs that alias parameters or constants ---------------------------------------------

ALIASING = {
    "identity": lambda x: x,
    "transpose": lambda x: x.T,
    "slice": lambda x: x[1:, ::-2],
    "reshape": lambda x: x.reshape(-1),
    "squeeze": lambda x: x[None].squeeze(0),
    "row": lambda x: x[1],
    "twice": lambda x: (x, x.T),
}


@pytest.mark.parametrize("case", sorted(ALIASING))
def test_outputs_that_are_parameters_or_views_are_copied(case):
    fn = ALIASING[case]
    for _, x in layouts(sample("float64", (3, 4), 7)):
        keep = x.copy()
        got = jit(fn)(x)
        got = got if isinstance(got, tuple) else (got,)
        want = fn(keep)
        want = want if isinstance(want, tuple) else (want,)
        for g, w in zip(got, want):
            assert_close(g, w)
            assert not np.shares_memory(g, x)
            assert g.flags.writeable
            g[...] = -1.0
        np.testing.assert_array_equal(x, keep)


def test_aliasing_output_compiles_a_copy_kernel():
    x = np.ones((3, 4), np.float32)
    compiled = jit(lambda x: x).lower(x).compile()
    assert compiled.kernel_count == 1
    assert "copy" in compiled.program_text()


def test_constant_outputs_are_fresh_each_call():
    table = np.arange(4.0)
    f = jit(lambda x: (table, np.float32(3), x + table))
    x = np.zeros(4)
    first = f(x)
    for out in first:
        out[...] = 99
    second = f(x)
    assert_close(second[0], table)
    assert_close(second[1], np.float32(3))
    assert_close(second[2], table)
    np.testing.assert_array_equal(table, np.arange(4.0))


def test_every_call_returns_new_arrays():
    f = jit(lambda x: (np.exp(x), x @ x, x.sum(axis=0)))
    x = sample("float64", (4, 4), 8)
    first, second = f(x), f(x)
    for a, b in zip(first, second):
        assert not np.shares_memory(a, b)
        np.testing.assert_array_equal(a, b)


# ---- lifetime of compiled code --------------------------------------------------------------------

def test_freeing_a_jitted_function_keeps_later_compiles_working():
    """Regression: the MCJIT engine owns the target machine it is given and
    frees it with itself; a shared, cached one was freed with the first
    executable and the next compile crashed.  Run in a fresh process, since
    a failure is a crash."""
    script = textwrap.dedent("""
        import gc
        import numpy as np
        from tracejit import jit
        x = np.ones(3, np.float32)
        for k in range(3):
            f = jit(lambda x: x + k)
            f(x)
            compiled = f.lower(x).compile()
            assert "vadd" in compiled.assembly() or "add" in compiled.assembly()
            del f, compiled
            gc.collect()
        g = jit(lambda x: x * 2)
        assert (g(x) == 2).all()
        print("ok")
    """)
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "ok" in proc.stdout, (
        proc.returncode, proc.stderr[-2000:])
