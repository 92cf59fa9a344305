"""Offline tool that derives the polynomial coefficients used by vmath_*.

Not imported by the compiler: the coefficients are pasted into the
modules as hex literals.  Run ``python -m tracejit.backends.cpu.vmath_fit``
(needs mpmath) to print them again.

Method: a weighted minimax fit by the Remez exchange algorithm in
high-precision arithmetic.  Each approximation is written as
``target(t) ~= sum(c_k * t**k)`` over an interval, with a weight that turns
the absolute error of that sum into the relative error of the final
function value (e.g. for ``exp(r) = 1 + r + r**2 * P(r)`` the target is
``(exp(r) - 1 - r) / r**2`` and the weight ``r**2 / exp(r)``).  The
reference starts as n + 2 Chebyshev-spaced points; each exchange step
solves for the levelled-error polynomial on them and moves them to the
alternating extrema of the error, found on a dense grid.  The
coefficients are then rounded to the working precision, and the maximum
error of the rounded polynomial is measured on a fine grid.
"""
from __future__ import annotations


def _mp():
    import mpmath
    mpmath.mp.prec = 256
    return mpmath


def _nonzero(t):
    """Targets such as (exp(t) - 1 - t) / t**2 have removable singularities
    at 0; evaluate them a hair away (the 256-bit arithmetic keeps ample
    digits through the cancellation)."""
    return t if t else _mp().mpf(10) ** -20


def _solve_levelled(mp, target, weight, degree, points):
    """Coefficients c (and the levelled error E) with
    |weight(t)| * (target(t) - sum c_k t**k) = (-1)**i E at the reference
    points."""
    n = degree + 1
    rows, rhs = [], []
    for i, t in enumerate(points):
        t = _nonzero(t)
        w = abs(weight(t))
        rows.append([w * t ** k for k in range(n)] + [(-1) ** i])
        rhs.append(w * target(t))
    sol = mp.lu_solve(mp.matrix(rows), mp.matrix(rhs))
    return [sol[k] for k in range(n)], sol[n]


def _extrema(mp, err, grid, count):
    """``count`` points of ``grid`` of alternating sign where |err|
    peaks."""
    # split the grid into runs of one sign, keep the largest |err| of each
    runs, best = [], None
    for t in grid:
        e = err(t)
        if best is not None and (e > 0) != (best[1] > 0):
            runs.append(best)
            best = None
        if best is None or abs(e) > abs(best[1]):
            best = (t, e)
    runs.append(best)
    while len(runs) > count:       # drop the smallest, merging its neighbours
        k = min(range(len(runs)), key=lambda i: abs(runs[i][1]))
        del runs[k]
        merged = []
        for r in runs:
            if merged and (merged[-1][1] > 0) == (r[1] > 0):
                if abs(r[1]) > abs(merged[-1][1]):
                    merged[-1] = r
            else:
                merged.append(r)
        runs = merged
    return [t for t, _ in runs]


def _grid(mp, weight, a, b, size):
    """Chebyshev-spaced points of [a, b], leaving out those where the
    weight (nearly) vanishes: a reference point there would force the
    levelled error to 0."""
    ts = [a + (b - a) * (1 - mp.cos(mp.pi * i / size)) / 2
          for i in range(size + 1)]
    ws = [abs(weight(_nonzero(t))) for t in ts]
    top = max(ws)
    return [t for t, w in zip(ts, ws) if w > top * mp.mpf(10) ** -6]


def remez(target, weight, a, b, degree, iters=12):
    """Minimax coefficients of ``sum(c_k t**k, k <= degree)`` for
    ``target`` under ``weight`` on [a, b]; returns (coeffs, maxerr)."""
    mp = _mp()
    a, b = mp.mpf(a), mp.mpf(b)
    n = degree + 2
    grid = _grid(mp, weight, a, b, 3000)
    points = [grid[round(i * (len(grid) - 1) / (n - 1))] for i in range(n)]
    coeffs = None
    for _ in range(iters):
        coeffs, _level = _solve_levelled(mp, target, weight, degree, points)

        def err(t, c=coeffs):
            t = _nonzero(t)
            return abs(weight(t)) * (target(t) - mp.polyval(c[::-1], t))
        new = _extrema(mp, err, grid, n)
        if len(new) != n or new == points:
            break
        points = new
    worst = max(abs(err(t)) for t in grid)
    return coeffs, worst


def fit(target, weight, a, b, degree, to_float):
    """Remez fit rounded to the working precision with ``to_float``.
    (The rounding moves each term by half an ulp of its coefficient; for
    every fit here that stays below the approximation error, which the
    printout checks.)"""
    coeffs, _ = remez(target, weight, a, b, degree, iters=15)
    return [to_float(c) for c in coeffs]


def max_relative_error(target, weight, a, b, coeffs, grid=20000):
    """Largest weighted error of the (rounded) ``coeffs`` on an even
    grid of [a, b]."""
    mp = _mp()
    worst = 0
    for i in range(grid + 1):
        t = _nonzero(mp.mpf(a) + (mp.mpf(b) - a) * i / grid)
        e = abs(weight(t)) * (target(t) - mp.polyval([mp.mpf(c) for c in
                                                 coeffs[::-1]], t))
        worst = max(worst, abs(e))
    return float(worst)


# ---- the fits behind every table ------------------------------------------

def _fits():
    """(table name, dtype, target, weight, a, b, degree) for every
    coefficient table in vmath_*; the target/weight pairs say what is
    approximated and which error is minimized (see the module doc)."""
    mp = _mp()
    sqrt = mp.sqrt
    h = mp.log(2) / 2 * mp.mpf("1.02")            # exp's |r| bound, widened
    f_lo = (sqrt(mp.mpf(0.5)) - 1) * mp.mpf("1.002")
    f_hi = (sqrt(2) - 1) * mp.mpf("1.002")        # log's f = m - 1
    s_max = (sqrt(2) - 1) / (sqrt(2) + 1) * mp.mpf("1.01")   # atanh arg
    quarter = mp.pi / 4 * mp.mpf("1.02")          # trig |r| bound

    def exp_rel(r):
        return (mp.exp(r) - 1 - r) / r ** 2, r ** 2 / mp.exp(r)

    def expm1_rel(r):
        return (mp.expm1(r) - r) / r ** 2, r ** 2 / mp.expm1(r)

    def odd(fn):               # fn(x) = x + x**3 * P(x**2), relative error
        def parts(s):
            x = sqrt(s)
            return (fn(x) - x) / (x * s), x * s / fn(x)
        return parts

    def log1p_rel(f):
        return (mp.log1p(f) - f) / f ** 2, f ** 2 / mp.log1p(f)

    def atanh_rel(z):          # 2 atanh(s) = 2s + s * R(s*s), s = sqrt(z)
        s = sqrt(z)
        return (2 * mp.atanh(s) - 2 * s) / (s * z), s * z / (2 * mp.atanh(s))

    def atanh_rel_cubic(z):    # ... = 2s + (2/3) s**3 + s**3 * z * R1(z)
        s = sqrt(z)
        head = 2 * s + mp.mpf(2) / 3 * s ** 3
        return ((2 * mp.atanh(s) - head) / (s ** 3 * z),
                s ** 3 * z / (2 * mp.atanh(s)))

    def cos_rel(s):            # cos(x) = 1 + s * C(s), s = x**2
        return (mp.cos(sqrt(s)) - 1) / s, s / mp.cos(sqrt(s))

    return [
        ("vmath_exp.EXP_P", "float32", exp_rel, -h, h, 4),
        ("vmath_exp.EXP_P (= EXPM1_P)", "float64", expm1_rel, -h, h, 10),
        ("vmath_exp.EXPM1_P", "float32", expm1_rel, -h, h, 5),
        ("vmath_tanh.TANH_P", "float32", odd(mp.tanh), 0, 0.625 ** 2, 4),
        ("vmath_tanh.TANH_P", "float64", odd(mp.tanh), 0, 0.625 ** 2, 10),
        ("vmath_log.LOG_Q", "float32", log1p_rel, f_lo, f_hi, 8),
        ("vmath_log.ATANH_R", "float64", atanh_rel, 0, s_max ** 2, 6),
        ("vmath_trig.SIN_S", "float32", odd(mp.sin), 0, quarter ** 2, 3),
        ("vmath_trig.SIN_S", "float64", odd(mp.sin), 0, quarter ** 2, 5),
        ("vmath_trig.COS_C", "float32", cos_rel, 0, quarter ** 2, 3),
        ("vmath_trig.COS_C", "float64", cos_rel, 0, quarter ** 2, 6),
        ("vmath_pow.POW_LOG_R", "float64", atanh_rel, 0, s_max ** 2, 4),
        ("vmath_pow.POW_EXP_P", "float64", exp_rel, -h, h, 6),
        ("vmath_pow.POW_ATANH_R1", "float64", atanh_rel_cubic, 0,
         s_max ** 2, 7),
    ]


def main():
    import numpy as np
    rounding = {"float32": lambda v: float(np.float32(float(v))),
                "float64": float}
    for name, dtype, parts, a, b, degree in _fits():
        def target(t, parts=parts):
            return parts(t)[0]

        def weight(t, parts=parts):
            return parts(t)[1]
        coeffs = fit(target, weight, a, b, degree, rounding[dtype])
        err = max_relative_error(target, weight, a, b, coeffs)
        print(f"{name} [{dtype}]  max relative error {err:.3g}")
        print("   ", ", ".join(f'"{c.hex()}"' for c in coeffs))


if __name__ == "__main__":
    main()
