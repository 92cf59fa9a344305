"""``numpy.random`` inside a trace: refused, never baked in.

A random draw evaluated while tracing would become a constant of the
compiled code, and every call would return the same numbers.  Until
tracejit compiles random draws, every public function of ``numpy.random``
called on a tracing thread raises RandomDrawError naming the function
and the line (through ``intercept``).  Draws that bypass the module's
names (a Generator's methods, a captured ``rand``) are caught after the
trace: the state of every Generator, RandomState and BitGenerator the
function can reach (its static arguments, closure, defaults and the
globals its code names, and the states behind bound methods found
there) is compared with its state before the trace.  A Generator built
inside the function from a class (``Generator(PCG64(0))``) is reached by
neither and stays a known gap until draws are compiled.
"""
from __future__ import annotations

import functools
import inspect
import pickle
import types

import numpy as np

from ..errors import RandomDrawError
from . import intercept
from .context import user_location

_STATEFUL = (np.random.Generator, np.random.RandomState,
             np.random.BitGenerator)
_ADVICE = ("it would run once, while tracing, and every call of the "
           "compiled function would return the same numbers. Draw the "
           "numbers outside the jitted function and pass them in as an "
           "argument")


def _refuse(name: str):
    def handler(original, args, kwargs):
        raise RandomDrawError(f"numpy.random.{name} inside a jitted function "
                              f"at {user_location()}: {_ADVICE}")
    return handler


for _name in dir(np.random):
    _obj = getattr(np.random, _name)
    if not _name.startswith("_") and callable(_obj) and \
            not isinstance(_obj, type):
        intercept.register(np.random, _name, _refuse(_name))


def reachable_states(roots) -> dict:
    """name -> pickled state of every random state reachable from
    ``roots`` (functions and static values) in one step: Generators,
    RandomStates, BitGenerators, and the states behind their bound
    methods (``from numpy.random import rand`` reaches numpy's global
    RandomState).  Other threads' draws from states the function cannot
    reach never count."""
    found = {}
    for root in roots:
        for name, value in _neighbours(root):
            owner = getattr(value, "__self__", value)
            if owner is not value:
                name = f"{name} (a method of {type(owner).__name__})"
            if isinstance(owner, _STATEFUL):
                found.setdefault(name, owner)
    return {name: _state(obj) for name, obj in found.items()}


def check_unchanged(before: dict, roots, function: str) -> None:
    after = reachable_states(roots)
    for name, state in before.items():
        if after.get(name) != state:
            raise RandomDrawError(
                f"a random draw from {name} happened while tracing "
                f"{function}: {_ADVICE}")


def _state(obj) -> bytes:
    if isinstance(obj, np.random.RandomState):
        return pickle.dumps(obj.get_state(legacy=False))
    bits = obj.bit_generator if isinstance(obj, np.random.Generator) \
        else obj
    return pickle.dumps(bits.state)


def _neighbours(root):
    """(name, value) pairs a function can reach without calling anything:
    itself, its closure, defaults and the globals its code names."""
    yield getattr(root, "__name__", "a static argument"), root
    fun = inspect.unwrap(root) if callable(root) else root
    fun = getattr(fun, "__func__", fun)
    if isinstance(fun, functools.partial):
        yield from _neighbours(fun.func)
        for k, v in enumerate(fun.args):
            yield f"argument {k}", v
        return
    code = getattr(fun, "__code__", None)
    if code is None:
        return
    for cell, name in zip(fun.__closure__ or (), code.co_freevars):
        try:
            yield name, cell.cell_contents
        except ValueError:          # an empty cell
            continue
    for k, v in enumerate(fun.__defaults__ or ()):
        yield f"default {k}", v
    names = set()
    stack = [code]
    while stack:
        c = stack.pop()
        names |= set(c.co_names)
        stack += [k for k in c.co_consts if isinstance(k, types.CodeType)]
    for name in names:
        if name in fun.__globals__:
            yield name, fun.__globals__[name]

