"""The Tracer: an abstract array (shape, dtype, weak type) that records
every numpy operation applied to it.

It speaks numpy's own protocols (operators, ``__array_ufunc__``,
``__array_function__``, ``__getitem__``, the usual attributes and methods), so
ordinary numpy code runs on it unchanged.  Using it where Python needs a
concrete value (``if``, ``int()``, ``float()``) raises an error that names the
arguments the value depends on and the line that asked.
"""
from __future__ import annotations

import numpy as np

from ..errors import TracerConversionError, UnsupportedAttributeError
from ..hlo.module import Aval
from .writes import OPERATORS, inplace_method


CONVERSION = "conversion to a numpy array"


class Tracer:
    __slots__ = ("ctx", "id", "aval", "weak", "deps")
    __array_priority__ = 1000

    def __init__(self, ctx, ins_id: int, aval: Aval, weak: bool,
                 deps: frozenset):
        self.ctx = ctx
        self.id = ins_id
        self.aval = aval
        self.weak = weak
        self.deps = deps

    def with_weak(self, weak: bool) -> "Tracer":
        return Tracer(self.ctx, self.id, self.aval, weak, self.deps)

    # ---- attributes -------------------------------------------------------
    @property
    def shape(self):
        return self.aval.shape

    @property
    def dtype(self):
        return np.dtype(self.aval.dtype)

    @property
    def ndim(self):
        return len(self.aval.shape)

    @property
    def size(self):
        return self.aval.size

    @property
    def T(self):
        return _ops().transpose(self)

    def __len__(self):
        if not self.aval.shape:
            raise TypeError("len() of unsized object")
        return self.aval.shape[0]

    def __iter__(self):
        return (self[k] for k in range(len(self)))

    def __repr__(self):
        return f"Tracer<{self.aval}>"

    # ---- concrete-value conversions: errors -------------------------------
    def _concrete_error(self, what: str):
        from .context import user_location
        containers = sorted({d.split("[")[0] for d in self.deps if "[" in d})
        if containers and what == CONVERSION:
            listed = ", ".join(containers)
            return TracerConversionError(
                f"{what} of a traced value {self.aval} at "
                f"{user_location()}: argument(s) {listed} are lists, tuples "
                f"or dicts, which jit traces as separate scalars (a pytree, "
                f"as in JAX: {', '.join(sorted(self.deps))}), so numpy "
                f"cannot make one array of them; pass "
                f"np.asarray({containers[0]}) to the jitted function to keep it one array (or mark "
                f"{listed} static)")
        if self.deps:
            names = ", ".join(sorted(self.deps))
            cause = (f"it depends on argument(s) {names}, which jit traces "
                     "abstractly (shape and dtype only)")
            hint = (f"mark {names} static (static_argnames) or use "
                    "np.where instead of Python control flow")
        else:
            cause = "it is a traced intermediate value"
            hint = "use np.where instead of Python control flow"
        return TracerConversionError(
            f"{what} of a traced value {self.aval} at {user_location()}: "
            f"{cause}; {hint}")

    def __bool__(self):
        raise self._concrete_error("bool() (Python control flow, e.g. `if`)")

    def __int__(self):
        raise self._concrete_error("int()")

    def __float__(self):
        raise self._concrete_error("float()")

    def __complex__(self):
        raise self._concrete_error("complex()")

    def __index__(self):
        raise self._concrete_error("use as an index")

    def __array__(self, dtype=None, copy=None):
        raise self._concrete_error(CONVERSION)

    # ---- numpy protocols ---------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        from .numpy_protocol import apply_ufunc
        return apply_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        from .numpy_protocol import apply_function
        return apply_function(func, args, kwargs)

    def __getitem__(self, key):
        from .indexing import getitem
        return getitem(self, key)

    def __setitem__(self, key, value):
        from .writes import refuse_setitem
        refuse_setitem(self, key)

    def __getattr__(self, name):
        """ndarray methods tracejit traces are installed on the class from
        the binding registry; any other ndarray attribute is refused by
        name (and is still an AttributeError, as Python expects)."""
        if name.startswith("__") or not hasattr(np.ndarray, name):
            raise AttributeError(f"'numpy.ndarray' object has no attribute "
                                 f"{name!r}")
        from .context import user_location
        raise UnsupportedAttributeError(
            f"numpy.ndarray.{name} is not supported under jit (on a traced "
            f"value {self.aval}) at {user_location()}")


def _ops():
    from . import ops
    return ops


def _binary(ufunc, reflected=False):
    if reflected:
        def method(self, other):
            return ufunc(other, self)
    else:
        def method(self, other):
            return ufunc(self, other)
    return method


for _name, _ufunc in [("add", np.add), ("sub", np.subtract),
                      ("mul", np.multiply), ("truediv", np.true_divide),
                      ("floordiv", np.floor_divide), ("mod", np.remainder),
                      ("pow", np.power), ("matmul", np.matmul),
                      ("and", np.bitwise_and), ("or", np.bitwise_or),
                      ("xor", np.bitwise_xor), ("lshift", np.left_shift),
                      ("rshift", np.right_shift)]:
    setattr(Tracer, f"__{_name}__", _binary(_ufunc))
    setattr(Tracer, f"__r{_name}__", _binary(_ufunc, reflected=True))

for _name, _ufunc in [("lt", np.less), ("le", np.less_equal),
                      ("eq", np.equal), ("ne", np.not_equal),
                      ("gt", np.greater), ("ge", np.greater_equal)]:
    setattr(Tracer, f"__{_name}__", _binary(_ufunc))



def _pow(self, other):
    """``x ** other`` as numpy's ndarray.__pow__ computes it: an exponent of
    exactly the Python int 2 squares (any dtype: bool ** 2 is int8), and on
    float arrays -1 takes the reciprocal and 0.5 the square root (so
    (-0.0) ** 0.5 is -0.0 and (-inf) ** 0.5 is NaN, as in numpy)."""
    if type(other) is int and other == 2:
        return np.square(self)
    if self.dtype.kind == "f":
        if type(other) is int and other == -1:
            return np.reciprocal(self)
        if type(other) is float and other == 0.5:
            return np.sqrt(self)
    return np.power(self, other)


Tracer.__pow__ = _pow
for _name, (_ufunc, _symbol) in OPERATORS.items():
    setattr(Tracer, f"__i{_name}__", inplace_method(_ufunc, _symbol))
Tracer.__neg__ = lambda self: np.negative(self)
Tracer.__pos__ = lambda self: np.positive(self)
Tracer.__abs__ = lambda self: np.absolute(self)
Tracer.__invert__ = lambda self: np.invert(self)
Tracer.__hash__ = object.__hash__
# numpy's own routes for these Python protocols, so what tracejit does not
# trace yet is refused by name (numpy.divmod, numpy.round), not a bare
# "unsupported operand" TypeError
Tracer.__divmod__ = _binary(np.divmod)
Tracer.__rdivmod__ = _binary(np.divmod, reflected=True)
Tracer.__round__ = lambda self, ndigits=None: np.round(self, ndigits or 0)
