"""Measurement: timing, correctness checks, copy bandwidth, CPU load and cold
compiles.

Why a module of its own: these rules decide whether the figures can be
trusted, so they are written once and apply to every framework alike.

* Warm-up: each framework's first call on each input set (compilation,
  first touch of the output pages) is not timed; those results are the ones
  checked against numpy.
* Rotation: two input sets of the same shapes.  Successive calls, whichever
  framework makes them, alternate between the sets, and the frameworks take
  turns within each run, in the reverse order on odd runs; so no call is
  timed on data the call before it left in cache, every framework sees both
  sets, and slow drift of the machine hits all frameworks alike.
* Every timed call waits for its result (jax dispatches asynchronously).
* Figures are the median, min and max over ``runs`` calls.
* CPU load: all CPU time spent on the machine (/proc/stat) minus this
  process's own (``os.times``, threads and waited-for children included),
  per second of wall time, is how many cores other processes kept busy;
  judged per workload (its warm-up and timing), before the run (while this
  process sleeps) and over the whole run.
* Cold compile: a fresh interpreter (``sys.executable -c``) per framework
  and workload times the first call of a new function (see coldstart.py).
"""
from __future__ import annotations

import json
import os
import pathlib
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np


REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
N_SETS = 2
LOAD_LIMIT = 0.5     # cores busy with other processes before we warn
MIN_WINDOW_S = 0.2   # shortest interval the CPU load is judged on


def flat(x) -> list:
    if isinstance(x, (tuple, list)):
        return [leaf for v in x for leaf in flat(v)]
    return [x]


# ---- correctness ------------------------------------------------------------
@dataclass
class Check:
    ok: bool
    max_err: float = 0.0
    note: str = ""          # e.g. "float64 result" (a peer that promotes)
    message: str = ""       # what is wrong, when not ok


def compare(got, want, rtol: float, atol: float, strict_dtype: bool) -> Check:
    """``got`` against numpy's ``want`` (arrays or tuples of them):
    ``|got - want| <= atol + rtol * |want|`` everywhere, same shapes, and
    with ``strict_dtype`` the same dtypes."""
    gots, wants = flat(got), flat(want)
    if len(gots) != len(wants):
        return Check(False, message=f"{len(gots)} results, numpy gives "
                                    f"{len(wants)}")
    max_err, notes = 0.0, []
    for k, (g, w) in enumerate(zip(gots, wants)):
        g, w = np.asarray(g), np.asarray(w)
        where = f"result {k}: " if len(gots) > 1 else ""
        if g.shape != w.shape:
            return Check(False, message=f"{where}shape {g.shape}, numpy "
                                        f"{w.shape}")
        if g.dtype != w.dtype:
            if strict_dtype:
                return Check(False, message=f"{where}dtype {g.dtype}, "
                                            f"numpy {w.dtype}")
            notes.append(f"{g.dtype} result")
        g64, w64 = g.astype(np.float64), w.astype(np.float64)
        with np.errstate(invalid="ignore"):
            diff = np.abs(g64 - w64)
            bad = ~(diff <= atol + rtol * np.abs(w64))
        bad &= ~(np.isnan(g64) & np.isnan(w64))
        finite = diff[np.isfinite(diff)]
        if finite.size:
            max_err = max(max_err, float(finite.max()))
        if bad.any():
            return Check(False, max_err, message=(
                f"{where}{int(bad.sum())} of {bad.size} elements differ "
                f"beyond rtol={rtol:g}, atol={atol:.3g}; max |err| "
                f"{float(np.nanmax(diff)):.3g}"))
    return Check(True, max_err, note=", ".join(sorted(set(notes))))


# ---- results ----------------------------------------------------------------
@dataclass
class FrameworkResult:
    framework: str
    status: str = "timed"    # timed, unsupported, n/a, ERROR
    message: str = ""
    times: list = field(default_factory=list)    # seconds per call
    check: Check | None = None
    info: dict = field(default_factory=dict)

    @property
    def median(self):
        return statistics.median(self.times) if self.times else None


@dataclass
class WorkloadResult:
    workload: object
    shapes: str = ""
    floor_bytes: int = 0
    results: dict = field(default_factory=dict)    # framework name -> result
    other_cores: float | None = None
    batch: dict = field(default_factory=dict)      # dispatch: calls/sample


# ---- the machine ------------------------------------------------------------
def copy_bandwidths(nbytes: int, repeats: int) -> dict:
    """Bytes per second (read + written) of three copies of ``nbytes``,
    each the median of ``repeats`` after one that touches the pages:
    ``np.copyto`` on one thread, ``np.copyto`` of one chunk per core on a
    thread each (numpy releases the GIL), and a tracejit-compiled copy
    (``x + 0.0``, vectorized, on all cores).  The floor uses the fastest:
    a floor from a slower copy would flatter every framework."""
    from concurrent.futures import ThreadPoolExecutor
    src = np.ones(nbytes // 4, dtype=np.float32)
    dst = np.empty_like(src)
    cores = os.cpu_count() or 1
    bounds = [src.size * k // cores for k in range(cores + 1)]
    pool = ThreadPoolExecutor(cores)

    def chunked():
        list(pool.map(lambda k: np.copyto(dst[bounds[k]:bounds[k + 1]],
                                          src[bounds[k]:bounds[k + 1]]),
                      range(cores)))
    import tracejit
    compiled_copy = tracejit.jit(lambda x: x + np.float32(0.0))
    copies = {"numpy copyto": lambda: np.copyto(dst, src),
              f"numpy copyto, {cores} threads": chunked,
              "tracejit x + 0.0": lambda: compiled_copy(src)}
    out = {}
    for name, copy in copies.items():
        copy()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            copy()
            times.append(time.perf_counter() - t0)
        out[name] = 2 * src.nbytes / statistics.median(times)
    pool.shutdown()
    return out


class CpuMeter:
    """Snapshots of machine-wide and own CPU time (Linux /proc/stat)."""

    def __init__(self):
        self.hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.available = self._busy() is not None

    @staticmethod
    def _busy():
        try:
            with open("/proc/stat") as f:
                fields = f.readline().split()
        except OSError:
            return None
        # user nice system idle iowait irq softirq steal ...
        values = [int(v) for v in fields[1:9]]
        return sum(values[0:3]) + sum(values[5:7])

    def snapshot(self):
        t = os.times()
        return (self._busy(), t.user + t.system + t.children_user +
                t.children_system, time.perf_counter())

    def other_cores(self, s0, s1) -> float | None:
        """Cores kept busy by other processes between two snapshots; None
        when unknown or when the interval is too short for the kernel's
        10 ms accounting to tell."""
        if s0[0] is None or s1[0] is None or s1[2] - s0[2] < MIN_WINDOW_S:
            return None
        machine = (s1[0] - s0[0]) / self.hz
        own = s1[1] - s0[1]
        other = (machine - own) / (s1[2] - s0[2])
        return min(float(os.cpu_count() or 1), max(0.0, other))

    def idle_probe(self, seconds: float) -> float | None:
        """Other processes' load while this one sleeps."""
        s0 = self.snapshot()
        time.sleep(seconds)
        return self.other_cores(s0, self.snapshot())


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "n/a"


def busiest_other_processes(n: int = 3) -> list[str]:
    """'name (pid) 87%' for the processes using most CPU (psutil, optional)."""
    try:
        import psutil
    except ImportError:
        return []
    me = os.getpid()
    procs = [p for p in psutil.process_iter(["pid", "name"])
             if p.info["pid"] != me]
    for p in procs:
        try:
            p.cpu_percent(None)
        except psutil.Error:
            pass
    time.sleep(0.5)
    usage = []
    for p in procs:
        try:
            usage.append((p.cpu_percent(None), p.info["name"], p.info["pid"]))
        except psutil.Error:
            pass
    usage.sort(reverse=True)
    return [f"{name} ({pid}) {pct:.0f}%" for pct, name, pid in usage[:n]
            if pct >= 5]


# ---- timing -----------------------------------------------------------------
def _time_interleaved(active, runs):
    """active: [(result, call, native_sets)]; fills result.times."""
    calls = 0
    for k in range(runs):
        order = active if k % 2 == 0 else active[::-1]
        for result, call, sets in order:
            args = sets[calls % N_SETS]
            calls += 1
            t0 = time.perf_counter()
            call(*args)
            result.times.append(time.perf_counter() - t0)


def _time_dispatch(active, runs, target_s, wr):
    """Per-call seconds of many cached calls: each sample is a batch of
    calls (alternating input sets), sized to take about ``target_s``."""
    batches = {}
    for result, call, sets in active:
        t0 = time.perf_counter()
        for i in range(20):
            call(*sets[i & 1])
        per_call = (time.perf_counter() - t0) / 20
        batches[result.framework] = max(20, min(20000, int(target_s /
                                                           per_call)))
    wr.batch = batches
    for k in range(runs):
        order = active if k % 2 == 0 else active[::-1]
        for result, call, sets in order:
            n = batches[result.framework]
            t0 = time.perf_counter()
            for i in range(n):
                call(*sets[i & 1])
            result.times.append((time.perf_counter() - t0) / n)


def run_workload(workload, frameworks, runs, scale, rng, meter,
                 dispatch_target_s=0.01) -> WorkloadResult:
    """Warm up and check every framework on ``workload``, then time them."""
    s0 = meter.snapshot()
    arg_sets = [workload.make_args(rng, scale) for _ in range(N_SETS)]
    wants = [workload.fn(*args) for args in arg_sets]
    wr = WorkloadResult(workload, shapes=_shapes(arg_sets[0]))
    wr.floor_bytes = sum(a.nbytes for a in arg_sets[0]) + \
        sum(np.asarray(o).nbytes for o in flat(wants[0]))
    active = []
    for fw in frameworks:
        result = FrameworkResult(fw.name)
        wr.results[fw.name] = result
        try:
            runner = fw.runner(workload)
            native = [runner.convert(args) for args in arg_sets]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                outs = [runner.to_numpy(runner.call(*args))
                        for args in native]          # warm-up, not timed
        except Exception as err:     # noqa: BLE001 -- reported, not raised
            result.status, result.message = fw.classify(err)
            continue
        for k, (got, want) in enumerate(zip(outs, wants)):
            check = compare(got, want, workload.rtol,
                            workload.atol_for(arg_sets[k], want),
                            strict_dtype=fw.name == "tracejit")
            if not check.ok or result.check is None:
                result.check = check
            else:
                result.check.max_err = max(result.check.max_err,
                                           check.max_err)
            if not check.ok:
                break
        if runner.info is not None:
            try:
                result.info = runner.info(arg_sets[0])
            except Exception as err:   # noqa: BLE001
                result.info = {"error": str(err)}
        active.append((result, runner.call, native))
    if workload.kind == "dispatch":
        _time_dispatch(active, runs, dispatch_target_s, wr)
    else:
        _time_interleaved(active, runs)
    wr.other_cores = meter.other_cores(s0, meter.snapshot())
    return wr


def _shapes(args):
    from .workloads import shapes_text
    return shapes_text(args)


# ---- cold compile -----------------------------------------------------------
def cold_compile(framework: str, workload_id: int, scale: float, seed: int,
                 timeout: float, mode: str = "call") -> dict:
    """Run benchmarks.coldstart in a fresh interpreter; its figures."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH")
                            else []))
    # no on-disk compilation caches: the first call really compiles
    env["TORCHINDUCTOR_FORCE_DISABLE_CACHES"] = "1"
    env["JAX_ENABLE_COMPILATION_CACHE"] = "false"
    env.pop("NUMBA_CACHE_DIR", None)
    code = ("import sys; from benchmarks.coldstart import child; "
            "sys.exit(child(sys.argv[1:]))")
    cmd = [sys.executable, "-c", code, framework, str(workload_id),
           repr(scale), str(seed), mode]
    try:
        proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, timeout=timeout,
                              capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        return {"status": "ERROR", "message": f"timed out after {timeout} s"}
    for line in proc.stdout.splitlines():
        if line.startswith("COLDSTART "):
            return json.loads(line[len("COLDSTART "):])
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"status": "ERROR",
            "message": f"exit code {proc.returncode}: {tail[:200]}"}

