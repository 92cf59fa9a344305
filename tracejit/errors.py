"""Errors a user sees.  Each message says what, where (file:line) and why."""


class TracejitError(Exception):
    """Base class of tracejit's own errors."""


class TracerConversionError(TracejitError, TypeError):
    """A traced value was used where a concrete Python value is needed
    (``if x > 0:``, ``int(x)``, ``float(x)``, ``np.asarray(x)``)."""


class ShapeMismatchError(TracejitError, ValueError):
    """Operand shapes do not fit the operation (names op, shapes, line)."""


class UnsupportedError(TracejitError, TypeError):
    """An op, dtype or argument form tracejit does not support (yet)."""


class UnsupportedAttributeError(UnsupportedError, AttributeError):
    """An ndarray attribute or method tracejit does not trace (yet);
    also an AttributeError, as a missing attribute is in Python."""


class UnsupportedWriteError(UnsupportedError):
    """A write into a traced array (``x[i] = v``, ``x += y``) whose numpy
    semantics tracejit cannot keep yet: it names the array's arguments
    and the line, instead of silently rebinding the name."""


class CastingError(TracejitError, TypeError):
    """numpy's casting rule forbids the conversion an operation needs
    (``int_array += 1.5``), as numpy itself would refuse it."""


class RandomDrawError(UnsupportedError):
    """A random draw inside a jitted function: it would run once, while
    tracing, and be baked into the compiled code (not compiled yet)."""
