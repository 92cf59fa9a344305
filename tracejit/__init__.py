"""tracejit: a tracing JIT compiler for numpy code.

    import numpy as np, tracejit

    @tracejit.jit
    def f(x, y):
        return np.tanh(x) * y + 1

``f`` traces on the shapes and dtypes it is called with, compiles native code
for them, and returns numpy arrays with numpy's answers.
"""
from .api import CacheInfo, Compiled, Jitted, Lowered, jit
from .errors import (ShapeMismatchError, TracejitError, TracerConversionError,
                     UnsupportedError)
from . import numpy  # noqa: F401  (tracejit.numpy)

__version__ = "0.1.0"
__all__ = ["jit", "Jitted", "Lowered", "Compiled", "CacheInfo", "numpy",
           "TracejitError", "TracerConversionError", "ShapeMismatchError",
           "UnsupportedError"]
