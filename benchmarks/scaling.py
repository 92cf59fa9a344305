"""``bench --compile-scaling``: compile time against program size.

Why a benchmark of its own: the numbered workloads are a few dozen
instructions each, so they say nothing about how compile time grows.
Here the same two program shapes are built at 10, 100, 1,000 and 10,000
HLO instructions (more with ``--scaling-sizes``) and compiled ahead of a
call, ``lower(*args).compile()``, by tracejit and, when it is installed,
by jax (``jax.jit``), in this process, each program a function never seen
before (no cache helps).  A warm-up compile of a small program first pays
each framework's one-time start-up.

* ``chain``: ``x = op(x, a or b)`` repeated, the ops cycling through
  multiply, add, subtract and maximum: one long dependence chain, the
  shape of a loop unrolled by tracing.
* ``diamond``: ``y = x * b; z = x + a; x = y - z`` repeated: every value
  is read twice, and the two paths meet again (the Mandelbrot shape);
  walking it path by path is exponential.

Both are float32 on (64, 64) arrays and use only ops that add one HLO
instruction each, so the size is the instruction count.  tracejit's result
is checked against numpy for every size; a mismatch fails the run.
"""
from __future__ import annotations

import statistics
import time

import numpy as np

DEFAULT_SIZES = (10, 100, 1000, 10000)
QUICK_SIZES = (10, 100, 1000)
JAX_LIMIT = 10000      # jax takes about 20 s at 10**4 and grows faster


def chain(n: int, xp=np):
    steps = (lambda x, a, b: x * b, lambda x, a, b: x + a,
             lambda x, a, b: x - b, lambda x, a, b: xp.maximum(x, a))

    def program(a, b):
        x = a
        for i in range(n):
            x = steps[i % 4](x, a, b)
        return x
    return program


def diamond(n: int, xp=np):
    def program(a, b):
        x = a
        for _ in range(max(n // 3, 1)):
            y = x * b
            z = x + a
            x = y - z
        return x
    return program


SHAPES = {"chain": chain, "diamond": diamond}


def inputs(seed: int = 0):
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, (64, 64)).astype(np.float32)
    b = rng.uniform(0.5, 1.0, (64, 64)).astype(np.float32)
    return a, b


def hlo_size(lowered) -> int:
    """Instructions of a tracejit ``Lowered`` module (after its passes)."""
    return sum(1 for line in lowered.as_text().splitlines()
               if line.startswith("  %"))


def time_tracejit(shape: str, n: int, args):
    """(seconds, Lowered, Compiled) of one ahead-of-time compile."""
    import tracejit
    fn = SHAPES[shape](n)
    t0 = time.perf_counter()
    lowered = tracejit.jit(fn).lower(*args)
    compiled = lowered.compile()
    return time.perf_counter() - t0, lowered, compiled


def time_jax(shape: str, n: int, args) -> float:
    import jax
    import jax.numpy as jnp
    fn = SHAPES[shape](n, jnp)
    t0 = time.perf_counter()
    jax.jit(fn).lower(*args).compile()
    return time.perf_counter() - t0


def _jax_or_none():
    try:
        import jax
        return jax.__version__
    except ImportError:
        return None


def _cell(times) -> str:
    if not times:
        return "-"
    med = statistics.median(times)
    return f"{med:.3f} s ({min(times):.3f}-{max(times):.3f})"


def run(args, say) -> int:
    """Measure, print the table; 1 when a tracejit result is wrong."""
    import tracejit

    from .report import table
    sizes = args.scaling_sizes or (QUICK_SIZES if args.quick
                                   else DEFAULT_SIZES)
    runs = args.runs if args.runs is not None else (2 if args.quick else 3)
    jax_version = _jax_or_none() if args.peers is None or \
        "jax" in args.peers else None
    say(f"compile time against program size: tracejit "
        f"{getattr(tracejit, '__version__', '')}".rstrip() +
        (f", jax {jax_version}" if jax_version else
         " (jax not installed or not asked for: its column is skipped)") +
        f"; median (min-max) of {runs} compiles, a new function each")
    args_np = inputs(args.seed)
    time_tracejit("chain", 4, args_np)            # one-time start-up
    if jax_version:
        time_jax("chain", 4, args_np)
    rows, failed, figures = [], [], []
    for shape in SHAPES:
        for n in sizes:
            ours = []
            for _ in range(runs):
                dt, lowered, compiled = time_tracejit(shape, n, args_np)
                ours.append(dt)
            got = compiled(*args_np)
            want = SHAPES[shape](n)(*args_np)
            ok = bool(np.allclose(got, want, rtol=1e-5, atol=1e-5,
                                  equal_nan=True))
            if not ok:
                failed.append(f"{shape} {n}")
            size = hlo_size(lowered)
            theirs = []
            if jax_version and n <= JAX_LIMIT:
                theirs = [time_jax(shape, n, args_np) for _ in range(runs)]
            per_op = statistics.median(ours) / size * 1e6
            rows.append([shape, str(n), str(size), _cell(ours),
                         _cell(theirs) if jax_version else "n/a",
                         f"{per_op:.0f} us", "ok" if ok else "MISMATCH"])
            figures.append({"shape": shape, "n": n, "hlo": size,
                            "tracejit_s": ours, "jax_s": theirs,
                            "check": ok})
            say(f"  {shape} {n}: tracejit {_cell(ours)}"
                + (f", jax {_cell(theirs)}" if theirs else ""))
    say()
    say(table(["shape", "n", "HLO", "tracejit", "jax", "tracejit/op",
               "check"], rows, right_from=1))
    if jax_version and any(n > JAX_LIMIT for n in sizes):
        say(f"  note: jax is not timed above {JAX_LIMIT} instructions "
            "(minutes per compile)")
    if args.json:
        from .report import save_json
        save_json(args.json, {"compile_scaling": figures,
                              "jax": jax_version})
        say(f"figures saved to {args.json}")
    if failed:
        say(f"tracejit MISMATCH on {', '.join(failed)}")
        return 1
    say("tracejit correctness: every result matches numpy")
    return 0
