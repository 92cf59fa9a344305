"""Scalar operations in LLVM IR: one rule per name in SCALAR_OPS.

Each rule receives the emitter, the operand values (LLVM names) and the
operand and result dtypes, and returns the LLVM value of the result.  The
semantics are numpy's, as listed beside SCALAR_OPS in fusion.kernel; in
particular nothing here can trap or produce poison (integer division guards
its divisor, shifts guard their count, float -> int conversion saturates).
"""
from __future__ import annotations

import struct

LLVM_TYPE = {"bool": "i1", "int32": "i32", "int64": "i64",
             "float32": "float", "float64": "double"}
MEMORY_TYPE = {**LLVM_TYPE, "bool": "i8"}
FLOAT_SUFFIX = {"float32": "f32", "float64": "f64"}
INT_BITS = {"int32": 32, "int64": 64, "bool": 1}
VECTOR_MATH = ("exp", "expm1", "log", "log1p", "tanh", "sin", "cos")


def is_float(dtype: str) -> bool:
    return dtype.startswith("float")


def literal(value, dtype: str) -> str:
    """An LLVM constant of ``dtype`` for the Python/numpy scalar ``value``."""
    if dtype == "bool":
        return "true" if bool(value) else "false"
    if is_float(dtype):
        bits = struct.unpack("<Q", struct.pack("<d", float(value)))[0]
        return f"0x{bits:016X}"
    return str(int(value))


def _intrinsic(e, name: str, dtype: str, args) -> str:
    t = LLVM_TYPE[dtype]
    full = f"llvm.{name}.{FLOAT_SUFFIX[dtype]}"
    e.declare(f"declare {t} @{full}({', '.join([t] * len(args))})")
    joined = ", ".join(f"{t} {a}" for a in args)
    return e.emit(f"call {t} @{full}({joined})")


def _arith(float_op, int_op, bool_op=None):
    def rule(e, args, dtypes, out):
        t = LLVM_TYPE[dtypes[0]]
        if dtypes[0] == "bool":
            op = bool_op
        else:
            op = float_op if is_float(dtypes[0]) else int_op
        return e.emit(f"{op} {t} {args[0]}, {args[1]}")
    return rule


def _unary_math(name):
    """exp, log, tanh, sin ... as inline vector code (vmath): an
    ``llvm.exp``-style intrinsic would become a scalar libm call per
    element and keep the loop vectorizer out.  sqrt is an instruction."""
    def rule(e, args, dtypes, out):
        from . import vmath
        if vmath.has(name, dtypes[0]):
            return vmath.emit(e, name, dtypes[0], args[0])
        return _intrinsic(e, name, dtypes[0], args)
    return rule


def _int_divmod(e, a, b, t, want_quotient: bool) -> str:
    zero = e.emit(f"icmp eq {t} {b}, 0")
    minus_one = e.emit(f"icmp eq {t} {b}, -1")
    bad = e.emit(f"or i1 {zero}, {minus_one}")
    safe = e.emit(f"select i1 {bad}, {t} 1, {t} {b}")
    quotient = e.emit(f"sdiv {t} {a}, {safe}")
    rem = e.emit(f"srem {t} {a}, {safe}")
    rem_nonzero = e.emit(f"icmp ne {t} {rem}, 0")
    signs = e.emit(f"xor i1 {e.emit(f'icmp slt {t} {rem}, 0')}, "
                   f"{e.emit(f'icmp slt {t} {safe}, 0')}")
    fix = e.emit(f"and i1 {rem_nonzero}, {signs}")
    if want_quotient:
        floor_q = e.emit(f"sub {t} {quotient}, {e.emit(f'zext i1 {fix} to {t}')}")
        neg_a = e.emit(f"sub {t} 0, {a}")
        q = e.emit(f"select i1 {zero}, {t} 0, {t} {floor_q}")
        return e.emit(f"select i1 {minus_one}, {t} {neg_a}, {t} {q}")
    fixed = e.emit(f"add {t} {rem}, {safe}")
    r = e.emit(f"select i1 {fix}, {t} {fixed}, {t} {rem}")
    return e.emit(f"select i1 {bad}, {t} 0, {t} {r}")


def _float_divmod(e, a, b, dtype, want_quotient: bool) -> str:
    """numpy's npy_divmod, step by step."""
    t = LLVM_TYPE[dtype]
    zero, one, half = (literal(v, dtype) for v in (0.0, 1.0, 0.5))
    mod = e.emit(f"frem {t} {a}, {b}")
    b_zero = e.emit(f"fcmp oeq {t} {b}, {zero}")
    quotient = e.emit(f"fdiv {t} {a}, {b}")
    if not want_quotient:
        mod_nonzero = e.emit(f"fcmp une {t} {mod}, {zero}")
        differ = e.emit(f"xor i1 {e.emit(f'fcmp olt {t} {b}, {zero}')}, "
                        f"{e.emit(f'fcmp olt {t} {mod}, {zero}')}")
        fix = e.emit(f"and i1 {mod_nonzero}, {differ}")
        fixed = e.emit(f"select i1 {fix}, {t} "
                       f"{e.emit(f'fadd {t} {mod}, {b}')}, {t} {mod}")
        signed_zero = _intrinsic(e, "copysign", dtype, [zero, b])
        r = e.emit(f"select i1 {mod_nonzero}, {t} {fixed}, {t} {signed_zero}")
        return e.emit(f"select i1 {b_zero}, {t} {mod}, {t} {r}")
    div = e.emit(f"fdiv {t} {e.emit(f'fsub {t} {a}, {mod}')}, {b}")
    mod_nonzero = e.emit(f"fcmp une {t} {mod}, {zero}")
    differ = e.emit(f"xor i1 {e.emit(f'fcmp olt {t} {b}, {zero}')}, "
                    f"{e.emit(f'fcmp olt {t} {mod}, {zero}')}")
    fix = e.emit(f"and i1 {mod_nonzero}, {differ}")
    div = e.emit(f"select i1 {fix}, {t} {e.emit(f'fsub {t} {div}, {one}')}, "
                 f"{t} {div}")
    floor = _intrinsic(e, "floor", dtype, [div])
    round_up = e.emit(f"fcmp ogt {t} {e.emit(f'fsub {t} {div}, {floor}')}, "
                      f"{half}")
    floor = e.emit(f"select i1 {round_up}, {t} "
                   f"{e.emit(f'fadd {t} {floor}, {one}')}, {t} {floor}")
    div_nonzero = e.emit(f"fcmp une {t} {div}, {zero}")
    signed_zero = _intrinsic(e, "copysign", dtype, [zero, quotient])
    q = e.emit(f"select i1 {div_nonzero}, {t} {floor}, {t} {signed_zero}")
    return e.emit(f"select i1 {b_zero}, {t} {quotient}, {t} {q}")


def _divmod_rule(want_quotient: bool):
    def rule(e, args, dtypes, out):
        if is_float(dtypes[0]):
            return _float_divmod(e, *args, dtypes[0], want_quotient)
        return _int_divmod(e, *args, LLVM_TYPE[dtypes[0]], want_quotient)
    return rule


def _pow(e, args, dtypes, out):
    """Floats: inline vector code (vmath_pow), not a libm call each."""
    if is_float(dtypes[0]):
        from . import vmath_pow
        return vmath_pow.pow(e, *args, dtypes[0])
    t = LLVM_TYPE[dtypes[0]]
    e.need_helper("ipow", t)
    return e.emit(f"call {t} @tj_ipow_{t}({t} {args[0]}, {t} {args[1]})")


def ipow_helper(t: str) -> str:
    """Integer power by square-and-multiply; numpy's answers for negative
    exponents are defined in fusion.kernel."""
    return f"""
define internal {t} @tj_ipow_{t}({t} %base, {t} %exp) alwaysinline nounwind {{
entry:
  %neg = icmp slt {t} %exp, 0
  br i1 %neg, label %negative, label %loop
negative:
  %is_one = icmp eq {t} %base, 1
  %is_minus_one = icmp eq {t} %base, -1
  %odd = trunc {t} %exp to i1
  %pm = select i1 %odd, {t} -1, {t} 1
  %m1 = select i1 %is_minus_one, {t} %pm, {t} 0
  %r = select i1 %is_one, {t} 1, {t} %m1
  ret {t} %r
loop:
  %acc = phi {t} [1, %entry], [%acc.next, %loop]
  %b = phi {t} [%base, %entry], [%b.next, %loop]
  %e = phi {t} [%exp, %entry], [%e.next, %loop]
  %bit = trunc {t} %e to i1
  %mul = mul {t} %acc, %b
  %acc.next = select i1 %bit, {t} %mul, {t} %acc
  %b.next = mul {t} %b, %b
  %e.next = lshr {t} %e, 1
  %more = icmp ne {t} %e.next, 0
  br i1 %more, label %loop, label %done
done:
  ret {t} %acc.next
}}
"""


def _minmax(is_max: bool):
    def rule(e, args, dtypes, out):
        a, b = args
        dtype = dtypes[0]
        t = LLVM_TYPE[dtype]
        if dtype == "bool":
            return e.emit(f"{'or' if is_max else 'and'} i1 {a}, {b}")
        if is_float(dtype):
            cmp = e.emit(f"fcmp {'oge' if is_max else 'ole'} {t} {a}, {b}")
            nan = e.emit(f"fcmp uno {t} {a}, {a}")
            take_a = e.emit(f"or i1 {cmp}, {nan}")
        else:
            take_a = e.emit(f"icmp {'sge' if is_max else 'sle'} {t} {a}, {b}")
        return e.emit(f"select i1 {take_a}, {t} {a}, {t} {b}")
    return rule


def _neg(e, args, dtypes, out):
    t = LLVM_TYPE[dtypes[0]]
    if is_float(dtypes[0]):
        return e.emit(f"fneg {t} {args[0]}")
    return e.emit(f"sub {t} 0, {args[0]}")


def _abs(e, args, dtypes, out):
    dtype, (a,) = dtypes[0], args
    if dtype == "bool":
        return a
    if is_float(dtype):
        return _intrinsic(e, "fabs", dtype, [a])
    t = LLVM_TYPE[dtype]
    neg = e.emit(f"sub {t} 0, {a}")
    return e.emit(f"select i1 {e.emit(f'icmp slt {t} {a}, 0')}, {t} {neg}, "
                  f"{t} {a}")


def _sign(e, args, dtypes, out):
    dtype, (a,) = dtypes[0], args
    t = LLVM_TYPE[dtype]
    if not is_float(dtype):
        gt = e.emit(f"zext i1 {e.emit(f'icmp sgt {t} {a}, 0')} to {t}")
        lt = e.emit(f"zext i1 {e.emit(f'icmp slt {t} {a}, 0')} to {t}")
        return e.emit(f"sub {t} {gt}, {lt}")
    zero, one, minus = (literal(v, dtype) for v in (0.0, 1.0, -1.0))
    gt = e.emit(f"fcmp ogt {t} {a}, {zero}")
    lt = e.emit(f"fcmp olt {t} {a}, {zero}")
    nan = e.emit(f"fcmp uno {t} {a}, {a}")
    rest = e.emit(f"select i1 {nan}, {t} {a}, {t} {zero}")
    rest = e.emit(f"select i1 {lt}, {t} {minus}, {t} {rest}")
    return e.emit(f"select i1 {gt}, {t} {one}, {t} {rest}")


_CMP = {"lt": ("olt", "slt", "ult"), "le": ("ole", "sle", "ule"),
        "eq": ("oeq", "eq", "eq"), "ne": ("une", "ne", "ne"),
        "gt": ("ogt", "sgt", "ugt"), "ge": ("oge", "sge", "uge")}


def _compare(name):
    def rule(e, args, dtypes, out):
        dtype = dtypes[0]
        t = LLVM_TYPE[dtype]
        fpred, spred, upred = _CMP[name]
        if is_float(dtype):
            return e.emit(f"fcmp {fpred} {t} {args[0]}, {args[1]}")
        pred = upred if dtype == "bool" else spred
        return e.emit(f"icmp {pred} {t} {args[0]}, {args[1]}")
    return rule


def _bitwise(op):
    def rule(e, args, dtypes, out):
        return e.emit(f"{op} {LLVM_TYPE[dtypes[0]]} {args[0]}, {args[1]}")
    return rule


def _not(e, args, dtypes, out):
    t = LLVM_TYPE[dtypes[0]]
    ones = "true" if dtypes[0] == "bool" else "-1"
    return e.emit(f"xor {t} {args[0]}, {ones}")


def _shift(left: bool):
    def rule(e, args, dtypes, out):
        (a, b), dtype = args, dtypes[0]
        t, bits = LLVM_TYPE[dtype], INT_BITS[dtype]
        ok = e.emit(f"icmp ult {t} {b}, {bits}")
        safe = e.emit(f"select i1 {ok}, {t} {b}, {t} 0")
        shifted = e.emit(f"{'shl' if left else 'ashr'} {t} {a}, {safe}")
        fill = "0" if left else e.emit(f"ashr {t} {a}, {bits - 1}")
        return e.emit(f"select i1 {ok}, {t} {shifted}, {t} {fill}")
    return rule


def _select(e, args, dtypes, out):
    t = LLVM_TYPE[out]
    return e.emit(f"select i1 {args[0]}, {t} {args[1]}, {t} {args[2]}")


def convert(e, value: str, src: str, dst: str) -> str:
    """numpy ``astype`` from ``src`` to ``dst`` of one scalar."""
    if src == dst:
        return value
    s, d = LLVM_TYPE[src], LLVM_TYPE[dst]
    if dst == "bool":
        if is_float(src):
            return e.emit(f"fcmp une {s} {value}, {literal(0.0, src)}")
        return e.emit(f"icmp ne {s} {value}, 0")
    if src == "bool":
        op = "uitofp" if is_float(dst) else "zext"
        return e.emit(f"{op} i1 {value} to {d}")
    if is_float(src) and is_float(dst):
        op = "fpext" if src == "float32" else "fptrunc"
        return e.emit(f"{op} {s} {value} to {d}")
    if is_float(src):
        name = f"llvm.fptosi.sat.{d}.{FLOAT_SUFFIX[src]}"
        e.declare(f"declare {d} @{name}({s})")
        return e.emit(f"call {d} @{name}({s} {value})")
    if is_float(dst):
        return e.emit(f"sitofp {s} {value} to {d}")
    op = "sext" if INT_BITS[dst] > INT_BITS[src] else "trunc"
    return e.emit(f"{op} {s} {value} to {d}")


RULES = {
    "add": _arith("fadd", "add", "or"),
    "sub": _arith("fsub", "sub"),
    "mul": _arith("fmul", "mul", "and"),
    "div": _arith("fdiv", None),
    "floordiv": _divmod_rule(True),
    "mod": _divmod_rule(False),
    "pow": _pow,
    "max": _minmax(True), "min": _minmax(False),
    "neg": _neg, "abs": _abs, "sign": _sign,
    **{name: _unary_math(name) for name in
       ("sqrt",) + VECTOR_MATH},
    **{name: _compare(name) for name in _CMP},
    "and": _bitwise("and"), "or": _bitwise("or"), "xor": _bitwise("xor"),
    "not": _not, "shl": _shift(True), "shr": _shift(False),
    "select": _select,
    "convert": lambda e, args, dtypes, out: convert(e, args[0], dtypes[0], out),
    "copy": lambda e, args, dtypes, out: args[0],
}
