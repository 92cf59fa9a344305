"""Vector tanh for float32 and float64.

Two formulas, both evaluated for every element and one selected (the
vectorizer wants straight-line code):

* ``|x| < T``: ``x + x**3 * P(x**2)``, an odd minimax polynomial
  (denormals come out as themselves).
* ``|x| >= T``: ``1 - 2 / (exp(2|x|) + 1)``.
  Here tanh >= tanh(T), the subtracted term is at most 1 - tanh(T), and the
  rounding errors of exp and of the division shrink by that factor.
  ``|x|`` is clamped where tanh rounds to 1 (and inf gives 1).

The sign of x is copied onto either (tanh is odd; this also keeps -0.0,
which the fused multiply-add turns into +0.0).  NaN fails the
``|x| >= T`` test, takes the polynomial and propagates.

T = 0.625 for both dtypes: P has degree 4 (float32, relative error 9e-9)
and 10 (float64, 1.3e-17).  The one division costs less than the
polynomial a division-free tanh would need over [0, 9].  Measured: at most
1 ULP from the correctly rounded result, for every float32 input and over
10**6 random float64 inputs.
"""
from __future__ import annotations

from .vmath_exp import exp_of_reduced, reduce
from .vmath_ir import Builder

SMALL = {"float32": 0.625, "float64": 0.625}
# P(s), s = x**2: tanh(x) ~= x + x**3 * P(s) on |x| <= SMALL (vmath_fit)
TANH_P = {
    "float32": [float.fromhex(h) for h in (
        "-0x1.5555320000000p-2", "0x1.1107260000000p-3",
        "-0x1.b83c5a0000000p-5", "0x1.52269c0000000p-6",
        "-0x1.75e1ce0000000p-8")],
    "float64": [float.fromhex(h) for h in (
        "-0x1.55555555554ffp-2", "0x1.111111110accdp-3",
        "-0x1.ba1ba1b5064b0p-5", "0x1.664f477adacbap-6",
        "-0x1.226e162bf841fp-7", "0x1.d6cf280ee16c2p-9",
        "-0x1.7d68a330b008fp-10", "0x1.336612e9655e3p-11",
        "-0x1.df5579d338afcp-13", "0x1.439121a0413ecp-14",
        "-0x1.0da728544d1c6p-16")],
}
# tanh(x) rounds to 1 beyond this
SATURATE = {"float32": 9.1, "float64": 19.1}


def tanh(e, x: str, dtype: str) -> str:
    b = Builder(e, dtype)
    ax = b.abs(x)
    square = b.mul(x, x)
    small = b.fma(b.mul(square, x), b.horner(square, TANH_P[dtype]), x)
    n, r = reduce(b, b.mul(b.min(ax, SATURATE[dtype]), 2.0))
    exp2x = b.mul(exp_of_reduced(b, r), b.pow2(b.to_int(n)))
    big = b.sub(1.0, b.div(2.0, b.add(exp2x, 1.0)))
    value = b.select(b.cmp("oge", ax, SMALL[dtype]), big, small)
    return b.copysign(value, x)
