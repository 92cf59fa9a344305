"""Writes into traced arrays: augmented assignment and item assignment.

numpy updates an array in place (``x += y`` changes the caller's array,
and every other name or view of it); Python falls back to rebinding the
name when a type has no in-place operator.  Rebinding is numpy's answer
only where nothing else can see the old array, so:

* a value numpy holds as a scalar (a 0-d result of a ufunc or reduction,
  a Python-scalar argument) is immutable in numpy too: ``s += v`` rebinds,
  with the binary operator's promotion;
* an array that is an argument, a view of anything, viewed by another
  value, or referenced by another name or container is refused with an
  UnsupportedWriteError naming the arguments and the line (numpy would
  update memory that tracejit does not write back yet);
* any other array is fresh and seen only through this name: the update
  is numpy's in-place one, keeping the array's dtype (``same_kind``
  casting) and shape (the operand must broadcast to it).

Item assignment is refused the same way until writes are functionalized.
"""
from __future__ import annotations

import sys

import numpy as np

from ..errors import (CastingError, ShapeMismatchError,
                      UnsupportedWriteError)
from ..hlo.primitives import PRIMITIVES, Source, View
from .context import user_location

OPERATORS = {
    "add": (np.add, "+="), "sub": (np.subtract, "-="),
    "mul": (np.multiply, "*="), "truediv": (np.true_divide, "/="),
    "floordiv": (np.floor_divide, "//="), "mod": (np.remainder, "%="),
    "pow": (np.power, "**="), "matmul": (np.matmul, "@="),
    "and": (np.bitwise_and, "&="), "or": (np.bitwise_or, "|="),
    "xor": (np.bitwise_xor, "^="), "lshift": (np.left_shift, "<<="),
    "rshift": (np.right_shift, ">>="),
}


def inplace_method(ufunc, symbol: str, update=None):
    """``__iadd__`` and friends.  The reference count is read here, in
    the dunder itself, where a probe calibrates it (see ``_calibrate``)."""
    def method(self, other):
        refs = sys.getrefcount(self)
        return (update or apply_update)(self, ufunc, symbol, other, refs)
    return method


def _calibrate() -> int:
    """References a value has inside its in-place operator when only one
    name holds it (interpreter-dependent, so measured, not assumed)."""
    seen = []

    class Probe:
        __iadd__ = inplace_method(None, "+=", lambda s, u, sym, o, refs:
                                  seen.append(refs) or s)

    def user_code():
        value = Probe()
        value += 1
        return value

    user_code()
    return seen[0]


_SOLE_REFERENCES = _calibrate()


def apply_update(target, ufunc, symbol: str, other, refs: int):
    if _numpy_scalar(target):
        return ufunc(target, other)
    why = _visible_elsewhere(target, refs)
    if why:
        raise _refusal(target, f"`{symbol}`", why)
    result = ufunc(target, other)
    if result.shape != target.shape:
        raise ShapeMismatchError(
            f"{symbol}: non-broadcastable output operand with shape "
            f"{list(target.shape)} doesn't match the broadcast shape "
            f"{list(result.shape)} at {user_location()}")
    if not np.can_cast(result.dtype, target.dtype, "same_kind"):
        raise CastingError(
            f"{symbol}: Cannot cast ufunc '{ufunc.__name__}' output from "
            f"{result.dtype} to {target.dtype} with casting rule "
            f"'same_kind' at {user_location()}")
    return result.astype(target.dtype)


def refuse_setitem(target, key):
    raise _refusal(target, "item assignment (`x[...] = v`)",
                   "tracejit does not write into traced arrays yet")


def _numpy_scalar(t) -> bool:
    """0-d values numpy holds as immutable scalars: ufunc and reduction
    results, and Python-scalar arguments."""
    if t.shape:
        return False
    ins = t.ctx.module.get(t.id)
    lowering = PRIMITIVES[ins.op].lowering
    if isinstance(lowering, Source):
        return ins.op == "parameter" and t.weak
    return not isinstance(lowering, View) and ins.op != "select"


def _visible_elsewhere(t, refs: int) -> str | None:
    module = t.ctx.module
    ins = module.get(t.id)
    if ins.op == "parameter":
        return ("numpy would modify the caller's array, and tracejit does "
                "not write into arguments yet")
    if isinstance(PRIMITIVES[ins.op].lowering, View):
        return ("it is a view: numpy would also modify the array it views, "
                "and tracejit does not write through views yet")
    listing = module.instructions
    for k in range(len(listing) - 1, -1, -1):      # newest first, no copy
        other = listing[k]
        if other.id <= t.id:
            break
        if t.id in other.operands and \
                isinstance(PRIMITIVES[other.op].lowering, View):
            return ("a view of it exists, which numpy would update too, "
                    "and tracejit does not write through views yet")
    if refs > _SOLE_REFERENCES:
        return ("another name or container refers to the same array, "
                "which numpy would update too")
    return None


def _refusal(t, what: str, why: str) -> UnsupportedWriteError:
    names = ", ".join(sorted(t.deps))
    if t.ctx.module.get(t.id).op == "parameter":
        about = f"argument {names} ({t.aval})"
    elif t.deps:
        about = f"a traced array {t.aval} computed from argument(s) {names}"
    else:
        about = f"a traced array {t.aval}"
    return UnsupportedWriteError(
        f"{what} on {about} at {user_location()}: {why}. Compute a new "
        "array instead (`y = x + v`, `np.where(mask, v, x)`), or do the "
        "update outside the jitted function")
