"""Replaying a program's launches as one CUDA graph.

Why: a program of several kernels costs one ``cuLaunchKernel`` per
function per call, plus the Python around each; on an H100 a call of three
small kernels took 17.5 us launched one by one and 6.1 us replayed from a
captured graph (one ``cudaGraphLaunch``).  For one launch there is nothing
to gain, so only programs of ``MIN_LAUNCHES`` or more use graphs.

How: a graph's kernel nodes hold their arguments by value, so a graph is
only valid for the exact pointers it was captured with.  The call function
(dispatch.py) therefore keys graphs by the tuple of every pointer its
launches take (parameters, outputs, arena, scratch, strides) and the
stream.  The first call with a key launches directly; a key seen a second
time is captured once (on a private stream, which runs nothing while
capturing) and replayed from then on, on the caller's stream.  Repeated
keys are the common case: kept outputs, the kept arena and scratch, and a
caller that passes the same arrays again.  Programs with a cuBLAS step are
launched directly (CuPy refuses cuBLAS calls under capture).

``TRACEJIT_CUDA_GRAPHS=0`` turns graphs off (every call launches directly).
"""
from __future__ import annotations

import os

__all__ = ["MIN_LAUNCHES", "GraphCache", "graphs_enabled"]

MIN_LAUNCHES = 2        # launches per call from which a graph pays
MAX_GRAPHS = 8          # graphs kept per executable (distinct pointer sets)
MAX_SEEN = 64           # keys remembered from a first call


def graphs_enabled() -> bool:
    return os.environ.get("TRACEJIT_CUDA_GRAPHS", "1") != "0"


class GraphCache:
    """One executable's captured graphs, by launch key (see module doc).

    ``get(key)`` is the instantiated graph of ``key`` or None;
    ``remember(key, launch_all)`` is called after a direct launch of
    ``key`` (``launch_all(*key)`` launches on stream ``key[0]``): the
    second time a key comes, its launches are captured."""

    def __init__(self, cupy):
        self._runtime = cupy.cuda.runtime
        self._cp = cupy
        self._stream = None          # the private capture stream
        self._graphs: dict = {}
        self._seen: set = set()
        self.get = self._graphs.get
        self.launch = self._runtime.graphLaunch     # (graph exec, stream)
        self.captures = 0

    def remember(self, key, launch_all) -> None:
        if key not in self._seen:
            if len(self._seen) >= MAX_SEEN:
                self._seen.clear()
            self._seen.add(key)
            return
        if len(self._graphs) >= MAX_GRAPHS:
            self.clear()
        self._graphs[key] = self._capture(key, launch_all)
        self.captures += 1

    def _capture(self, key, launch_all):
        runtime = self._runtime
        if self._stream is None:
            self._stream = self._cp.cuda.Stream(non_blocking=True)
        ptr = self._stream.ptr
        runtime.streamBeginCapture(ptr)
        try:
            launch_all(ptr, *key[1:])
        finally:
            graph = runtime.streamEndCapture(ptr)
        try:
            return runtime.graphInstantiate(graph)
        finally:
            runtime.graphDestroy(graph)

    def clear(self) -> None:
        for graph_exec in self._graphs.values():
            self._runtime.graphExecDestroy(graph_exec)
        self._graphs.clear()
        self._seen.clear()

    def __del__(self):
        try:
            self.clear()
        except Exception:       # interpreter shutdown: the driver is gone
            pass
