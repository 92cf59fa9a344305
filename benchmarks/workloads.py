"""The benchmark workloads, each written once as plain numpy.

Why a module of its own: every framework runs these same functions.  tracejit
and numba call them as they are; jax and torch run the same code through an
adapter that binds the name ``np`` to their numpy-like namespace
(``peers.rebind``); numexpr, which only takes expression strings, gets the
string written beside the function.  So the numpy code below is the single
definition of what is measured, and the sizes, tolerances and input makers
sit next to it.

Sizes: ``scale`` multiplies the element count of every array (1-D lengths by
``scale``, each dimension of a 2-D array by ``sqrt(scale)``, rounded to a
multiple of 8); ``--quick`` uses 1/256.  Inputs are float32, random, made
from the given generator.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

SQRT_2_OVER_PI = 0.7978845608028654   # sqrt(2 / pi), a Python float


# ---- the functions: plain numpy ---------------------------------------------
def arith(a, b, c):
    return (a * b + c) * 0.5 - a / (1 + b * b)


def transcendental(a, b, c):
    return np.tanh(a) * np.exp(-b * b) + np.log1p(np.abs(c))


def gelu(x):
    """GELU, tanh approximation (Hendrycks & Gimpel)."""
    return 0.5 * x * (1.0 + np.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x**3)))


def softmax(x):
    """Softmax over the last axis, shifted by the row max."""
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def layernorm(x, gamma, beta):
    """Layer normalization over the last axis (eps 1e-5), then scale and
    shift."""
    mean = np.mean(x, axis=-1, keepdims=True)
    d = x - mean
    var = np.mean(d * d, axis=-1, keepdims=True)
    return d / np.sqrt(var + 1e-5) * gamma + beta


def sum_all(x):
    return np.sum(x)


def sum_axis0(x):
    return np.sum(x, axis=0)


def sum_axis1(x):
    return np.sum(x, axis=1)


def mlp(x, w1, b1, w2, b2):
    """Two-layer perceptron: relu(x @ w1 + b1) @ w2 + b2."""
    return np.maximum(x @ w1 + b1, 0.0) @ w2 + b2


def add_one(x):
    return x + 1


# ---- sizes and inputs -------------------------------------------------------
def n_elements(scale: float) -> int:
    return max(16, int(round(2**24 * scale)))


def dim(d: int, scale: float) -> int:
    """One dimension of a 2-D array, so that element counts scale by
    ``scale``."""
    return max(8, int(round(d * math.sqrt(scale) / 8)) * 8)


def _normal(rng, shape, scale=1.0, shift=0.0):
    x = rng.standard_normal(shape, dtype=np.float32)
    if scale != 1.0:
        x *= np.float32(scale)
    if shift:
        x += np.float32(shift)
    return x


def _three_vectors(rng, scale):
    n = n_elements(scale)
    return tuple(_normal(rng, n) for _ in range(3))


def _one_vector(rng, scale):
    return (_normal(rng, n_elements(scale), 3.0),)


def _square(rng, scale, spread=1.0):
    n = dim(4096, scale)
    return (_normal(rng, (n, n), spread),)


def _layernorm_args(rng, scale):
    n = dim(4096, scale)
    return (_normal(rng, (n, n), 2.0, 1.0), _normal(rng, n, 0.1, 1.0),
            _normal(rng, n, 0.1))


def _mlp_args(rng, scale):
    batch, d_in, hidden, d_out = (dim(d, scale)
                                  for d in (256, 1024, 4096, 1024))
    return (_normal(rng, (batch, d_in)),
            _normal(rng, (d_in, hidden), d_in ** -0.5),
            _normal(rng, hidden, 0.1),
            _normal(rng, (hidden, d_out), hidden ** -0.5),
            _normal(rng, d_out, 0.1))


def _dispatch_args(rng, scale):
    return (_normal(rng, 8),)


def _sum_atol(args, want):
    """Summation order differs (numpy: pairwise float32, or row by row along
    axis 0; tracejit: float64 accumulators), so the error allowed grows with
    what is summed: 1e-6 of the largest sum of magnitudes."""
    ax = np.abs(args[0])
    return 1e-6 * float(max(ax.sum(dtype=np.float64),
                            ax.sum(axis=0, dtype=np.float64).max(),
                            ax.sum(axis=1, dtype=np.float64).max()))


# ---- the workloads ----------------------------------------------------------
@dataclass(frozen=True)
class Workload:
    id: int
    key: str                        # short name, used in JSON and --only
    title: str                      # what the table shows
    fn: Callable | None             # the plain-numpy function
    make_args: Callable | None      # (rng, scale) -> tuple of arrays
    rtol: float = 1e-5
    atol: float | Callable = 1e-6   # or (args, numpy result) -> atol
    numexpr: str | None = None      # the expression, in fn's parameter names
    kind: str = "time"              # "time", "dispatch" or "compile"
    part: str = ""                  # "a", "b" ...: one of several timed
                                    # parts of workload ``id``
    compile_of: tuple = ()          # kind "compile": the workloads compiled
    note: str = ""

    @property
    def label(self) -> str:
        """'6b' for a part, '4' otherwise: what tables and --only show."""
        return f"{self.id}{self.part}"

    def atol_for(self, args, want) -> float:
        return self.atol(args, want) if callable(self.atol) else self.atol


WORKLOADS = [
    Workload(1, "arith", "(a*b + c) * 0.5 - a / (1 + b*b)", arith,
             _three_vectors, numexpr="(a*b + c) * 0.5 - a / (1 + b*b)"),
    Workload(2, "transcendental", "tanh(a) * exp(-b*b) + log1p(abs(c))",
             transcendental, _three_vectors,
             numexpr="tanh(a) * exp(-b*b) + log1p(abs(c))"),
    Workload(3, "gelu", "GELU (tanh approximation)", gelu, _one_vector,
             numexpr="0.5 * x * (1.0 + tanh(0.7978845608028654 * "
                     "(x + 0.044715 * x**3)))"),
    Workload(4, "softmax", "row softmax", softmax,
             lambda rng, scale: _square(rng, scale, 4.0), atol=1e-7),
    Workload(5, "layernorm", "layernorm (last axis, gamma, beta)", layernorm,
             _layernorm_args, rtol=1e-4, atol=1e-4),
    Workload(6, "sum_all", "sum over all elements", sum_all, _square,
             atol=_sum_atol, part="a", numexpr="sum(x)"),
    Workload(6, "sum_axis0", "sum over axis 0", sum_axis0, _square,
             atol=_sum_atol, part="b", numexpr="sum(x, axis=0)"),
    Workload(6, "sum_axis1", "sum over axis 1", sum_axis1, _square,
             atol=_sum_atol, part="c", numexpr="sum(x, axis=1)"),
    Workload(7, "mlp", "MLP relu(x@W1+b1)@W2+b2", mlp, _mlp_args,
             rtol=1e-4, atol=1e-4,
             note="matrix products dominate: compute-bound, the memory floor "
                  "is far below reach"),
    Workload(8, "dispatch", "dispatch: x + 1 on (8,)", add_one,
             _dispatch_args, numexpr="x + 1", kind="dispatch"),
    Workload(9, "cold_compile", "cold compile (fresh process)", None, None,
             kind="compile", compile_of=(2, 7)),
]

BY_ID = {w.id: w for w in WORKLOADS if w.part in ("", "a")}


def selected(ids) -> list[Workload]:
    """The workloads --only names, every part of a multi-part one."""
    return [w for w in WORKLOADS if w.id in ids]


def shapes_text(args) -> str:
    """'f32[16777216] x3' or 'f32[256,1024], f32[1024,4096], ...'."""
    def aval(a):
        short = {"float32": "f32", "float64": "f64"}.get(a.dtype.name,
                                                         a.dtype.name)
        return f"{short}[{','.join(map(str, a.shape))}]"
    texts = [aval(a) for a in args]
    if len(set(texts)) == 1 and len(texts) > 1:
        return f"{texts[0]} x{len(texts)}"
    return ", ".join(texts)
