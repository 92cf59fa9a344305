"""Adapters that run a workload under each framework: tracejit, numpy, and the
optional peers numexpr, numba, jax.jit and torch.compile.

Why: the harness times and checks every framework the same way, so each
adapter reduces a framework to three steps -- ``convert`` the numpy inputs to
its own arrays (not timed), ``call`` (timed, and it waits for the result:
jax dispatches asynchronously), and ``to_numpy`` for the correctness check
(not timed).  Peers are imported only when found: a missing peer is reported
as missing, never an error.

The same numpy function runs everywhere it can: tracejit and numba take it
as is (``numba.njit(fn)``; if numba cannot compile it the workload is n/a for
numba), jax and torch run its code with ``np`` bound to ``jax.numpy`` or to a
small torch namespace (``rebind``), numexpr evaluates the workload's
expression string.  numexpr types Python float literals as float64 and
would promote a float32 expression to float64, so its adapter binds them as
float32 constants, which is what numpy 2 does with Python scalars (NEP 50).
numba has no such switch: where it promotes, the check column says so.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import types
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np


class NotApplicable(Exception):
    """This framework cannot run this workload; the message says why."""


def tree_map(f, x):
    if isinstance(x, (tuple, list)):
        return type(x)(tree_map(f, v) for v in x)
    return f(x)


def rebind(fn: Callable, namespace) -> Callable:
    """``fn`` with its global name ``np`` bound to ``namespace``: the same
    code, run on another framework's arrays."""
    env = dict(fn.__globals__)
    env["np"] = namespace
    new = types.FunctionType(fn.__code__, env, fn.__name__, fn.__defaults__,
                             fn.__closure__)
    new.__kwdefaults__ = fn.__kwdefaults__
    return new


@dataclass
class Runner:
    call: Callable[..., Any]                       # timed
    convert: Callable[[tuple], tuple] = tuple      # numpy inputs -> native
    to_numpy: Callable[[Any], Any] = field(
        default=lambda r: tree_map(np.asarray, r))
    info: Callable[[tuple], dict] | None = None    # extra facts, after warm-up
    aot: Callable[..., Any] | None = None    # compile for these args, no run


class Framework:
    """One framework.  ``load()`` imports it (False if not installed);
    ``runner(workload)`` builds the adapter or raises NotApplicable."""
    name = ""
    module = ""          # import name, for discovery
    install = ""         # how to get it, printed when missing
    version = ""
    threads = ""         # how many threads it computes with, in words

    def load(self) -> bool:
        if importlib.util.find_spec(self.module) is None:
            return False
        self.mod = importlib.import_module(self.module)
        self.version = getattr(self.mod, "__version__", "?")
        return True

    def runner(self, workload) -> Runner:
        raise NotImplementedError

    def classify(self, err: BaseException) -> tuple[str, str]:
        """(status, message) for an exception from the first call."""
        return "n/a", _first_line(err)


def _first_line(err: BaseException) -> str:
    """The telling line of an error message, on one line."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()
    text = re.sub(r" at 0x[0-9a-f]+", "", text)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # numba: the innermost specific error says most; skip generic lines
    inner = [ln for ln in lines if ln.startswith("TypingError: ")]
    useful = [ln for ln in lines if not ln.startswith("Failed in")]
    line = inner[-1][len("TypingError: "):] if inner else \
        (useful or lines or [""])[0]
    callee = re.search(r"No implementation of function Function\(<function "
                       r"(\w+)>", text)
    if inner and callee:
        line = f"np.{callee.group(1)}: {line}"
    return f"{type(err).__name__}: {line[:160]}"


class Tracejit(Framework):
    name, module = "tracejit", "tracejit"

    def load(self):
        if not super().load():
            return False
        try:
            from tracejit.backends.cpu.threads import num_threads
            n = num_threads()
        except ImportError:     # before multi-threaded kernels
            n = 1
        self.threads = (f"{n} thread{'s' if n > 1 else ''} "
                        "(TRACEJIT_NUM_THREADS; matmul: numpy's BLAS)")
        return True

    def runner(self, workload):
        jitted = self.mod.jit(workload.fn)

        def info(args):
            compiled = jitted.lower(*args).compile()
            memory = compiled.memory_analysis()
            return {"kernels": compiled.kernel_count,
                    "temp_bytes": memory.temp_bytes,
                    "peak_bytes": memory.peak_bytes}
        return Runner(jitted, info=info,
                      aot=lambda *args: jitted.lower(*args).compile())

    def classify(self, err):
        if isinstance(err, self.mod.UnsupportedError):
            return "unsupported", f"unsupported by tracejit: {err}"
        return "ERROR", _first_line(err)


class Numpy(Framework):
    name, module = "numpy", "numpy"
    threads = "1 thread (matmul: BLAS threads)"

    def runner(self, workload):
        return Runner(workload.fn)


_FLOAT_LITERAL = re.compile(
    r"(?<![\w.])(\d+\.\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|"
    r"\d+[eE][+-]?\d+)(?![\w.])")


def numexpr_float32(expr: str) -> tuple[str, dict]:
    """``expr`` with every float literal replaced by a float32 constant."""
    consts: dict = {}

    def bind(m):
        name = f"_c{len(consts)}"
        consts[name] = np.float32(float(m.group(1)))
        return name
    return _FLOAT_LITERAL.sub(bind, expr), consts


class Numexpr(Framework):
    name, module, install = "numexpr", "numexpr", "pip install numexpr"

    def load(self):
        if not super().load():
            return False
        self.threads = f"{self.mod.nthreads} threads"
        return True

    def runner(self, workload):
        if not workload.numexpr:
            raise NotApplicable("no numexpr expression (numexpr evaluates "
                                "elementwise expressions only)")
        expr, consts = numexpr_float32(workload.numexpr)
        names = list(inspect.signature(workload.fn).parameters)
        evaluate = self.mod.evaluate

        def call(*args):
            return evaluate(expr, local_dict={**consts,
                                              **dict(zip(names, args))})
        return Runner(call)


class Numba(Framework):
    name, module, install = "numba", "numba", "pip install numba"
    threads = "1 thread (njit, not parallel)"

    def runner(self, workload):
        return Runner(self.mod.njit(workload.fn))


class Jax(Framework):
    name, module, install = "jax", "jax", "pip install jax"

    def load(self):
        if not super().load():
            return False
        import jax.numpy
        self.jnp = jax.numpy
        self.threads = f"XLA on {self.mod.devices()[0]}"
        return True

    def runner(self, workload):
        jax = self.mod
        jitted = jax.jit(rebind(workload.fn, self.jnp))

        def call(*args):
            return jax.block_until_ready(jitted(*args))
        return Runner(call, convert=lambda args: tuple(jax.device_put(a)
                                                       for a in args),
                      aot=lambda *args: jitted.lower(*args).compile())


def torch_namespace(torch) -> types.ModuleType:
    """The numpy names the workloads use, on torch tensors."""
    ns = types.ModuleType("numpy_on_torch")
    for name in ("tanh", "exp", "log1p", "abs", "sqrt"):
        setattr(ns, name, getattr(torch, name))

    def reduce(f, x, axis, keepdims):
        if axis is None:
            out = f(x)
            return out.reshape((1,) * x.dim()) if keepdims else out
        return f(x, dim=axis, keepdim=keepdims)

    def maximum(a, b):
        if not isinstance(a, torch.Tensor):
            a, b = b, a
        if isinstance(b, torch.Tensor):
            return torch.maximum(a, b)
        return torch.clamp_min(a, b)

    ns.max = lambda x, axis=None, keepdims=False: reduce(torch.amax, x, axis,
                                                          keepdims)
    ns.sum = lambda x, axis=None, keepdims=False: reduce(torch.sum, x, axis,
                                                         keepdims)
    ns.mean = lambda x, axis=None, keepdims=False: reduce(torch.mean, x, axis,
                                                          keepdims)
    ns.maximum = maximum
    return ns


class Torch(Framework):
    name, module, install = "torch", "torch", "pip install torch"

    def load(self):
        if not super().load():
            return False
        self.threads = f"{self.mod.get_num_threads()} threads"
        self.ns = torch_namespace(self.mod)
        return True

    def runner(self, workload):
        torch = self.mod
        compiled = torch.compile(rebind(workload.fn, self.ns), dynamic=False)

        def call(*args):
            with torch.no_grad():
                return compiled(*args)
        return Runner(
            call,
            convert=lambda args: tuple(torch.from_numpy(a) for a in args),
            to_numpy=lambda r: tree_map(lambda t: t.detach().numpy(), r))


ALL = (Tracejit, Numpy, Numexpr, Numba, Jax, Torch)
PEER_NAMES = tuple(cls.name for cls in ALL[2:])


def discover(peers=None) -> tuple[list[Framework], list[Framework]]:
    """(found, missing).  tracejit and numpy always; ``peers`` (names) limits
    the optional ones, None means all."""
    found, missing = [], []
    for cls in ALL:
        if cls.name in PEER_NAMES and peers is not None and \
                cls.name not in peers:
            continue
        fw = cls()
        try:
            ok = fw.load()
        except Exception as err:   # installed but broken: say so, go on
            fw.version = f"import failed: {_first_line(err)}"
            ok = False
        (found if ok else missing).append(fw)
    return found, missing


def by_name(name: str) -> Framework:
    for cls in ALL:
        if cls.name == name:
            fw = cls()
            if not fw.load():
                raise RuntimeError(f"{name} is not installed")
            return fw
    raise KeyError(name)
