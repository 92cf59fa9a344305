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


def exp_f32(e, x: str) -> str:
    wide = e.emit(f"fpext float {x} to double")
    clamped = _clamp(e, wide, -110.0, 100.0)
    n, r = _reduce(e, clamped)
    value = e.emit(f"fmul double {_poly(e, r, 9)}, {_pow2(e, n)}")
    narrow = e.emit(f"fptrunc double {value} to float")
    nan = e.emit(f"fcmp uno float {x}, {x}")
    return e.emit(f"select i1 {nan}, float {x}, float {narrow}")


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
    nan = e.emit(f"fcmp uno double {x}, {x}")
    return e.emit(f"select i1 {nan}, double {x}, double {value}")


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
    narrow = e.emit(f"fptrunc double {value} to float")
    nan = e.emit(f"fcmp uno float {x}, {x}")
    return e.emit(f"select i1 {nan}, float {x}, float {narrow}")


TANH = {"float32": tanh_f32}
