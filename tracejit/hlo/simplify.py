"""Algebraic simplification and constant folding.

Both read the primitive table (identities, involutions, view composition,
numpy references) and never a primitive's name.  Every rewrite is exact
under IEEE arithmetic: no reassociation, no x * 0 -> 0.
"""
from __future__ import annotations

import numpy as np

from ..layout.indexing import IndexMap
from .module import Aval, Instruction, Module
from .primitives import PRIMITIVES, Scalar, Source, View
from .rewrite import constant_value, is_splat, replace_uses

FOLD_LIMIT = 4096      # largest constant (elements) folding may create
FOLD_INPUT_LIMIT = 1 << 16   # largest operand folding may read


def _is_identity_element(module, ins_id, dtype, make) -> bool:
    if make is None:
        return False
    e = make(dtype)
    negative = bool(np.signbit(e)) if isinstance(e, float) else None
    return is_splat(module, ins_id, e, negative)


def _view_is_noop(module: Module, ins: Instruction) -> bool:
    """A view whose index map is the identity on an equal shape."""
    operand = module.get(ins.operands[0])
    if operand.shape != ins.shape:
        return False
    method = PRIMITIVES[ins.op].lowering.method
    view = getattr(IndexMap.identity(operand.shape), method)(**ins.attr_dict)
    return view.is_identity()


def simplify(module: Module) -> bool:
    """Algebraic simplification: removes right/left identities (x*1, 1*x,
    x-0, x+(-0.0), integer x+0), involutions (-(-x)), no-op converts and
    views, and merges chains of the same view (transpose of transpose,
    reshape of reshape, broadcast of broadcast).  Exact for every input,
    NaN, infinities and signed zeros included.  One rewrite is not bitwise
    exact: a power by the constant 2, 3 or 4 becomes multiplies
    (``repeated_by``), within the power's stated ULP bound."""
    mapping: dict[int, int] = {}
    rebuilt: list[Instruction] = []
    current: dict[int, Instruction] = {}
    changed = False
    for ins in module.instructions:
        ins = Instruction(ins.id, ins.op,
                          tuple(mapping.get(o, o) for o in ins.operands),
                          ins.aval, ins.attrs, ins.loc)
        prim = PRIMITIVES[ins.op]
        target = _simplified(module, ins, prim, current)
        if isinstance(target, int):
            mapping[ins.id] = target
            changed = True
            continue
        if isinstance(target, list):            # new instructions first
            rebuilt.extend(target[:-1])
            current.update((t.id, t) for t in target[:-1])
            target = target[-1]
        if target is not None:
            ins, changed = target, True
        rebuilt.append(ins)
        current[ins.id] = ins
    if changed:
        module.replace_all(rebuilt, module.outputs)
        replace_uses(module, mapping)
    return changed


def _simplified(module, ins, prim, current):
    """An id to forward ``ins`` to, a replacement instruction, or None."""
    ops = ins.operands
    get = current.get
    if prim.noop is not None and prim.noop(
            [get(o).aval for o in ops], ins.attr_dict):
        return ops[0]
    if isinstance(prim.lowering, View) and _view_is_noop(module, ins):
        return ops[0]
    if isinstance(prim.lowering, Scalar) and len(ops) == 2:
        if _is_identity_element(module, ops[1], ins.dtype,
                                prim.right_identity):
            return ops[0]
        if _is_identity_element(module, ops[0], ins.dtype,
                                prim.left_identity):
            return ops[1]
    if prim.repeated_by is not None:
        return _expand_small_power(module, ins, prim.repeated_by)
    if prim.involution and get(ops[0]).op == ins.op:
        return get(ops[0]).operands[0]
    inner = get(ops[0]) if ops else None
    if prim.compose is not None and inner is not None and inner.op == ins.op:
        attrs = prim.compose(inner.attr_dict, ins.attr_dict)
        return Instruction(ins.id, ins.op, inner.operands, ins.aval,
                           tuple(sorted(attrs.items())), ins.loc)
    return None


SMALL_POWERS = (2, 3, 4)


def _expand_small_power(module, ins, combine: str):
    """x**k as a chain of ``combine`` (x*x, x*x*x, (x*x)*(x*x)) when the
    exponent is the splat constant k in SMALL_POWERS; the new
    instructions, the last one taking ``ins``'s id, or None."""
    base, exponent = ins.operands
    k = next((k for k in SMALL_POWERS if is_splat(module, exponent, k)),
             None)
    if k is None:
        return None

    def step(a, b, final=False):
        if final:
            return Instruction(ins.id, combine, (a, b), ins.aval, (), ins.loc)
        module.add(combine, (a, b), ins.aval, (), ins.loc)
        return module.instructions.pop()

    if k == 2:
        return [step(base, base, final=True)]
    square = step(base, base)
    other = base if k == 3 else square.id
    return [square, step(square.id, other, final=True)]


def constant_fold(module: Module) -> bool:
    """Evaluates, with the primitive's numpy reference, every instruction
    whose operands are all constants, whose result has at most FOLD_LIMIT
    elements and whose operands at most FOLD_INPUT_LIMIT (so compiling never
    materializes or scans a large constant; a broadcast is never expanded).  An elementwise op on broadcasts of constants folds on the small
    constants and is broadcast again.  One pass, and the module is rebuilt
    once, whatever the number of folds."""
    folded: dict[int, list[Instruction]] = {}   # id -> what replaces it
    current: dict[int, Instruction] = {}

    def get(ins_id: int) -> Instruction:
        return current.get(ins_id) or module.get(ins_id)

    for ins in module.instructions:
        prim = PRIMITIVES[ins.op]
        if isinstance(prim.lowering, Source) or not ins.operands:
            continue
        operands = [get(o) for o in ins.operands]
        if all(o.op == "constant" for o in operands):
            largest = max(o.aval.size for o in operands)
            grows = ins.aval.size > largest
            if ins.aval.size > FOLD_LIMIT or largest > FOLD_INPUT_LIMIT or \
                    (isinstance(prim.lowering, View) and grows):
                continue
            value = _evaluate(prim, ins, [o.attr("value") for o in operands])
            new = [Instruction(ins.id, "constant", (), ins.aval,
                               (("value", value),), ins.loc)]
        elif isinstance(prim.lowering, Scalar) and _same_broadcasts(operands):
            small = [get(o.operands[0]) for o in operands]
            if not all(s.op == "constant" for s in small):
                continue
            shape = small[0].shape
            value = _evaluate(prim, Instruction(
                ins.id, ins.op, (), Aval(shape, ins.dtype), ins.attrs),
                [s.attr("value") for s in small])
            const = module.get(_constant(module, value))
            new = [const, Instruction(ins.id, "broadcast", (const.id,),
                                      ins.aval, operands[0].attrs, ins.loc)]
        else:
            continue
        folded[ins.id] = new
        current.update((n.id, n) for n in new)
    if folded:
        rebuilt = []
        for ins in module.instructions:
            rebuilt += folded.get(ins.id, [ins])
        module.replace_all(rebuilt, module.outputs)
    return bool(folded)


def _same_broadcasts(operands) -> bool:
    first = operands[0]
    return all(o.op == "broadcast" and o.attrs == first.attrs
               and o.shape == first.shape for o in operands)


def _evaluate(prim, ins, values) -> np.ndarray:
    out = prim.reference(*values, **ins.attr_dict)
    out = np.asarray(out).astype(ins.dtype, copy=False)
    frozen = np.array(out, order="C")
    frozen.flags.writeable = False
    return frozen


def _constant(module: Module, value: np.ndarray) -> int:
    new_id = module.add("constant", [], Aval(value.shape, value.dtype.name),
                        [("value", value)])
    module.instructions.pop()          # placed by the caller
    return new_id
