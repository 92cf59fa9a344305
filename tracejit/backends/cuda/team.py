"""CUDA C for the ``block`` and ``warp`` layouts: a team of threads per row.

Why this module exists: row softmax and layernorm are the row kernels that
matter most, and they are memory-bound; a row should cross HBM once in and
once out.  A team (a block, or a warp) takes a row and runs the kernel's
stages over it in order: each stage resets its accumulators, walks the row,
combines (shuffles, then shared memory), then does its per-row work.

Two ways to walk a row, chosen per launch by a uniform test:

* registers (the team has the planned size, and what later stages re-read
  fits ``REG_WORDS`` 32-bit registers per thread): thread t handles the
  groups t, t + T, t + 2T ... of the row (T threads per team), a number
  fixed when the kernel is written, so the values a later stage needs
  (copies of input rows, the row scratch: softmax's exp) stay in registers
  (arrays indexed by unrolled constants).  The row is read from memory in
  stage 0 only, with every load of a thread in flight at once.
* team-stride loops (any other team size, e.g. a test launching fewer
  threads): the row copies and row scratch live in the row storage that
  rowplan assigned (shared memory, or global scratch for very long rows).

Both walk groups of ``width`` consecutive points (see vector.py) where the
row's accesses allow 16-byte loads and stores.
"""
from __future__ import annotations

import numpy as np

from ...fusion.kernel import Kernel
from .render import CTYPES, _indent, _ops, _stores, _unravel, convert
from .rows import (_after, _block_combine, _block_setup, _folds, _function,
                   _inits, _names, _reductions, _stage_title, _warp_combine)
from .rowplan import RowPlan, _repeated_loads
from .vector import (Groups, checked, group_code, group_lines, plan_groups,
                     predicate_lines, prune, stage_check)

__all__ = ["team_kernel", "carried"]

REG_WORDS = 48      # registers per thread that carried row values may take


class Carry:
    """A row value a later stage reads again, kept in registers
    ``tj_r<n>[slot]``: a copy of an input load (``arg``, ``index``,
    ``dtype``, first loaded in stage ``first``) or a row scratch (a local
    ``arg`` stored in stage ``first``)."""

    def __init__(self, n, arg, index, dtype, first, local):
        self.name = f"tj_r{n}"
        self.arg, self.index, self.dtype = arg, index, dtype
        self.first, self.local = first, local


def _width(kernel: Kernel, p: RowPlan) -> Groups:
    """The groups of a team kernel's row loops: vector width only where it
    divides the row (no partial group)."""
    groups = plan_groups(kernel, kernel.reduce_axes)
    if groups.width > 1 and p.length % groups.width:
        groups = plan_groups(kernel, kernel.reduce_axes, 1)
    return groups


def team_size(p: RowPlan) -> int:
    return p.threads if p.kind == "block" else 32


def carried(kernel: Kernel, p: RowPlan, groups: Groups) -> list | None:
    """The values kept in registers between stages, or None where the
    register walk does not apply (one stage, nothing re-read, a row
    scratch read other than where it was written, or too many
    registers)."""
    if len(kernel.stages) < 2 or not p.length:
        return None
    out = [Carry(n, arg, index, dtype, stages[0], False)
           for n, (arg, index, dtype, stages) in
           enumerate(_repeated_loads(kernel))]
    for k, arg in enumerate(kernel.args):
        if not arg.local:
            continue
        stores = [(s, x) for s, st in enumerate(kernel.stages)
                  for x in st.stores if x.arg == k]
        loads = [(s, op) for s, st in enumerate(kernel.stages)
                 for op in st.ops if op.op == "load" and op.arg == k]
        if len(stores) != 1 or any(op.op == "load" and op.arg == k
                                   for st in kernel.stages for op in st.after):
            return None
        w, store = stores[0]
        if any(s <= w or op.index != store.index for s, op in loads):
            return None
        out.append(Carry(len(out), k, store.index, arg.dtype, w, True))
    if not out:
        return None
    per_thread = -(-p.length // (groups.width * team_size(p))) * groups.width
    words = sum(per_thread * -(-_itemsize(c.dtype) // 4) for c in out)
    return out if words <= REG_WORDS else None


def _itemsize(dtype: str) -> int:
    return np.dtype(dtype).itemsize


def team_kernel(kernel: Kernel, p: RowPlan) -> str:
    """The function of a ``block`` or ``warp`` plan (see the module doc)."""
    block = p.kind == "block"
    if block:
        lines = _block_setup(kernel)
        slot = "0" if p.in_shared else "blockIdx.x"
    else:
        lines = ["// a team of lanes per row: a warp (one thread in a host "
                 "test)",
                 "const int tj_team = blockDim.x < 32 ? blockDim.x : 32;",
                 "const int tj_lane = threadIdx.x % tj_team;",
                 "const long long tj_first = ((long long)blockIdx.x * "
                 "blockDim.x + threadIdx.x) / tj_team;",
                 "const long long tj_teams = (long long)gridDim.x * "
                 "blockDim.x / tj_team;"]
        slot = "threadIdx.x / tj_team" if p.in_shared else "tj_first"
    lines += _row_storage(p, slot)
    groups = _width(kernel, p)
    lines += predicate_lines(kernel, groups)
    carry = carried(kernel, p, groups)
    if carry is None:
        lines += _rows(kernel, p, groups, None)
    else:
        size = team_size(p)
        per_thread = -(-p.length // (groups.width * size)) * groups.width
        check = f"blockDim.x == {size}" if block else "tj_team == 32"
        lines += [f"if ({check}) {{  // the planned team: rows in registers",
                  *_indent([f"{CTYPES[c.dtype]} {c.name}[{per_thread}];  "
                            f"// {_what(kernel, c)}" for c in carry]),
                  *_indent(_rows(kernel, p, groups, carry)),
                  "} else {  // any other team: row storage",
                  *_indent(_rows(kernel, p, groups, None)), "}"]
    note = (f"one {'block' if block else 'warp'} per row of {p.length}"
            f" points, {p.threads} threads per block"
            + (f", groups of {groups.width}" if groups.width > 1 else "")
            + (", row values in registers" if carry else ""))
    return _function(kernel, kernel.name, p.threads, p.uses_scratch, lines,
                     note)


def _what(kernel: Kernel, c: Carry) -> str:
    if c.local:
        return f"row scratch of {kernel.args[c.arg].name}"
    return f"arg{c.arg}'s row, read from memory in stage {c.first}"


def _rows(kernel: Kernel, p: RowPlan, groups: Groups, carry) -> list[str]:
    """The loop over rows, every stage walking its row."""
    block = p.kind == "block"
    inner, outer = _names(kernel)
    if block:
        start, step, first, teams = ("threadIdx.x", "blockDim.x",
                                     "blockIdx.x", "gridDim.x")
        leader, barrier = "threadIdx.x == 0", "__syncthreads();"
    else:
        start, step, first, teams = "tj_lane", "tj_team", "tj_first", "tj_teams"
        leader, barrier = "tj_lane == 0", "__syncwarp();"
    body = _unravel("row", kernel.kept_axes, kernel.shape)
    for s, stage in enumerate(kernel.stages):
        reds = _reductions(kernel, s)
        body += [_stage_title(kernel, s), *_inits(reds)]
        if p.length and (stage.ops or stage.stores):
            if carry is not None:
                body += _register_walk(kernel, p, groups, carry, s, start)
            elif groups.width > 1:
                body += _grouped_walk(kernel, p, groups, s, start, step)
            else:
                loads, copies = _cache_lines(kernel, p, s)
                loop = [*_unravel("j", kernel.reduce_axes, kernel.shape),
                        *_ops(kernel, s, False, inner, loads), *copies,
                        *_folds(kernel, s, reds),
                        *_stores(kernel, s, False, inner)]
                body += ["TJ_UNROLL",
                         f"for (long long j = {start}; j < {p.length}LL; "
                         f"j += {step}) {{", *_indent(loop), "}"]
            body += _block_combine(reds) if block else _warp_combine(reds)
            if s + 1 < len(kernel.stages) and (not block or not reds):
                body.append(barrier + "  // later stages read what this "
                            "one wrote")
        body += _after(kernel, s, outer, leader)
    body.append(barrier + "  // the next row reuses the shared memory")
    return [f"for (long long row = {first}; row < {p.points}LL; "
            f"row += {teams}) {{", *_indent(body), "}"]


def _grouped_walk(kernel, p, groups, s, start, step) -> list[str]:
    """Team-stride loop over the row's groups (row copies in storage)."""
    inner, _ = _names(kernel)
    loads, copies = _cache_lines(kernel, p, s)
    w = groups.width
    extra = [*copies, *_folds(kernel, s, _reductions(kernel, s))]

    def loop(fast):
        group = group_lines(kernel, groups, s, f"tj_g * {w}LL", inner, "j",
                            loads, extra, fast=fast)
        return ["TJ_UNROLL",
                f"for (long long tj_g = {start}; tj_g < {p.length // w}LL; "
                f"tj_g += {step}) {{", *_indent(group), "}"]
    served = {(s, k) for k in loads}
    return checked(stage_check(kernel, groups, (s,), served), loop(True),
                   loop(False))


def _register_walk(kernel, p, groups, carry, s, start) -> list[str]:
    """Each thread's fixed share of the row, unrolled: carried values are
    read from and written to registers."""
    inner, _ = _names(kernel)
    w, size = groups.width, team_size(p)
    count = p.length // w                        # groups in the row
    per_thread = -(-count // size)
    at = "tj_k * %d + tj_e" % w if w > 1 else "tj_k"
    stage = kernel.stages[s]
    replace, extra, skip = {}, [], set()
    for c in carry:
        if c.local:
            for n, x in enumerate(stage.stores):
                if x.arg == c.arg:
                    skip.add(n)
                    extra.append(f"{c.name}[{at}] = " + convert(
                        f"s{s}v{x.value}", stage.ops[x.value].dtype,
                        c.dtype) + ";  // kept for later stages")
            for k, op in enumerate(stage.ops):
                if op.op == "load" and op.arg == c.arg:
                    replace[k] = convert(f"{c.name}[{at}]", c.dtype, op.dtype)
            continue
        for k, op in enumerate(stage.ops):
            if op.op != "load" or (op.arg, op.index, op.dtype) != \
                    (c.arg, c.index, c.dtype):
                continue
            if s > c.first:
                replace[k] = f"{c.name}[{at}]"
            elif s == c.first and not any(f"{c.name}[" in x for x in extra):
                extra.append(f"{c.name}[{at}] = s{s}v{k};  // kept for "
                             "later stages")
    extra += _folds(kernel, s, _reductions(kernel, s))

    def walk(fast):
        code = group_code(kernel, groups, s, f"tj_g * {w}LL", inner, "j",
                          replace, extra, skip, slot="tj_k", fast=fast)
        lines = [f"{t} {n}[{per_thread}];" for t, n in code.decls]
        for part in (code.loads, code.body):  # every load first, then the rest
            if not part:
                continue
            part = code.part(part)
            if per_thread * size != count:
                part = [f"if (tj_g < {count}LL) {{", *_indent(part), "}"]
            part = [f"const long long tj_g = (long long)tj_k * {size} + "
                    f"{start};", *part]
            lines += ["TJ_UNROLL_ALL",
                      f"for (int tj_k = 0; tj_k < {per_thread}; ++tj_k) {{",
                      *_indent(prune(part[:1], part[1:]) + part[1:]), "}"]
        return lines
    served = {(s, k) for k in replace}
    return checked(stage_check(kernel, groups, (s,), served), walk(True),
                   walk(False))


def _row_storage(p: RowPlan, slot: str) -> list[str]:
    """Pointers to this team's row storage (see rowplan's module doc)."""
    if not p.slots:
        return []
    if p.in_shared:
        at = "" if slot == "0" else f" + ({slot}) * {p.team_bytes}LL"
        lines = ["// row storage in shared memory, a slice per row in flight",
                 "TJ_DYNAMIC_SHARED(tj_smem);",
                 f"unsigned char* const tj_row = tj_smem{at};"]
    else:
        lines = ["// row storage in global scratch (too big for shared "
                 "memory): a slot per team",
                 f"unsigned char* const tj_row = scratch + "
                 f"({slot}) * {p.team_bytes}LL;"]
    return lines + [f"{s.ctype}* const {s.name} = ({s.ctype}*)(tj_row + "
                    f"{s.offset});  // {s.what}" for s in p.slots]


def _cache_lines(kernel: Kernel, p: RowPlan, s: int):
    """({op: expression} for stage ``s``'s loads served from a row copy,
    the lines that fill the copies this stage reads from memory)."""
    loads, copies, filled = {}, [], set()
    for k, op in enumerate(kernel.stages[s].ops):
        for c in p.caches:
            if op.op != "load" or (op.arg, op.index, op.dtype) != \
                    (c.arg, c.index, c.dtype):
                continue
            if s > c.first:
                loads[k] = f"{c.name}[j]"
            elif c.name not in filled:
                filled.add(c.name)
                copies.append(f"{c.name}[j] = s{s}v{k};  // kept for later "
                              "stages")
    return loads, copies
