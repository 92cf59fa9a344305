"""``python -m tracejit demo``: tracejit on real numpy code.

Three functions written in plain numpy -- a tanh-approximation GELU, a row
softmax over the last axis, and a two-layer MLP -- are compiled with
``tracejit.jit``, checked against numpy with ``np.testing.assert_allclose``
(a mismatch exits with status 1), and timed against numpy.  The HLO of the
softmax is printed as ``jit(softmax).lower(x).as_text()`` shows it.

Timing: after one warm-up call each, every function runs ``--runs`` times
under jit and under numpy, interleaved, alternating between two input sets of
the same shapes (so neither side is timed on data the previous call left in
cache).  Each run is timed with ``time.perf_counter``; the table shows the
median and the min-max range, and speedup = numpy median / jit median (below
1.0 means jit is slower).  "first call" is the jit's first call on a new
signature: tracing, HLO passes, lowering, LLVM compilation and one run.
"""
from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

import tracejit

SQRT_2_OVER_PI = 0.7978845608028654   # sqrt(2 / pi), a Python float


# ---- the functions: plain numpy ---------------------------------------------
def gelu(x):
    """GELU, tanh approximation (Hendrycks & Gimpel)."""
    return 0.5 * x * (1.0 + np.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x**3)))


def softmax(x):
    """Softmax over the last axis, shifted by the row max for stability."""
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def mlp(x, w1, b1, w2, b2):
    """Two-layer perceptron: relu(x @ w1 + b1) @ w2 + b2."""
    return np.maximum(x @ w1 + b1, 0.0) @ w2 + b2


# ---- cases -------------------------------------------------------------------
@dataclass
class Case:
    fn: Callable
    make_args: Callable      # (rng, quick) -> tuple of float32 arrays
    rtol: float
    atol: float


def _gelu_args(rng, quick):
    n = 2**14 if quick else 2**20
    return (3 * rng.standard_normal(n, dtype=np.float32),)


def _softmax_args(rng, quick):
    shape = (64, 128) if quick else (2048, 1024)
    return (4 * rng.standard_normal(shape, dtype=np.float32),)


def _mlp_args(rng, quick):
    batch, d_in, hidden, d_out = (16, 32, 64, 16) if quick else \
        (256, 512, 1024, 256)

    def normal(*shape, scale=1.0):
        return (scale * rng.standard_normal(shape, dtype=np.float32))

    return (normal(batch, d_in),
            normal(d_in, hidden, scale=d_in ** -0.5), normal(hidden),
            normal(hidden, d_out, scale=hidden ** -0.5), normal(d_out))


# Tolerances: float32 results; jit and numpy may differ in the last bits
# (tanh/exp implementations, summation order: tracejit sums float32 in a
# float64 accumulator, numpy pairwise in float32).
CASES = [
    Case(gelu, _gelu_args, rtol=1e-5, atol=1e-6),
    Case(softmax, _softmax_args, rtol=1e-5, atol=1e-6),
    Case(mlp, _mlp_args, rtol=1e-4, atol=1e-4),
]


# ---- helpers -----------------------------------------------------------------
def _aval(a: np.ndarray) -> str:
    short = {"float32": "f32", "float64": "f64", "int32": "s32",
             "int64": "s64", "bool": "pred"}.get(a.dtype.name, a.dtype.name)
    return f"{short}[{','.join(map(str, a.shape))}]"


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.1f}" if ms >= 100 else f"{ms:.2f}" if ms >= 1 else \
        f"{ms:.3f}"


def _check(name, got, want, rtol, atol) -> str | None:
    """None if ``got`` matches numpy's ``want``, else what is wrong."""
    if not isinstance(got, np.ndarray):
        return f"returned {type(got).__name__}, numpy returned an array"
    if got.shape != want.shape or got.dtype != want.dtype:
        return (f"returned {got.dtype}{list(got.shape)}, numpy returned "
                f"{want.dtype}{list(want.shape)}")
    try:
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    except AssertionError as err:
        return str(err).strip()
    return None


def _time_pair(jitted, fn, arg_sets, runs):
    """Lists of per-run seconds (jit, numpy), interleaved and alternating
    between the input sets."""
    jit_times, np_times = [], []
    for k in range(runs):
        args = arg_sets[k % len(arg_sets)]
        t0 = time.perf_counter()
        jitted(*args)
        t1 = time.perf_counter()
        fn(*args)
        t2 = time.perf_counter()
        jit_times.append(t1 - t0)
        np_times.append(t2 - t1)
    return jit_times, np_times


def _table(header, rows, right_from=1) -> str:
    widths = [max(len(str(r[c])) for r in [header] + rows)
              for c in range(len(header))]

    def line(row):
        cells = [str(v).ljust(w) if c < right_from else str(v).rjust(w)
                 for c, (v, w) in enumerate(zip(row, widths))]
        return "  " + "  ".join(cells).rstrip()

    rule = "  " + "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule] + [line(r) for r in rows])


# ---- the command -------------------------------------------------------------
def add_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and few runs (for tests)")
    parser.add_argument("--runs", type=int, default=None,
                        help="timed runs per function (default 20, "
                             "5 with --quick)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed of the inputs (default 0)")


def main(args) -> int:
    quick = args.quick
    runs = args.runs if args.runs is not None else (5 if quick else 20)
    if runs < 1:
        print("demo: --runs must be at least 1", file=sys.stderr)
        return 2
    import llvmlite
    print(f"tracejit {tracejit.__version__} demo{' (--quick)' if quick else ''}"
          f": numpy {np.__version__}, llvmlite {llvmlite.__version__}, "
          f"Python {platform.python_version()}")
    print(f"CPU backend on {platform.machine()}, {os.cpu_count()} cores; "
          "all arrays float32")
    print()

    rng = np.random.default_rng(args.seed)
    results = []   # keeps every jitted function (and its code) alive
    failures = 0
    print(f"Correctness: jit(f)(*args) vs f(*args) in numpy, "
          "np.testing.assert_allclose on two input sets")
    check_rows = []
    for case in CASES:
        name = case.fn.__name__
        arg_sets = [case.make_args(rng, quick), case.make_args(rng, quick)]
        jitted = tracejit.jit(case.fn)
        t0 = time.perf_counter()
        first = jitted(*arg_sets[0])
        first_call = time.perf_counter() - t0
        errors, max_err = [], 0.0
        for k, fn_args in enumerate(arg_sets):
            got = first if k == 0 else jitted(*fn_args)
            want = case.fn(*fn_args)
            problem = _check(name, got, want, case.rtol, case.atol)
            if problem:
                errors.append(problem)
            elif got.size:
                diff = np.abs(got.astype(np.float64) - want)
                max_err = max(max_err, float(diff.max()))
        kernels = jitted.lower(*arg_sets[0]).compile().kernel_count
        check_rows.append([name, ", ".join(_aval(a) for a in arg_sets[0]),
                           f"{case.rtol:g}", f"{case.atol:g}",
                           f"{max_err:.2e}" if not errors else "-",
                           "ok" if not errors else "MISMATCH"])
        results.append((case, jitted, arg_sets, first_call, kernels, errors))
        failures += bool(errors)
    print(_table(["function", "arguments", "rtol", "atol", "max |err|",
                  "result"], check_rows, right_from=2))
    for case, _, _, _, _, errors in results:
        for problem in errors:
            print(f"\nMISMATCH in {case.fn.__name__}:\n{problem}")
    print()

    softmax_case = next(r for r in results if r[0].fn is softmax)
    _, jitted, arg_sets, _, kernels, _ = softmax_case
    x = arg_sets[0][0]
    lowered = jitted.lower(x)
    print(f"HLO of softmax for x = {_aval(x)}: jit(softmax).lower(x).as_text()")
    print()
    print(lowered.as_text().rstrip())
    print()
    compiled = lowered.compile()
    print(f"softmax compiles to {compiled.kernel_count} kernels "
          "(jit(softmax).lower(x).compile().program_text()):")
    print()
    print(compiled.program_text().rstrip())
    print()
    print("Fusion report for softmax: jit(softmax).lower(x).fusion_report()")
    print()
    print(lowered.fusion_report().rstrip())
    print()
    memory = compiled.memory_analysis()
    print(f"Memory of one softmax call: {memory}")
    print()

    if failures:
        print(f"demo: {failures} function(s) do not match numpy; not timing",
              file=sys.stderr)
        return 1

    print(f"Timing: {runs} runs each after a warm-up, jit and numpy "
          f"interleaved, alternating 2 input sets; times in ms")
    rows = []
    for case, jitted, arg_sets, first_call, kernels, _ in results:
        jitted(*arg_sets[1])          # warm-up (set 0 ran in the checks)
        case.fn(*arg_sets[0])
        case.fn(*arg_sets[1])
        jit_t, np_t = _time_pair(jitted, case.fn, arg_sets, runs)
        jit_med, np_med = statistics.median(jit_t), statistics.median(np_t)
        rows.append([case.fn.__name__, kernels, _ms(first_call),
                     _ms(jit_med), f"{_ms(min(jit_t))}-{_ms(max(jit_t))}",
                     _ms(np_med), f"{_ms(min(np_t))}-{_ms(max(np_t))}",
                     f"{np_med / jit_med:.2f}x"])
    print(_table(["function", "kernels", "first call", "jit median",
                  "jit min-max", "numpy median", "numpy min-max",
                  "speedup"], rows))
    print()
    print("speedup = numpy median / jit median (below 1.00x: jit is slower).")
    print("first call = trace + HLO passes + lowering + LLVM compile + one "
          "run.")
    print("Elementwise chains, reductions and their epilogues are fused "
          "(kernels column); matrix products are library GEMM calls. "
          "Large kernels are split across threads; transcendentals (exp, "
          "tanh, log, sin, ...) are inline vector code, no math library "
          "call per element.")
    return 0
