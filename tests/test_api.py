"""Tests of the public ``jit`` API (tracejit/api.py, tracejit/tree.py).

Decorator forms and wrapping, argument kinds (every supported dtype, numpy
and Python scalars with NEP 50 weak typing, pytrees), output freshness, inputs
never written, the signature cache (exact hit/miss/trace/compile counts),
static arguments, and the lower/compile staging API.
"""
from __future__ import annotations

import functools

import numpy as np
import pytest

import tracejit
from tracejit import jit


DTYPES = ["bool", "int32", "int64", "float32", "float64"]


def sample(dtype, shape=(3, 4), seed=0):
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype.startswith("int"):
        return rng.integers(-50, 50, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def assert_same(got, want):
    """Same type, dtype, shape and values (NaN-aware)."""
    assert isinstance(got, np.ndarray), type(got)
    want = np.asarray(want)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    if want.dtype.kind == "f":
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    else:
        np.testing.assert_array_equal(got, want)


# ---- decorator forms and wrapping ------------------------------------------

def test_bare_decorator():
    @jit
    def f(x):
        return x * 2 + 1

    assert isinstance(f, tracejit.Jitted)
    x = sample("float32")
    assert_same(f(x), x * 2 + 1)


def test_decorator_with_arguments():
    @jit(static_argnames="n")
    def f(x, n):
        return x * n

    assert isinstance(f, tracejit.Jitted)
    x = sample("int32")
    assert_same(f(x, n=3), x * 3)


def test_decorator_with_empty_call():
    @jit()
    def f(x):
        return -x

    x = sample("float64")
    assert_same(f(x), -x)


def test_functools_wraps():
    def scaled(x, factor):
        """Multiply by a factor."""
        return x * factor

    f = jit(scaled)
    assert f.__name__ == "scaled"
    assert f.__doc__ == "Multiply by a factor."
    assert f.__wrapped__ is scaled
    assert f.__qualname__ == scaled.__qualname__
    assert f.__module__ == __name__
    g = jit(static_argnums=1)(scaled)
    assert g.__name__ == "scaled" and g.__wrapped__ is scaled


def test_jit_on_a_method_binds_self():
    class Scaler:
        def __init__(self, k):
            self.k = k

        def __hash__(self):
            return hash(self.k)

        def __eq__(self, other):
            return isinstance(other, Scaler) and other.k == self.k

        @functools.partial(jit, static_argnums=0)
        def apply(self, x):
            return x * self.k

    x = sample("float32")
    assert_same(Scaler(3).apply(x), x * 3)
    assert_same(Scaler(5).apply(x), x * 5)
    assert Scaler.apply.cache_info().traces == 2
    assert isinstance(Scaler.__dict__["apply"], tracejit.Jitted)


def test_unknown_backend_is_rejected():
    with pytest.raises(ValueError, match="backend"):
        jit(lambda x: x, backend="tpu")


# ---- arguments ----------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_every_supported_dtype(dtype):
    def f(x, y):
        return x + y, x * y, np.maximum(x, y), x == y

    x, y = sample(dtype, seed=1), sample(dtype, seed=2)
    got = jit(f)(x, y)
    for g, w in zip(got, f(x, y)):
        assert_same(g, w)


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_dim_array_arguments(dtype):
    x = np.asarray(sample(dtype, shape=()))
    assert_same(jit(lambda x: x + x)(x), x + x)


@pytest.mark.parametrize("scalar", [np.float32(2.5), np.float64(2.5),
                                    np.int32(3), np.int64(3), np.bool_(True)],
                         ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("dtype", ["int32", "float32"])
def test_numpy_scalars_are_strongly_typed(scalar, dtype):
    x = sample(dtype)
    got = jit(lambda x, s: x * s)(x, scalar)
    assert_same(got, x * scalar)


def test_numpy_float64_scalar_is_strong_not_weak():
    """np.float64 subclasses Python float but is not weak (NEP 50)."""
    x = sample("float32")
    assert (x * np.float64(2.0)).dtype == np.float64
    got = jit(lambda x, s: x * s)(x, np.float64(2.0))
    assert got.dtype == np.float64


@pytest.mark.parametrize("dtype,scalar", [
    ("float32", 2.0), ("float32", 3), ("float32", True),
    ("int32", 3), ("int32", 2.5), ("int32", True), ("int32", -7),
    ("int64", 3), ("float64", 0.5), ("bool", 2), ("bool", 1.5),
    ("bool", False),
])
def test_python_scalars_follow_nep50(dtype, scalar):
    x = sample(dtype)
    f = jit(lambda x, s: x * s)
    assert_same(f(x, scalar), x * scalar)
    # the scalar as the first operand
    assert_same(jit(lambda x, s: np.add(s, x))(x, scalar), np.add(scalar, x))


def test_weak_float_keeps_float32():
    x = sample("float32")
    out = jit(lambda x, s: x * s)(x, 2.0)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, x * np.float32(2.0))


def test_python_scalar_alone():
    f = jit(lambda s, t: s * t)
    assert_same(f(2.0, 3), np.multiply(2.0, 3))
    assert_same(f(2, 3), np.multiply(2, 3))
    assert_same(f(True, False), np.multiply(True, False))


def test_python_int_outside_int64_is_rejected():
    with pytest.raises(OverflowError, match="x"):
        jit(lambda x: x)(2**70)


def test_weak_scalar_in_where_keeps_array_dtype():
    """Regression: np.where promoted weak scalars as strong ones."""
    x = sample("float32")
    got = jit(lambda x: np.where(x > 0, x, 2))(x)
    assert_same(got, np.where(x > 0, x, 2))


def test_weak_scalar_argument_in_where_keeps_int32():
    x = sample("int32")
    got = jit(lambda x, s: np.where(x > 0, x, s))(x, 7)
    assert_same(got, np.where(x > 0, x, 7))


def test_comparing_two_weak_python_ints():
    assert_same(jit(lambda s: s > 0)(3), np.greater(3, 0))


# ---- pytrees ------------------------------------------------------------------

def test_pytrees_in_and_out_keep_their_structure():
    def f(params, extra, nothing):
        w, b = params["w"], params["b"]
        return {"y": (w @ extra[0] + b, [extra[1] * 2, None]),
                "n": nothing, "sum": [w.sum()]}

    w, v = sample("float32", (3, 4)), sample("float32", (4,), seed=3)
    b, c = sample("float32", (3,), seed=4), sample("int32", (2,), seed=5)
    params = {"w": w, "b": b}
    got = jit(f)(params, (v, c), None)
    want = f(params, (v, c), None)
    assert type(got) is dict and sorted(got) == ["n", "sum", "y"]
    assert type(got["y"]) is tuple and len(got["y"]) == 2
    assert type(got["y"][1]) is list and got["y"][1][1] is None
    assert got["n"] is None
    assert type(got["sum"]) is list and len(got["sum"]) == 1
    assert_same(got["y"][0], want["y"][0])
    assert_same(got["y"][1][0], want["y"][1][0])
    assert_same(got["sum"][0], want["sum"][0])


def test_pytree_of_python_scalars_and_empty_containers():
    f = jit(lambda t: {"a": t[0] + t[1], "e": [], "t": ()})
    got = f((1, 2.5))
    assert got["e"] == [] and got["t"] == ()
    assert_same(got["a"], np.add(1, 2.5))


def test_keyword_arguments_are_pytrees_too():
    f = jit(lambda x, *, cfg: x * cfg["scale"] + cfg["shift"])
    x = sample("float64")
    assert_same(f(x, cfg={"scale": 2.0, "shift": np.float64(1)}), x * 2 + 1)


def test_output_python_scalars_become_arrays():
    got = jit(lambda x: (x.sum(), 2, 2.5, True))(sample("int32"))
    assert [g.dtype for g in got] == [np.int64, np.int64, np.float64,
                                      np.bool_]
    assert got[1] == 2 and got[2] == 2.5 and got[3]


def test_invalid_leaf_type_is_a_type_error_naming_the_path():
    with pytest.raises(TypeError, match=r"p\['k'\]"):
        jit(lambda p: p)({"k": "text"})


# ---- outputs are fresh, inputs untouched -----------------------------------------

ALIASING_FUNCTIONS = {
    "identity": lambda x: x,
    "transpose": lambda x: x.T,
    "slice": lambda x: x[1:, ::2],
    "reverse": lambda x: x[::-1],
    "reshape": lambda x: x.reshape(-1),
    "expand": lambda x: x[None],
    "twice": lambda x: (x, x),
    "tree": lambda x: {"a": x, "b": [x.T, x]},
}


@pytest.mark.parametrize("name", sorted(ALIASING_FUNCTIONS))
def test_outputs_never_share_memory_with_inputs(name):
    fn = ALIASING_FUNCTIONS[name]
    x = sample("float32", (4, 6))
    keep = x.copy()
    got = jit(fn)(x)
    leaves = [g for g in _leaves(got)]
    want = [np.asarray(w) for w in _leaves(fn(x))]
    for g, w in zip(leaves, want):
        assert isinstance(g, np.ndarray)
        assert not np.shares_memory(g, x), name
        assert g.flags.writeable
        np.testing.assert_array_equal(g, w)
    for i, a in enumerate(leaves):      # and not with each other
        for b in leaves[i + 1:]:
            assert not np.shares_memory(a, b), name
    for g in leaves:                    # writing an output leaves x alone
        g[...] = 0
    np.testing.assert_array_equal(x, keep)


def test_repeated_intermediate_outputs_are_distinct_arrays():
    def f(x):
        y = x + 1
        return y, y, y.T

    a, b, c = jit(f)(sample("float64"))
    assert not np.shares_memory(a, b) and not np.shares_memory(a, c)
    a[...] = -1
    assert (b != -1).all()


def _leaves(tree):
    if isinstance(tree, dict):
        for k in sorted(tree):
            yield from _leaves(tree[k])
    elif isinstance(tree, (list, tuple)):
        for t in tree:
            yield from _leaves(t)
    elif tree is not None:
        yield tree


def _layouts(base):
    """Views of ``base``'s values in several memory layouts."""
    yield "C", np.ascontiguousarray(base)
    yield "F", np.asfortranarray(base)
    big = np.zeros(tuple(2 * n for n in base.shape), base.dtype)
    neg = tuple(slice(None, None, -2) for _ in base.shape)
    big[neg] = base
    yield "negative-stride", big[neg]
    big = np.zeros(tuple(3 * n for n in base.shape), base.dtype)
    step = tuple(slice(1, None, 3) for _ in base.shape)
    big[step] = base
    yield "strided", big[step]
    ro = base.copy()
    ro.flags.writeable = False
    yield "read-only", ro
    yield "transposed-view", np.ascontiguousarray(base.T).T


def test_inputs_are_never_written():
    def f(a, b):
        t = np.exp(a) * 2 - b.T
        return t, t.sum(axis=1), a @ b, a[::-1, 1:]

    base_a = sample("float64", (3, 4), seed=7)
    base_b = sample("float64", (4, 3), seed=8)
    jf = jit(f)
    for na, a in _layouts(base_a):
        for nb, b in _layouts(base_b):
            ca, cb = a.copy(), b.copy()
            got = jf(a, b)
            np.testing.assert_array_equal(a, ca, err_msg=na)
            np.testing.assert_array_equal(b, cb, err_msg=nb)
            for g, w in zip(got, f(ca, cb)):
                assert_same(g, w)
                assert not np.shares_memory(g, a)
                assert not np.shares_memory(g, b)
    # all those layouts are one signature
    info = jf.cache_info()
    assert (info.traces, info.compiles) == (1, 1)


def test_read_only_input_stays_read_only():
    x = sample("int64")
    x.flags.writeable = False
    out = jit(lambda x: x * 2)(x)
    assert not x.flags.writeable
    assert out.flags.writeable
    out[0, 0] = 1                      # the output is an ordinary array


@pytest.mark.parametrize("dtype", [">f4", ">i4", ">f8", ">i8"])
def test_non_native_byte_order_input(dtype):
    x = np.arange(6).reshape(2, 3).astype(dtype)
    got = jit(lambda x: x + 1)(x)
    np.testing.assert_array_equal(got, x + 1)
    assert got.dtype.isnative


# ---- the signature cache ----------------------------------------------------------

def info(f):
    i = f.cache_info()
    return (i.hits, i.misses, i.traces, i.compiles)


def test_cache_hit_does_not_retrace_or_recompile():
    calls = []

    @jit
    def f(x, y):
        calls.append(1)
        return x * y

    x = sample("float32")
    assert info(f) == (0, 0, 0, 0)
    f(x, x)
    assert info(f) == (0, 1, 1, 1) and len(calls) == 1
    f(x, x)
    f(x + 1, x)
    assert info(f) == (2, 1, 1, 1) and len(calls) == 1


def test_layout_is_not_part_of_the_signature():
    f = jit(lambda x: x + 1)
    x = sample("float32", (4, 6))
    f(x)
    f(np.asfortranarray(x))
    f(np.zeros((8, 12), np.float32)[::2, ::-2])
    f(x.T.copy().T)
    assert info(f) == (3, 1, 1, 1)


def test_new_shape_or_dtype_is_one_trace_and_compile():
    f = jit(lambda x: x * 2)
    f(sample("float32", (3, 4)))
    f(sample("float32", (4, 3)))
    assert info(f) == (0, 2, 2, 2)
    f(sample("float64", (3, 4)))
    assert info(f) == (0, 3, 3, 3)
    f(sample("float32", (3, 4)))
    f(sample("float64", (3, 4)))
    assert info(f) == (2, 3, 3, 3)


def test_weak_and_strong_scalars_are_different_signatures():
    f = jit(lambda x, s: x * s)
    x = sample("float32")
    assert f(x, 2.0).dtype == np.float32
    assert f(x, np.float64(2.0)).dtype == np.float64
    assert f(x, np.float32(2.0)).dtype == np.float32
    assert info(f) == (0, 3, 3, 3)
    f(x, 3.0)                            # same weak signature, new value
    assert info(f) == (1, 3, 3, 3)


def test_python_int_argument_overflowing_int32_raises():
    f = jit(lambda x, s: x + s)
    x = sample("int32")
    assert_same(f(x, 2**31 - 1), x + (2**31 - 1))
    with pytest.raises(OverflowError):
        x + 2**40                        # numpy's behaviour
    with pytest.raises(OverflowError, match="s"):
        f(x, 2**40)
    assert_same(f(sample("int64"), 2**40), sample("int64") + 2**40)


def test_static_argument_change_retraces():
    traced = []

    @functools.partial(jit, static_argnums=1)
    def f(x, n):
        traced.append(n)
        return x * n

    x = sample("int32")
    assert_same(f(x, 2), x * 2)
    assert_same(f(x, 2), x * 2)
    assert_same(f(x, 3), x * 3)
    assert traced == [2, 3]
    assert info(f) == (1, 2, 2, 2)


def test_static_values_that_compare_equal_but_differ_in_type():
    """2, 2.0 and True are equal and hash alike, but trace differently."""
    f = jit(lambda x, n: x * n, static_argnums=1)
    x = sample("int32")
    assert_same(f(x, 2), x * 2)
    assert_same(f(x, 2.0), x * 2.0)
    assert_same(f(x, True), x * True)
    assert_same(f(x, (2,)[0]), x * 2)
    assert info(f) == (1, 3, 3, 3)


def test_static_argnames_and_control_flow():
    @jit(static_argnames=("mode",))
    def f(x, mode="relu"):
        if mode == "relu":
            return np.maximum(x, 0)
        return np.tanh(x)

    x = sample("float32")
    assert_same(f(x), np.maximum(x, 0))
    assert_same(f(x, mode="tanh"), np.tanh(x))
    assert_same(f(x, mode="relu"), np.maximum(x, 0))
    traces = info(f)[2]
    assert_same(f(x, mode="tanh"), np.tanh(x))
    assert_same(f(x, mode="relu"), np.maximum(x, 0))
    assert_same(f(x), np.maximum(x, 0))
    assert info(f)[2] == traces
    assert_same(f(x, mode="sigmoid"), np.tanh(x))
    assert info(f)[2] == traces + 1


def test_static_argnums_parameter_passed_by_keyword():
    f = jit(lambda x, n, scale: x * n * scale, static_argnums=1)
    x = sample("float64")
    assert_same(f(x, n=3, scale=0.5), x * 3 * 0.5)
    assert_same(f(x, 4, 0.5), x * 4 * 0.5)
    traces = info(f)[2]
    assert_same(f(x, n=5, scale=0.5), x * 5 * 0.5)   # a new static value
    assert info(f)[2] == traces + 1
    assert_same(f(x, n=5, scale=2.0), x * 5 * 2.0)   # only a dynamic change
    assert info(f)[2] == traces + 1


def test_static_argnames_parameter_passed_positionally():
    f = jit(lambda x, n: x * n, static_argnames="n")
    x = sample("int64")
    assert_same(f(x, 3), x * 3)
    assert_same(f(x, 4), x * 4)
    assert info(f)[2] == 2


def test_negative_static_argnums():
    f = jit(lambda x, n: x + n, static_argnums=-1)
    x = sample("int64")
    assert_same(f(x, 3), x + 3)
    assert_same(f(x, 4), x + 4)
    assert info(f)[2] == 2


@pytest.mark.parametrize("value", [[1, 2], {"a": 1}, np.ones(2), (1, [2])],
                         ids=["list", "dict", "ndarray", "nested"])
def test_unhashable_static_argument_names_it(value):
    def scale(x, factor):
        return x

    f = jit(scale, static_argnums=1)
    with pytest.raises(TypeError, match="'factor'"):
        f(sample("float32"), value)
    with pytest.raises(TypeError, match="'factor'"):
        f(sample("float32"), factor=value)
    g = jit(scale, static_argnames="factor")
    with pytest.raises(TypeError, match="'factor'"):
        g(sample("float32"), factor=value)


def test_clear_cache_forces_a_retrace():
    f = jit(lambda x: x + 1)
    x = sample("float32")
    f(x)
    f.clear_cache()
    f(x)
    assert info(f)[2:] == (2, 2)


# ---- lower / compile -----------------------------------------------------------------

def test_lower_as_text_is_hlo():
    x = np.ones((4, 8), np.float32)
    text = jit(lambda a, b: a + b).lower(x, x).as_text()
    assert "f32[4,8] add(" in text
    assert "parameter(0)" in text and "parameter(1)" in text
    assert text.startswith("HloModule ")
    assert "ROOT" in text


def test_lower_text_shows_dtypes_and_shapes():
    text = jit(lambda a: a.sum(axis=1)).lower(
        np.ones((2, 5), np.int32)).as_text()
    assert "s32[2,5] parameter(0)" in text
    assert "s64[2] reduce_sum(" in text


def test_lower_does_not_compile_and_compile_reuses_the_trace():
    f = jit(lambda x: np.exp(x) + 1)
    x = np.ones(5, np.float32)
    lowered = f.lower(x)
    assert isinstance(lowered, tracejit.Lowered)
    assert info(f) == (0, 0, 1, 0)
    compiled = lowered.compile()
    assert isinstance(compiled, tracejit.Compiled)
    assert info(f) == (0, 0, 1, 1)
    f(x)                                 # a hit: same signature
    assert info(f) == (1, 0, 1, 1)


def test_compiled_as_text_is_llvm_ir():
    x = np.ones(16, np.float32)
    ir = jit(lambda a, b: a * b + 1).lower(x, x).compile().as_text()
    assert "define void" in ir
    assert "noalias" in ir
    assert "fmul" in ir or "fadd" in ir


def test_compiled_is_callable_and_checks_its_signature():
    x = sample("float32")
    compiled = jit(lambda a, s: a * s).lower(x, 2.0).compile()
    assert_same(compiled(x, 3.0), x * 3.0)
    assert_same(compiled(np.asfortranarray(x), 0.5), x * 0.5)
    with pytest.raises(TypeError):
        compiled(x.astype(np.float64), 3.0)
    with pytest.raises(TypeError):
        compiled(x, np.float64(3.0))


def test_kernel_count():
    x = sample("float32", (8, 8))
    nontrivial = jit(lambda a: np.tanh(a).sum(axis=0) * 2)
    count = nontrivial.lower(x).compile().kernel_count
    assert type(count) is int and count > 0
    gemm = jit(lambda a, b: a @ b).lower(x, x).compile()
    assert gemm.kernel_count == 0
    assert_same(gemm(x, x), x @ x)


def test_fast_path_hits_keep_counting_and_never_skip_conversions():
    f = jit(lambda x: x * 2)
    x = np.arange(4, dtype=np.float32)
    for _ in range(3):
        np.testing.assert_array_equal(f(x), x * 2)
    assert f.cache_info() == (2, 1, 1, 1)
    swapped = x.astype(">f4")                 # converted on every call
    for _ in range(2):
        np.testing.assert_array_equal(f(swapped), x * 2)
    assert f.cache_info().compiles == 1
    np.testing.assert_array_equal(f(x[::-1]), x[::-1] * 2)


def test_copies_are_fresh_arrays():
    """np.copy and ndarray.copy trace (a traced value is never modified in
    place); the result is a new array and the input is left as it was."""
    a = np.arange(6.0).reshape(2, 3)[:, ::-1]
    before = a.copy()

    def f(x):
        y = x.copy()
        y = y + 1
        return np.copy(x), y, x.T.copy(order="C")
    got = jit(f)(a)
    for g, w in zip(got, f(before)):
        np.testing.assert_array_equal(g, w)
        assert not np.shares_memory(g, a)
    np.testing.assert_array_equal(a, before)
