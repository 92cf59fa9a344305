"""The HLO verifier: a module is well formed, or it says exactly why not.

Checks that every operand is defined before its use (SSA, topological
order), that ids are unique, that parameters are numbered 0..n-1, that
constants hold an array of their declared aval, and that every other
instruction's stored aval is the one its primitive's shape rule computes.
"""
from __future__ import annotations

import numpy as np

from .module import Aval, Module
from .scalar_ops import SCALAR_OPS
from .primitives import PRIMITIVES, Reduce, Scalar, ShapeError, Source, View


class VerifierError(AssertionError):
    """The module violates an invariant; the message names the instruction."""


def verify(module: Module) -> None:
    defined: dict[int, Aval] = {}
    for ins in module.instructions:
        where = f"in {module.name}: {ins.text()}"
        if ins.id in defined:
            raise VerifierError(f"duplicate id %{ins.id} {where}")
        prim = PRIMITIVES.get(ins.op)
        if prim is None:
            raise VerifierError(f"unknown primitive {ins.op!r} {where}")
        for o in ins.operands:
            if o not in defined:
                raise VerifierError(f"operand %{o} used before definition "
                                    f"{where}")
        if isinstance(prim.lowering, Source):
            _check_source(ins, where)
        else:
            arity = _arity(prim)
            if arity is not None and len(ins.operands) != arity:
                raise VerifierError(f"{ins.op} takes {arity} operand(s), "
                                    f"got {len(ins.operands)} {where}")
            avals = [defined[o] for o in ins.operands]
            try:
                expected = prim.abstract_eval(avals, ins.attr_dict)
            except (ShapeError, KeyError, TypeError, ValueError,
                    IndexError) as err:
                raise VerifierError(f"{type(err).__name__}: {err} {where}") \
                    from err
            if expected != ins.aval:
                raise VerifierError(f"aval {ins.aval} but rule gives "
                                    f"{expected} {where}")
        defined[ins.id] = ins.aval
    indices = sorted(p.attr("index") for p in module.parameters)
    if indices != list(range(len(indices))):
        raise VerifierError(f"parameters numbered {indices} in {module.name}")
    for o in module.outputs:
        if o not in defined:
            raise VerifierError(f"output %{o} undefined in {module.name}")


def _arity(prim) -> int | None:
    """The number of operands ``prim`` takes, where its lowering fixes it."""
    how = prim.lowering
    if isinstance(how, Scalar):
        return SCALAR_OPS.get(how.op)
    if isinstance(how, (View, Reduce)):
        return 1
    return None


def _check_source(ins, where: str) -> None:
    if ins.operands:
        raise VerifierError(f"{ins.op} takes no operands {where}")
    if ins.op == "constant":
        value = ins.attr("value")
        if not isinstance(value, np.ndarray) or \
                Aval(value.shape, value.dtype.name) != ins.aval:
            raise VerifierError(f"constant does not match its aval {where}")
    elif not isinstance(ins.attr("index"), int):
        raise VerifierError(f"parameter without an index {where}")
