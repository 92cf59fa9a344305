"""exp is inline vector code, not a libm call per element."""
import re

import numpy as np
import pytest

from tracejit import jit


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_kernel_is_vectorized_without_libm_calls(dtype):
    x = np.linspace(-5, 5, 4096).astype(dtype)
    asm = jit(np.exp).lower(x).compile().assembly()
    assert not re.search(r"call\w*\s+\S*exp", asm)
    assert re.search(r"\bv\w+pd\s.*%[yz]mm", asm)      # packed doubles


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_edges(dtype):
    info = np.finfo(dtype)
    big = np.log(info.max)
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, big * 0.999,
                  big * 1.001, np.log(info.tiny), np.log(info.tiny) - 5,
                  np.log(info.smallest_subnormal) - 1], dtype)
    with np.errstate(all="ignore"):
        want = np.exp(x)
    got = jit(np.exp)(x)
    assert got.dtype == want.dtype
    close = np.isclose(got, want, rtol=4 * info.eps, atol=0, equal_nan=True)
    assert close.all(), (x[~close], got[~close], want[~close])


def test_float32_tanh_is_inline_and_exact_at_the_edges():
    x = np.array([0.0, -0.0, 1e-30, -1e-30, 1e-5, 0.5, -3.0, 9.0, 20.0,
                  -25.0, np.inf, -np.inf, np.nan, 1.4e-45], np.float32)
    f = jit(np.tanh)
    asm = f.lower(x).compile().assembly()
    assert not re.search(r"call\w*\s+\S*tanh", asm)
    got, want = f(x), np.tanh(x)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    close = np.isclose(got, want, rtol=2 * np.finfo(np.float32).eps, atol=0,
                       equal_nan=True)
    assert close.all(), (x[~close], got[~close], want[~close])


@pytest.mark.parametrize("ufunc", [np.log, np.log1p])
def test_float32_logs_are_inline_and_ieee_at_the_edges(ufunc):
    x = np.array([0.0, -0.0, -1.0, -1.5, -1e-30, 1e-30, 1.4e-45, 1.0,
                  2.0, 0.5, 3e38, np.inf, -np.inf, np.nan, -0.999999,
                  1e-7], np.float32)
    f = jit(ufunc)
    asm = f.lower(x).compile().assembly()
    assert not re.search(r"call\w*\s+\S*log", asm)
    with np.errstate(all="ignore"):
        want = ufunc(x)
    got = f(x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.signbit(got[~np.isnan(got)]),
                                  np.signbit(want[~np.isnan(want)]))
    close = np.isclose(got, want, rtol=2 * np.finfo(np.float32).eps, atol=0,
                       equal_nan=True)
    assert close.all(), (x[~close], got[~close], want[~close])
