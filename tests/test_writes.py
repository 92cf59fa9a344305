"""Writes into traced arrays (tracing/writes.py): numpy's answer or an
error naming the argument and the line, never a silent rebinding.

Was: ``x += y`` on an argument silently rebound the local name, so the
caller's array was left unchanged where numpy would have updated it.
"""
from __future__ import annotations

import inspect
import os
import re

import numpy as np
import pytest

import tracejit
from tracejit import jit
from tracejit.errors import CastingError, UnsupportedWriteError

THIS_FILE = os.path.basename(__file__)


def assert_names_line(err, fn, marker):
    lines, start = inspect.getsourcelines(fn)
    line = start + next(k for k, t in enumerate(lines) if marker in t)
    assert re.search(rf"{THIS_FILE}:{line}(?!\d)", str(err)), str(err)


def add_into_argument(x, y):
    x += y  # MARK-iadd
    return x


def scale_rows(A, s):
    A *= s[:, None]  # MARK-imul
    return A


def set_item(x):
    x[0] = 1.0  # MARK-setitem
    return x


def set_item_of_intermediate(x):
    y = x * 2
    y[1:] = 0.0  # MARK-setitem2
    return y


def through_view(x):
    y = x * 2
    v = y[1:]  # noqa: F841  (a view numpy would update)
    y -= 1  # MARK-view
    return v


def aliased(x):
    y = x * 2
    z = y
    y += 1  # MARK-alias
    return z


def in_a_list(x):
    y = x * 2
    keep = [y]
    y += 1  # MARK-list
    return keep[0]


def view_of_argument(x):
    v = x[::2]
    v += 1  # MARK-argview
    return x


@pytest.mark.parametrize("fn, args, marker, names", [
    (add_into_argument, (np.ones(3), np.ones(3)), "MARK-iadd", "x"),
    (scale_rows, (np.ones((3, 2)), np.arange(3.0)), "MARK-imul", "A"),
    (set_item, (np.ones(3),), "MARK-setitem", "x"),
    (set_item_of_intermediate, (np.ones(3),), "MARK-setitem2", "x"),
    (through_view, (np.ones(3),), "MARK-view", "x"),
    (aliased, (np.ones(3),), "MARK-alias", "x"),
    (in_a_list, (np.ones(3),), "MARK-list", "x"),
    (view_of_argument, (np.ones(4),), "MARK-argview", "x"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_writes_numpy_would_see_elsewhere_are_refused(fn, args, marker,
                                                      names):
    keep = [a.copy() for a in args]
    with pytest.raises(UnsupportedWriteError) as info:
        jit(fn)(*args)
    assert isinstance(info.value, tracejit.TracejitError)
    assert re.search(rf"\b{names}\b", str(info.value)), str(info.value)
    assert_names_line(info.value, fn, marker)
    for a, k in zip(args, keep):
        np.testing.assert_array_equal(a, k)


def fresh_update(x, y):
    z = x * 2.0
    z += y
    z *= 3
    z -= 1
    z /= 4
    z **= 2
    return z


def typed_update(x, y):
    z = x.astype(np.float32)
    z += y            # float64 operand, the array stays float32
    w = (x * 2).astype(np.int32)
    w //= 3
    w <<= 1
    return z, w


def scalar_accumulation(a):
    total = 0.0
    for i in range(a.shape[0]):
        total += np.tanh(a[i, i])
    count = a.sum()
    count -= 1
    return total, count


@pytest.mark.parametrize("fn", [fresh_update, typed_update,
                                scalar_accumulation])
def test_updates_only_this_name_sees_are_numpys(fn):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 4))
    args = (x,) if fn is scalar_accumulation else (x, rng.random((4, 4)))
    keep = [a.copy() for a in args]
    got, want = jit(fn)(*args), fn(*[a.copy() for a in args])
    for g, w in zip(np.atleast_1d(got) if fn is fresh_update else got,
                    np.atleast_1d(want) if fn is fresh_update else want):
        assert np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_allclose(g, w, rtol=1e-6)
    for a, k in zip(args, keep):
        np.testing.assert_array_equal(a, k)


def test_in_place_casting_and_shape_rules_are_numpys():
    def int_plus_float(x):
        y = (x * 2).astype(np.int32)
        y += 1.5
        return y

    def grow(x):
        y = x * 2
        y += np.ones((2, 3))
        return y

    with pytest.raises(CastingError):
        jit(int_plus_float)(np.ones(3))
    with pytest.raises(TypeError):
        int_plus_float(np.ones(3))
    with pytest.raises(ValueError):
        jit(grow)(np.ones(3))
    with pytest.raises(ValueError):
        grow(np.ones(3))


def test_python_scalar_arguments_rebind_as_in_python():
    def f(x, s):
        s += 1
        return x * s

    np.testing.assert_array_equal(jit(f)(np.ones(2), 2.0), f(np.ones(2), 2.0))
