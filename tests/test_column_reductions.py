"""Reductions over leading axes loop rows outside and columns inside."""
import numpy as np
import pytest

from tracejit import jit
from tracejit.backends.cpu.render import column_axis


def kernels_of(f, *args):
    return jit(f).lower(*args).compile().executable.program.kernels


@pytest.mark.parametrize("threads", ["1", "2"])
def test_axis0_statistics_match_numpy(monkeypatch, threads):
    monkeypatch.setenv("TRACEJIT_NUM_THREADS", threads)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((700, 301)).astype(np.float32)

    def stats(x):
        return x.max(0), x.mean(0), (x * x).sum(0), x[::-1].min(0)

    (kernel,) = kernels_of(stats, x)
    assert column_axis(kernel) == 1
    got = jit(stats)(x)
    np.testing.assert_array_equal(got[0], x.max(0))
    np.testing.assert_array_equal(got[3], x.min(0))
    exact = x.astype(np.float64)
    np.testing.assert_allclose(got[1], exact.mean(0), rtol=1e-6)
    np.testing.assert_allclose(got[2], (exact * exact).sum(0), rtol=1e-6)


def test_middle_axis_and_nan():
    x = np.arange(3 * 40 * 5, dtype=np.float64).reshape(3, 40, 5)
    x[1, 7, 2] = np.nan
    (kernel,) = kernels_of(lambda x: x.max(1), x)
    assert column_axis(kernel) == 2
    np.testing.assert_array_equal(jit(lambda x: x.max(1))(x), x.max(1))


def test_row_reductions_and_wide_rows_keep_the_row_loop():
    x = np.ones((8, 64), np.float32)
    (kernel,) = kernels_of(lambda x: x.sum(1), x)
    assert column_axis(kernel) is None
    wide = np.ones((2, 1 << 14), np.float64)
    (kernel,) = kernels_of(lambda x: x.sum(0), wide)
    assert column_axis(kernel) is None        # accumulators too big
    np.testing.assert_array_equal(jit(lambda x: x.sum(0))(wide), 2.0)
