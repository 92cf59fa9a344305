"""``jit``: the public entry point.

A call flattens the arguments into array leaves and a static part, builds the
signature key (tree structure, each leaf's shape, dtype and weak type, the
static arguments by value), and on a cache miss traces, optimizes, lowers and
compiles.  A hit goes straight to the executable.

Calls with only positional numpy arrays skip even the flattening: their
shapes and dtypes key a second cache, whose entries (see ``_fast_runner``)
allocate the outputs and make one native call.  That path costs about a
microsecond, where flattening alone costs several.

Each signature is traced and compiled once, however many threads make its
first call at the same time (``once.py``).  The counters of
``cache_info()`` then read: ``misses`` calls that compiled their
signature's executable themselves; ``hits`` calls that found it compiled,
including calls that waited while another thread compiled it, so hits +
misses is the number of calls (those that failed before they had an
executable, in tracing say, count nowhere); ``traces`` and ``compiles``
the traces and compilations that succeeded, one per signature
(``lower()`` traces, ``Lowered.compile()`` compiles, neither counts a
call).
"""
from __future__ import annotations

import functools
import inspect
from collections import namedtuple
from dataclasses import dataclass

import numpy as np

from . import tree
from .arguments import check_one_device, to_array
from .backends.cpu import CpuExecutable
from .errors import TracejitError
from .hlo.module import Aval, Module
from .once import OncePerKey
from .pipeline import optimize, to_program
from .stages import Compiled, Lowered, check_int32
from .tracing import LeafSpec, trace

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
        self._name = getattr(fun, "__name__", type(fun).__name__)
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
        self._once = OncePerKey()

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
            arr, weak = to_array(leaf, path, self.backend, self._name)
            arrays.append(arr)
            specs.append(LeafSpec(Aval(arr.shape, arr.dtype.name), weak, path))
        if self.backend == "cuda":
            check_one_device(leaves, paths)
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
    def _traced_for(self, key, specs, treedef, positions, static) -> _Traced:
        """The traced program of ``key``, traced by one thread only."""
        traced, _ = self._once.get_or_build(
            self._traced, key,
            lambda: self._trace(specs, treedef, positions, static))
        return traced

    def _compiled_for(self, key, traced_for) -> tuple:
        """((executable, output tree, int32 leaves), compiled by this
        call), compiling once per ``key``; ``traced_for()`` gives the
        traced program when this call compiles."""
        return self._once.get_or_build(
            self._compiled, key, lambda: self._compile(traced_for()))

    def _miss(self, key, specs, treedef, positions, static) -> tuple:
        """A call's compile-once path, out of ``__call__``: a closure there
        would make its locals cells and slow down the fast path."""
        entry, compiled = self._compiled_for(key, lambda: self._traced_for(
            key, specs, treedef, positions, static))
        self._once.add(self._stats, "misses" if compiled else "hits")
        return entry

    def _trace(self, specs, treedef, positions, static) -> _Traced:
        """Trace and optimize (callers go through ``_traced_for``)."""
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

        try:
            module, weak = trace(flat_fun, specs, _module_name(self.fun),
                                 watch=(self.fun, *static.values()))
        except TracejitError as err:
            for note in _scalar_list_notes(treedef, specs, str(err)):
                err.add_note(note)
            raise
        narrowed = _int32_leaves(module, specs)
        optimize(module, self.backend)
        self._once.add(self._stats, "traces")
        return _Traced(module, out_tree_box[0], weak, narrowed)

    def _compile(self, traced: _Traced) -> tuple:
        """Lower and compile (callers go through ``_compiled_for``)."""
        program = to_program(traced.module)
        entry = (_executable(self.backend, program), traced.out_tree,
                 traced.int32_leaves)
        if self.backend == "cuda" and self._fast_type is None:
            import cupy
            self._fast_type = cupy.ndarray
        self._once.add(self._stats, "compiles")
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
            entry = self._miss(key, specs, treedef, positions, static)
        else:
            self._stats["hits"] += 1
        executable, out_tree, int32_leaves = entry
        check_int32(int32_leaves, arrays, specs)
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

    def lower(self, *args, **kwargs) -> Lowered:
        key, arrays, specs, treedef, positions, static = \
            self._split(args, kwargs)
        traced = self._traced_for(key, specs, treedef, positions, static)
        return Lowered(self, key, traced)

    def cache_info(self) -> CacheInfo:
        return CacheInfo(**self._stats)

    def clear_cache(self) -> None:
        self._traced.clear()
        self._compiled.clear()
        self._fast.clear()


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


def _scalar_list_notes(treedef: tree.TreeDef, specs, message: str):
    """Notes for a tracing error when an argument is a list or tuple of
    scalars and ``message`` does not already say what to do with it.  Such
    an argument is a pytree of separate scalars (as in JAX), so numpy
    functions inside the trace see a Python list of traced values, never an
    array, and an error may name one element (``x[0]``) as if it were an
    argument of its own."""
    notes, first = [], 0
    args, kwargs = treedef.children
    for arg in args.children + kwargs.children:
        for kind, start, count in tree.leaf_sequences(arg, first):
            leaves = specs[start:start + count]
            if all(s.aval.shape == () for s in leaves):
                name = leaves[0].name[:-len("[0]")]
                if f"np.asarray({name})" in message:
                    continue
                notes.append(
                    f"argument {name} is a {kind} of {count} scalars, which "
                    f"jit traces as {count} separate scalars "
                    f"({name}[0], ...), not as one array: pass "
                    f"np.asarray({name}) to trace an array, or a tuple "
                    "marked static if its values are configuration")
        first += arg.num_leaves
    return notes
