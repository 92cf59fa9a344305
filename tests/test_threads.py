"""Kernels split across threads give the single-thread answer."""
import numpy as np
import pytest

from tracejit import jit
from tracejit.backends.cpu import threads


def test_chunks_cover_the_axis_exactly_once():
    for extent in (1, 2, 7, 100, 4096):
        for points in (1, 1 << 15, 1 << 20):
            for n in (1, 2, 3, 8):
                ranges = threads.chunks(extent, points, n)
                assert ranges[0][0] == 0 and ranges[-1][1] == extent
                assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
                assert len(ranges) <= max(1, min(n, extent))


def test_small_kernels_stay_on_one_thread():
    assert threads.chunks(1000, 1000, 8) == [(0, 1000)]


def test_thread_count_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("TRACEJIT_NUM_THREADS", "3")
    assert threads.num_threads() == 3
    monkeypatch.setenv("TRACEJIT_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="TRACEJIT_NUM_THREADS"):
        threads.num_threads()


def softmax_and_more(x, y):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True), (x * y[::-1]).sum(0), x.T * 2


@pytest.mark.parametrize("count", ["1", "4"])
def test_split_kernels_match_numpy(monkeypatch, count):
    monkeypatch.setenv("TRACEJIT_NUM_THREADS", count)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((300, 257)).astype(np.float32)
    y = rng.standard_normal((300, 257)).astype(np.float32)
    f = jit(softmax_and_more)
    compiled = f.lower(x, y).compile()
    split = [s for s in compiled.executable._steps if len(s[-1]) > 1]
    assert bool(split) == (count != "1")
    soft, sums, t = f(x, y)
    want_soft, _, want_t = softmax_and_more(x, y)
    np.testing.assert_allclose(soft, want_soft, rtol=2e-6, atol=1e-7)
    np.testing.assert_array_equal(t, want_t)
    exact = (x.astype(np.float64) * y[::-1]).sum(0)     # float64 reference
    scale = 300 * np.finfo(np.float32).eps * np.abs(x * y[::-1]).sum(0)
    assert np.all(np.abs(sums - exact) <= scale)
