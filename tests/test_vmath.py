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
