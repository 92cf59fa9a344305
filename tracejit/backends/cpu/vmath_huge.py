"""libm for the rare arguments the inline vector code does not cover.

sin and cos reduce their argument with a few constants of pi/2 (vmath_trig),
which is accurate only up to a bound.  Selecting between the inline result
and a libm call per element would call libm for every element (a call
cannot be vectorized), and a branch in the loop body makes the vectorizer
scalarize it lane by lane.  Instead the kernel calls a pure helper

    fix(x, v) = libm(x) if |x| > limit else v

and tells the loop vectorizer, through the call's
``vector-function-abi-variant`` attribute, that vector versions exist
(``LANES``: the widths it picks for the main loop and its epilogue; at
another width it would call the scalar helper per lane, slower but
right).  Each vector version compares the whole register against the
limit at once and returns ``v`` unchanged when no lane exceeds it (one
compare and branch per register, no stack frame); otherwise it tail-calls
a cold function that calls libm for just those lanes.  So the loop stays
vectorized and libm runs only where needed.

Cost: the call clobbers every vector register, so the loop reloads its
constants from the stack each iteration -- measured +30% (float32) and
+50% (float64) on sin itself, against an inline-only version valid below
the limit; and ~12 ms more compile time for the helpers.

The helpers have external linkage: interprocedural passes may rewrite the
signature of an internal function (or delete it before the vectorizer
creates the calls), which would break the attribute's promise.  They are
``noinline`` and ``memory(none)`` (libm is reached through the
``llvm.sin``/``llvm.cos`` intrinsics, which have no side effects).
"""
from __future__ import annotations

from .scalar import literal
from .vmath_ir import Builder

LANES = {"float32": (4, 8, 16), "float64": (2, 4, 8)}
PURE = "noinline nounwind memory(none)"
COLD = "cold minsize optsize"            # and not unrolled 16 times


def _names(name: str, dtype: str) -> tuple[str, str]:
    sfx = {"float32": "f32", "float64": "f64"}[dtype]
    return f"tj_huge_{name}_{sfx}", f"llvm.{name}.{sfx}"


def _scalar_helper(name: str, dtype: str, limit: float) -> str:
    """fix(x, v) for one element (remainder and strided loops)."""
    b_t = {"float32": "float", "float64": "double"}[dtype]
    fn, libm = _names(name, dtype)
    lim = literal(limit, dtype)
    sfx = libm.rsplit(".", 1)[1]
    return f"""define {b_t} @{fn}({b_t} %x, {b_t} %v) {PURE} {{
entry:
  %a = call {b_t} @llvm.fabs.{sfx}({b_t} %x)
  %huge = fcmp ogt {b_t} %a, {lim}
  br i1 %huge, label %slow, label %fast
slow:
  %r = call {b_t} @{libm}({b_t} %x)
  ret {b_t} %r
fast:
  ret {b_t} %v
}}"""


def _vector_helper(name: str, dtype: str, limit: float, n: int) -> str:
    """The n-lane entry point (a leaf: compare, branch, return) and its
    slow path, a separate function so that the entry needs no stack
    frame."""
    t = {"float32": "float", "float64": "double"}[dtype]
    fn, libm = _names(name, dtype)
    sfx = libm.rsplit(".", 1)[1]
    v, mask = f"<{n} x {t}>", f"<{n} x i1>"
    lim = literal(limit, dtype)
    return f"""define {v} @{fn}_v{n}({v} %x, {v} %v) {PURE} {{
entry:
  %a = call {v} @llvm.fabs.v{n}{sfx}({v} %x)
  %huge = fcmp ogt {v} %a, splat ({t} {lim})
  %mask = bitcast <{n} x i1> %huge to i{n}
  %any = icmp ne i{n} %mask, 0
  br i1 %any, label %slow, label %fast
fast:
  ret {v} %v
slow:
  %r = tail call {v} @{fn}_v{n}_lanes({v} %x, {v} %v, {mask} %huge)
  ret {v} %r
}}
define {v} @{fn}_v{n}_lanes({v} %x, {v} %v, {mask} %huge) {PURE} {COLD} {{
entry:
  br label %loop
loop:
  %i = phi i32 [0, %entry], [%next, %join]
  %acc = phi {v} [%v, %entry], [%merged, %join]
  %lane_huge = extractelement <{n} x i1> %huge, i32 %i
  br i1 %lane_huge, label %call, label %join
call:
  %xi = extractelement {v} %x, i32 %i
  %ri = call {t} @{libm}({t} %xi)
  %set = insertelement {v} %acc, {t} %ri, i32 %i
  br label %join
join:
  %merged = phi {v} [%acc, %loop], [%set, %call]
  %next = add i32 %i, 1
  %done = icmp eq i32 %next, {n}
  br i1 %done, label %exit, label %loop
exit:
  ret {v} %merged
}}"""


def fix(b: Builder, name: str, x: str, value: str, limit: float) -> str:
    """``value``, or libm's ``name``(x) where |x| > limit (NaN keeps
    ``value``, which must then be NaN itself)."""
    fn, libm = _names(name, b.dtype)
    b.e.declare(f"declare {b.t} @{libm}({b.t})")
    b.e.declare(f"declare {b.t} @llvm.fabs.{b.sfx}({b.t})")
    b.e.declare(_scalar_helper(name, b.dtype, limit))
    variants = []
    for n in LANES[b.dtype]:
        b.e.declare(f"declare <{n} x {b.t}> @llvm.fabs.v{n}{b.sfx}"
                    f"(<{n} x {b.t}>)")
        b.e.declare(_vector_helper(name, b.dtype, limit, n))
        variants.append(f"_ZGV_LLVM_N{n}vv_{fn}({fn}_v{n})")
    attribute = f'"vector-function-abi-variant"="{",".join(variants)}"'
    return b.e.emit(f"call {b.t} @{fn}({b.t} {x}, {b.t} {value}) "
                    f"{attribute}")
