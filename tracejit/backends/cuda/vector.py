"""Loops over groups of consecutive points: 16-byte loads and stores.

Why this module exists: memory-bound kernels reach the copy floor on a GPU
only with wide accesses (one ``ld.global.v4`` instead of four scalar loads:
fewer instructions, fewer memory transactions in the queues).  A loop over
points (the whole iteration space of an elementwise kernel, or one row of
a row kernel) therefore walks *groups* of ``width`` consecutive points, and
each access of a buffer in the loop is one of:

* ``vector``: the group's points are consecutive elements of the buffer,
  the first one aligned to the group's bytes (``width * itemsize``, 16 at
  most).  One vector load or store, when a check made once at the start of
  the kernel passes: the pointer is aligned and, for the caller's arrays
  (run-time strides), the strides are C-contiguous.  Where the check fails
  (a transposed or offset view), the same group is read point by point
  through the run-time strides, so any layout stays correct.
* ``uniform``: every point of the group reads the same element (a row
  broadcast along the innermost axis): one load per group.
* ``scalar``: one access per point, through its own index.

Groups never change which points a thread handles, only how they are
read.  The check is uniform across the grid; ``checked`` branches on it
once around a whole loop (written twice), so that inside the loop nothing
stands between the loads of one group and those of the next, and the
compiler may issue them early.  Names: ``tj_v<k>`` says argument k passed
the check, ``tj_l<k>`` / ``tj_u<k>`` hold load op k's vector / uniform
value, ``tj_o<n>`` collects store n's values, ``tj_e`` is the point in the
group, ``tj_p`` the position of its first point.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from ...fusion.kernel import Kernel
from ...layout.indexing import Affine, IndexMap, Var, row_major_strides
from .render import BUFFER_CTYPES, _affine, _offset, _ops, convert

__all__ = ["Groups", "GroupCode", "checked", "classify", "elementwise",
           "elementwise_width", "group_code", "group_lines", "plan_groups",
           "predicate_lines", "prune", "stage_check", "unravel", "width_of"]

VECTOR_BYTES = 16   # the widest load a thread makes (ld.global.v4.f32)
MAX_WIDTH = 8       # at most this many points per group (bool buffers)


def _itemsize(dtype: str) -> int:
    return np.dtype(dtype).itemsize


def width_of(kernel: Kernel) -> int:
    """Points per group: 16 bytes of the widest element the kernel touches
    (4 for float32, 2 for float64), at most MAX_WIDTH."""
    sizes = [_itemsize(a.dtype) for a in kernel.args]
    return max(1, min(MAX_WIDTH, VECTOR_BYTES // max(sizes))) if sizes else 1


def _memory_strides(buf) -> tuple[int, ...]:
    """Static strides, or the C-contiguous ones a run-time-strided
    argument must have for its vector accesses (checked at run time)."""
    return buf.strides if buf.strides is not None else \
        row_major_strides(buf.shape)


def classify(kernel: Kernel, k: int, index: IndexMap, axes: tuple,
             width: int) -> str:
    """``vector``, ``uniform`` or ``scalar`` (see the module doc) for an
    access of argument ``k`` at ``index`` in a loop over groups of
    ``width`` consecutive points of ``axes`` (row-major)."""
    buf = kernel.args[k]
    if width < 2 or not axes or len(index.extents) != len(kernel.shape) or \
            len(index.exprs) != len(buf.shape):
        return "scalar"
    inner = axes[-1]
    whole_rows = kernel.shape[inner] % width == 0   # groups never straddle
    if not any(inner in e.variables() for e in index.exprs):
        return "uniform" if whole_rows else "scalar"
    total = Affine()
    for expr, stride in zip(index.exprs, _memory_strides(buf)):
        total = total + expr.scale(stride)
    coeffs = {}
    for atom, c in total.terms:
        if isinstance(atom, Var):
            coeffs[atom.index] = c
        elif atom.expr.variables() & set(axes) or c % width:
            return "scalar"
    if total.const % width:
        return "scalar"
    extents = [kernel.shape[a] for a in axes]
    flat = row_major_strides(tuple(extents))
    outside = all(c % width == 0 for a, c in coeffs.items() if a not in axes)
    contiguous = all(coeffs.get(a, 0) == flat[n] for n, a in enumerate(axes)
                     if kernel.shape[a] > 1)
    if outside and contiguous:
        return "vector"      # consecutive along the whole flat position
    if whole_rows and coeffs.get(inner) == 1 and all(
            c % width == 0 for a, c in coeffs.items() if a != inner):
        return "vector"      # consecutive within each row of the group
    return "scalar"


@dataclass(frozen=True)
class Groups:
    """How the row loops of ``stages`` walk groups of ``width`` points of
    ``axes``, and the class of each access (by stage, op or store)."""

    width: int
    axes: tuple[int, ...]
    loads: dict = field(default_factory=dict)    # (stage, op) -> class
    stores: dict = field(default_factory=dict)   # (stage, store) -> class

    @property
    def vectorized(self) -> bool:
        return "vector" in self.loads.values() or \
            "vector" in self.stores.values()

    def vector_args(self, kernel: Kernel) -> list[int]:
        """Arguments with a vector access: they get a run-time check."""
        found = {kernel.stages[s].ops[k].arg
                 for (s, k), c in self.loads.items() if c == "vector"}
        found |= {kernel.stages[s].stores[n].arg
                  for (s, n), c in self.stores.items() if c == "vector"}
        return sorted(found)


def plan_groups(kernel: Kernel, axes: tuple, width: int | None = None
                ) -> Groups:
    """Classify every access of every stage's row loop (see classify);
    ``width`` defaults to width_of(kernel).  A plan without a vector access
    has width 1 (plain loops are rendered then)."""
    width = width_of(kernel) if width is None else width
    loads, stores = {}, {}
    for s, st in enumerate(kernel.stages):
        for k, op in enumerate(st.ops):
            if op.op == "load":
                loads[(s, k)] = classify(kernel, op.arg, op.index, axes, width)
        for n, x in enumerate(st.stores):
            stores[(s, n)] = classify(kernel, x.arg, x.index, axes, width)
    groups = Groups(width, tuple(axes), loads, stores)
    if not groups.vectorized:
        return Groups(1, tuple(axes),
                      {key: "scalar" for key in loads},
                      {key: "scalar" for key in stores})
    return groups


def predicate_lines(kernel: Kernel, groups: Groups) -> list[str]:
    """``const bool tj_v<k>`` per argument with a vector access: its
    pointer is aligned to the group's bytes and, for run-time strides,
    they are the C-contiguous ones its accesses were classified with."""
    lines = []
    slots = kernel.stride_slots()
    for k in groups.vector_args(kernel):
        buf = kernel.args[k]
        conds = [f"((unsigned long long)a{k} % "
                 f"{groups.width * _itemsize(buf.dtype)}ULL) == 0"]
        if buf.strides is None:
            rm = row_major_strides(buf.shape)
            conds += [f"strides[{slots[k] + j}] == {rm[j]}LL"
                      for j, n in enumerate(buf.shape) if n > 1]
        lines.append(f"const bool tj_v{k} = " + " && ".join(conds) + ";")
    if lines:
        lines.insert(0, "// 16-byte accesses where the pointers and strides "
                        "allow them (uniform across the grid)")
    return lines


def unravel(pos: str, axes: tuple, shape, prefix: str = "i") -> list[str]:
    """Declare ``<prefix><a>`` for each of ``axes`` from the row-major
    position ``pos`` over those axes (quotients ``<prefix>q<a>``)."""
    lines, rest = [], pos
    for n in range(len(axes) - 1, -1, -1):
        a, extent = axes[n], shape[axes[n]]
        if n == 0:
            lines.append(f"const long long {prefix}{a} = {rest};")
        elif extent == 1:
            lines.append(f"const long long {prefix}{a} = 0;")
        else:
            lines.append(f"const long long {prefix}{a} = {rest} % "
                         f"{extent}LL;")
            lines.append(f"const long long {prefix}q{a} = {rest} / "
                         f"{extent}LL;")
            rest = f"{prefix}q{a}"
    return lines


def _static_offset(kernel: Kernel, k: int, index: IndexMap, axes: tuple,
                   names: tuple) -> str:
    """The offset of a vector access at the group's first point (``tj_p``
    over ``axes``), with the C-contiguous strides the run-time check
    confirmed (cheaper than multiplying run-time ones)."""
    buf = kernel.args[k]
    total = Affine()
    for expr, stride in zip(index.exprs, _memory_strides(buf)):
        total = total + expr.scale(stride)
    flat = row_major_strides(tuple(kernel.shape[a] for a in axes))
    if all(total.coeff(Var(a)) == flat[n] for n, a in enumerate(axes)
           if kernel.shape[a] > 1):   # consecutive along the position
        rest = Affine(tuple((atom, c) for atom, c in total.terms
                            if not (isinstance(atom, Var)
                                    and atom.index in axes)), total.const)
        return "tj_p" if rest == Affine() else \
            f"tj_p + {_affine(rest, names)}"
    return _affine(total, names)


def _vtype(dtype: str, width: int) -> str:
    return f"tj_vec<{BUFFER_CTYPES[dtype]}, {width}>"


_WORD = re.compile(r"[A-Za-z_]\w*")


def prune(decls: list[str], rest: list[str]) -> list[str]:
    """The declarations (``const T name = ...;``) of ``decls`` that
    ``rest`` uses, directly or through a kept declaration."""
    needed = set(_WORD.findall(" ".join(rest)))
    kept = []
    for line in reversed(decls):
        name, _, value = line.partition(" = ")
        if name.split()[-1] in needed:
            kept.append(line)
            needed |= set(_WORD.findall(value))
    return kept[::-1]


def _each_point(lines: list[str], width: int,
                decls: list[str] = ()) -> list[str]:
    lines = prune(list(decls), lines) + lines
    if width == 1:
        return ["{", *["  " + x for x in lines], "}"]
    return ["TJ_UNROLL_ALL", f"for (int tj_e = 0; tj_e < {width}; ++tj_e) {{",
            *["  " + x for x in lines], "}"]


@dataclass
class GroupCode:
    """One group's code in three parts, so that a thread that walks
    several groups can issue all their loads before any arithmetic:
    ``decls`` (type, name) of the values loaded once per group, ``loads``
    the lines filling them, ``body`` the points and the vector stores.
    ``start`` declares ``tj_p`` and the group's axis names (each part
    takes what it uses)."""

    decls: list
    loads: list
    body: list
    start: list

    def lines(self) -> list[str]:
        """The group on its own (one set of load values)."""
        rest = [f"{t} {n};" for t, n in self.decls] + self.loads + self.body
        return prune(self.start, rest) + rest

    def part(self, lines: list[str]) -> list[str]:
        return prune(self.start, lines) + lines


def group_code(kernel: Kernel, groups: Groups, s: int, pos: str,
               names: tuple, point: str, replace: dict | None = None,
               extra: list[str] = (), skip_stores=(),
               slot: str | None = None, fast: bool | None = None
               ) -> GroupCode:
    """One group of stage ``s``'s row loop, its first point at position
    ``pos`` over ``groups.axes``; inside, point ``tj_e`` of the group is at
    position ``point`` (declared) with axis names ``i<a>``.

    ``names``: the C names of the other axes.  ``replace``: load op ->
    C expression that serves it instead (row copies, registers).
    ``extra``: lines per point after the ops (folds, copies).
    ``skip_stores``: stores that ``extra`` makes instead.  ``slot``: index
    of this group in arrays of load values (declared by the caller).
    ``fast``: None checks ``tj_v<k>`` at each vector access; True makes
    them without a check (the caller checked: see stage_check), False
    reads and writes point by point."""
    w, axes, shape = groups.width, groups.axes, kernel.shape
    stage = kernel.stages[s]
    at = f"[{slot}]" if slot else ""
    group_names = tuple(f"g{a}" if a in axes else names[a]
                        for a in range(len(shape)))
    point_names = tuple(f"i{a}" if a in axes else names[a]
                        for a in range(len(shape)))
    lane = "tj_e" if w > 1 else "0"
    at_point = [f"const long long {point} = tj_p + {lane};",
                *unravel(point, axes, shape)]
    usable = ("uniform",) if fast is False else ("vector", "uniform")
    wide = [(k, op) for k, op in enumerate(stage.ops) if op.op == "load"
            and (not replace or k not in replace)
            and groups.loads.get((s, k)) in usable]
    wide_stores = [n for n, x in enumerate(stage.stores)
                   if n not in skip_stores and fast is not False
                   and groups.stores.get((s, n)) == "vector"]
    when = (lambda k: "") if fast else (lambda k: f"if (tj_v{k}) ")
    decls, head, loads = [], [], dict(replace or {})
    for k, op in wide:
        buf = kernel.args[op.arg]
        if groups.loads[(s, k)] == "uniform":
            decls.append((BUFFER_CTYPES[buf.dtype], f"tj_u{k}"))
            head.append(f"tj_u{k}{at} = a{op.arg}["
                        f"{_offset(kernel, op.arg, op.index, group_names)}];")
            raw = f"tj_u{k}{at}"
        else:
            vt = _vtype(buf.dtype, w)
            decls.append((vt, f"tj_l{k}"))
            head.append(f"{when(op.arg)}tj_l{k}{at} = *(const {vt}*)"
                        f"(a{op.arg} + "
                        f"{_static_offset(kernel, op.arg, op.index, axes, group_names)});")
            if not fast:
                head += ["else {", *["  " + x for x in _each_point(
                    [f"tj_l{k}{at}.v[tj_e] = a{op.arg}["
                     f"{_offset(kernel, op.arg, op.index, point_names)}];"],
                    w, at_point)], "}"]
            raw = f"tj_l{k}{at}.v[tj_e]"
        if buf.dtype == "bool":
            raw = f"({raw} != 0)"
        loads[k] = convert(raw, buf.dtype, op.dtype)
    outs = [f"{_vtype(kernel.args[stage.stores[n].arg].dtype, w)} tj_o{n};"
            for n in wide_stores]
    body = [*_ops(kernel, s, False, point_names, loads), *extra]
    tail = []
    for n, x in enumerate(stage.stores):
        if n in skip_stores:
            continue
        buf = kernel.args[x.arg]
        value = convert(f"s{s}v{x.value}", stage.ops[x.value].dtype,
                        buf.dtype)
        if n in wide_stores:
            body.append(f"tj_o{n}.v[tj_e] = {value};")
            vt = _vtype(buf.dtype, w)
            tail.append(f"{when(x.arg)}*({vt}*)(a{x.arg} + "
                        f"{_static_offset(kernel, x.arg, x.index, axes, group_names)})"
                        f" = tj_o{n};")
            if not fast:
                tail += ["else {", *["  " + y for y in _each_point(
                    [f"a{x.arg}[{_offset(kernel, x.arg, x.index, point_names)}]"
                     f" = tj_o{n}.v[tj_e];"], w, at_point)], "}"]
        else:
            body.append(f"a{x.arg}[{_offset(kernel, x.arg, x.index, point_names)}]"
                        f" = {value};")
    start = [f"const long long tj_p = {pos};",
             *unravel("tj_p", axes, shape, "g")]
    return GroupCode(decls, head, outs + _each_point(body, w, at_point) + tail,
                     start)


def group_lines(kernel: Kernel, groups: Groups, s: int, pos: str,
                names: tuple, point: str, replace: dict | None = None,
                extra: list[str] = (), skip_stores=(),
                fast: bool | None = None) -> list[str]:
    """group_code's lines for a group on its own."""
    return group_code(kernel, groups, s, pos, names, point, replace, extra,
                      skip_stores, fast=fast).lines()


def stage_check(kernel: Kernel, groups: Groups, stages, replace=()) -> str:
    """The run-time condition under which every vector access of
    ``stages`` may be made unchecked ("" where there is none).  ``replace``:
    (stage, op) pairs served from elsewhere (not read from memory)."""
    args = {kernel.stages[s].ops[k].arg for (s, k), c in groups.loads.items()
            if c == "vector" and s in stages and (s, k) not in replace}
    args |= {kernel.stages[s].stores[n].arg
             for (s, n), c in groups.stores.items()
             if c == "vector" and s in stages}
    return " && ".join(f"tj_v{k}" for k in sorted(args))


def checked(condition: str, fast: list[str], slow: list[str]) -> list[str]:
    """``fast`` where ``condition`` holds, else ``slow`` (one uniform
    branch around whole loops: inside them, loads of later groups may be
    issued before earlier groups' arithmetic)."""
    if not condition:
        return slow
    return [f"if ({condition}) {{  // aligned and C-contiguous: 16-byte "
            "accesses", *["  " + x for x in fast],
            "} else {  // point by point", *["  " + x for x in slow], "}"]


# ---- elementwise kernels ----------------------------------------------------

GLOBAL_THREAD = "(long long)blockIdx.x * blockDim.x + threadIdx.x"
GRID_THREADS = "(long long)blockDim.x * gridDim.x"


def grid_stride(var: str, start: str, count: str, body: list[str]
                ) -> list[str]:
    return [f"for (long long {var} = {start}; {var} < {count};",
            f"     {var} += {GRID_THREADS}) {{",
            *["  " + x for x in body], "}"]


def elementwise_width(kernel: Kernel) -> int:
    """Points per thread and loop turn of an elementwise kernel: its
    group width, or 1 where elementwise() renders the plain loop."""
    groups = plan_groups(kernel, tuple(range(len(kernel.shape))))
    count = math.prod(kernel.shape)
    return groups.width if groups.vectorized and count >= groups.width \
        else 1


def elementwise(kernel: Kernel) -> list[str] | None:
    """The grid-stride loop over groups of an elementwise kernel, then the
    points left over (fewer than a group); None where no access is a
    vector one (the plain loop is as good)."""
    axes = tuple(range(len(kernel.shape)))
    count = math.prod(kernel.shape)
    if elementwise_width(kernel) == 1:
        return None
    groups = plan_groups(kernel, axes)
    w = groups.width
    full = count // w
    lines = predicate_lines(kernel, groups)
    lines.append(f"// groups of {w} consecutive points")
    loops = [grid_stride("tj_g", GLOBAL_THREAD, f"{full}LL", group_lines(
        kernel, groups, 0, f"tj_g * {w}LL", (None,) * len(axes), "flat",
        fast=fast)) for fast in (True, False)]
    lines += checked(stage_check(kernel, groups, (0,)), *loops)
    if count % w:
        names = tuple(f"i{a}" for a in axes)
        body = _ops(kernel, 0, False, names)
        for x in kernel.stages[0].stores:
            value = convert(f"s0v{x.value}", kernel.stages[0].ops[x.value]
                            .dtype, kernel.args[x.arg].dtype)
            body.append(f"a{x.arg}[{_offset(kernel, x.arg, x.index, names)}]"
                        f" = {value};")
        body = prune(unravel("flat", axes, kernel.shape), body) + body
        lines.append(f"// the last {count % w} point(s)")
        lines += grid_stride("flat", f"{full * w}LL + {GLOBAL_THREAD}",
                             f"{count}LL", body)
    return lines
