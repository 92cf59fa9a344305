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
from .vector import checked, group_lines, plan_groups, predicate_lines, \
    stage_check

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
    first = kernel.first_reduction[s]
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
        from .team import team_kernel   # builds on this module's pieces
        return team_kernel(kernel, p)
    if p.kind == "columns":
        return _columns(kernel, p)
    if p.kind == "split_rows":
        return _split_rows(kernel, p)
    return _split_columns(kernel, p)


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
    walk = ["TJ_UNROLL",
            "for (long long j = tj_lo + threadIdx.x; j < tj_hi; "
            "j += blockDim.x) {", *_indent(loop), "}"]
    groups = plan_groups(kernel, kernel.reduce_axes, p.width)
    if p.width > 1:   # chunks are whole groups

        def grouped(fast):
            return ["TJ_UNROLL",
                    f"for (long long tj_g = tj_lo / {p.width} + threadIdx.x; "
                    f"tj_g < tj_hi / {p.width}; tj_g += blockDim.x) {{",
                    *_indent(group_lines(
                        kernel, groups, 0, f"tj_g * {p.width}LL", inner, "j",
                        extra=_folds(kernel, 0, reds), fast=fast)), "}"]
        walk = checked(stage_check(kernel, groups, (0,)), grouped(True),
                       grouped(False))
    body = ["const long long row = tj_item / " f"{p.chunks}LL;",
            *_chunk_bounds(f"tj_item % {p.chunks}LL * tj_chunk"),
            *_unravel("row", kernel.kept_axes, kernel.shape), *_inits(reds),
            *walk, *_block_combine(reds),
            "if (threadIdx.x == 0) {",
            *[f"  tj_part{r}[tj_item] = r{r};" for r, _ in reds], "}",
            "__syncthreads();  // the next chunk reuses the shared memory"]
    first = [*_block_setup(kernel), *_partials(kernel, p, False), *sizes,
             *(predicate_lines(kernel, groups) if p.width > 1 else []),
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
             f"{p.length}LL;"]
    if p.width > 1:
        first += _grouped_columns(kernel, p)
    else:
        first += _grid_stride("tj_item", p.points * p.chunks, body)
    gather = [*_unravel("flat", kernel.kept_axes, kernel.shape),
              *_inits(reds), "TJ_UNROLL",
              f"for (long long c = 0; c < {p.chunks}LL; ++c) {{",
              *[f"  r{r} = {_combine(red, f'r{r}', f'tj_part{r}[c * {p.points}LL + flat]')};"
                for r, red in reds], "}",
              *_ops(kernel, 0, True, outer), *_stores(kernel, 0, True, outer)]
    second = [*_partials(kernel, p, True),
              *_grid_stride("flat", p.points, gather)]
    return (_function(kernel, p.functions[0], p.threads, True, first,
                      f"pass 1 of 2: a thread per (chunk of {p.chunk} rows, "
                      + (f"group of {p.width} kept points" if p.width > 1
                         else "kept point") + "), to partials")
            + _function(kernel, p.functions[1], p.threads, True, second,
                        f"pass 2 of 2: a thread per kept point combines its "
                        f"{p.chunks} partials in order, then the per-point "
                        "work"))


def _grouped_columns(kernel: Kernel, p: RowPlan) -> list[str]:
    """Pass 1 of split columns with a thread per (chunk, group of
    ``p.width`` consecutive kept points): a vector load per row, one
    accumulator per point of the group (``r<r>[tj_e]``)."""
    inner, _ = _names(kernel)
    reds = _reductions(kernel, 0)
    w, per_chunk = p.width, p.points // p.width
    groups = plan_groups(kernel, kernel.kept_axes, w)
    ops = kernel.stages[0].ops
    folds = [f"r{r}[tj_e] = " + _combine(red, f"r{r}[tj_e]", convert(
        f"s0v{red.value}", ops[red.value].dtype, red.acc_dtype)) + ";"
        for r, red in reds]

    def loop(fast):
        group = group_lines(kernel, groups, 0, "tj_q", inner, "flat",
                            extra=folds, fast=fast)
        return ["TJ_UNROLL", "for (long long j = tj_lo; j < tj_hi; ++j) {",
                *_indent(_unravel("j", kernel.reduce_axes, kernel.shape)
                         + group), "}"]
    body = [f"const long long tj_q = tj_item % {per_chunk}LL * {w}LL;",
            f"const long long tj_c = tj_item / {per_chunk}LL;",
            *_chunk_bounds("tj_c * tj_chunk"),
            *[f"{CTYPES[red.acc_dtype]} r{r}[{w}];" for r, red in reds],
            "TJ_UNROLL_ALL", f"for (int tj_e = 0; tj_e < {w}; ++tj_e) {{",
            *[f"  r{r}[tj_e] = {_identity(red)};" for r, red in reds], "}",
            *checked(stage_check(kernel, groups, (0,)), loop(True),
                     loop(False)),
            "TJ_UNROLL_ALL", f"for (int tj_e = 0; tj_e < {w}; ++tj_e) {{",
            *[f"  tj_part{r}[tj_c * {p.points}LL + tj_q + tj_e] = "
              f"r{r}[tj_e];" for r, _ in reds], "}"]
    return [*predicate_lines(kernel, groups),
            *_grid_stride("tj_item", per_chunk * p.chunks, body)]
