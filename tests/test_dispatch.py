"""The cached-call path: one native entry point per executable.

Small programs without library calls or split kernels run every kernel in
one native call that reads the arrays' pointers and strides itself
(``mode == "program"``); these tests check it against numpy for several
kernels per program, every input layout, 0-d and empty arrays, and that it
is the path actually taken.  The per-step path (threads, GEMM) and the
portable fallback get the same checks.
"""
import sys
import threading

import numpy as np
import pytest

import tracejit
from tracejit import jit
from tracejit.backends.cpu import entry


def executable_of(f, *args):
    return f.lower(*args).compile().executable


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def two_outputs(a, b):
    return (a * b).sum(0) + a.max(1).sum(), b.min(0)


def layouts(value: np.ndarray) -> dict:
    """The same values in many memory layouts."""
    shape, dtype = value.shape, value.dtype
    out = {"contiguous": value.copy()}
    big = np.zeros(tuple(2 * s for s in shape), dtype)
    strided = big[tuple(slice(None, None, 2) for _ in shape)]
    strided[...] = value
    out["strided"] = strided
    rev = np.zeros(shape, dtype)[tuple(slice(None, None, -1) for _ in shape)]
    rev[...] = value
    out["reversed"] = rev
    out["fortran"] = np.asfortranarray(value)
    ro = value.copy()
    ro.flags.writeable = False
    out["readonly"] = ro
    buf = np.zeros(value.nbytes + 1, np.uint8)
    unaligned = np.ndarray(shape, dtype, buffer=buf, offset=1)
    unaligned[...] = value
    out["unaligned"] = unaligned
    packed = np.zeros(shape, np.dtype([("pad", np.uint8), ("v", dtype)]))
    packed["v"] = value
    out["packed"] = packed["v"]                  # byte strides not in elements
    pair = np.zeros(shape, np.dtype([("a", dtype), ("v", dtype)]))
    pair["v"] = value
    out["record"] = pair["v"]                    # strides of two elements
    return out


def test_the_layout_probe_passes_on_a_standard_interpreter():
    import sysconfig
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        assert entry.LAYOUT is None
    else:
        assert entry.LAYOUT is not None


def test_a_small_program_runs_in_one_native_call():
    f = jit(lambda x: x + 1)
    x = np.arange(8, dtype=np.float32)
    ex = executable_of(f, x)
    assert ex.mode == "program" and ex.gil_held
    assert "__tj_run" in ex.as_text()
    before = ex.native_runs
    for _ in range(5):
        np.testing.assert_array_equal(f(x), x + 1)
    assert ex.native_runs == before + 5
    assert ex.step_runs == 0
    # lower().compile() filled the cache, so every call is a hit
    assert f.cache_info()[:2] == (5, 0)


@pytest.mark.parametrize("fun,shapes", [
    (softmax, [(3, 5)]),
    (two_outputs, [(4, 8), (4, 8)]),
    (lambda a, b: (a - a.max(0)) * (b - b.max(1, keepdims=True)).sum(0),
     [(4, 8), (4, 8)]),
    (lambda x: (x.sum(), x.T * 2, (x + 1).reshape(-1)), [(3, 4)]),
])
def test_programs_of_several_kernels_match_numpy(fun, shapes):
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    f = jit(fun)
    ex = executable_of(f, *args)
    assert ex.mode == "program"
    for _ in range(3):                  # the first call and cached ones
        got, want = f(*args), fun(*args)
        got_leaves = got if isinstance(got, tuple) else (got,)
        want_leaves = want if isinstance(want, tuple) else (want,)
        assert len(got_leaves) == len(want_leaves)
        for g, w in zip(got_leaves, want_leaves):
            assert g.shape == w.shape and g.dtype == w.dtype
            np.testing.assert_allclose(g, w, rtol=2e-6, atol=1e-6)


def test_a_program_with_temporaries_runs_natively():
    a = np.arange(32, dtype=np.float32).reshape(4, 8)
    f = jit(two_outputs)
    ex = executable_of(f, a, a)
    assert ex.program.arena_bytes > 0 and ex.kernel_count == 3
    before = ex.native_runs
    got = f(a, a)
    f(a, a)
    assert ex.native_runs == before + 2
    for g, w in zip(got, two_outputs(a, a)):
        np.testing.assert_allclose(g, w, rtol=1e-6)


@pytest.mark.parametrize("layout", list(layouts(np.zeros((2, 3)))))
def test_every_layout_matches_numpy_and_stays_untouched(layout):
    rng = np.random.default_rng(1)
    base = rng.standard_normal((3, 5)).astype(np.float32)
    x = layouts(base)[layout]
    y = layouts(base[::-1].copy())["contiguous"]
    f = jit(lambda x, y: (softmax(x) * y, x.sum(0)))
    f(base, y)                           # the fast path is now cached
    saved = x.copy()
    for _ in range(2):
        soft, sums = f(x, y)
        np.testing.assert_allclose(soft, softmax(base) * y, rtol=2e-6,
                                   atol=1e-7)
        np.testing.assert_allclose(sums, base.sum(0), rtol=1e-6)
    np.testing.assert_array_equal(x, saved)
    assert executable_of(f, x, y).mode == "program"


@pytest.mark.parametrize("shape", [(), (0,), (3, 0), (0, 4)])
def test_zero_d_and_empty_arrays(shape):
    x = np.ones(shape, np.float64) * 1.5
    f = jit(lambda x: (x * 2, x.sum()))
    for _ in range(2):
        doubled, total = f(x)
        assert doubled.shape == shape and total.shape == ()
        np.testing.assert_array_equal(doubled, x * 2)
        assert total == x.sum()


def test_misaligned_parameters_fall_back_to_a_copy_on_a_cached_call():
    x = np.arange(6, dtype=np.float64)
    f = jit(lambda x: x * 3)
    f(x)
    ex = executable_of(f, x)
    before = ex.native_runs
    for layout in ("unaligned", "packed", "record"):
        arg = layouts(x)[layout]
        np.testing.assert_array_equal(f(arg), x * 3)
    assert ex.native_runs == before + 3       # one run each, after copies


def test_outputs_are_fresh_arrays():
    x = np.ones(4, np.float32)
    f = jit(lambda x: (x + 1, x * 2))
    a1, b1 = f(x)
    a2, b2 = f(x)
    assert not np.shares_memory(a1, a2) and not np.shares_memory(a1, b1)
    assert a1.flags.writeable and a1.flags.owndata


def test_a_repeated_output_is_returned_each_time():
    x = np.ones(4, np.float32)

    def f(x):
        y = x + 1
        return y, [y, x * 2]
    jf = jit(f)
    for _ in range(2):
        y1, (y2, z) = jf(x)
        np.testing.assert_array_equal(y1, x + 1)
        np.testing.assert_array_equal(y2, x + 1)
        np.testing.assert_array_equal(z, x * 2)


def test_cached_calls_leak_no_references():
    x = np.ones(8, np.float32)
    f = jit(lambda x: (x + 1, x.sum()))
    f(x)
    out = f(x)
    count = sys.getrefcount(x), sys.getrefcount(out[0])
    for _ in range(1000):
        f(x)
    assert (sys.getrefcount(x), sys.getrefcount(out[0])) == count


def test_calls_from_several_threads():
    f = jit(softmax)
    xs = [np.random.default_rng(k).standard_normal((4, 6)) for k in range(4)]
    f(xs[0])
    errors = []

    def work(x):
        try:
            for _ in range(200):
                np.testing.assert_allclose(f(x), softmax(x), rtol=1e-12)
        except AssertionError as err:      # pragma: no cover
            errors.append(err)
    threads = [threading.Thread(target=work, args=(x,)) for x in xs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_large_programs_release_the_gil(monkeypatch):
    monkeypatch.setenv("TRACEJIT_NUM_THREADS", "1")
    x = np.random.default_rng(2).standard_normal((300, 257))
    f = jit(softmax)
    ex = executable_of(f, x)
    assert ex.mode == "program" and not ex.gil_held
    before = ex.native_runs
    np.testing.assert_allclose(f(x), softmax(x), rtol=1e-12)
    np.testing.assert_allclose(f(x[::-1]), softmax(x[::-1]), rtol=1e-12)
    assert ex.native_runs == before + 2
    g = jit(two_outputs)                        # with an arena this time
    ex = executable_of(g, x, x)
    assert not ex.gil_held and ex.program.arena_bytes > 0
    for got, want in zip(g(x, x[::-1]), two_outputs(x, x[::-1])):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert ex.native_runs == 1


def test_split_kernels_run_step_by_step(monkeypatch):
    monkeypatch.setenv("TRACEJIT_NUM_THREADS", "2")
    x = np.random.default_rng(3).standard_normal((300, 257))
    f = jit(lambda x: (softmax(x), x.sum(0)))
    ex = executable_of(f, x)
    assert ex.mode == "steps"
    for arg in (x, x[::-1], np.asfortranarray(x), layouts(x)["packed"]):
        soft, sums = f(arg)
        np.testing.assert_allclose(soft, softmax(arg), rtol=1e-12)
        np.testing.assert_allclose(sums, arg.sum(0), rtol=1e-12)
    assert ex.step_runs == 4 and ex.native_runs == 0


def test_library_calls_run_step_by_step():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((5, 7)).astype(np.float32)
    b = rng.standard_normal((7, 3)).astype(np.float32)
    f = jit(lambda a, b: np.tanh(a @ b + 1).sum(1))
    ex = executable_of(f, a, b)
    assert ex.mode == "steps"
    for _ in range(2):
        np.testing.assert_allclose(f(a, b[::-1][::-1]),
                                   np.tanh(a @ b + 1).sum(1), rtol=1e-5)


def test_the_portable_path_without_a_confirmed_layout(monkeypatch):
    monkeypatch.setattr(entry, "LAYOUT", None)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 5))
    f = jit(lambda x, y: (softmax(x) + y, (x @ y.T).sum()))
    ex = executable_of(f, x, x)
    assert ex.mode == "portable" and "__tj_run" not in ex.as_text()
    for arg in layouts(x).values():
        soft, total = f(arg, x)
        np.testing.assert_allclose(soft, softmax(x) + x, rtol=1e-12)
        np.testing.assert_allclose(total, (x @ x.T).sum(), rtol=1e-12)


def test_the_fast_key_tells_arrays_from_scalars_and_subclasses():
    class Sub(np.ndarray):
        pass

    f = jit(lambda x: x * 2)
    zero_d = np.array(1.5, np.float32)
    np.testing.assert_array_equal(f(zero_d), zero_d * 2)
    for arg in (np.float32(2.5), 4.0):
        got = f(arg)
        assert type(got) is np.ndarray
        np.testing.assert_array_equal(got, np.asarray(arg) * 2)
    with pytest.raises(tracejit.UnsupportedError, match="Sub"):
        f(np.arange(3.0).view(Sub))     # semantics jit cannot keep


def test_three_arguments_take_the_fast_path():
    f = jit(lambda a, b, c: a * b + c)
    a, b, c = (np.full(5, k, np.float32) for k in (2, 3, 4))
    f(a, b, c)
    ex = executable_of(f, a, b, c)
    before = ex.native_runs
    np.testing.assert_array_equal(f(a, b, c[::-1]), a * b + c)
    assert ex.native_runs == before + 1
    assert f.cache_info()[:2] == (1, 1)
