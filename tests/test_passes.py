"""Every pass preserves semantics: the reference interpreter gives the same
answer before and after each single pass, on random programs of up to 15
ops, and the compiled program agrees with it."""
import numpy as np
from hypothesis import given, settings, strategies as st

from tracejit import jit
from tracejit.hlo import evaluate, verify
from tracejit.pipeline import HLO_PASSES
from tracejit.hlo.passes import FixedPoint



def single_passes(module):
    """Yield each pass as the pipeline runs it (fixed points repeated),
    after running it on ``module``."""
    for item in HLO_PASSES:
        if not isinstance(item, FixedPoint):
            item(module)
            yield item
            continue
        for _ in range(item.limit):
            changed = False
            for pass_fn in item.passes:
                changed |= bool(pass_fn(module))
                yield pass_fn
            if not changed:
                break

UNARY = [
    ("neg", lambda x: -x),
    ("negneg", lambda x: -(-x)),
    ("exp", lambda x: np.exp(np.minimum(x, 10))),
    ("tanh", np.tanh),
    ("sqrt", lambda x: np.sqrt(np.abs(x))),
    ("times1", lambda x: x * 1),
    ("plus_neg_zero", lambda x: x + np.float32(-0.0)),
    ("cse", lambda x: (x * 2) + (x * 2)),
    ("const", lambda x: x * (np.float32(2) + np.float32(1))),
    ("rev", lambda x: x[::-1]),
    ("tt", lambda x: x.T.T),
    ("sum0", lambda x: x.sum(0, keepdims=True) + x),
    ("max_last", lambda x: x - x.max(-1, keepdims=True)),
    ("mean_all", lambda x: x - x.mean()),
    ("where", lambda x: np.where(x > 0, x, 0.5 * x)),
    ("dead", lambda x: (np.tanh(x), x + 1)[1]),
    ("gemm", lambda x: (x.T @ x)[:1] + x if x.ndim == 2 and x.shape[0] == x.shape[1]
     else x),
    ("astype", lambda x: x.astype(np.float64).astype(np.float32)),
]
BINARY = [
    ("add", np.add), ("sub", np.subtract), ("mul", np.multiply),
    ("div", lambda a, b: a / (np.abs(b) + 1)), ("max", np.maximum),
]


@st.composite
def programs(draw):
    n = draw(st.integers(2, 5))
    shapes = draw(st.lists(st.sampled_from([(n, n), (1, n), (n,), (n, 1)]),
                           min_size=1, max_size=3))
    steps = draw(st.lists(st.tuples(
        st.booleans(), st.integers(0, len(UNARY) - 1),
        st.integers(0, len(BINARY) - 1), st.integers(0, 2)),
        min_size=1, max_size=15))

    def program(*xs):
        values = [x for x in xs]
        for binary, u, b, pick in steps:
            x = values[pick % len(values)]
            if binary:
                y = values[(pick + 1) % len(values)]
                values.append(BINARY[b][1](x, y))
            else:
                values.append(UNARY[u][1](x))
        return values[-1], values[len(xs):][:2]

    values = [draw(st.sampled_from([-2.5, -0.0, 0.0, 0.5, 1.0, 3.0, np.nan,
                                    np.inf]))]
    return program, shapes, steps, values


def inputs(shapes, rng):
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def same(a, b) -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-6, equal_nan=True)


@settings(max_examples=150)
@given(programs(), st.integers(0, 2**31 - 1))
def test_each_pass_preserves_the_interpreters_answer(program, seed):
    fn, shapes, _, special = program
    rng = np.random.default_rng(seed)
    xs = inputs(shapes, rng)
    xs[0].reshape(-1)[0] = special[0]
    lowered = jit(fn).lower(*xs)
    module = lowered._traced.module
    # re-trace an unoptimized copy and walk the passes one at a time
    from tracejit.tracing import LeafSpec, trace
    from tracejit.hlo.module import Aval
    from tracejit import tree

    def flat(*args):
        return tree.flatten(fn(*args))[0]

    specs = [LeafSpec(Aval(x.shape, x.dtype.name), False, f"x{k}")
             for k, x in enumerate(xs)]
    raw, _ = trace(flat, specs, "raw")
    with np.errstate(all="ignore"):
        expected = evaluate(raw, xs)
        for pass_fn in single_passes(raw):
            verify(raw)
            got = evaluate(raw, xs)
            for a, b in zip(got, expected):
                same(a, b)
        compiled = lowered.compile()(*xs)
    assert module.text() == raw.text().replace("HloModule raw",
                                               f"HloModule {module.name}")
    for a, b in zip(tree.flatten(compiled)[0], expected):
        same(a, b)
