"""float32 sums are at least as accurate as numpy's pairwise summation.

numpy sums float32 pairwise along a contiguous axis and row by row along
axis 0; tracejit accumulates float32 in float64 (vector lanes, combined at
the end), so its error against a float64 reference should never be larger.
"""
import numpy as np
import pytest

from tracejit import jit

CASES = {
    "all": lambda x: np.sum(x),
    "axis0": lambda x: np.sum(x, axis=0),
    "axis1": lambda x: np.sum(x, axis=1),
    "mean1": lambda x: np.mean(x, axis=1),
}


def _error(got, exact):
    return np.abs(got.astype(np.float64) - exact).max()


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("shape", [(1000, 1000), (37, 20001), (20001, 37)])
def test_float32_sum_error_is_at_most_numpys(name, shape):
    rng = np.random.default_rng(len(name) + shape[0])
    # a positive offset makes the running sum large against each term,
    # where naive float32 accumulation loses most
    x = (rng.random(shape, dtype=np.float32) + np.float32(100.0))
    f = CASES[name]
    exact = f(x.astype(np.float64))
    ours = jit(f)(x)
    assert ours.dtype == np.float32
    theirs = f(x)
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    assert _error(ours, exact) <= max(_error(theirs, exact), 0.5 * ulp.max())
    # and within one rounding of the exact sum
    assert (np.abs(ours.astype(np.float64) - exact) <= ulp).all()
