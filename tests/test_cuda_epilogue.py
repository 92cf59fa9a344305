"""GEMM epilogues folded into cuBLASLt (tracejit.backends.cuda.epilogue).

The rewrite is checked on programs without a GPU; the cuBLASLt calls
(``cuda`` marker) against numpy, NaN and transposed or strided operands
included."""
from __future__ import annotations

import numpy as np
import pytest

import tracejit
from tracejit.backends.cuda.epilogue import fold_epilogues
from tracejit.fusion.program import LibraryStep

from backends import program_of


def mlp(x, w1, b1, w2, b2):
    return np.maximum(x @ w1 + b1, 0) @ w2 + b2


def args(m=8, k=16, h=32, n=12, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32)
            for s in [(m, k), (k, h), (h,), (h, n), (n,)]]


def folded(f, *xs):
    program = fold_epilogues(program_of(f, *xs))
    return program, [(s.attrs, len(s.inputs)) for s in program.steps
                     if isinstance(s, LibraryStep)]


def test_mlp_folds_both_epilogues():
    program, gemms = folded(mlp, *args())
    assert program.kernels == []
    assert [dict(a)["epilogue"] for a, _ in gemms] == ["relu_bias", "bias"]
    assert all(n == 3 for _, n in gemms)


@pytest.mark.parametrize("f", [
    lambda x, w, b: np.maximum(0, x @ w + b),   # operands swapped: NaN, -0
    lambda x, w, b: np.tanh(x @ w + b),
    lambda x, w, b: x @ w + b[:, None][:1].T[0] * 2,
    lambda x, w, b: (x @ w, x @ w + b),          # product also returned
    lambda x, w, b: np.maximum(x @ w + b, -0.0),
])
def test_other_epilogues_stay_kernels(f):
    x, w, b = args()[:3]
    program, gemms = folded(f, x, w, b)
    assert all("epilogue" not in dict(a) for a, _ in gemms)


def test_float64_stays_a_kernel():
    x, w, b = (a.astype(np.float64) for a in args()[:3])
    _, gemms = folded(lambda x, w, b: x @ w + b, x, w, b)
    assert all("epilogue" not in dict(a) for a, _ in gemms)


@pytest.mark.cuda
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided"])
def test_folded_gemms_match_numpy(cp, layout):
    xs = args(m=33, k=70, h=130, n=17)
    xs[0][3, 5] = np.nan                 # a NaN row through the ReLU
    xs[2][4] = -50.0                      # a column the ReLU zeroes
    if layout == "transposed":          # x @ w1t.T and xt.T @ ...
        f = lambda xt, w1t, b1, w2, b2: mlp(xt.T, w1t.T, b1, w2, b2)
        xs[0], xs[1] = xs[0].T.copy(), xs[1].T.copy()
    else:
        f = mlp
    jitted = tracejit.jit(f, backend="cuda")
    dev = [cp.asarray(a) for a in xs]
    if layout == "strided":
        dev[0] = cp.asarray(np.repeat(xs[0], 2, axis=1))[:, ::2]
        dev[2] = cp.asarray(np.repeat(xs[2], 3))[::3]
    got = cp.asnumpy(jitted(*dev))
    want = f(*xs)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)
    exe = jitted.lower(*dev).compile().executable
    assert exe.kernel_count == 0          # both epilogues in cuBLASLt
