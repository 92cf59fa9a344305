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
