"""numpy functions with no traced argument, seen while a trace runs.

``np.random.rand(3)`` or ``np.zeros((n, n))`` take no traced value, so
numpy's dispatch protocols never hand them to the tracer: without help
they run once, while tracing, and their result is baked into the
compiled code.  A name registered here (``register(module, name,
handler)``) is replaced in its module by a dispatcher while at least one
trace is active on any thread; the dispatcher calls the handler only on a
thread that is tracing, and numpy's own function everywhere else.  When
the last trace ends the originals are put back, so outside a trace numpy
is untouched.

Code that captured the function object before the trace (``from
numpy.random import rand``) bypasses the dispatcher; ``random.py`` also
checks random states after the trace for that reason.
"""
from __future__ import annotations

import functools
import threading

from .context import current

_lock = threading.Lock()
_active = 0
_handlers: dict = {}        # (module, name) -> handler(original, args, kw)
_originals: dict = {}       # (module, name) -> numpy's object, installed


def register(module, name: str, handler) -> None:
    """While a trace is active on a thread, ``module.name(...)`` there
    calls ``handler(original, args, kwargs)``."""
    with _lock:
        _handlers[(module, name)] = handler
        if _active:
            _install(module, name)


def _dispatcher(key, original):
    handler = _handlers[key]

    @functools.wraps(original)
    def dispatch(*args, **kwargs):
        if current() is None:
            return original(*args, **kwargs)
        return handler(original, args, kwargs)
    return dispatch


def _install(module, name: str) -> None:
    original = getattr(module, name)
    _originals[(module, name)] = original
    setattr(module, name, _dispatcher((module, name), original))


class intercepting:
    """``with intercepting():`` around a trace (reentrant, thread-safe)."""

    def __enter__(self):
        global _active
        with _lock:
            _active += 1
            if _active == 1:
                for module, name in _handlers:
                    _install(module, name)
        return self

    def __exit__(self, *exc):
        global _active
        with _lock:
            _active -= 1
            if _active == 0:
                for (module, name), original in _originals.items():
                    setattr(module, name, original)
                _originals.clear()
