"""Concurrent first calls: each signature is traced and compiled once.

The traced functions sleep while they are traced (the Python body runs
only then), so threads that are not kept out of a trace in progress would
start their own: without the once-per-signature rule these tests fail.
Every join has a timeout, so a deadlock fails a test instead of hanging.
"""
import threading
import time

import numpy as np
import pytest

from tracejit import jit
from tracejit.errors import TracerConversionError

THREADS = 8
JOIN_TIMEOUT_S = 60


def run_together(targets):
    """Start one thread per callable, released at once by a barrier;
    returns (results, errors), one slot per thread."""
    barrier = threading.Barrier(len(targets), timeout=JOIN_TIMEOUT_S)
    results = [None] * len(targets)
    errors = [None] * len(targets)

    def body(k):
        barrier.wait()
        try:
            results[k] = targets[k]()
        except BaseException as exc:          # reported to the test
            errors[k] = exc

    threads = [threading.Thread(target=body, args=(k,), daemon=True)
               for k in range(len(targets))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    stuck = sum(t.is_alive() for t in threads)
    assert stuck == 0, f"{stuck} threads still running: a deadlock?"
    return results, errors


class SlowTrace:
    """A traced function that records how many traces run at once."""

    def __init__(self, seconds=0.2):
        self.seconds = seconds
        self.guard = threading.Lock()
        self.running = self.most_running = self.traces = 0

    def __call__(self, x):
        with self.guard:
            self.traces += 1
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        time.sleep(self.seconds)              # lets the other threads run
        with self.guard:
            self.running -= 1
        return np.tanh(x) * 2 + 1


def reference(x):
    return np.tanh(x) * 2 + 1


def test_one_signature_is_traced_and_compiled_once_for_concurrent_callers():
    body = SlowTrace()
    f = jit(body)
    x = np.linspace(-2, 2, 33, dtype=np.float32)
    results, errors = run_together([lambda: f(x)] * THREADS)
    assert errors == [None] * THREADS
    for got in results:
        np.testing.assert_allclose(got, reference(x), rtol=2e-6, atol=1e-6)
    assert body.traces == 1
    # one caller compiled (a miss); the others waited for it (hits)
    assert f.cache_info() == (THREADS - 1, 1, 1, 1)


def test_different_signatures_compile_once_each_and_at_the_same_time():
    body = SlowTrace()
    f = jit(body)
    inputs = [np.linspace(-1, 1, 7, dtype=np.float32),
              np.linspace(-1, 1, 12, dtype=np.float32),
              np.linspace(-1, 1, 7, dtype=np.float64)]
    args = [inputs[k % len(inputs)] for k in range(THREADS)]
    results, errors = run_together([lambda a=a: f(a) for a in args])
    assert errors == [None] * THREADS
    for a, got in zip(args, results):
        assert got.dtype == reference(a).dtype
        np.testing.assert_allclose(got, reference(a), rtol=2e-6, atol=1e-6)
    assert body.traces == len(inputs)
    info = f.cache_info()
    assert (info.misses, info.traces, info.compiles) == (len(inputs),) * 3
    assert info.hits == THREADS - len(inputs)
    # no lock shared by all signatures is held while one traces
    assert body.most_running >= 2


def test_a_tracing_error_reaches_every_waiting_thread_and_is_not_cached():
    fail = [True]
    slow = SlowTrace(0.05)

    @jit
    def f(x):
        slow(x)
        if fail[0] and x.sum() > 0:           # bool() of a traced value
            return x
        return x * 3

    x = np.arange(5, dtype=np.float64)
    _, errors = run_together([lambda: f(x)] * THREADS)
    assert all(isinstance(e, TracerConversionError) for e in errors), errors
    # each waiting thread retried on its own, one trace at a time
    assert (slow.traces, slow.most_running) == (THREADS, 1)
    assert f.cache_info() == (0, 0, 0, 0)     # calls that raise count nowhere
    fail[0] = False                           # the next call traces again
    np.testing.assert_array_equal(f(x), x * 3)
    assert f.cache_info() == (0, 1, 1, 1)


def test_lower_and_compile_share_the_once_path_with_calls():
    body = SlowTrace(0.1)
    f = jit(body)
    x = np.linspace(0, 1, 9)

    def via_lower():
        return f.lower(x).compile()(x)

    targets = [via_lower if k % 2 else (lambda: f(x))
               for k in range(THREADS)]
    results, errors = run_together(targets)
    assert errors == [None] * THREADS
    for got in results:
        np.testing.assert_allclose(got, reference(x), rtol=1e-14)
    assert body.traces == 1
    info = f.cache_info()
    assert (info.traces, info.compiles) == (1, 1)
    # lower() and Compiled calls are not counted as calls of f
    assert info.hits + info.misses == THREADS // 2


def test_counters_add_up_over_many_concurrent_calls():
    f = jit(lambda x, s: x * s + 1)
    a = np.arange(6, dtype=np.float32)
    b = np.arange(6, dtype=np.int64).reshape(2, 3)
    calls = 40

    def many(x):
        def run():
            for k in range(calls):
                np.testing.assert_array_equal(f(x, 2), x * 2 + 1)
                if k % 2:
                    np.testing.assert_array_equal(f(x, 0.5), x * 0.5 + 1)
            return True
        return run

    _, errors = run_together([many(a if k % 2 else b)
                              for k in range(THREADS)])
    assert errors == [None] * THREADS
    info = f.cache_info()
    signatures = 4                  # two arrays times a weak int / float
    assert info.hits + info.misses == THREADS * calls * 3 // 2
    assert info.misses == info.traces == info.compiles == signatures


@pytest.mark.cuda
def test_cuda_first_calls_compile_once_across_threads(cp):
    body = SlowTrace()
    f = jit(body, backend="cuda")
    host = np.linspace(-2, 2, 257, dtype=np.float32)
    x = cp.asarray(host)

    def call():
        out = f(x)
        cp.cuda.Stream.null.synchronize()
        return cp.asnumpy(out)

    results, errors = run_together([call] * THREADS)
    assert errors == [None] * THREADS
    for got in results:
        np.testing.assert_allclose(got, reference(host), rtol=2e-6,
                                   atol=1e-6)
    assert body.traces == 1
    assert f.cache_info() == (THREADS - 1, 1, 1, 1)
