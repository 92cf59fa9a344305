"""Every parameter of every traced numpy name is honoured or refused.

tracing/binding.py binds each call against numpy's own signature.  Here:

* every implementation's parameter names are numpy's (they cannot drift);
* every parameter tracejit does not take is refused, by name, with the
  function and the user's line, when passed a non-default value;
* a differential hypothesis test draws a traced name, a combination of
  its honoured keywords, dtypes and shape classes (0-d, empty, broadcast)
  in every memory layout, and compares ``jit(f)`` with numpy: values,
  dtype and shape, or the same kind of error; the inputs stay unchanged.
  The ``ci`` profile keeps it bounded; ``-m slow`` runs many more examples.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tracejit
from tracejit.hlo.primitives import PRIMITIVES
from tracejit.tracing.binding import FUNCTIONS, METHODS, ArgumentError
from tracejit.tracing.ufuncs import UFUNCS

from backends import check_on, on_backends
from test_ops import matmul_compare
from strategies import (DTYPES, FLOAT_DTYPES, INT_DTYPES, arrays, axes,
                        broadcast_targets, broadcastable_shapes, compare_ulp,
                        reshape_targets, shapes)

jit = tracejit.jit
ALL = {**{t.name: t for t in FUNCTIONS.values()},
       **{t.name: t for t in METHODS.values()}}
MAYBE = DTYPES + (None,)
CASTINGS = ("no", "equiv", "safe", "same_kind", "unsafe")


@dataclass
class Case:
    """How to call one traced name: its array inputs (drawn), the call,
    and a strategy per honoured keyword (``data, xs -> value``)."""

    arrays: int = 1                   # leading array parameters
    call: object = None               # (numpy callable, xs, kw) -> result
    keywords: dict = field(default_factory=dict)
    shapes: object = None             # data -> list of shapes
    values: dict = field(default_factory=dict)   # arrays(**values)
    compare: object = None            # (kw) -> compare function
    required: tuple = ()              # keywords always passed


def _draw_axis(data, xs):
    return data.draw(axes(xs[0].ndim), label="axis")


def _dtype_of(options):
    return lambda data, xs: data.draw(st.sampled_from(options), label="dtype")


def _bool(data, xs):
    return data.draw(st.booleans())


def _one_of(*values):
    return lambda data, xs: data.draw(st.sampled_from(values))


def _ulp_for(ufunc):
    def compare(kw):
        if ufunc in UFUNCS:
            ulp = PRIMITIVES[UFUNCS[ufunc][0]].ulp
        else:
            ulp = {np.square: 2, np.reciprocal: 1}.get(ufunc, 0)
        return compare_ulp(ulp, ufunc not in (np.maximum, np.minimum))
    return compare


UFUNC_KEYWORDS = {"dtype": _dtype_of(MAYBE), "casting": _one_of(*CASTINGS),
                  "order": _one_of("K", "C"), "subok": _bool}


def _product_compare(kw):
    return matmul_compare


PRODUCT_VALUES = {"special": False, "max_magnitude": 1e3}


def _ufunc_case(ufunc) -> Case:
    two = ufunc.nin == 2
    shape_of = (lambda data: list(data.draw(broadcastable_shapes(2))))
    if ufunc is np.matmul:
        shape_of = (lambda data: data.draw(st.sampled_from(
            [[(3,), (3,)], [(2, 3), (3,)], [(3,), (3, 2)], [(2, 0), (0, 3)],
             [(1, 4), (4, 2)]])))
    keywords = dict(UFUNC_KEYWORDS)
    product = ufunc is np.matmul
    return Case(arrays=ufunc.nin, call=lambda f, xs, kw: f(*xs, **kw),
                keywords=keywords, shapes=shape_of if two else None,
                compare=_product_compare if product else _ulp_for(ufunc),
                values=PRODUCT_VALUES if product else {})


def _reduction_case(with_dtype: bool, method: bool) -> Case:
    keywords = {"axis": _draw_axis, "keepdims": _bool}
    if with_dtype:
        keywords["dtype"] = _dtype_of(MAYBE)
    if method:
        call = (lambda f, xs, kw: getattr(xs[0], f.__name__)(**kw))
    else:
        call = (lambda f, xs, kw: f(xs[0], **kw))
    return Case(call=call, keywords=keywords,
                values={"max_magnitude": 1e3, "min_value": -1000,
                        "max_value": 1000},
                compare=lambda kw: compare_ulp(64, False))


def _perm(data, xs):
    nd = xs[0].ndim
    return data.draw(st.none() | st.permutations(range(nd)).map(tuple))


def _target(data, xs):
    return data.draw(reshape_targets(xs[0].shape), label="shape")


def _bounds(data, xs):
    return data.draw(st.none() | st.integers(-5, 5) | st.floats(-5, 5) |
                     st.sampled_from([np.float32(1.5), np.int32(2)]))


def _method(name):
    return lambda f, xs, kw: getattr(xs[0], name)(**kw)


CASES = {
    "numpy.where": Case(arrays=3, call=lambda f, xs, kw: f(*xs, **kw),
                        shapes=lambda d: list(d.draw(broadcastable_shapes(3)))),
    "numpy.dot": Case(arrays=2, call=lambda f, xs, kw: f(*xs, **kw),
                      shapes=_ufunc_case(np.matmul).shapes,
                      compare=_product_compare, values=PRODUCT_VALUES),
    "numpy.ndarray.dot": Case(arrays=2, call=lambda f, xs, kw: xs[0].dot(
        xs[1], **kw), shapes=_ufunc_case(np.matmul).shapes,
        compare=_product_compare, values=PRODUCT_VALUES),
    "numpy.reshape": Case(call=lambda f, xs, kw: f(xs[0], **kw),
                          keywords={"shape": _target,
                                    "order": _one_of("C", "F"),
                                    "copy": _one_of(None, True)},
                          required=("shape",)),
    "numpy.ndarray.reshape": Case(
        call=lambda f, xs, kw: xs[0].reshape(kw.pop("shape"), **kw),
        keywords={"shape": _target, "order": _one_of("C", "F"),
                  "copy": _one_of(None, True)}, required=("shape",)),
    "numpy.transpose": Case(call=lambda f, xs, kw: f(xs[0], **kw),
                            keywords={"axes": _perm}),
    "numpy.ndarray.transpose": Case(
        call=lambda f, xs, kw: xs[0].transpose(*(kw.get("axes") or ())),
        keywords={"axes": _perm}),
    "numpy.broadcast_to": Case(
        call=lambda f, xs, kw: f(xs[0], **kw),
        keywords={"shape": lambda d, xs: d.draw(broadcast_targets(
            xs[0].shape)), "subok": _bool}, required=("shape",)),
    "numpy.expand_dims": Case(
        call=lambda f, xs, kw: f(xs[0], **kw),
        keywords={"axis": lambda d, xs: d.draw(st.integers(
            -xs[0].ndim - 2, xs[0].ndim + 1))}, required=("axis",)),
    "numpy.squeeze": Case(call=lambda f, xs, kw: f(xs[0], **kw),
                          keywords={"axis": _draw_axis}),
    "numpy.ndarray.squeeze": Case(call=_method("squeeze"),
                                  keywords={"axis": _draw_axis}),
    "numpy.astype": Case(call=lambda f, xs, kw: f(xs[0], **kw),
                         keywords={"dtype": _dtype_of(DTYPES),
                                   "copy": _bool,
                                   "device": _one_of(None, "cpu")},
                         values={"special": False, "max_magnitude": 1e3},
                         required=("dtype",)),
    "numpy.ndarray.astype": Case(
        call=_method("astype"),
        keywords={"dtype": _dtype_of(DTYPES), "order": _one_of("K", "C"),
                  "casting": _one_of(*CASTINGS), "subok": _bool,
                  "copy": _bool},
        values={"special": False, "max_magnitude": 1e3},
        required=("dtype",)),
    "numpy.copy": Case(call=lambda f, xs, kw: f(xs[0], **kw),
                       keywords={"order": _one_of("K", "C", "A"),
                                 "subok": _bool}),
    "numpy.ndarray.copy": Case(call=_method("copy"),
                               keywords={"order": _one_of("C", "K", "A")}),
    "numpy.ndarray.flatten": Case(call=_method("flatten"),
                                  keywords={"order": _one_of("C", "F")}),
    "numpy.ndarray.ravel": Case(call=_method("ravel"),
                                keywords={"order": _one_of("C", "F")}),
    "numpy.ndim": Case(call=lambda f, xs, kw: f(xs[0], **kw)),
    "numpy.shape": Case(call=lambda f, xs, kw: f(xs[0], **kw)),
    "numpy.size": Case(call=lambda f, xs, kw: f(xs[0], **kw),
                       keywords={"axis": lambda d, xs: d.draw(
                           st.none() | st.integers(-xs[0].ndim - 1,
                                                   xs[0].ndim))}),
    "numpy.clip": Case(call=lambda f, xs, kw: f(xs[0], **kw),
                       keywords={"a_min": _bounds, "a_max": _bounds,
                                 "min": _bounds, "max": _bounds},
                       compare=lambda kw: compare_ulp(0, False)),
}
for _fn in (np.sum, np.prod, np.max, np.min, np.mean, np.amax, np.amin):
    _dt = _fn in (np.sum, np.prod, np.mean)
    CASES[f"numpy.{_fn.__name__}"] = _reduction_case(_dt, method=False)
    if _fn not in (np.amax, np.amin):
        CASES[f"numpy.ndarray.{_fn.__name__}"] = _reduction_case(
            _dt, method=True)
for _ufunc, _traced in FUNCTIONS.items():
    if isinstance(_ufunc, np.ufunc):
        CASES[_traced.name] = _ufunc_case(_ufunc)

SUPPORTED_NAMES = sorted(ALL)
ARRAY_PARAMS = {"a", "x", "x1", "x2", "self", "other", "array", "b",
                "condition", "y"}


def test_every_supported_name_has_a_case():
    listed = {FUNCTIONS[getattr(np, n)].name
              for n in tracejit.numpy.supported()}
    assert listed <= set(ALL)
    assert set(CASES) == set(ALL)


@pytest.mark.parametrize("name", SUPPORTED_NAMES)
def test_parameters_are_numpys(name):
    """An implementation honours only parameters numpy's signature has."""
    traced = ALL[name]
    assert traced.honoured <= set(traced.parameters), name


@pytest.mark.parametrize("name", SUPPORTED_NAMES)
def test_every_honoured_keyword_is_compared_with_numpy(name):
    traced = ALL[name]
    honoured = traced.honoured - ARRAY_PARAMS
    assert honoured <= set(CASES[name].keywords), \
        f"{name}: honoured but never compared: " \
        f"{sorted(honoured - set(CASES[name].keywords))}"


NON_DEFAULT = {"out": lambda x: np.empty(x.shape, x.dtype),
               "where": lambda x: x > 0, "initial": lambda x: 1,
               "signature": lambda x: "dd->d", "axes": lambda x: [(0,)] * 3,
               "axis": lambda x: 0, "keepdims": lambda x: True,
               "kwargs": lambda x: None}


@pytest.mark.parametrize("name", SUPPORTED_NAMES)
def test_every_other_parameter_is_refused_by_name(name):
    traced = ALL[name]
    refused = sorted(set(traced.parameters) - traced.honoured)
    case = CASES[name]
    x = np.ones((3,) * 2)
    for param in refused:
        value = NON_DEFAULT[param](x)
        kw = {"casting": "unsafe"} if param == "kwargs" else {param: value}
        shown = "casting" if param == "kwargs" else param

        def f(*xs):
            return case.call(_numpy_callable(name), list(xs), dict(kw))
        with pytest.raises(tracejit.UnsupportedError) as info:
            jit(f)(*[x] * case.arrays)
        msg = str(info.value)
        assert f"parameter {shown}=" in msg and name in msg, msg
        assert re.search(r"test_binding\.py:\d+", msg), msg


def test_a_call_numpy_rejects_is_rejected_alike():
    """(numpy's own dispatchers reject bad calls of its functions before
    the tracer sees them; methods are bound here.)"""
    with pytest.raises(ArgumentError, match="numpy.ndarray.sum"):
        jit(lambda x: x.sum(bogus=1))(np.ones(3))


def test_clip_keyword_names_of_numpy_2():
    """Was: np.clip(a, min=1) and np.clip(a, max=1.0) came back
    unclipped under jit."""
    a = np.arange(-3.0, 4.0)
    np.testing.assert_array_equal(jit(lambda x: np.clip(x, min=1))(a),
                                  np.clip(a, min=1))
    np.testing.assert_array_equal(jit(lambda x: np.clip(x, max=1.0))(a),
                                  np.clip(a, max=1.0))
    with pytest.raises(ValueError):
        jit(lambda x: np.clip(x, 0, 1, min=0))(a)


def _numpy_callable(name: str):
    if name.startswith("numpy.ndarray."):
        return getattr(np.ndarray, name.rsplit(".", 1)[1])
    obj = np
    for part in name.split(".")[1:]:
        obj = getattr(obj, part)
    return obj


def _shapes_for(case, data):
    if case.shapes is not None:
        return case.shapes(data)
    return [data.draw(shapes(max_dims=3), label="shape")] * case.arrays


def _castable_values(xs, kw):
    """float -> int casts of NaN or out-of-range values are undefined in
    numpy: keep such inputs finite and small when an int dtype is asked
    for (or a reduction could produce one)."""
    if not any(v in INT_DTYPES + ("bool",) for v in kw.values()
               if isinstance(v, str)):
        return xs
    out = []
    for x in xs:
        if x.dtype.kind == "f":
            x = np.nan_to_num(x, nan=1.0, posinf=7.0, neginf=-7.0)
            x = np.clip(x, -1000, 1000).astype(x.dtype)
        out.append(x)
    return out


def _differential(backend, data):
    name = data.draw(st.sampled_from(SUPPORTED_NAMES), label="name")
    case = CASES[name]
    fn = _numpy_callable(name)
    dtype = data.draw(st.sampled_from(DTYPES), label="dtype")
    xs = [data.draw(arrays(dtype, s, **case.values), label=f"x{k}")
          for k, s in enumerate(_shapes_for(case, data))]
    chosen = data.draw(st.lists(st.sampled_from(sorted(case.keywords)),
                                unique=True), label="keywords") \
        if case.keywords else []
    chosen = set(chosen) | set(case.required)
    kw = {k: case.keywords[k](data, xs) for k in sorted(chosen)}
    xs = _castable_values(xs, kw)
    if name.endswith(("power", "left_shift", "right_shift")) and \
            xs[-1].dtype.kind == "i":
        xs[-1] = (np.abs(xs[-1]) % 60).astype(xs[-1].dtype)
    if name.endswith(("prod",)):
        xs = [np.clip(np.nan_to_num(x), -1, 1).astype(x.dtype)
              if x.dtype.kind == "f" else x % 3 for x in xs]
    if name.endswith(("mean",)) and kw.get("dtype") in INT_DTYPES:
        assume(xs[0].size)
    compare = case.compare(kw) if case.compare else compare_ulp(0)
    check_on(backend, lambda *a: case.call(fn, list(a), dict(kw)), xs,
             compare, what=f"{name}({kw})",
             unsupported=_refused_by_design(name, xs, kw))


def _refused_by_design(name, xs, kw) -> bool:
    """Integer reciprocal (numpy's answer for 0 is undefined)."""
    if name != "numpy.reciprocal":
        return False
    try:
        with np.errstate(all="ignore"):
            return np.reciprocal(*xs, **kw).dtype.kind in "iub"
    except Exception:
        return False


@on_backends
@settings(max_examples=max(60, settings().max_examples * 4))
@given(data=st.data())
def test_every_name_and_keyword_against_numpy(backend, data):
    _differential(backend, data)


@pytest.mark.slow
@on_backends
@settings(max_examples=3000)
@given(data=st.data())
def test_every_name_and_keyword_against_numpy_many(backend, data):
    _differential(backend, data)
