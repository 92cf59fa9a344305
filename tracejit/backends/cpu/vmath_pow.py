"""Vector pow: exp(y * log|x|) with enough extra precision, and C99's
special cases.

The error of ``y * log|x|`` is magnified by up to |y * log|x|| (about 745
before a float64 result over- or underflows, 104 for float32), so log|x|
must be good to about 10 bits more than the result:

* float32 computes in float64, with shortened float64 polynomials (log
  relative error 3e-14, exp 1.4e-12, vmath_fit): far below float32's
  rounding, and the one conversion to float32 rounds correctly, denormal
  results included.
* float64 computes log|x| as a double-double ``L_hi + L_lo``: f = m - 1
  exactly, s = f / (2 + f) with its division remainder (s_hi + s_lo), and
  ``2 atanh(s) = 2s + (2/3) s**3 + s**3 z R1(z)`` (z = s*s) with the first
  two terms carried in double-double (exact products by fused
  multiply-add); then ``t = y * L`` as ``t_hi + t_lo``, and exp reduces
  t_hi exactly and folds t_lo into r's rounding error as expm1 does.

Measured: at most 1 ULP from the correctly rounded result for float32,
and at most 1 ULP for float64 (reference: long double) over 10**6
random pairs including bases near 1 with huge exponents.

numpy's (C99's) special cases are selected at the end:
* pow(x, +-0) = 1 even for NaN x, pow(1, y) = 1 even for NaN y, and
  pow(-1, +-inf) = 1;
* a negative finite x with a non-integer y gives NaN (x86's
  invalid-operation NaN, sign bit set, as numpy); a NaN x passes;
* a negative x (or -0.0) with an odd integer y gives the negated result.
Zeros and infinities need nothing else: log gives -inf or inf, and
``y * log|x|`` then over- or underflows exp with the right sign.
"""
from __future__ import annotations

from .vmath_exp import (EXP_P, EXP_RANGE, LN2_HI, LN2_LO, LOG2E,
                        exp_of_reduced, reduce, scale_twice)
from .vmath_ir import DEFAULT_NAN, Builder
from .vmath_log import SQRT_HALF_BITS, log_of_parts_atanh, log_specials


def _hex(*values: str) -> list[float]:
    return [float.fromhex(h) for h in values]


# float32 through float64: R(z) for 2 atanh(s) = 2s + s*R(s*s) (relative
# error 3e-14) and P(r) for exp(r) = 1 + r + r*r*P(r) (relative 1.4e-12)
POW_LOG_R = _hex("0x1.5555555632cc0p-1", "0x1.9999966bde8a2p-2",
                 "0x1.24942dde27ae0p-2", "0x1.c6213a6cb3520p-3",
                 "0x1.91ace7cbad052p-3")
POW_EXP_P = _hex("0x1.000000006decdp-1", "0x1.55555582e0a4bp-3",
                 "0x1.555553f7690d5p-5", "0x1.111099558840ap-7",
                 "0x1.6c18fe70b50fbp-10", "0x1.a193f0066ebafp-13",
                 "0x1.9e794851b5447p-16")
# float64: R1(z) with 2 atanh(s) ~= 2s + (2/3) s**3 + s**3 z R1(z)
# (relative error of the whole 3e-21); 2/3 as a double-double
POW_ATANH_R1 = _hex("0x1.9999999999995p-2", "0x1.24924924931f1p-2",
                    "0x1.c71c71c54bfd8p-3", "0x1.745d184b44b5fp-3",
                    "0x1.3b135c1c6bdcep-3", "0x1.1121b1b839c51p-3",
                    "0x1.de0bc08bd2c33p-4", "0x1.ec594075fcf33p-4")
TWO_THIRDS_HI, TWO_THIRDS_LO = _hex("0x1.5555555555555p-1",
                                    "0x1.5555555555555p-55")
# exp's argument range that still reaches float32 (beyond: 0 or inf)
F32_EXP_RANGE = (-110.0, 100.0)


def _is_integer(b: Builder, v: str) -> str:
    return b.cmp("oeq", b.rint(v), v)          # inf: yes, NaN: no


def _specials(b: Builder, x: str, y: str, value: str) -> str:
    """C99 pow from |x|**y computed as exp(y log|x|)."""
    y_int = _is_integer(b, y)
    half = b.mul(y, 0.5)
    y_odd = b.both(y_int, b.cmp("une", b.rint(half), half))
    x_sign = b.icmp("slt", b.to_int_bits(x), 0)         # -0.0 included
    value = b.select(b.both(x_sign, y_odd), b.neg(value), value)
    negative_finite = b.both(b.cmp("olt", x, 0.0),
                             b.cmp("one", x, float("-inf")))
    fraction = b.cmp("one", b.rint(y), y)            # NaN y: no
    value = b.select(b.both(negative_finite, fraction), DEFAULT_NAN, value)
    value = b.keep_nan(x, value)
    minus_one_inf = b.both(b.cmp("oeq", x, -1.0),
                           b.cmp("oeq", b.abs(y), float("inf")))
    one = b.either(b.either(b.cmp("oeq", y, 0.0), b.cmp("oeq", x, 1.0)),
                   minus_one_inf)
    return b.select(one, 1.0, value)


# ---- float32 ---------------------------------------------------------------

def _log_wide(d: Builder, a: str) -> str:
    """log(a) in float64 for a >= 0 (or NaN) that came from float32, so it
    is never denormal as a float64."""
    k, m = d.split_exponent(a, SQRT_HALF_BITS["float64"])
    value = log_of_parts_atanh(d, d.to_float(k), d.sub(m, 1.0), POW_LOG_R)
    return log_specials(d, a, value)


def _exp_wide(d: Builder, t: str) -> str:
    """e**t in float64, accurate where the float32 result is finite and
    nonzero, and 0 / inf beyond; NaN passes."""
    n, r = reduce(d, d.clamp(t, *F32_EXP_RANGE))
    value = d.mul(exp_of_reduced(d, r, POW_EXP_P), d.pow2(d.to_int(n)))
    return d.keep_nan(t, value)


def pow_f32(e, x: str, y: str) -> str:
    b, d = Builder(e, "float32"), Builder(e, "float64")
    t = d.mul(d.widen(y), _log_wide(d, d.widen(b.abs(x))))
    return _specials(b, x, y, d.narrow(_exp_wide(d, t)))


# ---- float64 ---------------------------------------------------------------

def _two_prod(b: Builder, x, y) -> tuple[str, str]:
    """(p, err) with p = fl(x*y) and p + err = x*y exactly."""
    p = b.mul(x, y)
    return p, b.fma(x, y, b.neg(p))


def _fast_two_sum(b: Builder, x, y) -> tuple[str, str]:
    """(s, err) with s + err = x + y exactly, for |x| >= |y| (or x = 0)."""
    s = b.add(x, y)
    return s, b.sub(y, b.sub(s, x))


def _atanh_dd(b: Builder, f: str) -> tuple[str, str, str]:
    """log1p(f) = 2 atanh(f / (2 + f)) as (2s, a high term, the low sum)."""
    two_hi = b.add(f, 2.0)
    two_lo = b.sub(f, b.sub(two_hi, 2.0))           # 2 + f exactly
    s = b.div(f, two_hi)
    remainder = b.sub(b.fma(b.neg(s), two_hi, f), b.mul(s, two_lo))
    s_lo = b.div(remainder, two_hi)                 # s + s_lo = f/(2+f)
    z, z_lo = _two_prod(b, s, s)
    cube, cube_lo = _two_prod(b, z, s)
    cube_lo = b.fma(z_lo, s, cube_lo)               # s**3 as double-double
    third, third_lo = _two_prod(b, cube, TWO_THIRDS_HI)
    third_lo = b.fma(cube_lo, TWO_THIRDS_HI,
                     b.fma(cube, TWO_THIRDS_LO, third_lo))
    rest = b.mul(b.mul(cube, z), b.horner(z, POW_ATANH_R1))
    # 2 s_lo (1 + z): the first-order effect of s_lo on 2s + (2/3) s**3
    low = b.add(b.fma(b.mul(s_lo, 2.0), z, b.mul(s_lo, 2.0)),
                b.add(third_lo, rest))
    return b.mul(s, 2.0), third, low


def _log_dd(b: Builder, a: str) -> tuple[str, str]:
    """log(a) = hi + lo to about 2**-66 relative, a > 0 finite."""
    tiny = b.cmp("olt", a, float.fromhex("0x1p-1022"))
    scaled = b.select(tiny, b.mul(a, 2.0 ** 52), a)
    k, m = b.split_exponent(scaled, SQRT_HALF_BITS["float64"])
    k = b.to_float(b.ibin("sub", k, b.isel(tiny, 52, 0)))
    two_s, third, low = _atanh_dd(b, b.sub(m, 1.0))
    hi, err1 = _fast_two_sum(b, b.mul(k, LN2_HI["float64"]), two_s)
    hi, err2 = _fast_two_sum(b, hi, third)
    low = b.add(b.add(err1, err2), b.fma(k, LN2_LO["float64"], low))
    return _fast_two_sum(b, hi, low)


def _exp_dd(b: Builder, t_hi: str, t_lo: str) -> str:
    """e**(t_hi + t_lo), |t_lo| tiny, rounded about once."""
    lo, hi = EXP_RANGE["float64"]
    clamped = b.clamp(t_hi, lo, hi)
    # beyond the clamps the result is 0 or inf, and t_lo may be huge
    t_lo = b.select(b.cmp("oeq", clamped, t_hi), t_lo, 0.0)
    n = b.rint(b.mul(clamped, LOG2E))
    r_hi = b.fma(n, -LN2_HI["float64"], clamped)       # exact
    r_lo = b.fma(n, -LN2_LO["float64"], t_lo)
    r = b.add(r_hi, r_lo)
    r_err = b.add(b.sub(r_hi, r), r_lo)
    # e**(r + r_err) = (1 + r) + (r*r*P(r) + r_err * (1 + r)), with 1 + r
    # exact as a double-double so that only the last addition rounds
    inner = b.fma(b.mul(r, r), b.horner(r, EXP_P["float64"]),
                  b.fma(r_err, r, r_err))
    one_r, one_r_err = _fast_two_sum(b, 1.0, r)
    value = b.add(one_r, b.add(one_r_err, inner))
    value = scale_twice(b, value, n)
    return b.keep_nan(t_hi, value)


def pow_f64(e, x: str, y: str) -> str:
    b = Builder(e, "float64")
    a = b.abs(x)
    log_hi, log_lo = _log_dd(b, a)
    log_hi = log_specials(b, a, log_hi)             # 0, inf, NaN
    t_hi = b.mul(y, log_hi)
    t_lo = b.fma(y, log_lo, b.fma(y, log_hi, b.neg(t_hi)))
    return _specials(b, x, y, _exp_dd(b, t_hi, t_lo))


def pow(e, x: str, y: str, dtype: str) -> str:
    return (pow_f32 if dtype == "float32" else pow_f64)(e, x, y)
