"""Inline vector math (backends/cpu/vmath*): exp, expm1, tanh, log, log1p,
sin, cos and pow for float32 and float64.

For each function and dtype:
* the kernel is SIMD code (packed single/double instructions on ymm/zmm)
  and refers to no libm routine for it (sin and cos reach libm only from
  the huge-argument helpers of vmath_huge);
* IEEE-defined results (signed zeros, infinities, NaN, exact 1 and -1,
  overflow to inf, underflow to 0) are bit-exact, denormal inputs and
  results are right;
* the error against a correctly rounded reference (float64 for float32,
  np.longdouble for float64) over random inputs spanning the whole range:
  100,000 here, 1,000,000 in the ``slow`` variant.
"""
import re

import numpy as np
import pytest

from strategies import ulp_distance
from tracejit import jit

FUNCTIONS = {"exp": np.exp, "expm1": np.expm1, "tanh": np.tanh,
             "log": np.log, "log1p": np.log1p, "sin": np.sin, "cos": np.cos}
DTYPES = [np.float32, np.float64]
# main interval of each function's random inputs (the rest of the inputs
# span every magnitude and every bit pattern); sin and cos go past the
# inline reduction's limit (2**18 / 2**30) into the libm fallback
RANGES = {
    "exp": {np.float32: (-110, 90), np.float64: (-750, 710)},
    "expm1": {np.float32: (-20, 90), np.float64: (-40, 710)},
    "tanh": {np.float32: (-12, 12), np.float64: (-25, 25)},
    "log": {np.float32: (0, 1e6), np.float64: (0, 1e6)},
    "log1p": {np.float32: (-1, 10), np.float64: (-1, 10)},
    "sin": {np.float32: (-3e5, 3e5), np.float64: (-2e9, 2e9)},
    "cos": {np.float32: (-3e5, 3e5), np.float64: (-2e9, 2e9)},
}
# max ULP from the correctly rounded result.  Measured: 1 everywhere.
# float64 allows 2 because its reference (long double rounded to double)
# is itself off by one near rounding ties.
MAX_ULP = {np.float32: 1, np.float64: 2}


def _kernel_functions(asm: str) -> dict:
    """Function name -> assembly body, for the kernel's own functions
    (not vmath_huge's libm helpers)."""
    pieces = re.split(r"^([A-Za-z_]\w*):[ \t]*(?:#.*)?$", asm, flags=re.M)
    bodies = dict(zip(pieces[1::2], pieces[2::2]))
    return {name: body for name, body in bodies.items()
            if not name.startswith("tj_huge_")}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_kernel_is_simd_without_libm(name, dtype):
    x = np.linspace(-5, 5, 4096).astype(dtype)
    asm = jit(FUNCTIONS[name]).lower(x).compile().assembly()
    kernels = _kernel_functions(asm)
    assert kernels
    libm = re.compile(rf"(\$|call\w*\s+){name}f?\b")    # expf, $expf
    packed = "ps" if dtype == np.float32 else "pd"
    for fn, body in kernels.items():
        assert not libm.search(body), (fn, libm.search(body).group())
    assert any(re.search(rf"\bv\w+{packed}\s.*%[yz]mm", body)
               for body in kernels.values())


def _ieee_cases(dtype):
    """(function, input, exact expected output) that IEEE 754 / C99 pin
    down, plus overflow and underflow far from the thresholds."""
    inf, nan = np.inf, np.nan
    tiny = float(np.finfo(dtype).smallest_subnormal)
    big = 1e4 if dtype == np.float32 else 1e5
    return [
        ("exp", 0.0, 1.0), ("exp", -0.0, 1.0), ("exp", inf, inf),
        ("exp", -inf, 0.0), ("exp", nan, nan), ("exp", big, inf),
        ("exp", -big, 0.0),
        ("expm1", 0.0, 0.0), ("expm1", -0.0, -0.0), ("expm1", inf, inf),
        ("expm1", -inf, -1.0), ("expm1", nan, nan), ("expm1", big, inf),
        ("expm1", -big, -1.0), ("expm1", tiny, tiny), ("expm1", -tiny, -tiny),
        ("tanh", 0.0, 0.0), ("tanh", -0.0, -0.0), ("tanh", inf, 1.0),
        ("tanh", -inf, -1.0), ("tanh", nan, nan), ("tanh", 40.0, 1.0),
        ("tanh", -40.0, -1.0), ("tanh", tiny, tiny), ("tanh", -tiny, -tiny),
        ("log", 0.0, -inf), ("log", -0.0, -inf), ("log", 1.0, 0.0),
        ("log", inf, inf), ("log", -inf, nan), ("log", -1.0, nan),
        ("log", -tiny, nan), ("log", nan, nan),
        ("log1p", 0.0, 0.0), ("log1p", -0.0, -0.0), ("log1p", -1.0, -inf),
        ("log1p", -2.0, nan), ("log1p", inf, inf), ("log1p", -inf, nan),
        ("log1p", nan, nan), ("log1p", tiny, tiny), ("log1p", -tiny, -tiny),
        ("sin", 0.0, 0.0), ("sin", -0.0, -0.0), ("sin", inf, nan),
        ("sin", -inf, nan), ("sin", nan, nan), ("sin", tiny, tiny),
        ("sin", -tiny, -tiny),
        ("cos", 0.0, 1.0), ("cos", -0.0, 1.0), ("cos", inf, nan),
        ("cos", -inf, nan), ("cos", nan, nan), ("cos", tiny, 1.0),
    ]


@pytest.mark.parametrize("dtype", DTYPES)
def test_ieee_special_values_are_bit_exact(dtype):
    for name in FUNCTIONS:
        cases = [(x, want) for fn, x, want in _ieee_cases(dtype) if fn == name]
        x = np.array([c[0] for c in cases], dtype)
        want = np.array([c[1] for c in cases], dtype)
        got = jit(FUNCTIONS[name])(x)
        same = (got == want) & (np.signbit(got) == np.signbit(want))
        same |= np.isnan(got) & np.isnan(want)
        assert same.all(), (name, x[~same], got[~same], want[~same])


@pytest.mark.parametrize("dtype", DTYPES)
def test_invalid_operations_give_numpys_nan(dtype):
    """log of a negative, pow of a negative to a fraction: x86's default
    NaN, sign bit set, as numpy returns (and a NaN argument passes)."""
    cases = [(np.log, [-1.0, -np.inf, -1e-30, np.nan]),
             (np.log1p, [-2.0, -np.inf, -1.5, np.nan]),
             (lambda v: v ** dtype(2.5), [-1.0, -3.0, -1e-30, np.nan])]
    for fn, values in cases:
        x = np.array(values, dtype)
        with np.errstate(invalid="ignore"):
            want = fn(x)
        got = jit(fn)(x)
        assert np.isnan(got).all()
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


def _reference(name, x):
    """Correctly rounded (but for double rounding) values of ``name``."""
    wide = np.longdouble if x.dtype == np.float64 else np.float64
    with np.errstate(all="ignore"):
        return FUNCTIONS[name](x.astype(wide)).astype(x.dtype)


def _assert_within(name, x, bound):
    got = jit(FUNCTIONS[name])(x)
    dist = ulp_distance(got, _reference(name, x))
    worst = int(np.argmax(dist))
    assert dist[worst] <= bound, (
        f"{name} {x.dtype}: {int(dist[worst])} ULP at x={x[worst]!r}: "
        f"got {got[worst]!r}, want {_reference(name, x[worst:worst + 1])}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_denormal_inputs_and_results(dtype):
    info = np.finfo(dtype)
    tiny = info.smallest_subnormal
    denormals = np.array([tiny, 3 * tiny, info.tiny / 3, info.tiny * 0.999,
                          info.tiny], dtype)
    x = np.concatenate([denormals, -denormals])
    for name in FUNCTIONS:
        _assert_within(name, x, MAX_ULP[dtype])
    # exp underflowing gradually through the denormal range to 0
    lo = np.log(float(tiny)) - 1.0
    x = np.linspace(lo, np.log(float(info.tiny)) + 1, 20001).astype(dtype)
    _assert_within("exp", x, MAX_ULP[dtype])
    _assert_within("expm1", x, MAX_ULP[dtype])


def random_inputs(name, dtype, n, seed=20240611):
    """Half uniform over the function's main interval, then uniform on
    [-3, 3] and [-0.01, 0.01], every magnitude (log-uniform, both signs)
    and random bit patterns (inf and NaN included)."""
    rng = np.random.default_rng(seed)
    info = np.finfo(dtype)
    lo, hi = RANGES[name][dtype]
    tiny, top = float(info.smallest_subnormal), float(info.max)
    magnitudes = np.exp(rng.uniform(np.log(tiny), np.log(top), n // 4))
    utype = np.uint32 if dtype == np.float32 else np.uint64
    bits = rng.integers(0, np.iinfo(utype).max, n // 16, dtype=utype)
    parts = [rng.uniform(lo, hi, n // 2), rng.uniform(-3, 3, n // 8),
             rng.uniform(-0.01, 0.01, n // 16),
             magnitudes * rng.choice([-1.0, 1.0], n // 4)]
    with np.errstate(over="ignore"):
        return np.concatenate([p.astype(dtype) for p in parts] +
                              [bits.view(dtype)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_max_ulp_100k(name, dtype):
    _assert_within(name, random_inputs(name, dtype, 100_000), MAX_ULP[dtype])


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_max_ulp_1m(name, dtype):
    x = random_inputs(name, dtype, 1_000_000, seed=7)
    _assert_within(name, x, MAX_ULP[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_trig_huge_arguments_lane_by_lane(dtype):
    """Arguments past the inline reduction's limit, scattered among
    ordinary ones, at lengths that exercise the vector body, its
    remainder and the scalar loop, and through a strided view (the
    non-vectorized loop calls the scalar helper)."""
    with np.errstate(over="ignore"):         # 1e300 is inf in float32
        huge = np.array([1e6, -1e10, 1e20, 3e38, -3.4e38, 2.0 ** 18 + 1,
                         2.0 ** 30 + 3, 1e300, np.inf, -np.inf, np.nan],
                        dtype)
    rng = np.random.default_rng(5)
    for n in (1, 7, 16, 37, 1000):
        x = rng.uniform(-10, 10, n).astype(dtype)
        where = rng.random(n) < 0.3
        x[where] = rng.choice(huge, where.sum())
        for name in ("sin", "cos"):
            _assert_within(name, x, MAX_ULP[dtype])
            got = jit(FUNCTIONS[name])(x[::2])
            assert (ulp_distance(got, _reference(name, x[::2]))
                    <= MAX_ULP[dtype]).all()


def test_near_multiples_of_half_pi():
    """The worst cancellation in the reduction: x next to k*pi/2."""
    rng = np.random.default_rng(9)
    for dtype, limit in ((np.float32, 2.0 ** 18), (np.float64, 2.0 ** 30)):
        k = rng.integers(1, int(limit / 1.6), 50_000)
        x = (k * (np.pi / 2)).astype(dtype)
        x = np.concatenate([x, np.nextafter(x, dtype(np.inf)),
                            np.nextafter(x, dtype(-np.inf))])
        for name in ("sin", "cos"):
            _assert_within(name, x, MAX_ULP[dtype])


def test_two_programs_with_the_same_helpers():
    """Each program is its own JIT module with its own copy of the
    vmath_huge helpers (external names): both must link and work."""
    x = np.array([1.0, 1e30, -2.0], np.float32)
    first = jit(lambda v: np.sin(v) * 2)
    second = jit(lambda v: np.sin(v) + np.cos(v))
    a, b = first(x), second(x)
    xs = x.astype(np.float64)
    np.testing.assert_allclose(a, 2 * np.sin(xs), rtol=1e-6)
    np.testing.assert_allclose(b, np.sin(xs) + np.cos(xs), rtol=1e-5,
                               atol=1e-6)


# ---- pow --------------------------------------------------------------------

def _power(x, y):
    return x ** y


@pytest.mark.parametrize("dtype", DTYPES)
def test_pow_is_simd_without_libm(dtype):
    x = np.linspace(0.5, 5, 4096).astype(dtype)
    asm = jit(_power).lower(x, x).compile().assembly()
    kernels = _kernel_functions(asm)
    for fn, body in kernels.items():
        assert not re.search(r"(\$|call\w*\s+)powf?\b", body), fn
    packed = "ps" if dtype == np.float32 else "pd"
    assert any(re.search(rf"\bv\w+{packed}\s.*%[yz]mm", body)
               for body in kernels.values())


POW_SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 3.0, -3.0,
               np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1e30, -1e30, 2.5,
               -2.5, 1e-8, 0.999999, 1.000001, 2.0 ** 24, 2.0 ** 24 + 2,
               2.0 ** 53, 2.0 ** 53 + 2, 1e10, -8.0, 1 / 3, 5e-324]


def _pow_reference(x, y):
    wide = np.longdouble if x.dtype == np.float64 else np.float64
    with np.errstate(all="ignore"):
        return np.power(x.astype(wide), y.astype(wide)).astype(x.dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pow_special_values_like_numpy(dtype):
    """Every pair of special and ordinary values: where C99 (and numpy)
    define the answer -- NaN, +-inf, +-0, 1 -- bit-exactly; elsewhere
    within the bound of the correctly rounded power."""
    with np.errstate(over="ignore"):
        values = np.array(POW_SPECIAL, dtype)
    x, y = (v.ravel() for v in np.meshgrid(values, values))
    with np.errstate(all="ignore"):
        want = np.power(x, y)
    got = jit(_power)(x, y)
    pinned = ~np.isfinite(want) | (want == 0) | (np.abs(want) == 1)
    same = (got == want) & (np.signbit(got) == np.signbit(want))
    same |= np.isnan(got) & np.isnan(want)
    bad = pinned & ~same
    assert not bad.any(), list(zip(x[bad], y[bad], got[bad], want[bad]))
    dist = ulp_distance(got[~pinned], _pow_reference(x, y)[~pinned])
    assert (dist <= MAX_ULP[dtype]).all()


def pow_inputs(dtype, n, seed=3):
    """Bases over every scale and near 1 (where y*log x is most
    sensitive), exponents small, large and integral, signs mixed."""
    rng = np.random.default_rng(seed)
    top = 88 if dtype == np.float32 else 700
    x = np.concatenate([rng.uniform(0, 10, n // 2),
                        np.exp(rng.uniform(-top, top, n // 4)),
                        rng.uniform(0.99, 1.01, n // 8),
                        rng.uniform(1 - 1e-6, 1 + 1e-6, n // 8)])
    y = np.concatenate([rng.uniform(-20, 20, n // 2),
                        rng.uniform(-1.5, 1.5, n // 4),
                        rng.uniform(-5000, 5000, n // 8),
                        rng.uniform(-1e8, 1e8, n // 8)])
    x = np.where(rng.random(n) < 0.1, -x, x)
    y = np.where(rng.random(n) < 0.2, np.rint(y), y)
    return x.astype(dtype), y.astype(dtype)


def _assert_pow_within(x, y, bound):
    ref = _pow_reference(x, y)
    got = jit(_power)(x, y)
    dist = ulp_distance(got, ref)
    worst = int(np.argmax(dist))
    assert dist[worst] <= bound, (x[worst], y[worst], got[worst], ref[worst])


@pytest.mark.parametrize("dtype", DTYPES)
def test_pow_max_ulp_100k(dtype):
    _assert_pow_within(*pow_inputs(dtype, 100_000), MAX_ULP[dtype])


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
def test_pow_max_ulp_1m(dtype):
    _assert_pow_within(*pow_inputs(dtype, 1_000_000, seed=11),
                       MAX_ULP[dtype])
