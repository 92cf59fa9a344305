"""A small typed front end over the kernel emitter for the vmath modules.

The math routines are straight-line scalar IR (no calls, no branches) so
that LLVM's loop vectorizer can turn the kernel loop into SIMD code.  Writing
them as raw ``e.emit`` strings buries the formulas; ``Builder`` gives each
float type its operations (fused multiply-add, rounding, comparisons,
selects) and its integer view (exponent-bit tricks), accepting Python
numbers as constants.
"""
from __future__ import annotations

import numpy as np

from .scalar import literal

# What x86 makes of an invalid operation (log(-1), 0/0 ...), and so what
# numpy returns there: a quiet NaN with the sign bit set.
DEFAULT_NAN = -float("nan")

_SPEC = {
    #           type      int   sfx   bits mantissa bias  numpy
    "float32": ("float", "i32", "f32", 32, 23, 127, np.float32),
    "float64": ("double", "i64", "f64", 64, 52, 1023, np.float64),
}


class Builder:
    """Emits IR for one float dtype.  Operands are LLVM value names (str)
    or Python numbers, which become constants of the right type (floats
    are rounded to the dtype, so float32 coefficients must be given as
    their float32 values to mean what they say)."""

    def __init__(self, e, dtype: str):
        self.e, self.dtype = e, dtype
        (self.t, self.i, self.sfx, self.bits, self.mantissa, self.bias,
         self.np) = _SPEC[dtype]

    # ---- operands ------------------------------------------------------
    def f(self, v) -> str:
        if isinstance(v, str):
            return v
        return literal(float(self.np(v)), self.dtype)

    @staticmethod
    def n(v) -> str:
        return v if isinstance(v, str) else str(int(v))

    def _call(self, name: str, *args) -> str:
        t = self.t
        full = f"llvm.{name}.{self.sfx}"
        self.e.declare(f"declare {t} @{full}({', '.join([t] * len(args))})")
        joined = ", ".join(f"{t} {self.f(a)}" for a in args)
        return self.e.emit(f"call {t} @{full}({joined})")

    def _bin(self, op: str, a, b) -> str:
        return self.e.emit(f"{op} {self.t} {self.f(a)}, {self.f(b)}")

    # ---- float arithmetic ----------------------------------------------
    def add(self, a, b): return self._bin("fadd", a, b)
    def sub(self, a, b): return self._bin("fsub", a, b)
    def mul(self, a, b): return self._bin("fmul", a, b)
    def div(self, a, b): return self._bin("fdiv", a, b)
    def neg(self, a): return self.e.emit(f"fneg {self.t} {self.f(a)}")
    def fma(self, a, b, c): return self._call("fma", a, b, c)
    def abs(self, a): return self._call("fabs", a)
    def rint(self, a): return self._call("rint", a)
    def trunc(self, a): return self._call("trunc", a)
    def copysign(self, mag, sign): return self._call("copysign", mag, sign)

    def horner(self, x, coeffs) -> str:
        """sum(coeffs[k] * x**k), highest degree first, fused."""
        acc = self.f(coeffs[-1])
        for c in reversed(coeffs[:-1]):
            acc = self.fma(acc, x, c)
        return acc

    # ---- comparisons and selection -------------------------------------
    def cmp(self, pred: str, a, b) -> str:
        return self.e.emit(f"fcmp {pred} {self.t} {self.f(a)}, {self.f(b)}")

    def select(self, cond: str, a, b) -> str:
        return self.e.emit(f"select i1 {cond}, {self.t} {self.f(a)}, "
                           f"{self.t} {self.f(b)}")

    def isel(self, cond: str, a, b) -> str:
        return self.e.emit(f"select i1 {cond}, {self.i} {self.n(a)}, "
                           f"{self.i} {self.n(b)}")

    def max(self, a, lo) -> str:
        """a where a > lo, else lo (NaN gives lo): one vmaxps."""
        return self.select(self.cmp("ogt", a, lo), a, lo)

    def min(self, a, hi) -> str:
        """a where a < hi, else hi (NaN gives hi): one vminps."""
        return self.select(self.cmp("olt", a, hi), a, hi)

    def clamp(self, a, lo, hi) -> str:
        return self.min(self.max(a, lo), hi)

    def is_nan(self, a) -> str:
        return self.cmp("uno", a, a)

    def keep_nan(self, x, value) -> str:
        """``value``, or ``x`` itself where ``x`` is NaN (keeps payloads)."""
        return self.select(self.is_nan(x), x, value)

    def either(self, a: str, b: str) -> str:
        return self.e.emit(f"or i1 {a}, {b}")

    def both(self, a: str, b: str) -> str:
        return self.e.emit(f"and i1 {a}, {b}")

    def negation(self, a: str) -> str:
        return self.e.emit(f"xor i1 {a}, true")

    # ---- integer view --------------------------------------------------
    def to_int_bits(self, a) -> str:
        return self.e.emit(f"bitcast {self.t} {self.f(a)} to {self.i}")

    def from_int_bits(self, a) -> str:
        return self.e.emit(f"bitcast {self.i} {self.n(a)} to {self.t}")

    def ibin(self, op: str, a, b) -> str:
        return self.e.emit(f"{op} {self.i} {self.n(a)}, {self.n(b)}")

    def icmp(self, pred: str, a, b) -> str:
        return self.e.emit(f"icmp {pred} {self.i} {self.n(a)}, {self.n(b)}")

    def to_int(self, a) -> str:
        """Integer value of an integer-valued float inside the int range."""
        return self.e.emit(f"fptosi {self.t} {self.f(a)} to {self.i}")

    def to_float(self, a) -> str:
        return self.e.emit(f"sitofp {self.i} {self.n(a)} to {self.t}")

    def widen(self, a: str) -> str:
        """A float32 value as float64 (exact); self is the float64 side."""
        return self.e.emit(f"fpext float {a} to double")

    def narrow(self, a: str) -> str:
        """A float64 value rounded once to float32."""
        return self.e.emit(f"fptrunc double {a} to float")

    def pow2(self, k) -> str:
        """2.0 ** k for an integer k inside the normal exponent range."""
        biased = self.ibin("add", k, self.bias)
        return self.from_int_bits(self.ibin("shl", biased, self.mantissa))

    def split_exponent(self, a, low_bits: int) -> tuple[str, str]:
        """(k, m) with a = 2**k * m and m in [low, 2*low), where
        ``low_bits`` is the bit pattern of ``low`` (a float in [0.5, 1)):
        k = (bits(a) - low_bits) >> mantissa (arithmetic shift), and m's
        bits are bits(a) - (k << mantissa).  Exact for positive, finite,
        normal ``a``; other inputs give some finite garbage (no poison),
        which the callers select away."""
        bits = self.to_int_bits(a)
        k = self.ibin("ashr", self.ibin("sub", bits, low_bits),
                      self.mantissa)
        m = self.ibin("sub", bits, self.ibin("shl", k, self.mantissa))
        return k, self.from_int_bits(m)
