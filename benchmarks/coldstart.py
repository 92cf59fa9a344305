"""The child side of the cold-compile workload: one framework, one workload,
in a fresh interpreter.

Why a module of its own: a compile time measured in the benchmark process
would be flattered by everything already loaded and warmed there (the
framework's modules, LLVM, BLAS threads, caches of earlier functions).  The
parent (``harness.cold_compile``) starts ``sys.executable -c`` with this
module per framework and workload; the child imports numpy first (not
counted), then the framework (``import_s``), builds the inputs, and times the
first call of a function it has never seen (``first_s``: trace and compile
plus one run) and then the median of three more calls (``steady_s``), so
``first_s - steady_s`` estimates the compile time.  That estimate also
holds the first touch of fresh output memory, which steady calls may not
pay; so frameworks that compile ahead of a call (tracejit and jax:
``lower(*args).compile()``) are also timed in mode ``aot``, in a fresh
process of their own: the compile alone (``aot_s``), nothing run.  It
prints one line, ``COLDSTART {json}``.
"""
from __future__ import annotations

import json
import statistics
import sys
import time


def child(argv: list[str]) -> int:
    import numpy as np
    from . import peers
    from .workloads import BY_ID

    name, workload_id, scale, seed = argv[0], int(argv[1]), float(argv[2]), \
        int(argv[3])
    mode = argv[4] if len(argv) > 4 else "call"
    t0 = time.perf_counter()
    fw = peers.by_name(name)
    out = {"framework": name, "workload": workload_id,
           "version": fw.version,
           "import_s": time.perf_counter() - t0}
    workload = BY_ID[workload_id]
    rng = np.random.default_rng(seed)
    arg_sets = [workload.make_args(rng, scale) for _ in range(2)]
    try:
        runner = fw.runner(workload)
        native = [runner.convert(args) for args in arg_sets]
        if mode == "aot":
            if runner.aot is None:
                raise NotImplementedError(f"{name} has no ahead-of-time "
                                          "compile")
            t0 = time.perf_counter()
            runner.aot(*native[0])
            out["aot_s"] = time.perf_counter() - t0
            out["status"] = "timed"
            sys.stdout.write("COLDSTART " + json.dumps(out) + "\n")
            return 0
        t0 = time.perf_counter()
        runner.call(*native[0])
        out["first_s"] = time.perf_counter() - t0
        steady = []
        for k in range(3):
            t0 = time.perf_counter()
            runner.call(*native[(k + 1) % 2])
            steady.append(time.perf_counter() - t0)
        out["steady_s"] = statistics.median(steady)
        out["status"] = "timed"
    except Exception as err:    # noqa: BLE001 -- reported to the parent
        out["status"], out["message"] = fw.classify(err)
    sys.stdout.write("COLDSTART " + json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0
