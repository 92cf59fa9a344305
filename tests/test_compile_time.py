"""The compile path does each piece of fixed work once.

A first call's cost is mostly compilation, so these tests pin the structure
that keeps it low, without timing anything: LLVM's host description and the
optimizing target machine are made once per process, each program is parsed
and optimized once, the HLO pass manager does not re-run passes that have
nothing to do, and ``import tracejit`` loads what a first call needs (and no
networkx).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import llvmlite.binding as llvm
import numpy as np
import pytest

from tracejit import jit
from tracejit.backends.cpu import compiler
from tracejit.fusion.plan import KernelGraph
from tracejit.hlo.module import Aval
from tracejit.hlo.passes import FixedPoint, run_pipeline
from tracejit.pipeline import HLO_PASSES
from tracejit.tracing import LeafSpec, trace

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Counter:
    """Wraps ``owner.name`` and counts its calls."""

    def __init__(self, monkeypatch, owner, name):
        self.calls = 0
        inner = getattr(owner, name)

        def counted(*args, **kwargs):
            self.calls += 1
            return inner(*args, **kwargs)
        monkeypatch.setattr(owner, name, counted)


def _compile_new_function(k: int):
    """Compile a function never seen before (a fresh closure per ``k``)."""
    x = np.arange(8, dtype=np.float32)
    return jit(lambda a: a * np.float32(k) + 1)(x)


def test_host_and_target_machine_are_made_once(monkeypatch):
    _compile_new_function(1)                  # whatever ran before us
    features = Counter(monkeypatch, llvm, "get_host_cpu_features")
    init = Counter(monkeypatch, llvm, "initialize_native_target")
    machines = Counter(monkeypatch, compiler, "_new_target_machine")
    shared = compiler.target_machine()
    for k in (2, 3, 4):
        _compile_new_function(k)
    assert features.calls == 0 and init.calls == 0
    assert compiler.target_machine() is shared
    # one machine per engine (llvmlite makes the engine its owner), no more
    assert machines.calls == 3


def test_each_program_is_parsed_and_optimized_once(monkeypatch):
    parse = Counter(monkeypatch, llvm, "parse_assembly")
    opt = Counter(monkeypatch, compiler, "optimize")
    x = np.ones((4, 8), np.float32)
    f = jit(lambda a: np.exp(a - a.max(axis=1, keepdims=True)))
    f(x)
    f(x)
    assert parse.calls == 1 and opt.calls == 1


SMALL_MODULE = """
define internal float @twice(float %x) alwaysinline nounwind {
  %y = fmul float %x, 2.0
  ret float %y
}
define internal void @body(ptr noalias %a, i64 %n) nounwind {
entry:
  br label %loop
loop:
  %i = phi i64 [0, %entry], [%j, %loop]
  %p = getelementptr inbounds float, ptr %a, i64 %i
  %v = load float, ptr %p
  %w = call float @twice(float %v)
  store float %w, ptr %p
  %j = add nuw nsw i64 %i, 1
  %c = icmp slt i64 %j, %n
  br i1 %c, label %loop, label %exit
exit:
  ret void
}
define void @body_entry(ptr %a) nounwind {
  call void @body(ptr %a, i64 1024)
  ret void
}
"""


def test_kernel_bodies_are_optimized_once_not_inlined():
    text = str(compiler.optimize(SMALL_MODULE))
    # the body stays one function, called by its wrapper; the helper that
    # asks for inlining is inlined (and gone)
    assert re.search(r"define internal .*@body\(", text)
    assert re.search(r"call .*@body\(", text)
    assert "@twice" not in text


def test_rendered_kernels_stay_separate_functions():
    x = np.ones((8, 8), np.float32)
    ir = jit(lambda a: np.tanh(a) + 1).lower(x).compile().as_text()
    kernels = [ln.split("@")[1].split("(")[0] for ln in ir.splitlines()
               if ln.startswith("define internal")]
    assert kernels
    optimized = str(compiler.optimize(ir))
    for name in kernels:
        assert re.search(rf"define internal .*@{name}\(", optimized)


def _traced(fn, *shapes):
    leaves = [LeafSpec(Aval(s, "float32"), False, f"x{k}")
              for k, s in enumerate(shapes)]
    module, _ = trace(lambda *t: [fn(*t)], leaves, "m")
    return module


def _runs(module) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name, _ in module.pass_log:
        counts[name] = counts.get(name, 0) + 1
    return counts


@pytest.mark.parametrize("fn, shapes", [
    (lambda a, b, c: np.tanh(a) * np.exp(-b * b) + np.log1p(np.abs(c)),
     [(16,)] * 3),
    (lambda x, w1, b1, w2, b2: np.maximum(x @ w1 + b1, 0.0) @ w2 + b2,
     [(4, 8), (8, 16), (16,), (16, 8), (8,)]),
    (lambda x: (x * 2) + (x * 2) - x * 1, [(8,)]),
])
def test_pipeline_runs_each_pass_a_bounded_number_of_times(fn, shapes):
    module = _traced(fn, *shapes)
    run_pipeline(module, HLO_PASSES)
    runs = _runs(module)
    # the fixed point converges in at most two rounds on these
    assert all(n <= 2 for n in runs.values()), module.pass_log
    assert runs["fuse"] == 1 and runs["assign_layouts"] == 1
    # no pass runs again on a module it left unchanged
    idle: set[str] = set()
    for name, changed in module.pass_log:
        assert name not in idle, module.pass_log
        idle = set() if changed else idle | {name}


def test_a_pass_with_nothing_to_do_is_skipped():
    module = _traced(lambda a: a + 1, (4,))
    calls = {"once": 0, "idle": 0, "cleanup": 0}
    did = []

    def once(m):
        calls["once"] += 1
        if did:
            return False
        did.append(True)
        return True

    def idle(m):
        calls["idle"] += 1
        return False

    def cleanup(m):
        calls["cleanup"] += 1
        return False

    run_pipeline(module, [FixedPoint(once, idle, cleanup), idle, cleanup])
    # round 1: once changes, idle and cleanup find nothing; round 2: once
    # finds nothing and the others are skipped (the module is as they left
    # it); so are the trailing idle and cleanup
    assert calls == {"once": 2, "idle": 1, "cleanup": 1}
    assert [n for n, _ in module.pass_log] == ["once", "idle", "cleanup",
                                               "once"]


def test_a_pass_runs_again_after_another_changes_the_module():
    module = _traced(lambda a: a + 1, (4,))
    state = {"left": 2}
    calls = {"changer": 0, "watcher": 0}

    def changer(m):
        calls["changer"] += 1
        if state["left"]:
            state["left"] -= 1
            return True
        return False

    def watcher(m):
        calls["watcher"] += 1
        return False

    run_pipeline(module, [FixedPoint(watcher, changer, limit=8)])
    # watcher sees each of the two changes, then the fixed point ends
    assert calls == {"changer": 3, "watcher": 3}


def test_kernel_graph_order_and_paths():
    g = KernelGraph()
    for n in range(4):
        g.add_node(n)
    g.add_edge(2, 0)
    g.add_edge(0, 3)
    g.add_edge(1, 3)
    assert g.order() == [1, 2, 0, 3]          # smallest ready id first
    assert g.has_path(2, 3) and g.has_path(2, 2)
    assert not g.has_path(3, 2) and not g.has_path(1, 0)
    g.add_edge(3, 2)
    with pytest.raises(AssertionError):
        g.order()


def test_import_loads_the_tracer_and_not_networkx():
    code = ("import sys, tracejit\n"
            "mods = set(sys.modules)\n"
            "print('networkx' in mods, "
            "'tracejit.tracing.numpy_protocol' in mods, "
            "'tracejit.tracing.structural' in mods)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True, cwd=REPO).stdout.split()
    assert out == ["False", "True", "True"]
