"""Tests of the CUDA C renderer (tracejit.backends.cuda.render).

Three layers:

* text checks on hand-built kernels (signature, loops, no fast math, every
  scalar op renders for every dtype it applies to);
* the same source compiled by the host C++ compiler against a small shim
  that defines CUDA's keywords, run as one thread and compared with numpy
  (skipped without g++): this checks the scalar semantics without a GPU;
* ``cuda``-marked tests that compile with NVRTC through CuPy and launch on
  the GPU (skipped without CuPy or a GPU).
"""
from __future__ import annotations

import ast
import ctypes
import dataclasses
import itertools
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

import tracejit
from conftest import cupy_or_skip

from tracejit.backends.cuda import render_kernel, render_module
from tracejit.backends.cuda import executable as cuda_exec
from tracejit.backends.cuda import nvrtc
from tracejit.backends.cuda import render as cuda_render
from tracejit.fusion.kernel import (SCALAR_OPS, BufferArg, Kernel, Reduction,
                                    ScalarOp, Stage, Store)
from tracejit.fusion.program import KernelStep
from tracejit.layout.indexing import IndexMap, row_major_strides, var

FLOATS = ("float32", "float64")
INTS = ("int32", "int64")
ALL = ("bool",) + INTS + FLOATS
BITWISE = ("bool",) + INTS
# The dtypes each scalar op applies to (the operands' dtype).
APPLIES = {
    "add": ALL, "sub": ALL, "mul": ALL, "div": FLOATS,
    "floordiv": INTS + FLOATS, "mod": INTS + FLOATS, "pow": INTS + FLOATS,
    "max": ALL, "min": ALL, "neg": ALL, "abs": ALL, "sign": ALL,
    **{op: FLOATS for op in ("exp", "log", "sqrt", "tanh", "sin", "cos",
                             "expm1", "log1p")},
    **{op: ALL for op in ("lt", "le", "eq", "ne", "gt", "ge")},
    "and": BITWISE, "or": BITWISE, "xor": BITWISE, "not": BITWISE,
    "shl": INTS, "shr": INTS, "select": ALL, "convert": ALL, "copy": ALL,
}
COMPARES = ("lt", "le", "eq", "ne", "gt", "ge")
FAST_MATH = ("__expf", "__exp10f", "__logf", "__log2f", "__log10f",
             "__sinf", "__cosf", "__tanf", "__sincosf", "__powf",
             "__fdividef", "__fdiv_", "__frcp", "__fsqrt", "__saturatef",
             "use_fast_math", "ftz=true", "fmad=true")


# --------------------------------------------------------------------------
# Kernel builders.

def one_stage(name, shape, args, ops, stores):
    """A kernel without reduce axes: one stage run at every point."""
    return Kernel(name, shape, args, (Stage(ops, stores=stores),))


def elementwise(name, op, in_dtypes, out_dtype, shape=(7,), **extra):
    """out = op(x0, x1, ...) over ``shape``; inputs have run-time strides,
    the output static row-major ones."""
    idx = IndexMap.identity(shape)
    n = len(in_dtypes)
    args = tuple(BufferArg(f"x{k}", dt, shape, None)
                 for k, dt in enumerate(in_dtypes))
    args += (BufferArg("out", out_dtype, shape, row_major_strides(shape),
                       True),)
    ops = tuple(ScalarOp("load", dt, arg=k, index=idx)
                for k, dt in enumerate(in_dtypes))
    ops += (ScalarOp(op, out_dtype, tuple(range(n)), **extra),)
    return one_stage(name, shape, args, ops, (Store(n, n, idx),))


def op_kernel(op, dtype, dst=None):
    """A kernel applying scalar op ``op`` to operands of ``dtype``."""
    name = f"{op}_{dtype}" + (f"_{dst}" if dst else "")
    if op == "select":
        return elementwise(name, op, ("bool", dtype, dtype), dtype)
    if op == "convert":
        return elementwise(name, op, (dtype,), dst)
    out = "bool" if op in COMPARES else dtype
    return elementwise(name, op, (dtype,) * SCALAR_OPS[op], out)


def add_kernel():
    """float32 out[4,5] = x[4,5] + y[4,5], both inputs run-time strided."""
    return elementwise("add_f32", "add", ("float32", "float32"), "float32",
                       shape=(4, 5))


def broadcast_kernel():
    """out[4,5] = x[4,5] * b[1,5]: b is read through a zero-stride map."""
    shape, idx = (4, 5), IndexMap.identity((4, 5))
    bmap = IndexMap.identity((1, 5)).broadcast(shape, (0, 1))
    args = (BufferArg("x", "float32", shape, None),
            BufferArg("b", "float32", (1, 5), (5, 1)),
            BufferArg("out", "float32", shape, (5, 1), True))
    ops = (ScalarOp("load", "float32", arg=0, index=idx),
           ScalarOp("load", "float32", arg=1, index=bmap),
           ScalarOp("mul", "float32", (0, 1)))
    return one_stage("bcast_mul", shape, args, ops, (Store(2, 2, idx),))


def reshape_kernel():
    """out[6] = x[2,3].reshape(6): the map has FloorDiv and Mod atoms."""
    xmap = IndexMap.identity((2, 3)).reshape((6,))
    args = (BufferArg("x", "int64", (2, 3), None),
            BufferArg("out", "int64", (6,), (1,), True))
    ops = (ScalarOp("load", "int64", arg=0, index=xmap),)
    return one_stage("reshape_copy", (6,), args, ops,
                     (Store(1, 0, IndexMap.identity((6,))),))


def rowmean_kernel():
    """mean and max over axis 1 of a run-time-strided float32 [4,5]."""
    shape = (4, 5)
    out_map = IndexMap(shape, (var(0),))
    args = (BufferArg("x", "float32", shape, None),
            BufferArg("mean", "float32", (4,), (1,), True),
            BufferArg("max", "float32", (4,), (1,), True))
    ops = (ScalarOp("load", "float32", arg=0, index=IndexMap.identity(shape)),)
    after = (ScalarOp("reduced", "float32", (0,)),
                ScalarOp("const", "float32", value=5),
                ScalarOp("div", "float32", (0, 1)),
                ScalarOp("reduced", "float32", (1,)))
    stage = Stage(ops, (Reduction(0, "add", "float64"),
                        Reduction(0, "max", "float32")),
                  after=after,
                  after_stores=(Store(1, 2, out_map), Store(2, 3, out_map)))
    return Kernel("rowmean", shape, args, (stage,), reduce_axes=(1,))


def int_reduce_kernel():
    """Reduce int32 [3,4,2] over axes (0, 2): sum (int64 acc) plus a bias,
    min, and wrapping product.  One store uses a map over the kept axes."""
    shape = (3, 4, 2)
    full_map = IndexMap(shape, (var(1),))
    kept_map = IndexMap((4,), (var(0),))
    args = (BufferArg("x", "int32", shape, None),
            BufferArg("bias", "int64", (4,), (1,)),
            BufferArg("sum", "int64", (4,), (1,), True),
            BufferArg("min", "int32", (4,), (1,), True),
            BufferArg("prod", "int32", (4,), (1,), True))
    ops = (ScalarOp("load", "int32", arg=0, index=IndexMap.identity(shape)),)
    after = (ScalarOp("reduced", "int64", (0,)),
                ScalarOp("reduced", "int32", (1,)),
                ScalarOp("reduced", "int32", (2,)),
                ScalarOp("load", "int64", arg=1, index=full_map),
                ScalarOp("add", "int64", (0, 3)))
    stage = Stage(ops, (Reduction(0, "add", "int64"),
                        Reduction(0, "min", "int32"),
                        Reduction(0, "mul", "int32")),
                  after=after,
                  after_stores=(Store(2, 4, full_map), Store(3, 1, kept_map),
                                Store(4, 2, full_map)))
    return Kernel("int_reduce", shape, args, (stage,), reduce_axes=(0, 2))


def any_count_kernel():
    """Full reduction of bool [6] to 0-d: any (max) and count (add)."""
    shape = (6,)
    scalar = IndexMap(shape, ())
    args = (BufferArg("x", "bool", shape, None),
            BufferArg("any", "bool", (), (), True),
            BufferArg("count", "int64", (), (), True))
    ops = (ScalarOp("load", "bool", arg=0, index=IndexMap.identity(shape)),
           ScalarOp("convert", "int64", (0,)))
    after = (ScalarOp("reduced", "bool", (0,)),
                ScalarOp("reduced", "int64", (1,)))
    stage = Stage(ops, (Reduction(0, "max", "bool"),
                        Reduction(1, "add", "int64")),
                  after=after,
                  after_stores=(Store(1, 0, scalar), Store(2, 1, scalar)))
    return Kernel("any_count", shape, args, (stage,), reduce_axes=(0,))


def softmax_kernel(shape=(4, 5)):
    """Row softmax of a run-time-strided float32 x in three stages:

    0. m = max(x)                      (after: s0p0 = m)
    1. e = exp(x - m), stored to a temp; s = sum(e) in float64
                                       (after: lse = log(s) + m, stored)
    2. out = temp / s

    Stage 1's row loop reads stage 0's reduction (``reduced``), its after
    list a value of stage 0's (``point``); stage 2 reads a temp that stage
    1 wrote."""
    rows, cols = shape
    idx, row_map = IndexMap.identity(shape), IndexMap(shape, (var(0),))
    args = (BufferArg("x", "float32", shape, None),
            BufferArg("e", "float32", shape, row_major_strides(shape), True),
            BufferArg("out", "float32", shape, row_major_strides(shape), True),
            BufferArg("lse", "float32", (rows,), (1,), True))
    f32 = "float32"
    stage0 = Stage(ops=(ScalarOp("load", f32, arg=0, index=idx),),
                   reductions=(Reduction(0, "max", f32),),
                   after=(ScalarOp("reduced", f32, (0,)),))
    stage1 = Stage(ops=(ScalarOp("load", f32, arg=0, index=idx),
                        ScalarOp("reduced", f32, (0,)),
                        ScalarOp("sub", f32, (0, 1)),
                        ScalarOp("exp", f32, (2,))),
                   reductions=(Reduction(3, "add", "float64"),),
                   stores=(Store(1, 3, idx),),
                   after=(ScalarOp("reduced", f32, (1,)),
                          ScalarOp("log", f32, (0,)),
                          ScalarOp("point", f32, (0, 0)),
                          ScalarOp("add", f32, (1, 2))),
                   after_stores=(Store(3, 3, row_map),))
    stage2 = Stage(ops=(ScalarOp("load", f32, arg=1, index=idx),
                        ScalarOp("reduced", f32, (1,)),
                        ScalarOp("div", f32, (0, 1))),
                   stores=(Store(2, 2, idx),))
    return Kernel("softmax3", shape, args, (stage0, stage1, stage2),
                  reduce_axes=(1,))


def softmax_reference(x):
    """numpy's answers for softmax_kernel: (e, out, lse)."""
    m = x.max(axis=1)
    e = np.exp(x - m[:, None])
    s = e.astype(np.float64).sum(axis=1).astype(np.float32)
    return e, e / s[:, None], np.log(s) + m


def empty_kernel():
    return elementwise("empty_neg", "neg", ("float64",), "float64",
                       shape=(0, 5))


# --------------------------------------------------------------------------
# Text checks.

def test_applies_covers_every_scalar_op():
    assert set(APPLIES) == set(SCALAR_OPS)


def test_signature_restrict_and_strides():
    src = render_kernel(add_kernel())
    assert ('extern "C" __global__ void add_f32('
            "const float* __restrict__ a0, const float* __restrict__ a1, "
            "float* __restrict__ a2, "
            "const long long* __restrict__ strides)") in src
    # run-time strides: two slots per input, in argument order (read
    # through them point by point where they are not C-contiguous)
    assert "const float s0v0 = a0[strides[0] * i0 + strides[1] * i1];" in src
    assert "const float s0v1 = a1[strides[2] * i0 + strides[3] * i1];" in src
    assert "a2[5LL * i0 + i1] = s0v2;" in src  # static output strides folded


def test_groups_of_four_float32_with_a_checked_fast_path():
    src = render_kernel(add_kernel())
    # 16-byte accesses when the pointers are aligned and the run-time
    # strides C-contiguous; a uniform branch, checked once per thread
    assert ("const bool tj_v0 = ((unsigned long long)a0 % 16ULL) == 0 && "
            "strides[0] == 5LL && strides[1] == 1LL;") in src
    assert "const bool tj_v2 = ((unsigned long long)a2 % 16ULL) == 0;" in src
    # one uniform branch around two loops: 16-byte accesses, or point by
    # point (loads of later groups may then be issued early in both)
    assert "if (tj_v0 && tj_v1 && tj_v2) {" in src
    assert "tj_l0 = *(const tj_vec<float, 4>*)(a0 + tj_p);" in src
    assert "const float s0v0 = tj_l0.v[tj_e];" in src
    assert "*(tj_vec<float, 4>*)(a2 + tj_p) = tj_o0;" in src
    assert "} else {  // point by point" in src
    # 7 points: one group, then the 3 left over one by one
    src = render_kernel(op_kernel("neg", "float32"))
    assert "tj_g < 1LL;" in src and "// the last 3 point(s)" in src
    assert "for (long long flat = 4LL + (long long)blockIdx.x" in src
    # float64: groups of two; a broadcast row: one load per group
    src = render_kernel(elementwise("d", "add", ("float64",) * 2, "float64",
                                    shape=(8,)))
    assert "tj_vec<double, 2>" in src
    src = render_kernel(broadcast_kernel())   # b[1, 5]: 5 is not a multiple
    assert "tj_l1" not in src and "tj_u1" not in src


def test_zero_d_and_tiny_kernels_stay_plain_loops():
    for shape in [(), (1,), (3,)]:
        src = render_kernel(elementwise("z", "neg", ("float32",), "float32",
                                        shape=shape))
        assert "tj_vec<" not in src.split("void z(")[1]


def test_views_that_cannot_be_vector_loaded_are_read_point_by_point():
    # x[::-1] and an offset slice: no group of x is aligned and ascending
    shape = (8,)
    rev = IndexMap.identity(shape).slice((7,), (-1,), shape)
    args = (BufferArg("x", "float32", shape, (1,)),
            BufferArg("out", "float32", shape, (1,), True))
    k = one_stage("rev", shape, args,
                  (ScalarOp("load", "float32", arg=0, index=rev),),
                  (Store(1, 0, IndexMap.identity(shape)),))
    src = render_kernel(k)
    assert "tj_l0" not in src and "const float s0v0 = a0[" in src
    assert "*(tj_vec<float, 4>*)(a1 + tj_p) = tj_o0;" in src


def test_buffer_types():
    k = elementwise("types", "select", ("bool", "int64", "int64"), "int64")
    src = render_kernel(k)
    assert "const unsigned char* __restrict__ a0" in src
    assert "const long long* __restrict__ a1" in src
    assert "long long* __restrict__ a3" in src
    k = op_kernel("lt", "int32")
    assert "unsigned char* __restrict__ a2" in render_kernel(k)


def test_grid_stride_loop_unravels_iteration_space():
    src = render_kernel(add_kernel())   # 20 points: 5 groups of 4
    assert ("for (long long tj_g = (long long)blockIdx.x * blockDim.x"
            " + threadIdx.x; tj_g < 5LL;") in src
    assert "tj_g += (long long)blockDim.x * gridDim.x" in src
    assert "const long long tj_p = tj_g * 4LL;" in src
    assert "const long long flat = tj_p + tj_e;" in src
    assert "const long long i1 = flat % 5LL;" in src
    assert "const long long i0 = iq1;" in src
    src = render_kernel(reshape_kernel())   # x's map is not affine
    assert "const long long s0v0 = a0[" in src


def test_broadcast_load_uses_zero_stride():
    src = render_kernel(broadcast_kernel())
    assert "const float s0v1 = a1[i1];" in src  # no i0 term: stride 0
    assert "__fmul_rn(s0v0, s0v1)" in src


def test_reshape_map_renders_division_and_modulo():
    src = render_kernel(reshape_kernel())
    assert "/ 3LL" in src and "% 3LL" in src


def test_reduction_structure():
    # rows of 5: one warp per row, lanes combined by shuffles
    src = render_kernel(rowmean_kernel())
    assert "__launch_bounds__(256) void rowmean(" in src
    assert "for (long long row = tj_first; row < 4LL; row += tj_teams) {" \
        in src
    assert "double r0 = 0.0;" in src
    assert "float r1 = (-TJ_INF_F);" in src
    assert "for (long long j = tj_lane; j < 5LL; j += tj_team) {" in src
    assert "r0 = (r0 + ((double)s0v0));" in src
    assert "r1 = tj_max(r1, s0v0);" in src
    assert "const double t0 = tj_shfl_xor(r0, o);" in src
    assert "r0 = (r0 + t0);" in src
    assert "r1 = tj_shfl(r1, 0);" in src     # every lane takes lane 0's
    assert "const float s0p0 = ((float)r0);" in src
    assert "const float s0p2 = (s0p0 / s0p1);" in src
    assert "a1[i0] = s0p2;" in src and "a2[i0] = s0p3;" in src
    # the after list comes after the combine; one lane stores
    assert src.index("const float s0p0") > src.index("tj_shfl(r1, 0)")
    assert src.index("if (tj_lane == 0) {") < src.index("a1[i0] = s0p2;")


def test_reduction_over_several_axes_and_kept_axis_maps():
    src = render_kernel(int_reduce_kernel())
    assert "for (long long j = 0; j < 6LL; ++j) {" in src
    assert "const long long i2 = j % 2LL;" in src
    assert "const long long i0 = q2;" in src
    assert "const long long i1 = flat;" in src
    assert "r0 = tj_add(r0, ((long long)s0v0));" in src
    assert "int r1 = 2147483647;" in src and "int r2 = 1;" in src
    assert "a3[i1] = s0p1;" in src  # the kept-axes map, renumbered


def test_staged_kernel_structure():
    src = render_kernel(softmax_kernel())
    body = src[src.index("void softmax3("):]
    # a warp of 32 keeps x in registers; any other team, in shared memory
    assert "if (tj_team == 32) {  // the planned team: rows in registers" \
        in body
    regs = body[:body.index("} else {  // any other team: row storage")]
    assert "float tj_r0[1];" in regs and "tj_r0[tj_k] = s0v0;" in regs
    assert "const float s1v0 = tj_r0[tj_k];" in regs and "c0[" not in regs
    body = body[len(regs):]
    loop = "for (long long j = tj_lane; j < 5LL; j += tj_team) {"
    assert body.count(loop) == 3
    assert body.count("row < 4LL;") == 1  # one warp per row, all stages
    order = ["// stage 0", "float r0 = (-TJ_INF_F);",
             "c0[j] = s0v0;",                # x kept in shared memory
             "r0 = tj_max(r0, s0v0);",
             "const float s0p0 = r0;", "// stage 1", "double r1 = 0.0;",
             "const float s1v0 = c0[j];",    # ... and read from there
             "const float s1v1 = r0;", "const float s1v3 = expf(s1v2);",
             "r1 = (r1 + ((double)s1v3));", "a1[5LL * i0 + i1] = s1v3;",
             "const float s1p0 = ((float)r1);", "const float s1p2 = s0p0;",
             "a3[i0] = s1p3;", "// stage 2", "const float s2v0 = a1[",
             "const float s2v1 = ((float)r1);", "a2[5LL * i0 + i1] = s2v2;"]
    at = [body.index(text) for text in order]
    assert at == sorted(at), order
    # each stage's row loop closes before its after list and the next stage
    assert body.index("}", at[6]) < at[12]
    # an output a later stage reads back is never copied
    assert "a1[5LL * i0 + i1];" not in body.replace("= a1[", "")


def _restage(kernel, s, **changes):
    stages = list(kernel.stages)
    stages[s] = dataclasses.replace(stages[s], **changes)
    return dataclasses.replace(kernel, stages=tuple(stages))


def test_values_used_before_they_exist_are_rejected():
    k = softmax_kernel()
    # stage 1's row loop reading its own, unfinished, reduction
    ops = k.stages[1].ops[:1] + (ScalarOp("reduced", "float32", (1,)),) \
        + k.stages[1].ops[2:]
    with pytest.raises(ValueError, match="not finished"):
        render_kernel(_restage(k, 1, ops=ops))
    # stage 0's after list reading a point value of its own stage
    after = (ScalarOp("point", "float32", (0, 0)),)
    with pytest.raises(ValueError, match="not computed before"):
        render_kernel(_restage(k, 0, after=after))
    # a point value that does not exist
    after = k.stages[1].after[:2] + (ScalarOp("point", "float32", (0, 7)),) \
        + k.stages[1].after[3:]
    with pytest.raises(ValueError, match="not computed before"):
        render_kernel(_restage(k, 1, after=after))


def test_kernel_without_reduce_axes_has_one_plain_stage():
    k = add_kernel()
    for bad in (dataclasses.replace(k, stages=k.stages * 2),
                _restage(k, 0, after=(ScalarOp("const", "int32", value=1),)),
                _restage(k, 0, reductions=(Reduction(0, "add", "float32"),))):
        with pytest.raises(ValueError, match="one stage"):
            render_kernel(bad)


def test_store_through_a_reduced_axis_is_rejected():
    k = rowmean_kernel()
    bad = _restage(k, 0, after_stores=(
        Store(1, 2, IndexMap(k.shape, (var(1),))),))
    with pytest.raises(ValueError, match="out of scope"):
        render_kernel(bad)


def test_store_to_an_input_is_rejected():
    k = softmax_kernel()
    bad = _restage(k, 2, stores=(Store(0, 2, IndexMap.identity(k.shape)),))
    with pytest.raises(ValueError, match="stores to an input"):
        render_kernel(bad)


def test_full_reduction_to_a_scalar():
    src = render_kernel(any_count_kernel())
    assert "bool r0 = false;" in src and "r0 = (r0 || s0v0);" in src
    assert "a1[0LL] = s0p0;" in src and "a2[0LL] = s0p1;" in src
    assert "row < 1LL;" in src    # one row: the whole array
    # every lane shuffles: never inside a short-circuiting || or &&
    assert "const bool t0 = tj_shfl_xor(r0, o);" in src
    assert not [line for line in src.splitlines()
                if "tj_shfl" in line and ("||" in line or "&&" in line)]


def test_convert_rendering():
    assert "tj_to_int32(s0v0)" in render_kernel(op_kernel("convert", "float32",
                                                        "int32"))
    assert "(s0v0 != 0)" in render_kernel(op_kernel("convert", "float64",
                                                  "bool"))
    assert "((double)s0v0)" in render_kernel(op_kernel("convert", "int64",
                                                     "float64"))


def test_integer_floordiv_uses_the_trap_free_helper():
    src = render_kernel(op_kernel("floordiv", "int32"))
    assert "const int s0v2 = tj_floordiv(s0v0, s0v1);" in src
    assert "int tj_floordiv(int a, int b)" in src


@pytest.mark.parametrize("op", sorted(SCALAR_OPS))
def test_every_scalar_op_renders_for_each_dtype(op):
    for dtype in APPLIES[op]:
        targets = ALL if op == "convert" else (None,)
        for dst in targets:
            src = render_kernel(op_kernel(op, dtype, dst))
            assert f"void {op}_{dtype}" in src


@pytest.mark.parametrize("op, dtype", [
    ("exp", "int32"), ("sqrt", "bool"), ("div", "int64"), ("and", "float32"),
    ("shl", "float64"), ("shr", "bool"), ("not", "float32"),
    ("floordiv", "bool")])
def test_undefined_combinations_raise(op, dtype):
    with pytest.raises(ValueError, match="not defined"):
        render_kernel(op_kernel(op, dtype))


def test_no_fast_math_anywhere():
    sources = [render_module([op_kernel(op, dt) for op in SCALAR_OPS
                              for dt in APPLIES[op] if op != "convert"]),
               render_kernel(rowmean_kernel()),
               render_kernel(softmax_kernel())]
    for src in sources:
        for name in FAST_MATH:
            assert name not in src
    assert "expf(s0v0)" in sources[0] and "tanh(s0v0)" in sources[0]


def test_literals_are_exact():
    lit = cuda_render.literal
    assert lit(float("nan"), "float32") == "TJ_NAN_F"
    assert lit(float("-inf"), "float64") == "(-TJ_INF)"
    assert lit(-0.0, "float64") == "(-0.0)"
    assert lit(0.1, "float32") == "0.1f"
    assert float(np.float32(float(lit(0.1, "float32")[:-1]))) == \
        float(np.float32(0.1))
    assert lit(-2 ** 31, "int32") == "(-2147483647 - 1)"
    assert lit(-2 ** 63, "int64") == "(-9223372036854775807LL - 1)"
    assert lit(2 ** 31, "int32") == "(-2147483647 - 1)"  # wraps, as astype
    assert lit(np.True_, "bool") == "true"


def test_render_module_shares_one_prelude():
    src = render_module([add_kernel(), rowmean_kernel()])
    assert src.count("#define TRACEJIT_CUDA_PRELUDE") == 1
    assert "void add_f32(" in src and "void rowmean(" in src


def test_empty_iteration_space():
    src = render_kernel(empty_kernel())
    assert "nothing to do" in src and "for (" not in src.split("void ")[-1]


def test_bad_kernel_name_is_rejected():
    k = add_kernel()
    bad = dataclasses.replace(k, name="not a name")
    with pytest.raises(ValueError, match="C identifier"):
        render_kernel(bad)


def test_renderer_does_not_import_the_tracer():
    path = pathlib.Path(cuda_render.__file__)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            mod = "." * node.level + (node.module or "")
            assert "tracing" not in mod and not mod.endswith("api"), mod
        elif isinstance(node, ast.Import):
            for alias in node.names:
                assert not alias.name.startswith(("tracejit.tracing",
                                                  "tracejit.api"))


# --------------------------------------------------------------------------
# Running kernels: on the host through g++ and a shim, or on the GPU.

HOST_SHIM = r"""
#include <math.h>
#include <string.h>
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__ __restrict
struct tj_dim3 { unsigned int x, y, z; };
static const tj_dim3 threadIdx = {0, 0, 0}, blockIdx = {0, 0, 0};
static const tj_dim3 blockDim = {1, 1, 1}, gridDim = {1, 1, 1};
static inline float __int_as_float(int i) {
  float f; memcpy(&f, &i, sizeof f); return f;
}
static inline double __longlong_as_double(long long i) {
  double d; memcpy(&d, &i, sizeof d); return d;
}
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
// row kernels, run as one thread: nothing to shuffle or wait for
#define __launch_bounds__(n)
#define __shared__ static
#define TJ_DYNAMIC_SHARED(name) alignas(16) static unsigned char name[1 << 20]
#define TJ_UNROLL
static inline void __syncthreads() {}
static inline void __syncwarp() {}
template <class T> static inline T __shfl_xor_sync(unsigned, T v, int) { return v; }
template <class T> static inline T __shfl_sync(unsigned, T v, int) { return v; }
"""
GXX = shutil.which("g++")
GXX_FLAGS = ["-std=c++17", "-O1", "-ffp-contract=off", "-fno-fast-math"]
needs_gxx = pytest.mark.skipif(GXX is None, reason="no host C++ compiler")


@needs_gxx
def test_rendered_source_compiles_with_host_compiler(tmp_path):
    kernels = [add_kernel(), broadcast_kernel(), reshape_kernel(),
               rowmean_kernel(), int_reduce_kernel(), any_count_kernel(),
               softmax_kernel(), empty_kernel()]
    for k, src in enumerate([render_module(kernels)]
                            + [render_kernel(k) for k in kernels[:2]]):
        path = tmp_path / f"k{k}.cpp"
        path.write_text(HOST_SHIM + src)
        proc = subprocess.run([GXX, *GXX_FLAGS, "-Wall", "-Werror",
                               "-fsyntax-only", str(path)],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


class HostRunner:
    """Compiles the source with g++ against HOST_SHIM and runs each kernel
    as a single thread (the grid-stride loop then covers everything)."""

    xp = np

    def __init__(self, source: str, workdir: pathlib.Path):
        cpp, lib = workdir / "kernels.cpp", workdir / "kernels.so"
        cpp.write_text(HOST_SHIM + source)
        proc = subprocess.run([GXX, *GXX_FLAGS, "-fPIC", "-shared", "-o",
                               str(lib), str(cpp), "-lm"],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        self.lib = ctypes.CDLL(str(lib))

    def launch(self, launch, arrays):
        fn = getattr(self.lib, launch.name)
        fn.restype = None
        fn(*(ctypes.c_void_p(a.ctypes.data) for a in arrays))

    def to_numpy(self, a):
        return np.asarray(a)


class CupyRunner:
    """Compiles the source with NVRTC (as executables do) and launches each
    function with at most 3 blocks of at most 64 threads, so the
    grid-stride loops wrap (and a block-per-row kernel runs with blocks
    smaller than it plans)."""

    def __init__(self, source: str):
        import cupy
        self.xp = cupy
        self.module = nvrtc.compile_module(cupy, source, [])

    def launch(self, launch, arrays):
        fn = self.module.get_function(launch.name)
        nvrtc.set_max_shared(self.xp, fn, launch.shared)
        fn((min(launch.blocks, 3),), (min(launch.threads, 64),), tuple(arrays),
           shared_mem=launch.shared)
        self.xp.cuda.Device().synchronize()

    def to_numpy(self, a):
        return self.xp.asnumpy(a)


def _cupy_or_skip():
    cupy_or_skip()


def _strided_copy(xp, a):
    """``a`` on ``xp`` as a view with reversed axis order in memory and a
    gap after every element: nothing like C order."""
    t = np.ascontiguousarray(np.repeat(a.T[..., None], 2, axis=-1))
    return xp.asarray(t)[..., 0].T


def launch_all(runner, kernel, arrays, strides):
    """Launch every function of ``kernel`` in order, as the executable
    would (planned for a GPU of one SM), with the scratch it asks for."""
    launches, scratch = cuda_exec.kernel_launches(kernel, 1)
    extra = [runner.xp.zeros(scratch, np.uint8)] if scratch else []
    for launch in launches:
        runner.launch(launch, [*arrays, strides, *extra])


def _placed(xp, a, layout):
    """``a`` on ``xp``: C-contiguous and 16-byte aligned ("aligned"), or
    C-contiguous 4 bytes past an alignment ("offset"), or a strided view
    ("strided", see _strided_copy)."""
    if layout == "strided":
        return _strided_copy(xp, a)
    flat = xp.zeros(a.size + 8, a.dtype)
    skip = (-(flat.data.ptr if xp is not np else flat.ctypes.data)
            % 16) // a.itemsize + (layout == "offset")
    view = flat[skip:skip + a.size].reshape(a.shape)
    view[...] = xp.asarray(a)
    return view


def run(runner, kernel, inputs, layout="strided"):
    """Launch ``kernel`` on numpy ``inputs`` (one per input argument, in
    order; run-time-strided ones placed as ``layout`` says, see _placed);
    returns its outputs as numpy arrays."""
    xp, feed, arrays = runner.xp, iter(inputs), []
    for buf in kernel.args:
        if buf.is_output:
            assert buf.strides == row_major_strides(buf.shape)
            arrays.append(xp.zeros(buf.shape, buf.dtype))
            continue
        a = np.asarray(next(feed), buf.dtype)
        assert a.shape == buf.shape
        arrays.append(_placed(xp, a, layout) if buf.strides is None
                      else xp.asarray(np.ascontiguousarray(a)))
    strides = [s // arrays[k].itemsize for k in kernel.runtime_stride_args
               for s in arrays[k].strides]
    launch_all(runner, kernel, arrays,
               xp.asarray(np.array(strides + [0], np.int64)))
    return [runner.to_numpy(a) for a, buf in zip(arrays, kernel.args)
            if buf.is_output]


# --------------------------------------------------------------------------
# Scalar-op cases: operands with the awkward values, numpy's answers.

RNG = np.random.default_rng(20240611)


def _specials(dtype):
    if dtype == "bool":
        return [False, True]
    if dtype in INTS:
        info = np.iinfo(dtype)
        return [0, 1, -1, 2, -2, 3, -3, 7, -7, info.min, info.min + 1,
                info.max, info.max - 1]
    return [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.5, -2.5, 3.0, -3.0, 7.0,
            1e30, -1e30, np.inf, -np.inf, np.nan]


def _random(dtype, n):
    if dtype == "bool":
        return RNG.random(n) < 0.5
    if dtype in INTS:
        info = np.iinfo(dtype)
        small = RNG.integers(-20, 21, n)
        wide = RNG.integers(info.min, info.max, n, endpoint=True)
        return np.where(RNG.random(n) < 0.5, small, wide).astype(dtype)
    x = RNG.standard_normal(n) * 10
    x[::2] = np.round(x[::2])  # exact quotients and ties for floordiv/mod
    return x.astype(dtype)


def _operands(op, dtype, arity):
    grid = np.array(list(itertools.product(_specials(dtype), repeat=arity)),
                    dtype).reshape(-1, arity).T
    xs = [np.concatenate([g, _random(dtype, 200)]) for g in grid]
    if op in ("shl", "shr"):
        bits = np.iinfo(dtype).bits
        xs[1] = RNG.integers(-3, bits + 4, xs[0].size).astype(dtype)
    elif op == "pow" and dtype in INTS:
        xs[1] = RNG.integers(-3, 70, xs[0].size).astype(dtype)
        xs[0][::3] = RNG.integers(-3, 4, xs[0][::3].size)
    return xs


NUMPY = {"add": np.add, "sub": np.subtract, "mul": np.multiply,
         "div": np.true_divide, "floordiv": np.floor_divide,
         "mod": np.remainder, "pow": np.power, "max": np.maximum,
         "min": np.minimum, "neg": np.negative, "abs": np.absolute,
         "sign": np.sign, "exp": np.exp, "log": np.log, "sqrt": np.sqrt,
         "tanh": np.tanh, "sin": np.sin, "cos": np.cos, "lt": np.less,
         "expm1": np.expm1, "log1p": np.log1p,
         "le": np.less_equal, "eq": np.equal, "ne": np.not_equal,
         "gt": np.greater, "ge": np.greater_equal, "and": np.bitwise_and,
         "or": np.bitwise_or, "xor": np.bitwise_xor, "not": np.invert,
         "shl": np.left_shift, "shr": np.right_shift, "copy": np.copy,
         "select": np.where}
# numpy refuses these on bool; the kernel semantics are arithmetic mod 2.
BOOL_EXTRA = {"sub": np.not_equal, "neg": np.copy, "sign": np.copy}
APPROX = {"exp", "log", "tanh", "sin", "cos", "pow", "expm1", "log1p"}


def _int_pow(a, b):
    out = np.power(a, np.where(b < 0, 0, b))
    minus_one = np.where(b & 1, -1, 1).astype(a.dtype)
    return np.where(b >= 0, out, np.where(
        a == 1, 1, np.where(a == -1, minus_one, 0))).astype(a.dtype)


def _saturating_cast(x, dtype):
    info = np.iinfo(dtype)
    hi = 2.0 ** (info.bits - 1)
    inside = (x > -hi) & (x < hi)
    out = np.where(inside, x, 0).astype(dtype)
    out[x >= hi] = info.max
    out[x <= -hi] = info.min
    return out


def _reference(op, dtype, xs, dst):
    with np.errstate(all="ignore"):
        if op == "convert":
            if dtype in FLOATS and dst in INTS:
                return _saturating_cast(xs[0], dst)
            return xs[0].astype(dst)
        if op == "pow" and dtype in INTS:
            return _int_pow(*xs)
        if dtype == "bool" and op in BOOL_EXTRA:
            return BOOL_EXTRA[op](*xs)
        return NUMPY[op](*xs)


def _cases():
    for op in sorted(SCALAR_OPS):
        for dtype in APPLIES[op]:
            for dst in (ALL if op == "convert" else (None,)):
                if op == "select":
                    xs = [RNG.random(200) < 0.5, _random(dtype, 200),
                          _random(dtype, 200)]
                else:
                    xs = _operands(op, dtype, SCALAR_OPS[op])
                kernel = op_kernel(op, dtype, dst)
                n = xs[0].size
                kernel = elementwise(kernel.name, op,
                                     [b.dtype for b in kernel.args[:-1]],
                                     kernel.args[-1].dtype, shape=(n,))
                yield kernel, xs, _reference(op, dtype, xs, dst), op


CASES = list(_cases())
OTHER_KERNELS = [add_kernel(), broadcast_kernel(), reshape_kernel(),
                 rowmean_kernel(), int_reduce_kernel(), any_count_kernel(),
                 softmax_kernel(), empty_kernel()]


@pytest.fixture(scope="module", params=[
    pytest.param("host", marks=needs_gxx),
    pytest.param("cuda", marks=pytest.mark.cuda)])
def runner(request, tmp_path_factory):
    source = render_module([k for k, *_ in CASES] + OTHER_KERNELS)
    if request.param == "host":
        return HostRunner(source, tmp_path_factory.mktemp("host_kernels"))
    _cupy_or_skip()
    return CupyRunner(source)


def _assert_matches(got, want, op):
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    if want.dtype.kind == "f" and op in APPROX:
        rtol = 4e-6 if want.dtype == np.float32 else 1e-13
        np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-300,
                                   equal_nan=True)
        return
    np.testing.assert_array_equal(got, want)  # NaNs compare equal here
    if want.dtype.kind == "f" and op not in ("max", "min"):
        numbers = ~np.isnan(want)  # signed zeros must match too
        np.testing.assert_array_equal(np.signbit(got[numbers]),
                                      np.signbit(want[numbers]))


@pytest.mark.parametrize("case", CASES, ids=[k.name for k, *_ in CASES])
def test_scalar_op_matches_numpy(runner, case):
    kernel, xs, want, op = case
    (got,) = run(runner, kernel, xs)
    _assert_matches(got, np.asarray(want), op)


def test_add_and_broadcast_kernels(runner):
    x = RNG.standard_normal((4, 5)).astype(np.float32)
    y = RNG.standard_normal((4, 5)).astype(np.float32)
    b = RNG.standard_normal((1, 5)).astype(np.float32)
    np.testing.assert_array_equal(run(runner, add_kernel(), [x, y])[0], x + y)
    np.testing.assert_array_equal(run(runner, broadcast_kernel(), [x, b])[0],
                                  x * b)
    xi = np.arange(6, dtype=np.int64).reshape(2, 3) * 10
    np.testing.assert_array_equal(run(runner, reshape_kernel(), [xi])[0],
                                  xi.reshape(6))
    (out,) = run(runner, empty_kernel(), [np.zeros((0, 5))])
    assert out.shape == (0, 5)


@pytest.mark.parametrize("layout", ["aligned", "offset", "strided"])
def test_vector_groups_and_their_fallback(runner, layout):
    """Aligned C-contiguous inputs take the 16-byte path; an input 4 bytes
    off, or strided, is read point by point: same answers."""
    x = RNG.standard_normal((4, 5)).astype(np.float32)
    y = RNG.standard_normal((4, 5)).astype(np.float32)
    np.testing.assert_array_equal(
        run(runner, add_kernel(), [x, y], layout)[0], x + y)
    for kernel, xs, want, op in CASES[::7]:   # the left-over points too
        (got,) = run(runner, kernel, xs, layout)
        _assert_matches(got, np.asarray(want), op)


def test_reduction_kernels(runner):
    x = RNG.standard_normal((4, 5)).astype(np.float32)
    x[2, 3] = np.nan
    mean, mx = run(runner, rowmean_kernel(), [x])
    want = (x.astype(np.float64).sum(axis=1).astype(np.float32)
            / np.float32(5))
    np.testing.assert_array_equal(mean, want)
    np.testing.assert_array_equal(mx, x.max(axis=1))

    xi = RNG.integers(-2 ** 31, 2 ** 31, (3, 4, 2)).astype(np.int32)
    bias = np.array([1, -2, 3, 2 ** 40], np.int64)
    total, low, prod = run(runner, int_reduce_kernel(), [xi, bias])
    np.testing.assert_array_equal(
        total, xi.astype(np.int64).sum(axis=(0, 2)) + bias)
    np.testing.assert_array_equal(low, xi.min(axis=(0, 2)))
    np.testing.assert_array_equal(prod, xi.prod(axis=(0, 2), dtype=np.int32))

    xb = np.array([False, True, False, True, True, False])
    anyv, count = run(runner, any_count_kernel(), [xb])
    assert anyv.shape == () and bool(anyv) and int(count) == 3
    anyv, count = run(runner, any_count_kernel(), [np.zeros(6, bool)])
    assert not bool(anyv) and int(count) == 0


def test_staged_softmax_kernel(runner):
    x = (RNG.standard_normal((4, 5)) * 3).astype(np.float32)
    x[1] = [-np.inf, 0.0, 1.0, 2.0, -1.0]
    got = run(runner, softmax_kernel(), [x])
    for g, w in zip(got, softmax_reference(x)):
        np.testing.assert_allclose(g, w, rtol=4e-6, atol=1e-7)
    np.testing.assert_allclose(got[1].sum(axis=1), 1, rtol=1e-5)


# --------------------------------------------------------------------------
# Kernels the compiler produces, run as their program's steps.

def _chain(x, y):  # 10 elementwise ops, one kernel
    return np.tanh(np.exp(-np.abs(x)) * y + x) - np.sqrt(y * y + 1) / 3


def _layernorm(x, g, b):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + 1e-5) * g + b


def _softmax(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def _program_cases():
    rng = np.random.default_rng(7)
    x, y = (rng.standard_normal((6, 9)).astype(np.float32) for _ in "xy")
    g, b = (rng.standard_normal(9).astype(np.float32) for _ in "gb")
    return {
        "softmax": (_softmax, (x,)),
        "layernorm": (_layernorm, (x, g, b)),
        "chain": (_chain, (x, y)),
        "dot_sum": (lambda a, b: (a * b).sum(), (x, y)),
        "moments": (lambda x: (x.mean(0), (x * x).mean(0)), (x,)),
        "reverse": (lambda x: x[::-1] * 2, (x,)),
        # one layout each (rowplan.plan): a block per long row, a full sum in
        # two passes, a column sum in two passes (2-D and a middle axis),
        # several stages over columns, short rows of a 3-D array
        "softmax_block": (_softmax, (rng.standard_normal((3, 1500))
                                     .astype(np.float32),)),
        "sum_split_rows": (lambda a: a.sum(), (rng.standard_normal(
            (40, 1000)).astype(np.float32),)),
        "sum_split_columns": (lambda a: a.sum(0), (rng.standard_normal(
            (300, 20)).astype(np.float32),)),
        "middle_split_columns": (lambda a: a.max(1), (rng.standard_normal(
            (3, 200, 7)).astype(np.float32),)),
        "center_columns": (lambda a: a - a.mean(0), (x,)),
        "rows_3d": (lambda a: a.min(-1, keepdims=True) + a, (
            rng.standard_normal((2, 3, 33)).astype(np.float32),)),
    }


PROGRAM_CASES = _program_cases()


def run_program(runner, program, args, layout="strided"):
    """Run every step of ``program`` (kernels only) with ``runner``: params
    are the caller's arrays placed as ``layout`` says (see _placed), other
    buffers fresh and C-contiguous; returns the program's outputs as numpy
    arrays."""
    xp, arrays = runner.xp, {}
    for buf in program.buffers:
        if buf.kind == "param":
            arrays[buf.id] = _placed(xp, args[buf.param_index], layout)
        elif buf.kind == "const":
            arrays[buf.id] = xp.asarray(np.ascontiguousarray(buf.value))
        else:
            arrays[buf.id] = xp.zeros(buf.shape, buf.dtype)
    for step in program.steps:
        assert isinstance(step, KernelStep), step
        kernel, bufs = step.kernel, [arrays[b] for b in step.buffers]
        for arg, a in zip(kernel.args, bufs):
            assert (arg.dtype, arg.shape) == (str(a.dtype), a.shape)
            if arg.strides is not None:
                assert arg.strides == tuple(s // a.itemsize
                                            for s in a.strides)
        strides = [s // bufs[k].itemsize for k in kernel.runtime_stride_args
                   for s in bufs[k].strides]
        launch_all(runner, kernel, bufs,
                   xp.asarray(np.array(strides + [0], np.int64)))
    outs = []
    for b in program.outputs:
        buf, a = program.buffers[b], runner.to_numpy(arrays[b])
        outs.append(a.reshape(buf.out_shape) if buf.out_shape else a)
    return outs


@pytest.mark.parametrize("backend", [
    pytest.param("host", marks=needs_gxx),
    pytest.param("cuda", marks=pytest.mark.cuda)])
@pytest.mark.parametrize("case", sorted(PROGRAM_CASES))
def test_compiled_programs_kernels(backend, case, tmp_path):
    fn, args = PROGRAM_CASES[case]
    compiled = tracejit.jit(fn).lower(*args).compile()
    program = compiled.executable.program
    assert program.kernels
    if case in ("softmax", "layernorm"):  # one kernel, several stages
        assert len(program.kernels) == 1
        assert len(program.kernels[0].stages) == 3
    source = render_module(program.kernels)
    if backend == "host":
        runner = HostRunner(source, tmp_path)
    else:
        _cupy_or_skip()
        runner = CupyRunner(source)
    got = run_program(runner, program, args)
    want = fn(*args)
    want = list(want) if isinstance(want, tuple) else [want]
    cpu = compiled(*args)
    cpu = list(cpu) if isinstance(cpu, tuple) else [cpu]
    assert len(got) == len(want) == len(cpu)
    for g, w, c in zip(got, want, cpu):
        w = np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-6)
        np.testing.assert_allclose(g, c, rtol=2e-5, atol=2e-6)


@pytest.mark.cuda
def test_gpu_is_visible_to_cupy():
    _cupy_or_skip()
    import cupy
    assert cupy.cuda.runtime.getDeviceCount() >= 1
