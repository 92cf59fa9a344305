"""Large reductions over the leading axis run as a per-slab reduction
(threads take slabs) and a combine; answers stay numpy's."""
import numpy as np
import pytest

from tracejit import jit
from tracejit.fusion.split import PARTS, SPLIT_MIN_ELEMENTS

rng = np.random.default_rng(11)
ROWS = 4 * PARTS * 8
COLS = SPLIT_MIN_ELEMENTS // ROWS


def reduced_ops(f, x):
    text = jit(f).lower(x).as_text()
    return [line for line in text.splitlines() if "reduce_" in line]


@pytest.mark.parametrize("f", [
    lambda x: x.sum(), lambda x: x.sum(axis=0), lambda x: x.max(),
    lambda x: x.min(axis=0), lambda x: x.mean(axis=0, keepdims=True),
    lambda x: x.prod(axis=0),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_split_reductions_match_numpy(f, dtype):
    x = rng.standard_normal((ROWS, COLS))
    x = (x * 3).astype(dtype) if dtype == np.int64 else \
        (x * 0.01 + 1).astype(dtype)
    assert len(reduced_ops(f, x)) == 2            # slabs, then combine
    got, want = jit(f)(x), f(x)
    assert got.dtype == want.dtype and got.shape == want.shape
    if dtype == np.int64:
        np.testing.assert_array_equal(got, want)
    else:
        # products of ROWS factors round ROWS times, in numpy as here
        exact = f(x.astype(np.float64))
        np.testing.assert_allclose(got, exact,
                                   rtol=ROWS * np.finfo(dtype).eps)


def test_float32_sum_keeps_float64_partials():
    x = rng.random((ROWS, COLS), dtype=np.float32) + np.float32(100)
    ops = reduced_ops(lambda x: x.sum(), x)
    assert all(" f64[" in line for line in ops)
    got = jit(lambda x: x.sum())(x)
    exact = x.astype(np.float64).sum()
    assert abs(float(got) - exact) <= np.spacing(np.float32(exact))


def test_nan_propagates_through_split_max():
    x = rng.standard_normal((ROWS, COLS)).astype(np.float32)
    x[ROWS - 1, 3] = np.nan
    assert np.isnan(jit(lambda x: x.max())(x))
    col = jit(lambda x: x.max(axis=0))(x)
    assert np.isnan(col[3]) and not np.isnan(np.delete(col, 3)).any()


@pytest.mark.parametrize("shape, f", [
    ((ROWS + 1, COLS), lambda x: x.sum()),        # rows not divisible
    ((64, 64), lambda x: x.sum()),                # small
    ((ROWS, COLS), lambda x: x.sum(axis=1)),      # rows already parallel
    ((8, ROWS, COLS // 8), lambda x: x.sum(axis=1)),
])
def test_reductions_that_stay_whole(shape, f):
    x = rng.standard_normal(shape).astype(np.float32)
    assert len(reduced_ops(f, x)) == 1
    np.testing.assert_allclose(jit(f)(x), f(x.astype(np.float64)),
                               rtol=1e-6, atol=1e-6)


def test_three_d_reduction_over_leading_axes():
    x = rng.standard_normal((ROWS, 16, COLS // 16)).astype(np.float32)
    f = lambda x: x.sum(axis=(0, 1))       # noqa: E731
    assert len(reduced_ops(f, x)) == 2
    np.testing.assert_allclose(jit(f)(x), f(x.astype(np.float64)),
                               rtol=1e-6, atol=1e-5)


def test_the_gpu_keeps_one_reduction():
    """CUDA kernels split reductions across blocks themselves."""
    x = np.empty((ROWS, COLS), np.float32)
    text = jit(lambda x: x.sum(), backend="cuda").lower(x).as_text()
    assert text.count("reduce_sum") == 1
