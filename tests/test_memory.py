"""Static memory planning: liveness, arena offsets, memory_analysis."""
import numpy as np
from hypothesis import given, strategies as st

from tracejit import jit
from tracejit.fusion.program import KernelStep, LibraryStep

rng = np.random.default_rng(3)


def f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def independent_lifetimes(program) -> dict[int, tuple[int, int]]:
    """Recomputed here from the steps, not with the planner's own code."""
    spans: dict[int, list[int]] = {}
    for n, step in enumerate(program.steps):
        if isinstance(step, KernelStep):
            touched = step.buffers
        else:
            assert isinstance(step, LibraryStep)
            touched = tuple(step.inputs) + (step.output,)
        for b in touched:
            if program.buffers[b].kind == "temp":
                spans.setdefault(b, [n, n])[1] = n
    return {b: (s, e) for b, (s, e) in spans.items()}


def check_arena(program) -> None:
    spans = independent_lifetimes(program)
    temps = [b for b in program.buffers if b.kind == "temp"]
    for buf in temps:
        assert buf.offset is not None and buf.offset % 64 == 0
        assert buf.offset + buf.nbytes <= program.arena_bytes
    for i, a in enumerate(temps):
        for b in temps[i + 1:]:
            if a.id not in spans or b.id not in spans:
                continue
            (s1, e1), (s2, e2) = spans[a.id], spans[b.id]
            if s1 <= e2 and s2 <= e1 and a.nbytes and b.nbytes:
                disjoint = (a.offset + a.nbytes <= b.offset or
                            b.offset + b.nbytes <= a.offset)
                assert disjoint, (f"b{a.id} and b{b.id} are live together "
                                  "and overlap in the arena")
    total = sum(-(-max(b.nbytes, 1) // 64) * 64 for b in temps)
    assert program.arena_bytes <= total


UNARY = [
    lambda x: np.exp(np.minimum(x, 20)),
    np.tanh,
    lambda x: x * 2,
    lambda x: x.sum(0, keepdims=True) * x,
    lambda x: x[::-1],
    lambda x: x @ x.T @ x,
    lambda x: np.maximum(x, 0).sum(1, keepdims=True) + x,
]


@st.composite
def programs(draw):
    picks = draw(st.lists(st.integers(0, len(UNARY) - 1), min_size=1,
                          max_size=8))
    keep = draw(st.lists(st.booleans(), min_size=len(picks),
                         max_size=len(picks)))

    def program(x):
        outs, y = [], x
        for pick, kept in zip(picks, keep):
            y = UNARY[pick](y) / 4
            if kept:
                outs.append(y)
        return outs + [y]
    return program


@given(programs())
def test_no_two_live_temporaries_overlap(program):
    x = f32(6, 6)
    c = jit(program).lower(x).compile()
    check_arena(c.executable.program)
    for got, want in zip(c(x), program(x)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_gemm_chain_keeps_at_most_two_intermediates():
    n, size = 6, 64
    ws = [f32(size, size) / 8 for _ in range(n)]
    x = f32(size, size)

    def chain(x, ws):
        for w in ws:
            x = x @ w
        return x

    c = jit(chain).lower(x, ws).compile()
    program = c.executable.program
    check_arena(program)
    one = size * size * 4
    assert len([b for b in program.buffers if b.kind == "temp"]) == n - 1
    assert program.arena_bytes <= 2 * one
    np.testing.assert_allclose(c(x, ws), chain(x, ws), rtol=1e-4, atol=1e-4)


def test_memory_analysis_reports_bytes():
    x = f32(32, 16)
    w = f32(16, 16)
    c = jit(lambda x, w: np.tanh(x @ w) @ w).lower(x, w).compile()
    m = c.memory_analysis()
    assert m.argument_bytes == x.nbytes + w.nbytes
    assert m.output_bytes == 32 * 16 * 4
    assert m.temp_bytes == 2 * 32 * 16 * 4          # x@w, tanh(x@w)
    assert m.arena_bytes >= 32 * 16 * 4
    assert m.peak_bytes == m.arena_bytes + m.output_bytes
