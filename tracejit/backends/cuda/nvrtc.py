"""Compiling generated CUDA C with NVRTC, keeping IEEE denormals.

Why not ``cupy.RawModule``: CuPy's compile-with-cache path appends
``-ftz=true`` to every option list, after the caller's options, so a
RawModule flushes float32 denormals to zero whatever it is asked.  numpy
keeps them (``np.exp(np.float32(-88))`` is 6.05e-39, not 0), and tracejit
promises numpy's answers.  So this module calls CuPy's NVRTC wrapper one
level lower (``cupy.cuda.compiler.compile_using_nvrtc``, which adds no
flush option) with NVRTC's IEEE defaults spelled out, loads the binary
into a ``cupy.cuda.function.Module``, and keeps its own cache:

* in memory, by (device, source): a second executable of the same program
  compiles nothing;
* on disk, under CuPy's kernel cache folder (``CUPY_CACHE_DIR``, default
  ``~/.cupy/kernel_cache``) in ``tracejit/``, one file per (source,
  options, architecture, NVRTC version) holding the binary after its
  SHA-256, so a damaged file is recompiled, never loaded.  CuPy's
  ``CUPY_CACHE_IN_MEMORY=1`` turns the disk cache off here too.
"""
from __future__ import annotations

import hashlib
import os
import tempfile

__all__ = ["OPTIONS", "CudaCompileError", "compile_module",
           "set_max_shared"]

# NVRTC's defaults, spelled out: no flush to zero, IEEE division and square
# root.  (The renderer keeps multiplies out of FMAs itself.)
OPTIONS = ("--std=c++17", "--ftz=false", "--prec-div=true",
           "--prec-sqrt=true")
# CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES in the driver API
_MAX_DYNAMIC_SHARED = 8
DEFAULT_SHARED = 48 * 1024      # dynamic shared memory a launch may use as is


class CudaCompileError(RuntimeError):
    """NVRTC rejected the generated source (a tracejit bug); the message
    names the file the source was saved to."""


class Module:
    """A loaded module: its functions by name (``cupy.cuda.function``
    Function objects, callable as ``f(grid, block, args, shared_mem=)``
    and launchable by ``f.ptr``)."""

    def __init__(self, loaded, source: str):
        self._loaded, self.source, self._functions = loaded, source, {}

    def get_function(self, name: str):
        fn = self._functions.get(name)
        if fn is None:
            fn = self._functions[name] = self._loaded.get_function(name)
        return fn


_MODULES: dict[tuple[int, str], Module] = {}


def compile_module(cupy, source: str, names, label: str = "program"):
    """The Module of ``source`` on the current device with the functions
    ``names`` looked up.  A compile error saves the source to a temporary
    file and names it."""
    key = (cupy.cuda.Device().id, source)
    module = _MODULES.get(key)
    if module is None:
        loaded = cupy.cuda.function.Module()
        loaded.load(_binary(cupy, source, label))
        module = Module(loaded, source)
        for name in names:
            module.get_function(name)
        _MODULES[key] = module
    return module


def set_max_shared(cupy, fn, nbytes: int) -> None:
    """Let ``fn`` launch with ``nbytes`` of dynamic shared memory (beyond
    the 48 KiB every function may use)."""
    if nbytes > DEFAULT_SHARED:
        cupy.cuda.driver.funcSetAttribute(fn.ptr, _MAX_DYNAMIC_SHARED,
                                          nbytes)


# ---- the binary: from the disk cache or NVRTC ------------------------------

def _binary(cupy, source: str, label: str) -> bytes:
    compiler = cupy.cuda.compiler
    arch = "".join(map(str, cupy.cuda.Device().compute_capability))
    version = cupy.cuda.nvrtc.getVersion()
    key = repr((OPTIONS, arch, version, source)).encode()
    path = _cache_path(hashlib.sha256(key).hexdigest())
    cached = _read(path) if path else None
    if cached is not None:
        return cached
    try:
        result = compiler.compile_using_nvrtc(source, OPTIONS, arch,
                                              cache_in_memory=True)
    except compiler.CompileException as exc:
        saved = _save_source(source, label)
        raise CudaCompileError(
            f"NVRTC could not compile the CUDA source generated for "
            f"{label!r} (source saved to {saved}):\n{exc}") from None
    binary = result[0] if isinstance(result, tuple) else result
    binary = binary.encode() if isinstance(binary, str) else bytes(binary)
    if path:
        _write(path, binary)
    return binary


def _cache_path(digest: str) -> str | None:
    """The file of ``digest`` in CuPy's cache folder (as CuPy finds it:
    ``CUPY_CACHE_DIR``, else ``~/.cupy/kernel_cache``), or None when CuPy
    is told to cache in memory only."""
    if os.environ.get("CUPY_CACHE_IN_MEMORY", "0") == "1":
        return None
    folder = os.environ.get("CUPY_CACHE_DIR") or os.path.expanduser(
        os.path.join("~", ".cupy", "kernel_cache"))
    return os.path.join(folder, "tracejit", f"{digest}.bin")


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    check, binary = data[:32], data[32:]
    return binary if hashlib.sha256(binary).digest() == check else None


def _write(path: str, binary: bytes) -> None:
    """Write atomically (a temporary file renamed), so a reader in another
    process never sees half a file; a cache that cannot be written is
    skipped."""
    try:
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(hashlib.sha256(binary).digest() + binary)
        os.replace(tmp, path)
    except OSError:
        pass


def _save_source(source: str, label: str) -> str:
    folder = tempfile.mkdtemp(prefix="tracejit-cuda-")
    path = os.path.join(folder, f"{label}.cu")
    with open(path, "w") as f:
        f.write(source)
    return path
