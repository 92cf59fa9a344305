"""Hypothesis strategies and comparison helpers shared by the tests.

Strategies:

* ``shapes``: ranks 0..4 with sides 0..4 (so 0- and 1-sized dimensions);
* ``broadcastable_shapes(n)``: ``n`` mutually broadcastable shapes;
* ``dtypes``: the five dtypes tracejit supports;
* ``elements`` / ``arrays``: values including NaN, +-inf, -0.0, denormals
  and the largest floats, and the extreme integers; ``max_magnitude`` bounds
  floats (for sums and products, whose overflow order numpy leaves open);
* ``axes``, ``reshape_targets``, ``broadcast_targets``, ``index_keys``:
  parameters of reductions, reshapes, broadcasts and basic indexing;
* ``layouts`` / ``with_layout``: the *same value* laid out in memory as
  contiguous, strided (a step-2 slice of a bigger array), reversed (negative
  strides into a bigger array), Fortran-ordered, read-only, unaligned (C
  order one byte off), or packed (a field of a packed record array: byte
  strides that are not a multiple of the itemsize).

Comparison helpers: ``ulp_distance``, ``assert_ulp`` (float results within a
ULP bound), ``assert_within`` (float results within an absolute bound per
element), ``assert_same`` (dtype, shape and exact values), and ``check``,
which runs ``jit(f)`` and ``f`` on the same arguments in every layout and
compares them (or the errors they raise).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import reject
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tracejit


DTYPES = ("bool", "int32", "int64", "float32", "float64")
SUPPORTED = frozenset(DTYPES)
INT_DTYPES = ("int32", "int64")
FLOAT_DTYPES = ("float32", "float64")
LAYOUTS = ("contiguous", "strided", "reversed", "fortran", "readonly",
           "unaligned", "packed")

MAX_DIMS = 4
MAX_SIDE = 4


# ---- shapes -----------------------------------------------------------------

def shapes(min_dims: int = 0, max_dims: int = MAX_DIMS, min_side: int = 0,
           max_side: int = MAX_SIDE):
    """Shapes of rank ``min_dims..max_dims``; sides include 0 and 1."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims,
                            min_side=min_side, max_side=max_side)


def broadcastable_shapes(n: int, min_dims: int = 0, max_dims: int = MAX_DIMS,
                         min_side: int = 0, max_side: int = MAX_SIDE):
    """A tuple of ``n`` shapes that broadcast together (some with 1-sides,
    some of lower rank)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=n, min_dims=min_dims, max_dims=max_dims,
        min_side=min_side, max_side=max_side).map(lambda b: b.input_shapes)


dtypes = st.sampled_from(DTYPES)
layouts = st.sampled_from(LAYOUTS)


# ---- values -----------------------------------------------------------------

def int_specials(dtype: str) -> list[int]:
    info = np.iinfo(dtype)
    return [int(info.min), int(info.max), int(info.min) + 1,
            int(info.max) - 1, -1, 0, 1, 2]


def float_specials(dtype: str, special: bool = True,
                   max_magnitude: float | None = None) -> list[float]:
    info = np.finfo(dtype)
    out = [0.0, -0.0, 1.0, -1.0, 0.5, -2.5]
    if special:
        out += [math.nan, math.inf, -math.inf]
    if max_magnitude is None:
        denormal = float(info.smallest_subnormal)
        out += [denormal, -denormal, float(info.tiny), float(info.max),
                float(info.min), float(info.eps)]
    return out


def elements(dtype: str, *, special: bool = True,
             max_magnitude: float | None = None,
             min_value=None, max_value=None):
    """Scalar values of ``dtype``.

    floats: NaN, +-inf and -0.0 (unless ``special=False``), denormals and
    the extreme finite values (unless ``max_magnitude`` bounds them), small
    and arbitrary values.  ints: the extremes and small values, or
    ``min_value..max_value``.  bool: True / False.
    """
    dtype = np.dtype(dtype).name
    if dtype == "bool":
        return st.booleans()
    if dtype in INT_DTYPES:
        info = np.iinfo(dtype)
        lo = info.min if min_value is None else max(min_value, info.min)
        hi = info.max if max_value is None else min(max_value, info.max)
        picks = [v for v in int_specials(dtype) if lo <= v <= hi]
        return st.one_of(st.integers(max(lo, -10), min(hi, 10)),
                         st.integers(lo, hi), st.sampled_from(picks))
    width = 32 if dtype == "float32" else 64
    if max_magnitude is not None:
        wide = st.floats(-max_magnitude, max_magnitude, width=width)
    else:
        wide = st.floats(width=width, allow_nan=special,
                         allow_infinity=special)
    small = st.floats(-10, 10, width=width)
    return st.one_of(small, wide, st.sampled_from(
        float_specials(dtype, special, max_magnitude)))


def arrays(dtype: str, shape, **kwargs):
    """Arrays of ``dtype`` and ``shape`` (a tuple or a strategy), with
    ``elements(dtype, **kwargs)``."""
    dtype = np.dtype(dtype)
    return hnp.arrays(dtype, shape, elements=elements(dtype.name, **kwargs))


# ---- layouts ----------------------------------------------------------------

def _filler(dtype) -> object:
    """A value that stands out in the padding around a view."""
    return {"b": True, "i": 77, "f": 777.25}[np.dtype(dtype).kind]


def with_layout(value: np.ndarray, layout: str) -> np.ndarray:
    """An array equal to ``value`` (same dtype, shape, and bit-for-bit
    elements) in the memory layout ``layout``."""
    value = np.asarray(value)
    shape, dtype = value.shape, value.dtype
    if layout == "contiguous":
        out = np.array(value, order="C", copy=True)
    elif layout == "readonly":
        out = np.array(value, order="C", copy=True)
        out.flags.writeable = False
    elif layout == "fortran":
        out = np.array(value, order="F", copy=True)
    elif layout == "strided":
        # every other element of a bigger array, starting at offset 1
        big = np.full(tuple(2 * n + 1 for n in shape) or (3,),
                      _filler(dtype), dtype)
        if shape:
            out = big[tuple(slice(1, None, 2) for _ in shape)]
        else:
            out = big[1, ...]
        out[...] = value
    elif layout == "reversed":
        # negative strides on every axis, into a bigger array
        big = np.full(tuple(n + 2 for n in shape) or (3,), _filler(dtype),
                      dtype)
        if shape:
            out = big[tuple(slice(None, None, -1) for _ in shape)]
            out = out[tuple(slice(1, n + 1) for n in shape)]
        else:
            out = big[::-1][1, ...]
        out[...] = value
    elif layout == "unaligned":
        # C order, one byte past an aligned address
        buf = np.zeros(value.nbytes + 1, np.uint8)
        out = np.ndarray(shape, dtype, buffer=buf, offset=1)
        out[...] = value
    elif layout == "packed":
        # a field of a packed record: strides not a multiple of the itemsize
        record = np.zeros(shape, np.dtype([("pad", np.uint8), ("v", dtype)]))
        out = record["v"]
        out[...] = value
    else:
        raise ValueError(f"unknown layout {layout!r}")
    assert out.dtype == dtype and out.shape == shape
    assert np.array_equal(out, value, equal_nan=dtype.kind == "f")
    if dtype.kind == "f":
        assert np.array_equal(np.signbit(out), np.signbit(value))
    return out


def all_layouts(value: np.ndarray) -> list[tuple[str, np.ndarray]]:
    return [(name, with_layout(value, name)) for name in LAYOUTS]


@st.composite
def laid_out_arrays(draw, dtype, shape, **kwargs):
    """(layout name, array): a value from ``arrays`` in a drawn layout."""
    value = draw(arrays(dtype, shape, **kwargs))
    layout = draw(layouts)
    return layout, with_layout(value, layout)


# ---- structural parameters --------------------------------------------------

@st.composite
def broadcast_targets(draw, shape):
    """A shape ``shape`` broadcasts to: new leading axes, 1s expanded."""
    lead = draw(st.lists(st.integers(0, 3), max_size=2))
    body = [draw(st.integers(0, 3)) if n == 1 and draw(st.booleans()) else n
            for n in shape]
    return tuple(lead) + tuple(body)


@st.composite
def axes(draw, ndim: int, allow_bad: bool = True):
    """None, an int (maybe negative), or a tuple of distinct axes (maybe
    negative, maybe empty); rarely an out-of-range axis."""
    options = [st.none()]
    if ndim:
        options.append(st.integers(-ndim, ndim - 1))
    options.append(st.lists(st.integers(0, max(ndim - 1, 0)), unique=True,
                            max_size=ndim).flatmap(
        lambda ax: st.tuples(*[st.sampled_from([a, a - ndim]) for a in ax])))
    if allow_bad:
        options.append(st.sampled_from([ndim, -ndim - 1]))
    return draw(st.one_of(*options))


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def reshape_targets(draw, shape):
    size = math.prod(shape)
    rank = draw(st.integers(0 if size == 1 else 1, 4))
    if size == 0:
        dims = [draw(st.integers(0, 3)) for _ in range(rank)]
        if 0 not in dims:
            dims[draw(st.integers(0, rank - 1))] = 0
    else:
        dims, left = [], size
        for _ in range(rank - 1):
            d = draw(st.sampled_from(_divisors(left)))
            dims.append(d)
            left //= d
        if rank:
            dims.append(left)
        dims = draw(st.permutations(dims)) if dims else []
    if dims and draw(st.booleans()):
        dims[draw(st.integers(0, len(dims) - 1))] = -1
    return tuple(dims)


@st.composite
def index_keys(draw, shape, allow_bad: bool = True):
    """Basic indices: ints (maybe negative, rarely out of range unless
    ``allow_bad=False``), slices with any start/stop/step (negative too),
    None, at most one Ellipsis."""
    ndim = len(shape)

    def one(n):
        if n and draw(st.integers(0, 2)) == 0:
            bad = allow_bad and draw(st.integers(0, 9)) == 0
            i = draw(st.sampled_from([n, -n - 1]) if bad else
                     st.integers(-n, n - 1))
            return np.int64(i) if draw(st.integers(0, 4)) == 0 else i
        bound = st.none() | st.integers(-n - 2, n + 2)
        step = st.none() | st.sampled_from([1, 2, 3, -1, -2, -3, 7, -7])
        return slice(draw(bound), draw(bound), draw(step))

    pre = draw(st.integers(0, ndim))
    ellipsis = draw(st.booleans())
    post = draw(st.integers(0, ndim - pre)) if ellipsis else 0
    key = [one(n) for n in shape[:pre]]
    if ellipsis:
        key.append(Ellipsis)
        key += [one(n) for n in shape[ndim - post:]]
    for _ in range(draw(st.integers(0, 2))):
        key.insert(draw(st.integers(0, len(key))), None)
    if len(key) == 1 and draw(st.booleans()):
        return key[0]
    return tuple(key)


# ---- known bugs -------------------------------------------------------------
#
# Bugs in files this suite may not fix, reported to the lead.  Each has a
# strict-xfail reproducer (test_ops.py::test_known_bug_*; none open now).
# The property tests discard the examples that hit one (hypothesis.reject),
# so they keep testing everything else; when a reproducer starts passing
# (XPASS fails the run), delete it and its entry here.

def _raised_in(err: BaseException, path_suffix: str) -> bool:
    tb = err.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(path_suffix):
            return True
        tb = tb.tb_next
    return False


# name -> predicate on the exception.  Example (fixed since):
#   "reshape_of_size_0": lambda err: isinstance(err, ZeroDivisionError)
#                        and _raised_in(err, "layout/indexing.py"),
KNOWN_BUGS: dict = {}


def known_bug(err: BaseException) -> str | None:
    for name, matches in KNOWN_BUGS.items():
        if matches(err):
            return name
    return None


def call_jitted(jitted, xs):
    """``jitted(*xs)``; an example that hits a known bug is rejected."""
    try:
        return jitted(*xs)
    except Exception as err:
        if known_bug(err):
            reject()
        raise


# ---- layouts of several arguments -------------------------------------------

def layout_variants(args) -> list[tuple[str, list]]:
    """The arguments in each layout (the k-th array in LAYOUTS[(v+k) % 5]
    for variant v), so every array meets every layout."""
    positions = [k for k, a in enumerate(args) if isinstance(a, np.ndarray)]
    out = []
    for v in range(len(LAYOUTS) if positions else 1):
        laid = list(args)
        names = []
        for n, k in enumerate(positions):
            layout = LAYOUTS[(v + n) % len(LAYOUTS)]
            laid[k] = with_layout(args[k], layout)
            names.append(layout)
        out.append(("/".join(names) or "scalars", laid))
    return out


# ---- comparisons ------------------------------------------------------------

_UINT = {"float32": np.uint32, "float64": np.uint64}
HUGE = np.iinfo(np.uint64).max


def ulp_distance(actual, expected, signed_zeros: bool = True) -> np.ndarray:
    """Element-wise distance in ULP between two float arrays of one dtype.

    Both NaN: 0; exactly one NaN: HUGE.  Infinities must match exactly (an
    inf against the largest finite float is HUGE, not 1).  +0.0 and -0.0 are
    1 ULP apart, unless ``signed_zeros=False``.
    """
    a = np.asarray(actual, order="C")      # (ascontiguousarray makes 0-d 1-d)
    e = np.asarray(expected, order="C")
    assert a.dtype == e.dtype and a.dtype.name in _UINT, (a.dtype, e.dtype)
    utype = _UINT[a.dtype.name]
    top = utype(1) << utype(8 * a.dtype.itemsize - 1)

    def key(x):
        u = x.view(utype)
        # monotone map of the float order onto the unsigned integers
        return np.where(u & top, ~u, u | top)

    ka, ke = key(a), key(e)
    dist = np.where(ka >= ke, ka - ke, ke - ka).astype(np.uint64)
    if not signed_zeros:
        dist = np.where((a == 0) & (e == 0), np.uint64(0), dist)
    nan_a, nan_e = np.isnan(a), np.isnan(e)
    dist = np.where(nan_a & nan_e, np.uint64(0), dist)
    dist = np.where(nan_a ^ nan_e, np.uint64(HUGE), dist)
    inf_mismatch = (np.isinf(a) | np.isinf(e)) & (a != e) & ~(nan_a | nan_e)
    return np.where(inf_mismatch, np.uint64(HUGE), dist)


def _first_bad(mask: np.ndarray):
    idx = tuple(int(i) for i in np.argwhere(mask)[0]) if mask.ndim else ()
    return idx


def assert_outputs_close(got, want, rtol: float, atol: float) -> None:
    """``got`` (a list of arrays) matches the result ``want`` of the numpy
    function (a tuple or one array): same count, shapes and dtypes; floats
    within ``rtol``/``atol``, everything else exactly."""
    want = list(want) if isinstance(want, tuple) else [want]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, (g, w)
        if w.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
        else:
            np.testing.assert_array_equal(g, w)


def assert_same_aval(actual, expected, what: str = "") -> None:
    assert isinstance(actual, np.ndarray), \
        f"{what}: jit returned {type(actual).__name__}, not an ndarray"
    assert actual.dtype == expected.dtype, \
        f"{what}: dtype {actual.dtype}, numpy gives {expected.dtype}"
    assert actual.shape == expected.shape, \
        f"{what}: shape {actual.shape}, numpy gives {expected.shape}"


def assert_ulp(actual, expected, max_ulp: int, what: str = "",
               signed_zeros: bool = True) -> None:
    """``actual`` matches ``expected`` (same dtype and shape) within
    ``max_ulp`` ULP per element; NaN matches NaN, infinities match exactly;
    for ``max_ulp == 0`` the sign of zero counts too (unless
    ``signed_zeros=False``)."""
    expected = np.asarray(expected)
    assert_same_aval(actual, expected, what)
    dist = ulp_distance(actual, expected, signed_zeros)
    if dist.size == 0:
        return
    worst = int(dist.max())
    if worst > max_ulp:
        at = _first_bad(dist == worst)
        shown = "inf/NaN mismatch" if worst == HUGE else f"{worst} ULP"
        raise AssertionError(
            f"{what}: error {shown} exceeds the bound of {max_ulp} ULP "
            f"({actual.dtype}) at index {at}: jit gives "
            f"{actual[at]!r}, numpy gives {expected[at]!r}")


def assert_within(actual, expected, bound, what: str = "") -> None:
    """Float results within an absolute ``bound`` (broadcastable to the
    result) per element: NaN where numpy has NaN, the same infinities, and
    ``|actual - expected| <= bound`` elsewhere."""
    expected = np.asarray(expected)
    assert_same_aval(actual, expected, what)
    if expected.size == 0:
        return
    bound = np.broadcast_to(np.asarray(bound, np.float64), expected.shape)
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    nan_a, nan_e = np.isnan(a), np.isnan(e)
    bad = nan_a ^ nan_e
    inf = np.isinf(e) | np.isinf(a)
    bad |= inf & (a != e) & ~nan_e
    finite = ~(nan_e | inf)
    with np.errstate(invalid="ignore"):
        err = np.where(finite, np.abs(a - e), 0.0)
    bad |= finite & ~(err <= bound)
    if bad.any():
        at = _first_bad(bad)
        raise AssertionError(
            f"{what}: jit gives {actual[at]!r}, numpy gives {expected[at]!r} "
            f"at index {at}; allowed error {bound[at]!r} "
            f"({int(bad.sum())} of {bad.size} elements out of bounds)")


def assert_same(actual, expected, what: str = "",
                signed_zeros: bool = True) -> None:
    """Same dtype, shape and values (floats bit-exact up to NaN payloads)."""
    expected = np.asarray(expected)
    if expected.dtype.kind == "f":
        assert_ulp(actual, expected, 0, what, signed_zeros)
        return
    assert_same_aval(actual, expected, what)
    if not np.array_equal(actual, expected):
        at = _first_bad(actual != expected)
        raise AssertionError(f"{what}: jit gives {actual[at]!r}, numpy "
                             f"gives {expected[at]!r} at index {at}")


# ---- checking jit against numpy ------------------------------------------------------------

def _leaves(x) -> list:
    if isinstance(x, (tuple, list)):
        return [leaf for item in x for leaf in _leaves(item)]
    return [x]


def _error_kind(err: BaseException):
    for kind in (TypeError, IndexError, ValueError, OverflowError,
                 ZeroDivisionError):
        if isinstance(err, kind):
            return kind
    raise err


def compare_ulp(max_ulp: int, signed_zeros: bool = True):
    def compare(actual, expected, what, args):
        if expected.dtype.kind == "f":
            assert_ulp(actual, expected, max_ulp, what, signed_zeros)
        else:
            assert_same(actual, expected, what)
    return compare


EXACT = compare_ulp(0)


def check(f, args, compare=EXACT, what: str = "", layouts: bool = True,
          unsupported: bool = False):
    """Compare ``jit(f)(*args)`` with ``f(*args)`` in every layout of the
    array arguments (one compile serves them all).

    numpy refuses -> jit must raise the same kind of error; numpy answers
    in a dtype tracejit lacks (float16, int8 ...), or ``unsupported`` ->
    jit must raise UnsupportedError; else ``compare(actual, expected, what,
    args)`` for each output leaf.  The inputs must come back unchanged.
    """
    jitted = tracejit.jit(f)
    what = what or getattr(f, "__name__", "f")
    variants = layout_variants(args) if layouts else [("given", list(args))]
    for label, xs in variants:
        _check_once(f, jitted, xs, compare, f"{what} [{label}]", unsupported)


def _check_once(f, jitted, xs, compare, what, unsupported, passed=None,
                fetch=lambda out: out):
    """jit on ``passed`` (default ``xs``: the arguments as the backend takes
    them), numpy on ``xs``; ``fetch`` brings jit's result to the host."""
    passed = xs if passed is None else passed
    copies = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a
              for a in xs]
    try:
        with np.errstate(all="ignore"):
            expected = f(*xs)
    except Exception as err:       # numpy refuses: jit must refuse alike
        kind = _error_kind(err)
        with pytest.raises(kind):
            call_jitted(jitted, passed)
        _assert_unchanged(xs, copies, what)
        return
    expected_leaves = [np.asarray(e) for e in _leaves(expected)]
    if unsupported or any(e.dtype.name not in SUPPORTED
                          for e in expected_leaves):
        with pytest.raises(tracejit.UnsupportedError):
            call_jitted(jitted, passed)
        return
    actual = fetch(call_jitted(jitted, passed))
    actual_leaves = _leaves(actual)
    assert len(actual_leaves) == len(expected_leaves), what
    for n, (a, e) in enumerate(zip(actual_leaves, expected_leaves)):
        compare(a, e, what if len(expected_leaves) == 1 else
                f"{what} output {n}", xs)
    _assert_unchanged(xs, copies, what)


def _assert_unchanged(xs, copies, what):
    for x, c in zip(xs, copies):
        if isinstance(x, np.ndarray):
            assert np.array_equal(x, c, equal_nan=x.dtype.kind == "f"), \
                f"{what}: jit modified its input"
