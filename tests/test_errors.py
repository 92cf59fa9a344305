"""Tests of the errors a user sees (tracejit/errors.py and the tracing layer).

Every error says what went wrong, which argument or operation it concerns and
where: this file's name and the exact line, found with ``inspect`` so the
tests do not depend on line numbers written by hand.
"""
from __future__ import annotations

import inspect
import os
import re

import numpy as np
import pytest

import tracejit
from tracejit import (ShapeMismatchError, TracejitError, TracerConversionError,
                      UnsupportedError, jit)


THIS_FILE = os.path.basename(__file__)
X34 = np.ones((3, 4), np.float32)


def line_of(fn, marker: str) -> int:
    """The line number of the (only) source line of ``fn`` holding ``marker``."""
    lines, start = inspect.getsourcelines(fn)
    hits = [start + k for k, text in enumerate(lines) if marker in text]
    assert len(hits) == 1, (marker, hits)
    return hits[0]


def assert_location(err: BaseException, fn, marker: str) -> None:
    line = line_of(fn, marker)
    msg = str(err)
    assert f"{THIS_FILE}:{line}" in msg, msg
    # the exact line: not a prefix of a longer line number
    assert re.search(rf"{re.escape(THIS_FILE)}:{line}(?!\d)", msg), msg


def test_error_classes():
    assert issubclass(TracerConversionError, TypeError)
    assert issubclass(ShapeMismatchError, ValueError)
    assert issubclass(UnsupportedError, TypeError)
    for cls in (TracerConversionError, ShapeMismatchError, UnsupportedError):
        assert issubclass(cls, TracejitError)
    assert tracejit.TracejitError is TracejitError


# ---- traced values used as concrete values ------------------------------------

def branch_on_array(x):
    y = x * 2
    if x > 0:  # MARK-if
        return y
    return -y


def branch_on_leaf(params, bias):
    w = params["w"]
    if w.sum() > bias:  # MARK-leaf
        return w
    return bias


def to_int(x):
    n = int(x[0, 0])  # MARK-int
    return x * n


def to_float(x):
    return x * float(x.sum())  # MARK-float


def to_numpy(x):
    a = np.asarray(x)  # MARK-asarray
    return a


def while_loop(x):
    while x.max() > 1:  # MARK-while
        x = x / 2
    return x


@pytest.mark.parametrize("fn,marker,what", [
    (branch_on_array, "MARK-if", "bool()"),
    (to_int, "MARK-int", "int()"),
    (to_float, "MARK-float", "float()"),
    (to_numpy, "MARK-asarray", "numpy array"),
    (while_loop, "MARK-while", "bool()"),
], ids=["if", "int", "float", "asarray", "while"])
def test_concrete_value_of_a_tracer(fn, marker, what):
    with pytest.raises(TracerConversionError) as info:
        jit(fn)(X34)
    assert isinstance(info.value, TypeError)
    msg = str(info.value)
    assert what in msg
    assert re.search(r"\bx\b", msg), msg          # names the argument
    assert "f32[" in msg or "pred[" in msg        # and the traced value
    assert_location(info.value, fn, marker)


def test_concrete_value_names_a_pytree_leaf():
    with pytest.raises(TracerConversionError) as info:
        jit(branch_on_leaf)({"w": X34, "unused": X34}, 1.0)
    msg = str(info.value)
    assert "params['w']" in msg, msg
    assert "bias" in msg                          # also depends on bias
    assert "params['unused']" not in msg          # but not on this leaf
    assert_location(info.value, branch_on_leaf, "MARK-leaf")


def test_static_argument_is_a_concrete_value():
    """The advice the message gives works: a static argument may be
    branched on."""
    def f(x, flag):
        if flag:
            return x
        return -x

    with pytest.raises(TracerConversionError, match="flag"):
        jit(f)(X34, 1)
    np.testing.assert_array_equal(jit(f, static_argnames="flag")(X34, 1), X34)


def helper_that_branches(v):
    return v if v.sum() else -v  # MARK-helper


def test_location_is_the_innermost_user_frame():
    def outer(x):
        return helper_that_branches(x + 1)

    with pytest.raises(TracerConversionError) as info:
        jit(outer)(X34)
    assert_location(info.value, helper_that_branches, "MARK-helper")
    # an intermediate value still knows which argument it came from
    assert re.search(r"\bx\b", str(info.value))


def test_errors_leave_no_trace_behind():
    from tracejit.tracing.context import current

    f = jit(branch_on_array)
    with pytest.raises(TracerConversionError):
        f(X34)
    assert current() is None
    assert f.cache_info().compiles == 0
    g = jit(lambda x: x + 1)
    np.testing.assert_array_equal(g(X34), X34 + 1)
    with pytest.raises(TracerConversionError):   # no stale cache entry
        f(X34)


# ---- shapes -------------------------------------------------------------------------

def add_mismatched(x, y):
    return x + y  # MARK-add


def matmul_mismatched(a, b):
    return a @ b  # MARK-matmul


def dot_mismatched(a, b):
    return np.dot(a, b)  # MARK-dot


def test_broadcast_mismatch():
    with pytest.raises(ShapeMismatchError) as info:
        jit(add_mismatched)(X34, np.ones(5, np.float32))
    assert isinstance(info.value, ValueError)
    msg = str(info.value)
    assert "add" in msg
    assert "[3, 4]" in msg and "[5]" in msg, msg
    assert_location(info.value, add_mismatched, "MARK-add")


@pytest.mark.parametrize("fn,marker,name", [
    (matmul_mismatched, "MARK-matmul", "matmul"),
    (dot_mismatched, "MARK-dot", "dot")])
def test_matmul_dimension_mismatch(fn, marker, name):
    with pytest.raises(ShapeMismatchError) as info:
        jit(fn)(X34, np.ones((5, 2), np.float32))
    msg = str(info.value)
    assert name in msg
    assert "[3, 4]" in msg and "[5, 2]" in msg, msg
    assert_location(info.value, fn, marker)


def test_matrix_vector_mismatch():
    with pytest.raises(ShapeMismatchError) as info:
        jit(matmul_mismatched)(X34, np.ones(3, np.float32))
    assert "[3, 4]" in str(info.value) and "[3]" in str(info.value)
    assert_location(info.value, matmul_mismatched, "MARK-matmul")


def test_bad_reshape():
    def f(x):
        return x.reshape(5, -1)  # MARK-reshape

    with pytest.raises(ValueError) as info:
        jit(f)(X34)
    assert "reshape" in str(info.value)
    assert_location(info.value, f, "MARK-reshape")


# ---- unsupported numpy -----------------------------------------------------------------

def use_cumsum(x):
    return np.cumsum(x)  # MARK-cumsum


def use_arctan2(x):
    return np.arctan2(x, x.T.T)  # MARK-arctan2


def use_sort(x):
    return np.sort(x)  # MARK-sort


@pytest.mark.parametrize("fn,marker,name", [
    (use_cumsum, "MARK-cumsum", "cumsum"),
    (use_arctan2, "MARK-arctan2", "arctan2"),
    (use_sort, "MARK-sort", "sort")])
def test_unsupported_numpy_function(fn, marker, name):
    with pytest.raises(UnsupportedError) as info:
        jit(fn)(X34)
    assert isinstance(info.value, TypeError)
    msg = str(info.value)
    assert f"numpy.{name}" in msg, msg
    assert "f32[3,4]" in msg, msg
    assert_location(info.value, fn, marker)


def test_unsupported_ufunc_method():
    def f(x):
        return np.add.reduce(x)  # MARK-reduce

    with pytest.raises(UnsupportedError) as info:
        jit(f)(X34)
    assert "add.reduce" in str(info.value)
    assert_location(info.value, f, "MARK-reduce")


# ---- arguments ------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    np.ones(3, np.float16), np.ones(3, np.complex64), np.ones(3, np.uint8),
    np.array([1, "a"], dtype=object), np.array(["ab", "c"]),
    np.array([b"x"]), np.float16(1.0), np.complex128(1j), 1j, "text",
    b"bytes", object(),
], ids=["float16", "complex64", "uint8", "object", "str-array",
        "bytes-array", "float16-scalar", "complex-scalar", "complex",
        "str", "bytes", "object-instance"])
def test_unsupported_argument_names_the_argument(value):
    def f(x, weights):
        return weights

    with pytest.raises(TypeError) as info:
        jit(f)(X34, value)
    assert "weights" in str(info.value), str(info.value)
    with pytest.raises(TypeError, match=r"weights\[1\]\['k'\]"):
        jit(f)(X34, [X34, {"k": value}])


def test_unsupported_dtype_inside_the_function():
    def f(x):
        return x.astype(np.float16)  # MARK-astype

    with pytest.raises(UnsupportedError) as info:
        jit(f)(X34)
    assert "float16" in str(info.value)
    assert_location(info.value, f, "MARK-astype")


# ---- numpy's own errors, reproduced under jit ---------------------------------------------------

def test_boolean_subtract_is_a_type_error():
    a = np.array([True, False])
    with pytest.raises(TypeError):
        a - a                            # numpy refuses too
    with pytest.raises(TypeError, match="subtract"):
        jit(lambda a, b: a - b)(a, a)
    with pytest.raises(TypeError):
        jit(lambda a: -a)(a)


def test_python_int_out_of_range_for_int32():
    x = np.ones(3, np.int32)
    with pytest.raises(OverflowError):
        x + 2**40                        # numpy's behaviour

    def f(x):
        return x + 2**40  # MARK-overflow

    with pytest.raises(OverflowError) as info:
        jit(f)(x)
    assert_location(info.value, f, "MARK-overflow")
    with pytest.raises(OverflowError, match="scale"):
        jit(lambda x, scale: x * scale)(x, -2**33)


def test_max_of_an_empty_axis():
    empty = np.ones((0, 3), np.float32)
    with pytest.raises(ValueError):
        empty.max(axis=0)

    def f(x):
        return x.max(axis=0)  # MARK-max

    with pytest.raises(ValueError) as info:
        jit(f)(empty)
    assert_location(info.value, f, "MARK-max")
    with pytest.raises(ValueError):
        jit(lambda x: np.min(x))(empty)
    # reducing the non-empty axis is fine, as in numpy
    np.testing.assert_array_equal(jit(lambda x: x.max(axis=1))(empty),
                                  empty.max(axis=1))


@pytest.mark.parametrize("index", [
    lambda x: x[3], lambda x: x[-4], lambda x: x[:, 4], lambda x: x[0, -5],
    lambda x: x[0, 0, 0]], ids=["3", "-4", ":,4", "0,-5", "too-many"])
def test_index_out_of_range(index):
    with pytest.raises(IndexError):
        index(X34)                       # numpy agrees
    with pytest.raises(IndexError):
        jit(index)(X34)


def test_index_error_names_the_line():
    def f(x):
        return x[7]  # MARK-index

    with pytest.raises(IndexError) as info:
        jit(f)(X34)
    assert "7" in str(info.value)
    assert_location(info.value, f, "MARK-index")


@pytest.mark.parametrize("index", [
    lambda x: x[np.array([0, 2])], lambda x: x[[0, 1]],
    lambda x: x[x > 0], lambda x: x[:, np.array([True, False, True, True])],
], ids=["int-array", "list", "mask", "bool-array"])
def test_advanced_indexing_is_unsupported(index):
    with pytest.raises(UnsupportedError) as info:
        jit(index)(X34)
    assert "index" in str(info.value)
    assert THIS_FILE in str(info.value)


def test_traced_index_is_unsupported():
    with pytest.raises(TypeError):
        jit(lambda x, i: x[i])(X34, 1)
    np.testing.assert_array_equal(
        jit(lambda x, i: x[i], static_argnums=1)(X34, 1), X34[1])


# ---- every unsupported operation on a traced value is a TracejitError ------

def use_std(x):
    return x.std()  # MARK-std


def use_concatenate(x):
    return np.concatenate([x, x])  # MARK-concat


def use_norm(x):
    return np.linalg.norm(x)  # MARK-norm


def test_unsupported_method_names_it_and_the_line():
    """Was: a bare AttributeError ('Tracer' object has no attribute)."""
    with pytest.raises(tracejit.errors.UnsupportedAttributeError) as info:
        jit(use_std)(X34)
    assert isinstance(info.value, (TracejitError, AttributeError))
    assert "numpy.ndarray.std" in str(info.value)
    assert_location(info.value, use_std, "MARK-std")
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        jit(lambda x: x.nonsense)(X34)


def test_arguments_inside_lists_are_described():
    """Was: np.concatenate([a, b]) reported '(arguments )'."""
    with pytest.raises(UnsupportedError) as info:
        jit(use_concatenate)(X34)
    assert "numpy.concatenate" in str(info.value)
    assert "f32[3,4], f32[3,4]" in str(info.value)
    assert_location(info.value, use_concatenate, "MARK-concat")


def test_functions_are_named_by_their_public_path():
    """Was: np.linalg.norm reported as 'numpy.norm'."""
    with pytest.raises(UnsupportedError) as info:
        jit(use_norm)(X34)
    assert "numpy.linalg.norm" in str(info.value)
    assert_location(info.value, use_norm, "MARK-norm")


def test_a_list_argument_is_traced_as_scalars_and_the_error_says_so():
    def f(x):
        return np.exp(x)  # MARK-list

    with pytest.raises(TracerConversionError) as info:
        jit(f)([1.0, 2.0])
    msg = str(info.value)
    assert "np.asarray(x)" in msg and "separate scalars" in msg, msg
    assert "mark x[0] static" not in msg
    assert_location(info.value, f, "MARK-list")
    np.testing.assert_allclose(jit(f)(np.asarray([1.0, 2.0])),
                               np.exp([1.0, 2.0]), rtol=1e-15)


@pytest.mark.parametrize("fn, name", [
    (lambda x: divmod(x, 2), "numpy.divmod"),
    (lambda x: round(x), "numpy.round"),
    (lambda x: x.cumsum(), "numpy.ndarray.cumsum"),
    (lambda x: np.add.reduce(x), "add.reduce"),
], ids=["divmod", "round", "cumsum-method", "ufunc-method"])
def test_python_protocols_numpy_routes_are_refused_by_name(fn, name):
    with pytest.raises(TracejitError, match=re.escape(name)):
        jit(fn)(X34)
