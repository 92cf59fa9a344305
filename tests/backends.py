"""Running the property tests on either backend.

A test that takes the ``backend`` fixture (conftest.py) and carries
``on_backends`` runs once per backend: ``"cpu"`` and ``"cuda"``; the CUDA
case carries the ``cuda`` marker and is skipped where CuPy or a GPU is
missing (the fixture is module-scoped, so the import is tried once per
module and the skips cost nothing).

* ``run_on(backend, f, *args)``: ``jit(f, backend=backend)(*args)`` with
  the results as numpy arrays (``cupy.asnumpy`` over the result tree);
* ``check_on(backend, ...)``: ``strategies.check`` on the CPU (unchanged);
  on CUDA the same comparison with numpy, once with the numpy arguments
  (the jit copies them to the device) and once per layout variant with the
  arguments as CuPy arrays of the same layout (``device_array``);
* ``laid_out(backend, args)``: the layout variants of ``args`` as the
  backend takes them.
"""
from __future__ import annotations

import ctypes

import numpy as np
import pytest

import strategies
import tracejit
from strategies import EXACT, check, layout_variants

BACKENDS = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]

# the decorator of a test that takes the ``backend`` fixture
on_backends = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


def _cupy():
    import cupy         # the backend fixture has imported it already
    return cupy


def _on_gpu(x) -> bool:
    return hasattr(x, "__cuda_array_interface__")


def to_host(out):
    """``out`` with every CuPy array of its tree copied to numpy."""
    if isinstance(out, tuple):
        return tuple(to_host(o) for o in out)
    if isinstance(out, list):
        return [to_host(o) for o in out]
    if isinstance(out, dict):
        return {k: to_host(v) for k, v in out.items()}
    if _on_gpu(out):
        return _cupy().asnumpy(out)
    return out


def jit_on(backend: str, f, **kwargs):
    """``tracejit.jit(f)`` on ``backend`` (the CPU one exactly as the
    tests have always built it)."""
    if backend == "cpu":
        return tracejit.jit(f, **kwargs)
    return tracejit.jit(f, backend=backend, **kwargs)


def host(backend: str, out):
    """A result of a jitted call on ``backend`` as numpy."""
    return out if backend == "cpu" else to_host(out)


def run_on(backend: str, f, *args):
    """``jit(f, backend=backend)(*args)``, results as numpy arrays.  The
    arguments go as they are: numpy arrays (the CUDA jit copies them) or,
    on CUDA, CuPy arrays."""
    return host(backend, jit_on(backend, f)(*args))


# ---- CuPy arrays in a given layout -----------------------------------------

def _byte_bounds(x: np.ndarray) -> tuple[int, int]:
    lo = hi = x.__array_interface__["data"][0]
    for n, s in zip(x.shape, x.strides):
        if s < 0:
            lo += (n - 1) * s
        else:
            hi += (n - 1) * s
    return lo, hi + x.itemsize


def device_array(x: np.ndarray):
    """A CuPy array equal to ``x`` with the same strides and the same
    offset from an allocation holding the same bytes (the padding of a
    strided view included), so negative strides, Fortran order and
    strided views reach the kernels as views.  Arrays whose data or
    strides are not whole elements (the ``unaligned`` and ``packed``
    layouts), which CuPy's own kernels cannot read, and empty arrays go as
    contiguous copies."""
    cp = _cupy()
    item = x.itemsize
    aligned = x.__array_interface__["data"][0] % item == 0 and \
        all(s % item == 0 for s in x.strides)
    if x.size == 0 or not aligned:
        # empty + set, byte for byte: cupy.asarray fills a 0-d array
        # through ndarray.fill, which writes +0.0 for -0.0
        out = cp.empty(x.shape, x.dtype)
        if x.size:
            out.set(np.array(x, order="C"))
        return out
    lo, hi = _byte_bounds(x)
    # the bytes x spans (within its base array): a copy, so read-only and
    # record views are fine
    raw = np.frombuffer((ctypes.c_char * (hi - lo)).from_address(lo),
                        np.uint8).copy()
    buf = cp.asarray(raw)       # aligned, as x's data and strides are
    start = x.__array_interface__["data"][0] - lo
    out = cp.ndarray(x.shape, x.dtype, memptr=buf.data + start,
                     strides=x.strides)
    assert out.strides == x.strides
    got = cp.asnumpy(out)
    assert np.array_equal(got, x, equal_nan=x.dtype.kind == "f") and \
        (x.dtype.kind != "f" or
         np.array_equal(np.signbit(got), np.signbit(x))), \
        "device copy of a laid-out array differs"
    return out


def _to_device(args) -> list:
    return [device_array(a) if isinstance(a, np.ndarray) else a
            for a in args]


def laid_out(backend: str, args):
    """(label, numpy arguments, arguments as the backend takes them) for
    each layout variant of ``args``.  On the CPU: ``layout_variants``; on
    CUDA first the numpy arguments themselves (copied by the jit), then
    each layout variant as CuPy arrays."""
    variants = layout_variants(args)
    if backend == "cpu":
        return [(label, xs, xs) for label, xs in variants]
    return [("numpy", list(args), list(args))] + [
        (f"cupy {label}", xs, _to_device(xs)) for label, xs in variants]


def _assert_device_unchanged(passed, xs, what):
    for d, x in zip(passed, xs):
        if _on_gpu(d):
            assert np.array_equal(_cupy().asnumpy(d), x,
                                  equal_nan=x.dtype.kind == "f"), \
                f"{what}: jit modified its (device) input"


# ---- checking jit against numpy --------------------------------------------

def check_on(backend: str, f, args, compare=EXACT, what: str = "",
             layouts: bool = True, unsupported: bool = False):
    """``strategies.check`` on ``backend``: on the CPU that function
    itself; on CUDA the same comparisons, over ``laid_out`` (or the numpy
    arguments only, without ``layouts``)."""
    if backend == "cpu":
        return check(f, args, compare, what, layouts, unsupported)
    jitted = jit_on(backend, f)
    what = what or getattr(f, "__name__", "f")
    variants = laid_out(backend, args) if layouts else \
        [("given", list(args), list(args))]
    for label, xs, passed in variants:
        _check_once(backend, f, jitted, xs, passed, compare,
                    f"{what} [{backend} {label}]", unsupported)


def _check_once(backend, f, jitted, xs, passed, compare, what, unsupported):
    """strategies._check_once on ``passed``, results fetched to the host;
    the device inputs must come back unchanged too."""
    strategies._check_once(f, jitted, xs, compare, what, unsupported,
                           passed=passed,
                           fetch=lambda out: host(backend, out))
    _assert_device_unchanged(passed, xs, what)


# ---- programs the CUDA tests build without a GPU --------------------------
def program_of(f, *args):
    """The lowered, memory-planned Program ``jit(f, backend="cuda")``
    would run on these numpy arguments (tracing needs no GPU)."""
    from tracejit import pipeline
    lowered = tracejit.jit(f, backend="cuda").lower(*args)
    return pipeline.to_program(lowered._traced.module)


def sample(dtype, shape, seed=0):
    """Random test data: normal floats, small integers, fair booleans."""
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype.startswith("int"):
        return rng.integers(-9, 10, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def layernorm(x, g, b):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + 1e-5) * g + b


def device_ms(cp, fn, n=20):
    """Median milliseconds of ``fn`` between CUDA events (n calls)."""
    import statistics
    start, stop = cp.cuda.Event(), cp.cuda.Event()
    times = []
    for _ in range(n):
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop))
    return statistics.median(times)
