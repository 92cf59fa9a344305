"""The scalar operations kernels are made of.

The primitive table names one of these as the lowering of each elementwise
primitive; the kernel description (fusion.kernel) is built from them, and
every backend renders each of them.
"""

# Scalar operations a kernel may contain.  Arity is fixed per name; result
# dtypes are stored on each op.  Backends must render every name here, with
# numpy's semantics for the operand dtype (bool, int32, int64, float32,
# float64); operands of an op share one dtype except where noted:
#   add, sub, mul     integers wrap; bool: add is `or`, mul is `and`.
#   div               floats only, IEEE.
#   floordiv, mod     integers: floor semantics, the remainder takes the
#                     divisor's sign; a zero divisor gives 0; MIN // -1 wraps
#                     to MIN (never trap).  floats: numpy's divmod algorithm
#                     (fmod, then sign fix-up, floor, round-half fix-up).
#   pow               floats: C pow.  integers: square-and-multiply with
#                     wrapping; a negative exponent gives 1 for base 1,
#                     +-1 for base -1 and 0 otherwise.
#   max, min          NaN-propagating: max = (a >= b or isnan(a)) ? a : b,
#                     min = (a <= b or isnan(a)) ? a : b; bool: or / and.
#   neg, abs          integers wrap; bool abs is the identity.
#   sign              (a > 0) - (a < 0); floats keep NaN.
#   exp ... cos,      floats only, the platform math library's accuracy.
#   expm1, log1p
#   lt ... ge         result bool; float compares are ordered except ne.
#   and, or, xor, not bool (logical) or integers (bitwise).
#   shl, shr          integers; a count < 0 or >= the bit width gives 0
#                     (shr: -1 for negative a); shr is arithmetic.
#   select            select(cond: bool, a, b).
#   convert           numpy astype: float -> int truncates (saturating: the
#                     out-of-range and NaN cases numpy leaves undefined never
#                     produce poison); x -> bool is x != 0 (NaN -> True).
#   copy              the identity.
SCALAR_OPS: dict[str, int] = {
    # arithmetic
    "add": 2, "sub": 2, "mul": 2, "div": 2, "floordiv": 2, "mod": 2,
    "pow": 2, "max": 2, "min": 2,
    "neg": 1, "abs": 1, "sign": 1,
    # transcendental and roots
    "exp": 1, "log": 1, "sqrt": 1, "tanh": 1, "sin": 1, "cos": 1,
    "expm1": 1, "log1p": 1,
    # comparisons (result bool)
    "lt": 2, "le": 2, "eq": 2, "ne": 2, "gt": 2, "ge": 2,
    # bitwise / logical (bool or integer operands)
    "and": 2, "or": 2, "xor": 2, "not": 1, "shl": 2, "shr": 2,
    # selection and conversion
    "select": 3, "convert": 1, "copy": 1,
}
