"""Scalar code for one kernel: values generated on demand, each once.

A kernel builder asks for a value read at an index map in a context (a
stage's row loop or its per-row work); ``emit`` returns the index of the
op computing it there, generating what it needs first: inlined values
become scalar ops, per-row values of earlier stages ``point`` ops, this
kernel's reductions ``reduced`` ops, everything else a load (or, for a
scalar constant, an immediate).  Each (context, producer, map) is
generated once, so a value several consumers read is computed once; the
walk uses an explicit stack because expressions are as deep as the
program (an unrolled loop of 10**5 steps is one expression).
"""
from __future__ import annotations

from ..hlo.primitives import PRIMITIVES, Scalar, Source
from ..layout.indexing import IndexMap
from .kernel import ScalarOp
from .reads import resolve


class ValueGenerator:
    """The generation half of a kernel builder (lower.KernelBuilder), which
    provides ``m``, ``g``, ``low``, ``memo``, ``level``, ``red_index``,
    ``local_of``, ``rows``, ``afters``, ``is_row_value``, ``local_arg``
    and ``arg``."""

    def push(self, ctx, op: ScalarOp) -> int:
        ops = (self.rows if ctx[0] == "row" else self.afters)[ctx[1]]
        ops.append(op)
        return len(ops) - 1

    def emit(self, ctx, value: int, at: IndexMap) -> int:
        """Index, in ctx's op list, of ``value`` read at map ``at``.

        Each (ctx, producer, map) is generated once (``memo``), so a value
        several consumers read is computed once per kernel stage.  The walk
        is a depth-first post-order with an explicit stack, operands left
        to right: an expression's depth is bounded by nothing but the
        program, so no Python recursion."""
        memo = self.memo
        top = (ctx,) + resolve(self.m, value, at)
        stack = [(top, None)]
        while stack:
            key, plan = stack.pop()
            if key in memo:
                continue
            if plan is None:
                how = self.generation(key[0], key[1])
                plan = how, self.needs(how, *key)
                waiting = [n for n in plan[1] if n not in memo]
                if waiting:
                    stack.append((key, plan))
                    stack += [(n, None) for n in reversed(waiting)]
                    continue
            memo[key] = self.generate(key, *plan)
        return memo[top]

    def needs(self, how: str, ctx, src: int, at: IndexMap) -> list[tuple]:
        """The (ctx, producer, map) keys generating ``src`` reads first."""
        if how == "point":
            return [(("after", self.level[src]), src, at)]
        if how == "op":
            m = self.m
            return [(ctx,) + resolve(m, o, at) for o in m.get(src).operands]
        return []

    def generation(self, ctx, src: int) -> str:
        """How ``src`` is generated in ``ctx``: ``reduced`` (this kernel's
        accumulator), ``op`` (its scalar op), ``point`` (a per-row value of
        an earlier stage), ``const`` or ``load``."""
        ins = self.m.get(src)
        plan = self.low.plan
        mine = plan.group_of.get(src) == self.g.id
        if mine and not self.is_row_value(src):
            if src in self.red_index:
                return "reduced"
            return "op" if ctx == ("after", self.level[src]) else "point"
        if mine and ctx == ("row", self.level[src]) or src in plan.inlined:
            return "op"
        if isinstance(PRIMITIVES[ins.op].lowering, Source) and \
                ins.aval.size == 1 and "value" in ins.attr_dict:
            return "const"
        return "load"

    def generate(self, key, how: str, needs) -> int:
        """Push the op for ``key``; ``needs`` are already in ``memo``."""
        ctx, src, at = key
        ins = self.m.get(src)
        args = tuple(self.memo[n] for n in needs)
        if how == "reduced":
            return self.push(ctx, ScalarOp(
                "reduced", ins.dtype, args=(self.red_index[src],)))
        if how == "point":
            return self.push(ctx, ScalarOp(
                "point", ins.dtype, args=(self.level[src],) + args))
        if how == "op":
            lowering = PRIMITIVES[ins.op].lowering
            assert isinstance(lowering, Scalar), ins.text()
            return self.push(ctx, ScalarOp(lowering.op, ins.dtype,
                                           args=args))
        if how == "const":
            return self.push(ctx, ScalarOp(
                "const", ins.dtype, value=ins.attr("value").reshape(-1)[0]))
        if src in self.local_of:
            arg = self.local_arg(src)
        else:
            arg = self.arg(self.low.buffer_of[src])
        return self.push(ctx, ScalarOp("load", ins.dtype, arg=arg, index=at))

