"""Vectorizable math functions written in LLVM IR.

LLVM lowers ``llvm.exp`` to one scalar libm call per element, which keeps
the loop vectorizer out and runs several times slower than numpy's SIMD
routines.  The functions here are straight-line IR (no calls, no branches)
that the vectorizer turns into SIMD code.

exp: range reduction ``x = n*ln2 + r`` with ``|r| <= ln2/2``, a polynomial
for ``e**r``, and a scale by ``2**n`` built from exponent bits.
* float32 is computed in float64: the reduction and a degree-9 polynomial
  are far below float32's rounding error, and the final conversion to
  float32 rounds once, so the result is within 1 ULP of exact (overflow,
  underflow and denormals come out of that conversion).
* float64 uses a two-constant (Cody-Waite) reduction with fused
  multiply-adds and a degree-13 polynomial, and scales in two steps so
  results in the denormal range and up to the overflow threshold are exact
  to a few ULP.
NaN is returned unchanged; +-inf give inf and 0.
"""
from __future__ import annotations

from math import factorial, log

from .scalar import literal

LOG2E = 1.4426950408889634
LN2_HI = 0.6931471803691238      # ln 2 to 32 bits: n * LN2_HI is exact
LN2_LO = 1.9082149292705877e-10  # ln 2 - LN2_HI


def _d(v: float) -> str:
    return literal(v, "float64")


def _poly(e, r: str, degree: int) -> str:
    """Horner evaluation of sum(r**k / k!) for k <= degree (fused)."""
    e.declare("declare double @llvm.fma.f64(double, double, double)")
    acc = _d(1.0 / factorial(degree))
    for k in range(degree - 1, -1, -1):
        acc = e.emit(f"call double @llvm.fma.f64(double {acc}, double {r}, "
                     f"double {_d(1.0 / factorial(k))})")
    return acc


def _clamp(e, x: str, low: float, high: float) -> str:
    e.declare("declare double @llvm.maxnum.f64(double, double)")
    e.declare("declare double @llvm.minnum.f64(double, double)")
    x = e.emit(f"call double @llvm.maxnum.f64(double {x}, double {_d(low)})")
    return e.emit(f"call double @llvm.minnum.f64(double {x}, double "
                  f"{_d(high)})")


def _pow2(e, n: str) -> str:
    """2.0 ** n for an integer-valued double n in [-1022, 1023]."""
    bits = e.emit(f"fptosi double {n} to i64")
    bits = e.emit(f"add i64 {bits}, 1023")
    bits = e.emit(f"shl i64 {bits}, 52")
    return e.emit(f"bitcast i64 {bits} to double")


def _reduce(e, x: str) -> tuple[str, str]:
    """(n, r) with x = n*ln2 + r, |r| <= ln2/2 (x clamped, not NaN)."""
    e.declare("declare double @llvm.rint.f64(double)")
    e.declare("declare double @llvm.fma.f64(double, double, double)")
    scaled = e.emit(f"fmul double {x}, {_d(LOG2E)}")
    n = e.emit(f"call double @llvm.rint.f64(double {scaled})")
    neg_n = e.emit(f"fneg double {n}")
    r = e.emit(f"call double @llvm.fma.f64(double {neg_n}, double "
               f"{_d(LN2_HI)}, double {x})")
    r = e.emit(f"call double @llvm.fma.f64(double {neg_n}, double "
               f"{_d(LN2_LO)}, double {r})")
    return n, r


def _keep_nan(e, x: str, value: str, t: str) -> str:
    """``value``, or ``x`` itself where ``x`` is NaN."""
    nan = e.emit(f"fcmp uno {t} {x}, {x}")
    return e.emit(f"select i1 {nan}, {t} {x}, {t} {value}")


def _narrow(e, x: str, value: str) -> str:
    """The float64 ``value`` rounded once to float32; NaN ``x`` passes."""
    narrow = e.emit(f"fptrunc double {value} to float")
    return _keep_nan(e, x, narrow, "float")


def exp_f32(e, x: str) -> str:
    wide = e.emit(f"fpext float {x} to double")
    clamped = _clamp(e, wide, -110.0, 100.0)
    n, r = _reduce(e, clamped)
    value = e.emit(f"fmul double {_poly(e, r, 9)}, {_pow2(e, n)}")
    return _narrow(e, x, value)


def exp_f64(e, x: str) -> str:
    clamped = _clamp(e, x, -746.0, 710.0)
    n, r = _reduce(e, clamped)
    p = _poly(e, r, 13)
    # 2**n in two factors, each inside the normal exponent range
    e.declare("declare double @llvm.trunc.f64(double)")
    half = e.emit(f"fmul double {n}, {_d(0.5)}")
    n1 = e.emit(f"call double @llvm.trunc.f64(double {half})")
    n2 = e.emit(f"fsub double {n}, {n1}")
    value = e.emit(f"fmul double {p}, {_pow2(e, n1)}")
    value = e.emit(f"fmul double {value}, {_pow2(e, n2)}")
    return _keep_nan(e, x, value, "double")


EXP = {"float32": exp_f32, "float64": exp_f64}
assert abs(LN2_HI + LN2_LO - log(2.0)) < 1e-18


def _exp_double(e, x: str) -> str:
    """e**x in float64 for x already clamped to a safe range."""
    n, r = _reduce(e, x)
    return e.emit(f"fmul double {_poly(e, r, 13)}, {_pow2(e, n)}")


def tanh_f32(e, x: str) -> str:
    """tanh for float32, evaluated in float64 and rounded once:
    (e**2x - 1) / (e**2x + 1), and x - x**3/3 where |x| < 2**-12 (there
    e**2x - 1 would cancel), written x * (1 - x**2/3) so -0.0 stays -0.0.  Saturates to +-1 beyond |x| = 20; NaN and
    signed zeros pass through."""
    wide = e.emit(f"fpext float {x} to double")
    clamped = _clamp(e, wide, -20.0, 20.0)
    twice = e.emit(f"fmul double {clamped}, {_d(2.0)}")
    ex = _exp_double(e, twice)
    num = e.emit(f"fsub double {ex}, {_d(1.0)}")
    den = e.emit(f"fadd double {ex}, {_d(1.0)}")
    big = e.emit(f"fdiv double {num}, {den}")
    square = e.emit(f"fmul double {wide}, {wide}")
    factor = e.emit(f"call double @llvm.fma.f64(double {square}, double "
                    f"{_d(-1.0 / 3.0)}, double {_d(1.0)})")
    small = e.emit(f"fmul double {wide}, {factor}")    # keeps -0.0
    e.declare("declare double @llvm.fabs.f64(double)")
    magnitude = e.emit(f"call double @llvm.fabs.f64(double {wide})")
    tiny = e.emit(f"fcmp olt double {magnitude}, {_d(2.0 ** -12)}")
    value = e.emit(f"select i1 {tiny}, double {small}, double {big}")
    return _narrow(e, x, value)


TANH = {"float32": tanh_f32}


def _log_double(e, d: str) -> str:
    """log(d) for a positive, finite, normal double, to about 1e-14
    relative error (ample for float32 results): d = 2**k * m with m in
    [sqrt(1/2), sqrt(2)), log m = 2 atanh((m-1)/(m+1)) by its series."""
    bits = e.emit(f"bitcast double {d} to i64")
    biased = e.emit(f"lshr i64 {bits}, 52")
    k = e.emit(f"sub i64 {biased}, 1023")
    frac = e.emit(f"and i64 {bits}, 4503599627370495")        # 2**52 - 1
    frac = e.emit(f"or i64 {frac}, 4607182418800017408")      # exponent 0
    m = e.emit(f"bitcast i64 {frac} to double")
    high = e.emit(f"fcmp ogt double {m}, {_d(2 ** 0.5)}")
    m = e.emit(f"select i1 {high}, double "
               f"{e.emit(f'fmul double {m}, {_d(0.5)}')}, double {m}")
    k = e.emit(f"add i64 {k}, {e.emit(f'zext i1 {high} to i64')}")
    s = e.emit(f"fdiv double {e.emit(f'fsub double {m}, {_d(1.0)}')}, "
               f"{e.emit(f'fadd double {m}, {_d(1.0)}')}")
    s2 = e.emit(f"fmul double {s}, {s}")
    e.declare("declare double @llvm.fma.f64(double, double, double)")
    acc = _d(1.0 / 17)
    for odd in range(15, 0, -2):
        acc = e.emit(f"call double @llvm.fma.f64(double {acc}, double {s2}, "
                     f"double {_d(1.0 / odd)})")
    log_m = e.emit(f"fmul double {e.emit(f'fmul double {s}, {acc}')}, "
                   f"{_d(2.0)}")
    kd = e.emit(f"sitofp i64 {k} to double")
    return e.emit(f"call double @llvm.fma.f64(double {kd}, double "
                  f"{_d(log(2.0))}, double {log_m})")


def _log_specials(e, x: str, value: str, zero_at: str) -> str:
    """IEEE results where the series does not apply: -inf at the pole
    (``x == zero_at``), NaN below it, inf at inf, NaN passes through."""
    inf, nan = literal(float("inf"), "float32"), literal(float("nan"),
                                                         "float32")
    at_pole = e.emit(f"fcmp oeq float {x}, {zero_at}")
    below = e.emit(f"fcmp olt float {x}, {zero_at}")
    is_inf = e.emit(f"fcmp oeq float {x}, {inf}")
    value = e.emit(f"select i1 {at_pole}, float "
                   f"{literal(float('-inf'), 'float32')}, float {value}")
    value = e.emit(f"select i1 {below}, float {nan}, float {value}")
    value = e.emit(f"select i1 {is_inf}, float {inf}, float {value}")
    return _keep_nan(e, x, value, "float")


def _finite_positive(e, d: str) -> str:
    """d where it is positive and finite, else 1.0 (keeps the series'
    inputs in range; the specials are selected afterwards)."""
    ok = e.emit(f"fcmp ogt double {d}, {_d(0.0)}")
    finite = e.emit(f"fcmp olt double {d}, {_d(float('inf'))}")
    ok = e.emit(f"and i1 {ok}, {finite}")
    return e.emit(f"select i1 {ok}, double {d}, double {_d(1.0)}")


def log_f32(e, x: str) -> str:
    wide = e.emit(f"fpext float {x} to double")
    value = _log_double(e, _finite_positive(e, wide))
    narrow = e.emit(f"fptrunc double {value} to float")
    return _log_specials(e, x, narrow, literal(0.0, "float32"))


def log1p_f32(e, x: str) -> str:
    """log1p(x) = log(u) * x / (u - 1) with u = 1 + x in float64 (the
    factor corrects u's rounding), and x itself where u == 1."""
    wide = e.emit(f"fpext float {x} to double")
    u = e.emit(f"fadd double {wide}, {_d(1.0)}")
    log_u = _log_double(e, _finite_positive(e, u))
    um1 = e.emit(f"fsub double {u}, {_d(1.0)}")
    same = e.emit(f"fcmp oeq double {um1}, {_d(0.0)}")
    safe = e.emit(f"select i1 {same}, double {_d(1.0)}, double {um1}")
    scaled = e.emit(f"fdiv double {e.emit(f'fmul double {log_u}, {wide}')},"
                    f" {safe}")
    value = e.emit(f"select i1 {same}, double {wide}, double {scaled}")
    narrow = e.emit(f"fptrunc double {value} to float")
    return _log_specials(e, x, narrow, literal(-1.0, "float32"))


LOGS = {("log", "float32"): log_f32, ("log1p", "float32"): log1p_f32}
