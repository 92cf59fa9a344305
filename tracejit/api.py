"""``jit``: the public entry point.

A call flattens the arguments into array leaves and a static part, builds the
signature key (tree structure, each leaf's shape, dtype and weak type, the
static arguments by value), and on a cache miss traces, optimizes, lowers and
compiles.  A hit goes straight to the executable.

Calls with only positional numpy arrays skip even the flattening: their
shapes and dtypes key a second cache, whose entries (see ``_fast_runner``)
allocate the outputs and make one native call.  That path costs about a
microsecond, where flattening alone costs several.
"""
from __future__ import annotations

import functools
import inspect
from collections import namedtuple
from dataclasses import dataclass

import numpy as np

from . import tree
from .backends.cpu import CpuExecutable
from .errors import UnsupportedError
from .hlo.module import Aval, Module
from .memory import MemoryAnalysis, memory_analysis
from .pipeline import optimize, to_program
from .tracing import SUPPORTED_DTYPES, LeafSpec, trace

_ndarray = np.ndarray
CacheInfo = namedtuple("CacheInfo", "hits misses traces compiles")
BACKENDS = ("cpu", "cuda")


def jit(fun=None, *, static_argnums=(), static_argnames=(), backend=None,
        donate_argnums=()):
    """Compile ``fun`` for the shapes and dtypes it is called with.

    Usable as ``@jit`` or ``@jit(static_argnames=...)``.  Arguments are numpy
    arrays (any strides), numpy scalars, Python scalars, and tuples, lists,
    dicts and None nesting them; static arguments are hashed by value.

    ``backend="cuda"`` runs the program on an NVIDIA GPU through CuPy: CuPy
    arrays are read in place on the current device and the results are
    CuPy arrays; numpy arrays are copied to the current device first (the
    results are still CuPy arrays).  One call cannot mix the two.
    ``donate_argnums`` is accepted for JAX compatibility; nothing is
    donated yet (inputs are never written).
    """
    if fun is None:
        return functools.partial(jit, static_argnums=static_argnums,
                                 static_argnames=static_argnames,
                                 backend=backend,
                                 donate_argnums=donate_argnums)
    return Jitted(fun, static_argnums, static_argnames, backend)


def _as_tuple(x) -> tuple:
    if x is None:
        return ()
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


@dataclass
class _Traced:
    module: Module
    out_tree: tree.TreeDef
    out_weak: list
    int32_leaves: tuple = ()   # Python-int leaves the program casts to int32


class Jitted:
    def __init__(self, fun, static_argnums, static_argnames, backend):
        if backend not in (None,) + BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; available: "
                             f"{', '.join(BACKENDS)}")
        self.fun = fun
        self.backend = backend or "cpu"
        functools.update_wrapper(self, fun)
        try:
            params = list(inspect.signature(fun).parameters.values())
        except (TypeError, ValueError):
            params = []
        positional = [p.name for p in params if p.kind in (
            p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        self._positional_names = positional
        nums = {n if n >= 0 else n + len(positional)
                for n in _as_tuple(static_argnums)}
        names = set(_as_tuple(static_argnames))
        names |= {positional[n] for n in nums if n < len(positional)}
        nums |= {positional.index(n) for n in names if n in positional}
        self._static_nums, self._static_names = nums, names
        self._traced: dict = {}
        self._compiled: dict = {}
        self._fast: dict = {}
        # the array type whose calls may take the fast path
        self._fast_type = _ndarray if self.backend == "cpu" else None
        self._stats = {"hits": 0, "misses": 0, "traces": 0, "compiles": 0}

    def __get__(self, obj, objtype=None):
        """Bind like a function, so ``@jit`` works on methods (``self`` is
        then argument 0: mark it static, or pass arrays only)."""
        if obj is None:
            return self
        return functools.partial(self, obj)

    # ---- signatures --------------------------------------------------------
    def _split(self, args, kwargs):
        """(key, leaves, leaf specs, dynamic tree, static parts)."""
        static, dyn_args, dyn_kwargs = [], [], {}
        for n, a in enumerate(args):
            if n in self._static_nums:
                static.append((n, self._hashable(a, self._arg_name(n))))
            else:
                dyn_args.append((n, a))
        for name in sorted(kwargs):
            if name in self._static_names:
                static.append((name, self._hashable(kwargs[name], name)))
            else:
                dyn_kwargs[name] = kwargs[name]
        paths: list[str] = []
        leaves: list = []
        arg_defs = []
        for n, a in dyn_args:
            sub, d = tree.flatten(a, self._arg_name(n), paths)
            leaves += sub
            arg_defs.append(d)
        kw_defs = []
        for name, v in dyn_kwargs.items():
            sub, d = tree.flatten(v, name, paths)
            leaves += sub
            kw_defs.append(d)
        treedef = tree.TreeDef("tuple", (
            tree.TreeDef("list", tuple(arg_defs)),
            tree.TreeDef("dict", tuple(kw_defs), tuple(dyn_kwargs))))
        arrays, specs = [], []
        for leaf, path in zip(leaves, paths):
            arr, weak = _to_array(leaf, path, self.backend)
            arrays.append(arr)
            specs.append(LeafSpec(Aval(arr.shape, arr.dtype.name), weak, path))
        if self.backend == "cuda":
            _check_one_device(leaves, paths)
        positions = tuple(n for n, _ in dyn_args)
        key = (treedef, positions,
               tuple((s.aval.shape, s.aval.dtype, s.weak) for s in specs),
               tuple((k, _type_tag(v), v) for k, v in static))
        return key, arrays, specs, treedef, positions, dict(static)

    def _arg_name(self, n: int) -> str:
        if n < len(self._positional_names):
            return self._positional_names[n]
        return f"args[{n}]"

    def _hashable(self, value, name: str):
        try:
            hash(value)
        except TypeError:
            raise TypeError(
                f"static argument {name!r} of {self.__name__}: a value of "
                f"type {type(value).__name__} is not hashable; static "
                "arguments must be hashable (use a tuple instead of a list)"
            ) from None
        return value

    # ---- tracing and compiling ----------------------------------------------
    def _trace(self, key, specs, treedef, positions, static) -> _Traced:
        traced = self._traced.get(key)
        if traced is not None:
            return traced
        out_tree_box = []

        def flat_fun(*tracers):
            dyn_args, dyn_kwargs = tree.unflatten(treedef, tracers)
            call_args = []
            it = iter(dyn_args)
            for n in range(len(positions) + sum(isinstance(k, int)
                                                for k in static)):
                call_args.append(static[n] if n in static else next(it))
            kw = {k: v for k, v in static.items() if isinstance(k, str)}
            out = self.fun(*call_args, **kw, **dyn_kwargs)
            leaves, out_tree = tree.flatten(out)
            out_tree_box.append(out_tree)
            return leaves

        module, weak = trace(flat_fun, specs, _module_name(self.fun))
        self._stats["traces"] += 1
        narrowed = _int32_leaves(module, specs)
        optimize(module, self.backend)
        traced = _Traced(module, out_tree_box[0], weak, narrowed)
        self._traced[key] = traced
        return traced

    def _compile(self, key, traced: _Traced):
        """(executable, output tree) for ``key``, compiling on first use."""
        entry = self._compiled.get(key)
        if entry is None:
            program = to_program(traced.module)
            entry = (_executable(self.backend, program), traced.out_tree,
                     traced.int32_leaves)
            if self.backend == "cuda" and self._fast_type is None:
                import cupy
                self._fast_type = cupy.ndarray
            self._stats["compiles"] += 1
            self._compiled[key] = entry
        return entry

    def __call__(self, *args, **kwargs):
        fast = None
        if not kwargs:
            # the fast key, inline for one and two arguments (the common
            # cases, where a helper call would be a good part of the cost)
            n, kind = len(args), self._fast_type
            if n == 1:
                a, = args
                if type(a) is kind:
                    fast = (a.shape, a.dtype)
            elif n == 2:
                a, b = args
                if type(a) is kind and type(b) is kind:
                    fast = (a.shape, a.dtype, b.shape, b.dtype)
            else:
                fast = self._fast_key(args, kind)
            if fast is not None:
                run = self._fast.get(fast)
                if run is not None:
                    self._stats["hits"] += 1
                    return run(args)
        key, arrays, specs, treedef, positions, static = \
            self._split(args, kwargs)
        entry = self._compiled.get(key)
        if entry is None:
            self._stats["misses"] += 1
            traced = self._trace(key, specs, treedef, positions, static)
            entry = self._compile(key, traced)
        else:
            self._stats["hits"] += 1
        executable, out_tree, int32_leaves = entry
        _check_int32(int32_leaves, arrays, specs)
        if fast is not None and not self._static_nums and \
                not int32_leaves and all(
                    a is b for a, b in zip(arrays, args)):
            self._fast[fast] = _fast_runner(executable, out_tree)
        return tree.unflatten(out_tree, executable(arrays))

    @staticmethod
    def _fast_key(args, kind):
        """For calls with only positional arrays of type ``kind`` (numpy's
        on the CPU, CuPy's on the GPU; not subclasses): a key of their
        shapes and dtypes.  A call whose arrays the full path accepted
        unchanged under this key may skip that path next time (never with
        static arguments: then nothing is stored)."""
        key = []
        for a in args:
            if type(a) is not kind:
                return None
            key += (a.shape, a.dtype)
        return tuple(key)

    def lower(self, *args, **kwargs) -> "Lowered":
        key, arrays, specs, treedef, positions, static = \
            self._split(args, kwargs)
        traced = self._trace(key, specs, treedef, positions, static)
        return Lowered(self, key, traced)

    def cache_info(self) -> CacheInfo:
        return CacheInfo(**self._stats)

    def clear_cache(self) -> None:
        self._traced.clear()
        self._compiled.clear()
        self._fast.clear()


class Lowered:
    """A traced and optimized program for one signature."""

    def __init__(self, jitted: Jitted, key, traced: _Traced):
        self._jitted, self._key, self._traced = jitted, key, traced

    def as_text(self) -> str:
        """The HLO module as text, after the passes (with fusion notes)."""
        return self._traced.module.text()

    def fusion_report(self) -> str:
        """Every fusion decision and refusal, with its reason."""
        plan = self._traced.module.fusion
        lines = [f"{len(plan.groups)} kernel groups, run in order "
                 f"{plan.order}"]
        for group in plan.groups:
            kind = ("library call" if group.library else
                    "reduction fusion" if group.row_axes else "loop fusion")
            roots = ", ".join(f"%{r}" for r in group.roots)
            rows = f", rows over axes {list(group.row_axes)}" \
                if group.row_axes else ""
            lines.append(f"  kernel {group.id}: {kind} over "
                         f"{list(group.space)}{rows}; roots {roots}")
        return "\n".join(lines + plan.report) + "\n"

    def compile(self) -> "Compiled":
        executable, out_tree, int32_leaves = self._jitted._compile(
            self._key, self._traced)
        return Compiled(self._jitted, self._key, executable, out_tree,
                        int32_leaves)


class Compiled:
    """The executable for one signature."""

    def __init__(self, jitted: Jitted, key, executable: CpuExecutable,
                 out_tree, int32_leaves=()):
        self._jitted, self._key = jitted, key
        self.executable, self._out_tree = executable, out_tree
        self._int32_leaves = int32_leaves

    def as_text(self) -> str:
        """The generated LLVM IR."""
        return self.executable.as_text()

    def assembly(self) -> str:
        return self.executable.assembly()

    @property
    def kernel_count(self) -> int:
        return self.executable.kernel_count

    def memory_analysis(self) -> MemoryAnalysis:
        """Argument, output, temporary, arena and peak bytes of one call."""
        return memory_analysis(self.executable.program)

    def program_text(self) -> str:
        return self.executable.program.describe()

    def __call__(self, *args, **kwargs):
        key, arrays, specs, *_ = self._jitted._split(args, kwargs)
        if key != self._key:
            raise TypeError("arguments do not match the signature this "
                            "executable was compiled for")
        _check_int32(self._int32_leaves, arrays, specs)
        return tree.unflatten(self._out_tree, self.executable(arrays))


def _fast_runner(executable, out_tree: tree.TreeDef):
    """What a fast-path hit calls: the argument tuple -> the result."""
    if not isinstance(executable, CpuExecutable):        # CUDA
        if out_tree == tree.LEAF:
            return executable.runner(single=True)
        run = executable.runner()
        return lambda args: tree.unflatten(out_tree, run(args))
    if out_tree == tree.LEAF:
        return executable.runner("single")
    if out_tree.kind in ("tuple", "list") and all(
            child == tree.LEAF for child in out_tree.children):
        return executable.runner(out_tree.kind)
    run = executable.runner()
    return lambda args: tree.unflatten(out_tree, run(args))


def _int32_leaves(module: Module, specs) -> tuple:
    """Leaves that are Python ints (weak int64) which the traced program
    converts to int32, as numpy does when one meets an int32 array."""
    params = {ins.id: ins.attr("index") for ins in module.instructions
              if ins.op == "parameter"}
    out = set()
    for ins in module.instructions:
        if ins.op == "convert" and ins.attr("dtype") == "int32" and \
                ins.operands[0] in params:
            k = params[ins.operands[0]]
            if specs[k].weak and specs[k].aval.dtype == "int64":
                out.add(k)
    return tuple(sorted(out))


def _check_int32(leaves: tuple, arrays, specs) -> None:
    """numpy raises OverflowError for a Python int that does not fit the
    int32 it is cast to (NEP 50); the value is only known at call time."""
    for k in leaves:
        value = int(arrays[k])
        if not -2**31 <= value < 2**31:
            raise OverflowError(f"argument {specs[k].name}: Python integer "
                                f"{value} out of bounds for int32")


def _type_tag(value):
    """The types inside a static value: 2, 2.0 and True hash and compare
    equal but trace differently, so the cache key tells them apart."""
    if isinstance(value, (tuple, list)):
        return (type(value), tuple(_type_tag(v) for v in value))
    if isinstance(value, frozenset):
        return (type(value), frozenset(_type_tag(v) for v in value))
    return type(value)


def _module_name(fun) -> str:
    name = getattr(fun, "__name__", "fun")
    return "".join(c if c.isalnum() else "_" for c in name) or "fun"


def _executable(backend: str, program):
    if backend == "cuda":
        from .backends.cuda import CudaExecutable
        return CudaExecutable(program)
    return CpuExecutable(program)


def _on_gpu(leaf) -> bool:
    return hasattr(leaf, "__cuda_array_interface__")


def _check_one_device(leaves, paths) -> None:
    """A CUDA call takes numpy arrays (copied to the device) or CuPy
    arrays, not both: a mix usually means a forgotten transfer."""
    gpu = [p for leaf, p in zip(leaves, paths) if _on_gpu(leaf)]
    host = [p for leaf, p in zip(leaves, paths)
            if isinstance(leaf, np.ndarray)]
    if gpu and host:
        raise TypeError(f"argument {host[0]} is a numpy array (host memory) "
                        f"but argument {gpu[0]} is a CuPy array (GPU): pass "
                        "all arrays on one side (cupy.asarray / "
                        "cupy.asnumpy)")


def _to_array(leaf, path: str, backend: str = "cpu"):
    """(array, weak) for one argument leaf, or a clear TypeError.  On the
    CUDA backend a CuPy array stays as it is."""
    if _on_gpu(leaf):
        if backend != "cuda":
            raise TypeError(f"argument {path}: a {type(leaf).__module__}."
                            f"{type(leaf).__name__} lives on the GPU; use "
                            "jit(..., backend='cuda') or copy it to the host")
        if np.dtype(leaf.dtype).name not in SUPPORTED_DTYPES:
            raise UnsupportedError(f"argument {path}: dtype {leaf.dtype} is "
                                   "not supported (supported: "
                                   f"{', '.join(SUPPORTED_DTYPES)})")
        return leaf, False
    if isinstance(leaf, (bool, np.bool_)):
        return np.asarray(leaf, dtype=bool), False
    if isinstance(leaf, np.generic):
        # numpy scalars are strongly typed, even np.float64, which is a
        # subclass of Python float (NEP 50)
        return _checked_array(np.asarray(leaf), path), False
    if isinstance(leaf, int):
        if not -2**63 <= leaf < 2**63:
            raise OverflowError(f"argument {path}: Python int {leaf} does not "
                                "fit in int64")
        return np.asarray(leaf, dtype=np.int64), True
    if isinstance(leaf, float):
        return np.asarray(leaf, dtype=np.float64), True
    if not isinstance(leaf, np.ndarray):
        raise TypeError(f"argument {path}: {type(leaf).__name__} is not a "
                        "valid jit argument (numpy arrays, numpy or Python "
                        "scalars, and tuples/lists/dicts/None of them); mark "
                        "it static if it is configuration")
    return _checked_array(np.asarray(leaf), path), False


def _checked_array(arr: np.ndarray, path: str) -> np.ndarray:
    if arr.dtype.name not in SUPPORTED_DTYPES:
        raise UnsupportedError(f"argument {path}: dtype {arr.dtype} is not "
                               f"supported (supported: "
                               f"{', '.join(SUPPORTED_DTYPES)})")
    if not arr.dtype.isnative:
        # the kernels read native byte order
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr
