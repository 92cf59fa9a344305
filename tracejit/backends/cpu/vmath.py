"""Inline vector math: which elementwise functions have it, and the entry.

LLVM lowers ``llvm.exp`` and friends (and libm-only functions such as
expm1) to one scalar libm call per element, which keeps the loop
vectorizer out and runs several times slower than numpy's SIMD routines.
The functions here are emitted as straight-line IR (no branches, no libm
calls; sin and cos add one call per register to a helper that looks for
huge arguments), which the vectorizer turns into SIMD code -- sixteen
float32 or eight float64 lanes per AVX-512 register:

========  ===============================================  =========
function  module: method                                   max ULP
========  ===============================================  =========
exp       vmath_exp: Cody-Waite ln2, minimax, 2-step 2**n  1 / 1
expm1     vmath_exp: the same, plus an exact 2**n - 1      1 / 1
tanh      vmath_tanh: odd polynomial, or 1 - 2/(e**2x+1)   1 / 1
log       vmath_log: exponent bits + log1p minimax         1 / 1
log1p     vmath_log: the same, f recomputed by one FMA     1 / 1
sin, cos  vmath_trig: Cody-Waite pi/2 into hi + lo;        1 / 1
          libm past 2**18 (f32) / 2**30 (f64), vmath_huge
pow       vmath_pow: exp(y log|x|) in float64 (f32) or     1 / 1
          double-double (f64), C99 special cases
========  ===============================================  =========

Max ULP: the largest distance from the correctly rounded result, float32 /
float64, over 10**6 random inputs spanning all magnitudes plus the IEEE
edge cases (tests/test_vmath.py); for float32 exp, expm1, tanh, log, log1p,
sin and cos also over every float32 input of their interesting range.
vmath_ir holds the small IR builder they share; vmath_fit re-derives
every polynomial coefficient.
"""
from __future__ import annotations

from . import vmath_exp, vmath_log, vmath_tanh, vmath_trig

FUNCTIONS = {
    "exp": vmath_exp.exp,
    "expm1": vmath_exp.expm1,
    "tanh": vmath_tanh.tanh,
    "log": vmath_log.log,
    "log1p": vmath_log.log1p,
    "sin": vmath_trig.sin,
    "cos": vmath_trig.cos,
}
DTYPES = ("float32", "float64")


def has(name: str, dtype: str) -> bool:
    return name in FUNCTIONS and dtype in DTYPES


def emit(e, name: str, dtype: str, x: str) -> str:
    """The LLVM value of ``name``(x) for one element of ``dtype``."""
    return FUNCTIONS[name](e, x, dtype)
