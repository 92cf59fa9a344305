"""The prelude of every CUDA source tracejit renders: helpers for the ops
C gets wrong, the warp shuffles and the vector type of row and group loops.

Why a module of its own: render.py writes the kernels; this is the fixed
text they rely on, once per source (a host test shim may define the
``TJ_`` macros first to run the same source on the CPU).
"""
from __future__ import annotations

from string import Template

__all__ = ["PRELUDE"]

# The prelude: helpers for the ops C gets wrong, once per source.

_INT_HELPERS = Template("""\
// $T: wrapping arithmetic through $U; division that never traps.
__device__ __forceinline__ $T tj_add($T a, $T b) { return ($T)(($U)a + ($U)b); }
__device__ __forceinline__ $T tj_sub($T a, $T b) { return ($T)(($U)a - ($U)b); }
__device__ __forceinline__ $T tj_mul($T a, $T b) { return ($T)(($U)a * ($U)b); }
__device__ __forceinline__ $T tj_neg($T a) { return ($T)(($U)0 - ($U)a); }
__device__ __forceinline__ $T tj_abs($T a) { return a < 0 ? tj_neg(a) : a; }
__device__ __forceinline__ $T tj_max($T a, $T b) { return a >= b ? a : b; }
__device__ __forceinline__ $T tj_min($T a, $T b) { return a <= b ? a : b; }
__device__ __forceinline__ $T tj_sign($T a) { return ($T)((a > 0) - (a < 0)); }
__device__ __forceinline__ $T tj_floordiv($T a, $T b) {  // MIN // -1 wraps
  if (b == 0 || b == -1) return b == 0 ? 0 : tj_neg(a);
  return a / b - (a % b != 0 && (a < 0) != (b < 0));
}
__device__ __forceinline__ $T tj_mod($T a, $T b) {
  $T r = (b == 0 || b == -1) ? 0 : a % b;
  return (r != 0 && (r < 0) != (b < 0)) ? r + b : r;
}
__device__ __forceinline__ $T tj_pow($T a, $T b) {
  if (b < 0) return a == 1 ? 1 : a == -1 ? ((b & 1) ? -1 : 1) : 0;
  $U r = 1, x = ($U)a;
  for ($U e = ($U)b; e != 0; e >>= 1, x *= x) if (e & 1) r *= x;
  return ($T)r;
}
__device__ __forceinline__ $T tj_shl($T a, $T b) {
  return (b < 0 || b >= $BITS) ? 0 : ($T)(($U)a << b);
}
__device__ __forceinline__ $T tj_shr($T a, $T b) {
  return (b < 0 || b >= $BITS) ? (a < 0 ? -1 : 0) : (a >> b);
}
""")

_FLOAT_HELPERS = Template("""\
// $T: numpy's npy_divmod, NaN-propagating max/min, sign keeping NaN.
__device__ __forceinline__ $T tj_divmod($T a, $T b, $T* mod_out) {
  $T mod = fmod$F(a, b);
  if (b == 0) { *mod_out = mod; return a / b; }
  $T div = (a - mod) / b;
  if (mod == 0) mod = copysign$F(($T)0, b);
  else if ((b < 0) != (mod < 0)) { mod += b; div -= 1; }
  *mod_out = mod;
  if (div == 0) return copysign$F(($T)0, a / b);
  $T fl = floor$F(div);
  return div - fl > ($T)0.5 ? fl + 1 : fl;
}
__device__ __forceinline__ $T tj_floordiv($T a, $T b) { $T m; return tj_divmod(a, b, &m); }
__device__ __forceinline__ $T tj_mod($T a, $T b) { $T m; tj_divmod(a, b, &m); return m; }
__device__ __forceinline__ $T tj_max($T a, $T b) { return (a >= b || a != a) ? a : b; }
__device__ __forceinline__ $T tj_min($T a, $T b) { return (a <= b || a != a) ? a : b; }
__device__ __forceinline__ $T tj_sign($T a) {
  return a > 0 ? ($T)1 : a < 0 ? ($T)-1 : a == 0 ? ($T)0 : a;
}
// Saturating conversions to integers (NaN -> 0), never C's undefined cast.
__device__ __forceinline__ int tj_to_int32($T a) {
  return a != a ? 0 : a >= ($T)2147483648.0 ? 2147483647
       : a <= ($T)-2147483648.0 ? (-2147483647 - 1) : (int)a;
}
__device__ __forceinline__ long long tj_to_int64($T a) {
  return a != a ? 0 : a >= ($T)9223372036854775808.0 ? 9223372036854775807LL
       : a <= ($T)-9223372036854775808.0 ? (-9223372036854775807LL - 1) : (long long)a;
}
""")


_TEAM_HELPERS = """\
// Row kernels: the lanes of a warp trade partial results through shuffles
// (a bool travels as an int); row storage is dynamic shared memory; row
// loops are unrolled so several loads are in flight per thread.  A host
// test shim may define the two macros first.
#ifndef TJ_DYNAMIC_SHARED
#define TJ_DYNAMIC_SHARED(name) extern __shared__ __align__(16) unsigned char name[]
#endif
#ifndef TJ_UNROLL
#define TJ_UNROLL _Pragma("unroll 8")
#endif
#ifndef TJ_UNROLL_ALL  // loops over a group's points, a thread's registers
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define TJ_UNROLL_ALL _Pragma("unroll")
#else
#define TJ_UNROLL_ALL
#endif
#endif
// A group of N consecutive elements, aligned to its size: one vector load
// or store (ld.global.v4.f32 for tj_vec<float, 4>).
template <class T, int N> struct alignas(sizeof(T) * N) tj_vec { T v[N]; };
template <class T> __device__ __forceinline__ T tj_shfl_xor(T v, int lane_mask) {
  return __shfl_xor_sync(0xffffffffu, v, lane_mask);
}
__device__ __forceinline__ bool tj_shfl_xor(bool v, int lane_mask) {
  return __shfl_xor_sync(0xffffffffu, (int)v, lane_mask) != 0;
}
template <class T> __device__ __forceinline__ T tj_shfl(T v, int lane) {
  return __shfl_sync(0xffffffffu, v, lane);
}
__device__ __forceinline__ bool tj_shfl(bool v, int lane) {
  return __shfl_sync(0xffffffffu, (int)v, lane) != 0;
}
"""


def _build_prelude() -> str:
    parts = ["#ifndef TRACEJIT_CUDA_PRELUDE", "#define TRACEJIT_CUDA_PRELUDE",
             "#define TJ_INF_F __int_as_float(0x7f800000)",
             "#define TJ_NAN_F __int_as_float(0x7fc00000)",
             "#define TJ_INF __longlong_as_double(0x7ff0000000000000LL)",
             "#define TJ_NAN __longlong_as_double(0x7ff8000000000000LL)"]
    for t, u, bits in (("int", "unsigned int", 32),
                       ("long long", "unsigned long long", 64)):
        parts.append(_INT_HELPERS.substitute(T=t, U=u, BITS=bits))
    for t, f in (("float", "f"), ("double", "")):
        parts.append(_FLOAT_HELPERS.substitute(T=t, F=f))
    parts.append(_TEAM_HELPERS)
    parts.append("#endif  // TRACEJIT_CUDA_PRELUDE\n")
    return "\n".join(parts)


PRELUDE = _build_prelude()
