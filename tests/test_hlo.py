"""Tests of the HLO layer: text form, verifier, reference interpreter, passes
(tracejit/hlo/module.py, verifier.py, interpreter.py, passes.py)."""
from __future__ import annotations

import os
import re

import numpy as np
import pytest

from tracejit import jit
from tracejit.hlo import (PRIMITIVES, Aval, Instruction, Module, VerifierError,
                          evaluate, verify)
from tracejit.hlo import passes
from tracejit.hlo.passes import dce, run_pipeline
from tracejit.tracing import LeafSpec, trace

from strategies import assert_outputs_close


F32 = "float32"


def trace_fn(fn, *args, name="f"):
    """The (unoptimized) module ``fn`` traces to on arrays like ``args``."""
    specs = [LeafSpec(Aval(np.shape(a), np.asarray(a).dtype.name), False,
                      f"a{k}") for k, a in enumerate(args)]

    def flat(*tracers):
        out = fn(*tracers)
        return list(out) if isinstance(out, tuple) else [out]

    module, _ = trace(flat, specs, name)
    return module


# ---- text form -----------------------------------------------------------------------

def test_text_of_a_traced_module():
    x = np.ones((4, 8), np.float32)
    m = trace_fn(lambda a, b: a + b, x, x, name="add2")
    assert m.text() == (
        "HloModule add2(f32[4,8], f32[4,8]) -> (f32[4,8])\n"
        "  %0 = f32[4,8] parameter(0)\n"
        "  %1 = f32[4,8] parameter(1)\n"
        "  %2 = f32[4,8] add(%0, %1)\n"
        "  ROOT tuple(%2)\n")
    assert str(m) == m.text()


def test_text_of_a_traced_module_with_attributes():
    m = trace_fn(lambda a: (a.T.sum(axis=0), a[:, ::2] > 0),
                 np.ones((3, 4), np.int32), name="g")
    text = m.text()
    lines = text.splitlines()
    assert lines[0] == "HloModule g(s32[3,4]) -> (s64[3], pred[3,2])"
    assert "  %0 = s32[3,4] parameter(0)" in lines
    assert any(l.startswith("  %") and "s32[4,3] transpose(%0, perm={1,0})"
               in l for l in lines), text
    assert any("reduce_sum(" in l and "axes={0}" in l for l in lines), text
    assert any("slice(%0, shape={3,2}, starts={0,0}, steps={1,2})" in l
               for l in lines), text
    assert lines[-1].startswith("  ROOT tuple(%")


def test_text_of_a_hand_built_module():
    m = Module("h")
    p0 = m.add("parameter", [], Aval((3,), F32), [("index", 0)])
    c = m.add("constant", [], Aval((3,), F32),
              [("value", np.array([1.5, 2.0, -1.0], np.float32))])
    big = m.add("constant", [], Aval((3, 4), "int64"),
                [("value", np.zeros((3, 4), np.int64))])
    s = m.add("constant", [], Aval((), "bool"), [("value", np.array(True))])
    out = m.add("multiply", [p0, c], Aval((3,), F32))
    m.outputs = (out, big, s)
    assert m.text() == (
        "HloModule h(f32[3]) -> (f32[3], s64[3,4], pred[])\n"
        "  %0 = f32[3] parameter(0)\n"
        "  %1 = f32[3] constant({1.5, 2.0, -1.0})\n"
        "  %2 = s64[3,4] constant(<int64[3, 4] data>)\n"
        "  %3 = pred[] constant(True)\n"
        "  %4 = f32[3] multiply(%0, %1)\n"
        "  ROOT tuple(%4, %2, %3)\n")
    verify(m)


def test_instruction_text_without_attributes_does_not_crash():
    ins = Instruction(0, "parameter", (), Aval((2,), F32))
    assert "parameter(" in ins.text()


def test_module_bookkeeping():
    m = trace_fn(lambda a: np.exp(a) * a, np.ones(3, np.float32))
    users = m.users()
    (p,) = m.parameters
    assert sorted(users[p.id]) == [i.id for i in m.instructions
                                   if p.id in i.operands]
    ids = [i.id for i in m.instructions]
    assert ids == sorted(set(ids))
    new = m.add("negate", [m.outputs[0]], m.get(m.outputs[0]).aval)
    assert new > max(ids) and m.get(new).op == "negate"
    copy = m.copy()
    copy.add("negate", [new], m.get(new).aval)
    assert len(copy.instructions) == len(m.instructions) + 1


# ---- verifier -------------------------------------------------------------------------

def good_module() -> Module:
    return trace_fn(lambda a, b: np.tanh(a @ b).sum(axis=1) + a[:, 0],
                    np.ones((3, 4), np.float32), np.ones((4, 2), np.float32))


def test_verifier_accepts_traced_modules():
    verify(good_module())
    x = np.arange(12.0).reshape(3, 4)
    for fn in [lambda a: a, lambda a: (a.T, a[::-1, 1:3], a.reshape(2, 6)),
               lambda a: np.where(a > 3, a, 0.5).max(axis=0),
               lambda a: (a.astype(np.int32) // 3, a.mean(), a[None, :, 2])]:
        m = trace_fn(fn, x)
        verify(m)
        dce(m)
        verify(m)


def p(ins_id, index, shape=(3,), dtype=F32):
    return Instruction(ins_id, "parameter", (), Aval(shape, dtype),
                       (("index", index),))


def ins(ins_id, op, operands, shape=(3,), dtype=F32, attrs=()):
    return Instruction(ins_id, op, tuple(operands), Aval(shape, dtype),
                       tuple(attrs))


BROKEN = {
    "use-before-def": ([p(0, 0), ins(1, "add", [0, 2]), ins(2, "negate", [0])],
                       (1,), "before definition"),
    "undefined-operand": ([p(0, 0), ins(1, "add", [0, 7])], (1,),
                          "before definition"),
    "self-reference": ([p(0, 0), ins(1, "add", [0, 1])], (1,),
                       "before definition"),
    "wrong-shape": ([p(0, 0), ins(1, "add", [0, 0], shape=(4,))], (1,),
                    "aval"),
    "wrong-dtype": ([p(0, 0), ins(1, "compare_lt", [0, 0])], (1,), "aval"),
    "operand-mismatch": ([p(0, 0), p(1, 1, shape=(4,)), ins(2, "add", [0, 1])],
                         (2,), ""),
    "dtype-not-accepted": ([p(0, 0, dtype="int32"),
                            ins(1, "divide", [0, 0], dtype="int32")], (1,),
                           "divide"),
    "unknown-op": ([p(0, 0), ins(1, "frobnicate", [0])], (1,), "frobnicate"),
    "duplicate-id": ([p(0, 0), ins(1, "negate", [0]), ins(1, "exp", [0])],
                     (1,), "duplicate"),
    "duplicate-param-id": ([p(0, 0), p(0, 1)], (0,), "duplicate"),
    "param-gap": ([p(0, 0), p(1, 2)], (0, 1), "parameters"),
    "param-from-one": ([p(0, 1)], (0,), "parameters"),
    "param-twice": ([p(0, 0), p(1, 0)], (0, 1), "parameters"),
    "param-no-index": ([Instruction(0, "parameter", (), Aval((3,), F32))],
                       (0,), "index"),
    "param-with-operand": ([p(0, 0), Instruction(
        1, "parameter", (0,), Aval((3,), F32), (("index", 1),))], (1,), ""),
    "bad-constant": ([Instruction(0, "constant", (), Aval((3,), F32),
                                  (("value", np.zeros(3, np.float64)),))],
                     (0,), "constant"),
    "undefined-output": ([p(0, 0), ins(1, "negate", [0])], (1, 5), "output"),
    "bad-broadcast": ([p(0, 0), ins(1, "broadcast", [0], shape=(2, 4),
                                    attrs=(("dims", (1,)),
                                           ("shape", (2, 4))))], (1,), ""),
    "bad-transpose": ([p(0, 0, shape=(2, 3)),
                       ins(1, "transpose", [0], shape=(3, 2),
                           attrs=(("perm", (0, 0)),))], (1,), ""),
    "missing-attr": ([p(0, 0, shape=(2, 3)),
                      ins(1, "transpose", [0], shape=(3, 2))], (1,), ""),
    "unary-arity": ([p(0, 0), ins(1, "negate", [0, 0])], (1,), ""),
    "binary-arity": ([p(0, 0), ins(1, "add", [0])], (1,), ""),
    "nullary-add": ([p(0, 0), ins(1, "add", [])], (1,), ""),
    "select-arity": ([p(0, 0, dtype="bool"), p(1, 1),
                      ins(2, "select", [0, 1])], (2,), ""),
    "dot-arity": ([p(0, 0, shape=(2, 2)),
                   ins(1, "dot", [0], shape=(2, 2))], (1,), ""),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_verifier_rejects_broken_modules(case):
    instructions, outputs, words = BROKEN[case]
    m = Module(f"broken_{case.replace('-', '_')}", list(instructions),
               tuple(outputs))
    with pytest.raises(VerifierError) as info:
        verify(m)
    assert words.lower() in str(info.value).lower(), str(info.value)
    assert m.name in str(info.value)


def test_verifier_rejects_a_mutated_traced_module():
    m = good_module()
    k = next(i for i, x in enumerate(m.instructions) if x.op == "tanh")
    tanh = m.instructions[k]
    bad = Instruction(tanh.id, tanh.op, tanh.operands, Aval((2, 3), F32))
    m.replace_all(m.instructions[:k] + [bad] + m.instructions[k + 1:],
                  m.outputs)
    with pytest.raises(VerifierError, match="tanh"):
        verify(m)
    m2 = good_module()
    # swap two instructions: an operand is then used before its definition
    j = next(i for i, x in enumerate(m2.instructions) if x.op == "dot")
    instrs = list(m2.instructions)
    instrs[j], instrs[j + 1] = instrs[j + 1], instrs[j]
    m2.replace_all(instrs, m2.outputs)
    with pytest.raises(VerifierError, match="before definition"):
        verify(m2)


def test_verifier_error_is_an_assertion_error():
    assert issubclass(VerifierError, AssertionError)


# ---- reference interpreter ----------------------------------------------------------------

INTERPRETED = {
    "elementwise": (lambda a, b: np.exp(a) * b - np.sqrt(np.abs(a)) / 2,
                    [(3, 4), (3, 4)], F32),
    "broadcast": (lambda a, b: a + b[:, None] * 3, [(3, 4), (3,)], "float64"),
    "views": (lambda a: (a.T, a[::-1, 1::2], a.reshape(2, 6), a[1],
                         a[None, ..., None]), [(3, 4)], "int32"),
    "reductions": (lambda a: (a.sum(axis=0), a.max(axis=1), a.min(),
                              a.prod(axis=(0, 1)), a.mean(axis=0)),
                   [(3, 4)], "float64"),
    "int-math": (lambda a, b: (a // 3, a % 5, np.maximum(a, b), a * b + 7,
                               -a, np.sign(a), a & b, a << 2),
                 [(3, 4), (3, 4)], "int64"),
    "compare-select": (lambda a, b: (np.where(a > b, a, b * 2), a == b,
                                     np.logical_and(a > 0, b < 0)),
                       [(5,), (5,)], F32),
    "matmul": (lambda a, b: (a @ b, np.dot(a[0], b)), [(3, 4), (4, 2)], F32),
    "convert": (lambda a: (a.astype(np.int32), a.astype(bool),
                           (a > 0).astype(np.float64)), [(6,)], F32),
    "bool": (lambda a, b: (a | b, a ^ b, ~a, a + b, a * b),
             [(4,), (4,)], "bool"),
}


def _arg(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype.startswith("int"):
        return rng.integers(-20, 20, shape).astype(dtype)
    return (rng.standard_normal(shape) * 3).astype(dtype)


@pytest.mark.parametrize("case", sorted(INTERPRETED))
def test_interpreter_matches_numpy(case):
    fn, shapes, dtype = INTERPRETED[case]
    args = [_arg(s, dtype, k) for k, s in enumerate(shapes)]
    m = trace_fn(fn, *args)
    verify(m)
    got = evaluate(m, args)
    assert_outputs_close(got, fn(*args), rtol=1e-6, atol=1e-6)


def test_interpreter_on_a_hand_built_module():
    m = Module("hand")
    a = m.add("parameter", [], Aval((2, 3), "int64"), [("index", 1)])
    b = m.add("parameter", [], Aval((3,), "int64"), [("index", 0)])
    bb = m.add("broadcast", [b], Aval((2, 3), "int64"),
               [("dims", (1,)), ("shape", (2, 3))])
    s = m.add("subtract", [a, bb], Aval((2, 3), "int64"))
    t = m.add("transpose", [s], Aval((3, 2), "int64"), [("perm", (1, 0))])
    r = m.add("reduce_max", [t], Aval((2,), "int64"), [("axes", (0,))])
    m.outputs = (r, t)
    verify(m)
    x, y = np.arange(3), np.arange(6).reshape(2, 3) * 2
    got = evaluate(m, [x, y])
    np.testing.assert_array_equal(got[0], (y - x).max(axis=1))
    np.testing.assert_array_equal(got[1], (y - x).T)
    with pytest.raises(TypeError):
        evaluate(m, [x])


def test_interpreter_outputs_are_fresh():
    m = trace_fn(lambda a: (a, a), np.ones(3))
    x = np.ones(3)
    o1, o2 = evaluate(m, [x])
    assert not np.shares_memory(o1, x) and not np.shares_memory(o1, o2)


# ---- passes ---------------------------------------------------------------------------------

def test_dce_removes_dead_code_and_keeps_parameters():
    def f(a, unused, b):
        dead = np.exp(a) * 3.5          # never used
        _ = dead.sum()
        return a + b, b * 2

    x = np.arange(4.0)
    m = trace_fn(f, x, x, x)
    before = [i.op for i in m.instructions]
    assert "exp" in before and "reduce_sum" in before
    assert dce(m) is True
    after = [i.op for i in m.instructions]
    assert "exp" not in after and "reduce_sum" not in after
    assert after.count("parameter") == 3
    assert [p.attr("index") for p in m.parameters] == [0, 1, 2]
    assert m.text().startswith("HloModule f(f64[4], f64[4], f64[4])")
    # every remaining non-parameter instruction is needed by an output
    live = set(m.outputs)
    for i in reversed(m.instructions):
        if i.id in live:
            live.update(i.operands)
    assert all(i.id in live for i in m.instructions if i.op != "parameter")
    verify(m)
    assert dce(m) is False               # a fixed point
    got = evaluate(m, [x, x * 0, x + 1])
    np.testing.assert_array_equal(got[0], x + x + 1)
    np.testing.assert_array_equal(got[1], (x + 1) * 2)


def test_dce_keeps_everything_live():
    m = trace_fn(lambda a: (np.tanh(a), a.T), np.ones((2, 3), np.float32))
    text = m.text()
    assert dce(m) is False
    assert m.text() == text


def test_pipeline_verifies_after_each_pass(monkeypatch):
    def breaks_the_module(module):
        """A broken pass: gives the last instruction a wrong aval."""
        last = module.instructions[-1]
        bad = Instruction(last.id, last.op, last.operands,
                          Aval((99,), last.dtype), last.attrs)
        module.replace_all(module.instructions[:-1] + [bad], module.outputs)
        return True

    def make():
        return trace_fn(lambda a: a * 2, np.ones(3, np.float32))

    monkeypatch.setenv("TRACEJIT_VERIFY", "1")
    with pytest.raises(VerifierError):
        run_pipeline(make(), [breaks_the_module])
    monkeypatch.setenv("TRACEJIT_VERIFY", "0")
    run_pipeline(make(), [breaks_the_module])     # unchecked


def test_dump_writes_numbered_files(monkeypatch, tmp_path):
    dump = tmp_path / "dump"
    monkeypatch.setenv("TRACEJIT_DUMP", str(dump))

    def dumped(a, b):
        _ = np.exp(b)                   # dead: removed by DCE
        return a * 2

    f = jit(dumped)
    x = np.ones(4, np.float32)
    f(x, x)
    names = sorted(os.listdir(dump))
    assert "dumped.program.txt" in names
    numbered = [n for n in names if n != "dumped.program.txt"]
    stages = [n.split(".")[2] for n in numbered]
    assert numbered == [f"dumped.{k:02d}.{s}.txt"
                        for k, s in enumerate(stages)]
    assert stages[0] == "traced" and stages[-1] == "fuse"
    assert {"simplify", "constant_fold", "cse", "dce",
            "assign_layouts"} <= set(stages)
    texts = [(dump / n).read_text() for n in numbered]
    for t in texts:
        assert t.startswith("HloModule dumped(f32[4], f32[4]) -> (f32[4])")
    assert " exp(" in texts[0]
    dce_text = texts[stages.index("dce")]
    assert " exp(" not in dce_text and "multiply(" in dce_text
    assert texts[-1] == f.lower(x, x).as_text()
    assert "kernel 0" in texts[-1]
    program = (dump / "dumped.program.txt").read_text()
    assert program.startswith("program dumped: 1 kernels")
    f(x, x)                             # a cache hit dumps nothing new
    assert sorted(os.listdir(dump)) == names
    # a new signature of the same function is dumped too, without
    # overwriting the first one's files
    y = np.ones(5, np.float32)
    f(y, y)
    new = sorted(set(os.listdir(dump)) - set(names))
    assert len(new) == len(names)
    assert [(dump / n).read_text() for n in numbered] == texts
    assert "dumped_1.program.txt" in new
    for n in new:
        if n.endswith(".program.txt"):
            continue
        assert re.fullmatch(r"dumped\S*\.\d\d\.\w+\.txt", n), n
        assert (dump / n).read_text().startswith("HloModule dumped(f32[5]")


def test_no_dump_without_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv("TRACEJIT_DUMP", raising=False)
    monkeypatch.chdir(tmp_path)
    jit(lambda a: a + 1)(np.ones(2))
    assert os.listdir(tmp_path) == []


def test_every_primitive_has_a_reference_or_is_a_source():
    for name, prim in PRIMITIVES.items():
        if name in ("parameter", "constant"):
            assert prim.reference is None
        else:
            assert callable(prim.reference), name
