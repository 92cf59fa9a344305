"""CUDA C for kernels with reduce axes, laid out as ``rowplan.plan`` says.

Why this module exists: the row layouts share their pieces (accumulators,
the warp and block combines, per-row work done once per row) but differ
in how threads walk the data; this is where those loops are written.  Every
combine is a fixed tree (no atomics), so results are the same bits on
every run; every loop is grid-stride, so any grid is correct.  Names follow
render.py: stage values ``s<s>v<k>`` / ``s<s>p<k>``, accumulators
``r<r>``, axes ``i<a>``; ``row`` is the kept point, ``j`` the position in
the row (row-major over the reduce axes); ``tj_``-names are the layout's
own.
"""
from __future__ import annotations

import dataclasses

from ...fusion.kernel import Kernel, combiner_identity
from .render import (CTYPES, _grid_stride, _indent, _ops, _stores, _unravel,
                     convert, describe_comment, literal, scalar_expr,
                     signature)
from .rowplan import FINISH_THREADS, RowPlan, _partial_offsets, plan

__all__ = ["render_functions"]


# ---- shared pieces of C ----------------------------------------------------

def _names(kernel: Kernel) -> tuple[tuple, tuple]:
    """(names of every axis, for the row loop; names with the reduce axes
    out of scope, for per-row work)."""
    n = len(kernel.shape)
    inner = tuple(f"i{a}" for a in range(n))
    outer = tuple(None if a in kernel.reduce_axes else f"i{a}"
                  for a in range(n))
    return inner, outer


def _reductions(kernel: Kernel, s: int) -> list[tuple[int, object]]:
    """(number, Reduction) of stage ``s``'s reductions."""
    first = sum(len(st.reductions) for st in kernel.stages[:s])
    return [(first + n, red)
            for n, red in enumerate(kernel.stages[s].reductions)]


def _combine(red, a: str, b: str) -> str:
    return scalar_expr(red.combiner, red.acc_dtype, red.acc_dtype, [a, b])


def _identity(red) -> str:
    """The C literal of ``red``'s combiner identity (its value over no
    points)."""
    return literal(combiner_identity(red.combiner, red.acc_dtype),
                   red.acc_dtype)


def _inits(reds) -> list[str]:
    """Declare each accumulator at its combiner's identity."""
    return [f"{CTYPES[red.acc_dtype]} r{r} = {_identity(red)};"
            for r, red in reds]


def _folds(kernel: Kernel, s: int, reds) -> list[str]:
    """Fold this point's value into each accumulator of stage ``s``."""
    ops = kernel.stages[s].ops
    return [f"r{r} = " + _combine(red, f"r{r}", convert(
        f"s{s}v{red.value}", ops[red.value].dtype, red.acc_dtype)) + ";"
        for r, red in reds]


def _block_setup(kernel: Kernel) -> list[str]:
    """Lane and warp numbers, and one shared array per reduction for the
    warps' partial results."""
    if not kernel.reductions:
        return []
    lines = ["// lanes, warps; a block of one thread (a host test) has no "
             "lanes to shuffle",
             "const int tj_lane = threadIdx.x & 31, tj_warp = threadIdx.x >> 5;",
             "const int tj_warps = (blockDim.x + 31) >> 5;",
             "const bool tj_full_warps = (blockDim.x & 31) == 0;"]
    lines += [f"__shared__ {CTYPES[red.acc_dtype]} tj_red{r}[32];"
              "  // per-warp partial results"
              for r, red in enumerate(kernel.reductions)]
    return lines


def _butterfly(reds) -> list[str]:
    """Five rounds of ``__shfl_xor_sync`` leave every lane with its warp's
    combined value.  The shuffled value goes to a temporary first: a bool
    combiner is ``||`` / ``&&``, and a short-circuit that skipped the
    shuffle in some lanes would leave the others waiting for them."""
    lines = ["for (int o = 16; o > 0; o >>= 1) {"]
    for r, red in reds:
        lines += [f"  const {CTYPES[red.acc_dtype]} t{r} = "
                  f"tj_shfl_xor(r{r}, o);",
                  f"  r{r} = {_combine(red, f'r{r}', f't{r}')};"]
    return lines + ["}"]


def _block_combine(reds) -> list[str]:
    """Every thread ends with the block's combined result, the same bits
    in all of them: a butterfly in each warp, lane 0 of each warp to
    shared memory, then every warp runs the same butterfly over the warps'
    results and takes its lane 0's (one thread per block, in a host test:
    the fold is a plain loop)."""
    if not reds:
        return []
    return ["// combine the block's partial results: within each warp "
            "(shuffles), then across warps (shared memory)",
            "if (tj_full_warps) {", *_indent(_butterfly(reds)), "}",
            "if (tj_lane == 0) {",
            *[f"  tj_red{r}[tj_warp] = r{r};" for r, _ in reds], "}",
            "__syncthreads();",
            "if (tj_full_warps) {  // every warp: the same butterfly",
            *[f"  r{r} = tj_lane < tj_warps ? tj_red{r}[tj_lane] : "
              f"{_identity(red)};" for r, red in reds],
            *_indent(_butterfly(reds)),
            *[f"  r{r} = tj_shfl(r{r}, 0);" for r, _ in reds],
            "} else {",
            *[f"  r{r} = tj_red{r}[0];" for r, _ in reds],
            "  for (int w = 1; w < tj_warps; ++w) {",
            *[f"    r{r} = {_combine(red, f'r{r}', f'tj_red{r}[w]')};"
              for r, red in reds], "  }", "}"]


def _warp_combine(reds) -> list[str]:
    """Every lane ends with the warp's combined result (lane 0's, so the
    lanes agree to the bit even where the combiner is not symmetric)."""
    if not reds:
        return []
    return ["// combine the warp's partial results (shuffles)",
            "if (tj_team == 32) {", *_indent(_butterfly(reds)),
            *[f"  r{r} = tj_shfl(r{r}, 0);" for r, _ in reds], "}"]


def _after(kernel: Kernel, s: int, outer: tuple, leader: str) -> list[str]:
    """Stage ``s``'s per-row work, computed by every thread (so later
    stages see it); its stores by the ``leader`` thread only."""
    lines = _ops(kernel, s, True, outer)
    stores = _stores(kernel, s, True, outer)
    if stores:
        lines += [f"if ({leader}) {{", *_indent(stores), "}"]
    return lines


def _stage_title(kernel: Kernel, s: int) -> str:
    st = kernel.stages[s]
    what = [f"{len(st.reductions)} reduction(s)"] if st.reductions else []
    what += [f"{len(st.stores)} store(s) per point"] if st.stores else []
    return f"// stage {s}: " + (", ".join(what) or "per-point work")


def _function(kernel: Kernel, name: str, threads: int, scratch: bool,
              body: list[str], note: str) -> str:
    lines = describe_comment(kernel) if name == kernel.name else []
    lines += ["// " + note, signature(kernel, name, threads, scratch)]
    return "\n".join(lines + _indent(body) + ["}", ""])


def render_functions(kernel: Kernel) -> str:
    """The ``__global__`` function(s) of ``kernel`` (see plan)."""
    p = plan(kernel)
    if p.kind in ("block", "warp"):
        return _team_kernel(kernel, p)
    if p.kind == "columns":
        return _columns(kernel, p)
    if p.kind == "split_rows":
        return _split_rows(kernel, p)
    return _split_columns(kernel, p)


# ---- one block (or one warp) per row ---------------------------------------

def _team_kernel(kernel: Kernel, p: RowPlan) -> str:
    """A team (a block, or a warp) per row, running the stages in order:
    each resets its accumulators, walks the row team-stride, combines, then
    does its per-row work; barriers keep the row storage and the per-warp
    arrays from being reused while a thread still reads them."""
    block = p.kind == "block"
    inner, outer = _names(kernel)
    if block:
        lines = _block_setup(kernel)
        start, step, first, teams = ("threadIdx.x", "blockDim.x",
                                     "blockIdx.x", "gridDim.x")
        leader, barrier = "threadIdx.x == 0", "__syncthreads();"
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
        start, step, first, teams = "tj_lane", "tj_team", "tj_first", "tj_teams"
        leader, barrier = "tj_lane == 0", "__syncwarp();"
        slot = "threadIdx.x / tj_team" if p.in_shared else "tj_first"
    lines += _row_storage(p, slot)
    body = _unravel("row", kernel.kept_axes, kernel.shape)
    for s, stage in enumerate(kernel.stages):
        reds = _reductions(kernel, s)
        body += [_stage_title(kernel, s), *_inits(reds)]
        if p.length and (stage.ops or stage.stores):
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
    lines += [f"for (long long row = {first}; row < {p.points}LL; "
              f"row += {teams}) {{", *_indent(body), "}"]
    note = (f"one {'block' if block else 'warp'} per row of {p.length}"
            f" points, {p.threads} threads per block")
    return _function(kernel, kernel.name, p.threads, p.uses_scratch, lines,
                     note)


def _row_storage(p: RowPlan, slot: str) -> list[str]:
    """Pointers to this team's row storage (see the module doc)."""
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


# ---- one thread per kept point ---------------------------------------------

def _columns(kernel: Kernel, p: RowPlan) -> str:
    """Every stage by one thread per kept point; a row scratch lives in
    global scratch with its rows interleaved (element e of point f at
    e * points + f), so a warp's accesses are adjacent."""
    inner, outer = _names(kernel)
    scaled = dataclasses.replace(kernel, args=tuple(
        dataclasses.replace(a, strides=tuple(st * p.points
                                             for st in a.strides))
        if a.local else a for a in kernel.args))
    body = _unravel("flat", kernel.kept_axes, kernel.shape)
    body += [f"{s.ctype}* const {s.name} = ({s.ctype}*)(scratch + "
             f"{s.offset}) + flat;  // {s.what}" for s in p.slots]
    for s, stage in enumerate(kernel.stages):
        reds = _reductions(kernel, s)
        body += [_stage_title(kernel, s), *_inits(reds)]
        if p.length and (stage.ops or stage.stores):
            loop = [*_unravel("j", kernel.reduce_axes, kernel.shape),
                    *_ops(scaled, s, False, inner),
                    *_folds(kernel, s, reds),
                    *_stores(scaled, s, False, inner)]
            body += ["TJ_UNROLL",
                     f"for (long long j = 0; j < {p.length}LL; ++j) {{",
                     *_indent(loop), "}"]
        body += _ops(kernel, s, True, outer) + _stores(kernel, s, True, outer)
    lines = _grid_stride("flat", p.points, body)
    return _function(kernel, kernel.name, p.threads, p.uses_scratch, lines,
                     "one thread per kept point, every stage")


# ---- two passes: chunks to partials, then partials combined ----------------

def _partials(kernel: Kernel, p: RowPlan, const: bool) -> list[str]:
    offsets, _ = _partial_offsets(kernel, p)
    q = "const " if const else ""
    return [f"{q}{CTYPES[red.acc_dtype]}* const tj_part{r} = ({q}"
            f"{CTYPES[red.acc_dtype]}*)(scratch + {off});  // partials of r{r}"
            for r, (red, off) in enumerate(zip(kernel.reductions, offsets))]


def _chunk_bounds(lo: str) -> list[str]:
    return [f"const long long tj_lo = {lo};",
            "const long long tj_hi = tj_lo + tj_chunk < tj_length ? "
            "tj_lo + tj_chunk : tj_length;"]


def _split_rows(kernel: Kernel, p: RowPlan) -> str:
    inner, outer = _names(kernel)
    reds = _reductions(kernel, 0)
    sizes = [f"const long long tj_chunk = {p.chunk}LL, tj_length = "
             f"{p.length}LL;"]
    loop = [*_unravel("j", kernel.reduce_axes, kernel.shape),
            *_ops(kernel, 0, False, inner), *_folds(kernel, 0, reds)]
    body = ["const long long row = tj_item / " f"{p.chunks}LL;",
            *_chunk_bounds(f"tj_item % {p.chunks}LL * tj_chunk"),
            *_unravel("row", kernel.kept_axes, kernel.shape), *_inits(reds),
            "TJ_UNROLL",
            "for (long long j = tj_lo + threadIdx.x; j < tj_hi; "
            "j += blockDim.x) {", *_indent(loop), "}",
            *_block_combine(reds),
            "if (threadIdx.x == 0) {",
            *[f"  tj_part{r}[tj_item] = r{r};" for r, _ in reds], "}",
            "__syncthreads();  // the next chunk reuses the shared memory"]
    first = [*_block_setup(kernel), *_partials(kernel, p, False), *sizes,
             f"for (long long tj_item = blockIdx.x; tj_item < "
             f"{p.points * p.chunks}LL; tj_item += gridDim.x) {{",
             *_indent(body), "}"]
    gather = [*_unravel("row", kernel.kept_axes, kernel.shape), *_inits(reds),
              f"for (long long c = threadIdx.x; c < {p.chunks}LL; "
              "c += blockDim.x) {",
              *[f"  r{r} = {_combine(red, f'r{r}', f'tj_part{r}[row * {p.chunks}LL + c]')};"
                for r, red in reds], "}",
              *_block_combine(reds), *_after(kernel, 0, outer,
                                             "threadIdx.x == 0"),
              "__syncthreads();  // the next row reuses the shared memory"]
    second = [*_block_setup(kernel), *_partials(kernel, p, True),
              f"for (long long row = blockIdx.x; row < {p.points}LL; "
              "row += gridDim.x) {", *_indent(gather), "}"]
    return (_function(kernel, p.functions[0], p.threads, True, first,
                      f"pass 1 of 2: {p.chunks} chunks of {p.chunk} points "
                      "per row, a block each, to partials")
            + _function(kernel, p.functions[1], FINISH_THREADS, True, second,
                        "pass 2 of 2: a block per row combines its chunks' "
                        "partials in order, then the per-row work"))


def _split_columns(kernel: Kernel, p: RowPlan) -> str:
    inner, outer = _names(kernel)
    reds = _reductions(kernel, 0)
    loop = [*_unravel("j", kernel.reduce_axes, kernel.shape),
            *_ops(kernel, 0, False, inner), *_folds(kernel, 0, reds)]
    body = [f"const long long flat = tj_item % {p.points}LL;",
            *_chunk_bounds(f"tj_item / {p.points}LL * tj_chunk"),
            *_unravel("flat", kernel.kept_axes, kernel.shape), *_inits(reds),
            "TJ_UNROLL",
            "for (long long j = tj_lo; j < tj_hi; ++j) {", *_indent(loop),
            "}", *[f"tj_part{r}[tj_item] = r{r};" for r, _ in reds]]
    first = [*_partials(kernel, p, False),
             f"const long long tj_chunk = {p.chunk}LL, tj_length = "
             f"{p.length}LL;",
             *_grid_stride("tj_item", p.points * p.chunks, body)]
    gather = [*_unravel("flat", kernel.kept_axes, kernel.shape),
              *_inits(reds),
              f"for (long long c = 0; c < {p.chunks}LL; ++c) {{",
              *[f"  r{r} = {_combine(red, f'r{r}', f'tj_part{r}[c * {p.points}LL + flat]')};"
                for r, red in reds], "}",
              *_ops(kernel, 0, True, outer), *_stores(kernel, 0, True, outer)]
    second = [*_partials(kernel, p, True),
              *_grid_stride("flat", p.points, gather)]
    return (_function(kernel, p.functions[0], p.threads, True, first,
                      f"pass 1 of 2: a thread per (chunk of {p.chunk} rows, "
                      "kept point), to partials")
            + _function(kernel, p.functions[1], p.threads, True, second,
                        f"pass 2 of 2: a thread per kept point combines its "
                        f"{p.chunks} partials in order, then the per-point "
                        "work"))
