"""Random draws inside a jitted function are refused, never baked in
(tracing/random.py, tracing/intercept.py).

Was: ``np.random.rand(3)`` inside a jitted function ran once while
tracing and became a constant, so every call returned the same numbers.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest
from numpy.random import rand as captured_rand

import tracejit
from tracejit import jit
from tracejit.errors import RandomDrawError

LEGACY = ["rand", "randn", "random", "random_sample", "uniform", "normal",
          "standard_normal", "randint", "choice", "permutation", "shuffle",
          "binomial", "poisson", "exponential", "gamma", "beta", "seed",
          "default_rng"]
ARGS = {"randint": (5,), "choice": (3,), "permutation": (3,),
        "shuffle": (np.arange(3),), "binomial": (3, 0.5), "poisson": (2.0,),
        "exponential": (1.0,), "gamma": (2.0,), "beta": (1.0, 2.0),
        "seed": (0,), "default_rng": (0,)}


@pytest.mark.parametrize("name", LEGACY)
def test_numpy_random_functions_are_refused_inside_a_trace(name):
    fn = getattr(np.random, name)

    def f(x):
        getattr(np.random, name)(*ARGS.get(name, ()))  # MARK-draw
        return x + 1

    with pytest.raises(RandomDrawError) as info:
        jit(f)(np.ones(3))
    msg = str(info.value)
    assert f"numpy.random.{name}" in msg and "test_random_refusal.py" in msg
    assert isinstance(info.value, tracejit.UnsupportedError)
    assert getattr(np.random, name) is fn      # numpy untouched after


RNG = np.random.default_rng(7)


def draws_from_a_global_generator(x):
    return x + RNG.normal(size=x.shape)


def draws_from_a_captured_function(x):
    return x + captured_rand(*x.shape)


def test_draws_that_bypass_the_namespace_are_caught():
    for f in (draws_from_a_global_generator, draws_from_a_captured_function):
        with pytest.raises(RandomDrawError, match="while tracing"):
            jit(f)(np.ones(3))
    rng = np.random.default_rng(1)
    with pytest.raises(RandomDrawError, match="rng"):
        jit(lambda x: x + rng.random(3))(np.ones(3))
    with pytest.raises(RandomDrawError):
        jit(lambda x, g: x + g.random(3), static_argnums=1)(np.ones(3), rng)


def test_other_threads_draw_as_usual_while_one_traces():
    """The interception is per thread: a thread that is not tracing gets
    numpy's own functions, with numpy's own numbers."""
    inside, release = threading.Event(), threading.Event()
    drawn = {}

    def slow(x):
        inside.set()
        release.wait(30)
        return x * 2

    def trace():
        drawn["result"] = jit(slow)(np.ones(2))

    t = threading.Thread(target=trace)
    t.start()
    assert inside.wait(30)
    np.random.seed(5)
    drawn["other"] = np.random.rand(4)
    release.set()
    t.join(60)
    assert not t.is_alive()
    np.random.seed(5)
    np.testing.assert_array_equal(drawn["other"], np.random.rand(4))
    np.testing.assert_array_equal(drawn["result"], [2.0, 2.0])


def test_numpy_is_untouched_outside_a_trace():
    before = {n: getattr(np.random, n) for n in LEGACY}
    jit(lambda x: x + 1)(np.ones(2))
    with pytest.raises(RandomDrawError):
        jit(lambda x: x + np.random.rand())(np.ones(2))
    assert {n: getattr(np.random, n) for n in LEGACY} == before
