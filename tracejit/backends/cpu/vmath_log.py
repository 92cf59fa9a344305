"""Vector log and log1p for float32 and float64.

Both write their argument as ``2**k * (1 + f)`` with ``1 + f`` in
[sqrt(1/2), sqrt(2)), so |f| <= 0.415, and return ``k*ln2 + log1p(f)``:

* float32: ``k*LN2_HI + (f + (f*f*Q(f) + k*LN2_LO))``, a degree-10
  minimax polynomial (relative error 5e-9) and no division; the last step
  is a fused multiply-add with the exact product ``k*LN2_HI``.
* float64: ``log1p(f) = 2 atanh(f / (2 + f))`` (see log_of_parts_atanh),
  one division and a degree-6 polynomial in s*s (2e-18).

Getting k and f:

* log: straight from the exponent and mantissa bits (``f = m - 1`` is
  exact); denormal inputs are scaled by 2**mantissa first.
* log1p: k comes from the bits of ``u = 1 + x`` (rounded), but f is
  recomputed from x itself as ``f = x * 2**-k + (2**-k - 1)`` in one
  fused multiply-add (``2**-k - 1`` is exact for k <= mantissa bits), so
  the rounding of u is not carried into the result.  Beyond that k,
  ``f = m - 1`` from u's bits (1 is then below u's last bit anyway).  The
  sign of x is copied onto the result, which keeps -0.0.

The IEEE specials are selected at the end from the argument of the
logarithm (x, or u = 1 + x): 0 gives -inf, inf gives inf, negatives give
x86's invalid-operation NaN (sign bit set, as numpy's), NaN passes.

Measured against a correctly rounded reference: at most 1 ULP, for every
float32 input and over 10**6 random float64 inputs.
"""
from __future__ import annotations

from .vmath_ir import DEFAULT_NAN, Builder

SQRT_HALF_BITS = {"float32": 0x3F3504F3, "float64": 0x3FE6A09E667F3BCD}
LN2_HI = {"float32": 0.693145751953125, "float64": 0.6931471803691238}
LN2_LO = {"float32": 1.428606765330187e-06,
          "float64": 1.9082149292705877e-10}

# Q(f) with log1p(f) ~= f + f*f*Q(f) on sqrt(1/2)-1 <= f <= sqrt(2)-1
# (widened by 0.2%); relative error 5e-9 for float32
LOG_Q = {
    "float32": [float.fromhex(h) for h in (
        "-0x1.fffff80000000p-2", "0x1.5555500000000p-2",
        "-0x1.0004360000000p-2", "0x1.99a41a0000000p-3",
        "-0x1.5424700000000p-3", "0x1.226c880000000p-3",
        "-0x1.0f4d000000000p-3", "0x1.0874960000000p-3",
        "-0x1.3830120000000p-4")],
}


# float64: R(z) with 2 atanh(s) ~= 2s + s * R(s*s), z <= (1.01 * 0.1716)**2,
# fitted for the relative error of log1p (2e-18)
ATANH_R = [float.fromhex(h) for h in (
    "0x1.555555555559bp-1", "0x1.999999997c9cbp-2", "0x1.2492494503962p-2",
    "0x1.c71c4f63e6a9dp-3", "0x1.7466d12c52e9cp-3", "0x1.39924e5829d59p-3",
    "0x1.2fa7320b8ce66p-3")]


def log_of_parts(b: Builder, k: str, f: str) -> str:
    """log(2**k * (1 + f)) for the integer-valued float k and |f| small."""
    if b.dtype == "float64":
        return log_of_parts_atanh(b, k, f)
    tail = b.fma(b.mul(f, f), b.horner(f, LOG_Q[b.dtype]),
                 b.mul(k, LN2_LO[b.dtype]))
    return b.fma(k, LN2_HI[b.dtype], b.add(f, tail))


def log_of_parts_atanh(b: Builder, k: str, f: str, coeffs=ATANH_R) -> str:
    """float64: log1p(f) = 2 atanh(s), s = f / (2 + f), |s| <= 0.172,
    written f - (f*f/2 - s * (f*f/2 + R(s*s))) so that the rounding
    errors of s (one division) only touch terms of order f**2.  A
    polynomial in f would need degree 22 here; the division is cheaper
    (measured 1.07 vs 1.34 ns per element)."""
    s = b.div(f, b.add(f, 2.0))
    z = b.mul(s, s)
    r = b.mul(z, b.horner(z, coeffs))
    half_square = b.mul(b.mul(f, f), 0.5)
    inner = b.fma(s, b.add(half_square, r), b.mul(k, LN2_LO[b.dtype]))
    return b.fma(k, LN2_HI[b.dtype], b.sub(f, b.sub(half_square, inner)))


def log_specials(b: Builder, v: str, value: str) -> str:
    """IEEE answers of log(v) where the series does not apply: -inf at 0,
    inf at inf, the invalid-operation NaN below 0, and a NaN v itself."""
    value = b.select(b.cmp("oeq", v, float("inf")), float("inf"), value)
    value = b.select(b.cmp("oeq", v, 0.0), float("-inf"), value)
    value = b.select(b.cmp("olt", v, 0.0), DEFAULT_NAN, value)
    return b.keep_nan(v, value)


def log(e, x: str, dtype: str) -> str:
    b = Builder(e, dtype)
    tiny = b.cmp("olt", x, float(b.np(2.0) ** (1 - b.bias)))
    scaled = b.select(tiny, b.mul(x, float(2 ** b.mantissa)), x)
    k, m = b.split_exponent(scaled, SQRT_HALF_BITS[dtype])
    k = b.ibin("sub", k, b.isel(tiny, b.mantissa, 0))
    value = log_of_parts(b, b.to_float(k), b.sub(m, 1.0))
    return log_specials(b, x, value)


def log1p(e, x: str, dtype: str) -> str:
    b = Builder(e, dtype)
    u = b.add(x, 1.0)
    k, m = b.split_exponent(u, SQRT_HALF_BITS[dtype])
    scale = b.pow2(b.ibin("sub", 0, k))
    refined = b.fma(x, scale, b.sub(scale, 1.0))
    f = b.select(b.icmp("sgt", k, b.mantissa), b.sub(m, 1.0), refined)
    value = b.copysign(log_of_parts(b, b.to_float(k), f), x)
    return log_specials(b, u, value)
