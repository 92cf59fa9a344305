"""``python -m tracejit bench --backend cuda``: the workloads on an NVIDIA GPU.

Why a module of its own: GPU timing has rules of its own.  Kernels run
asynchronously, so a call is timed two ways: as a user sees it (host clock
around the call and a device synchronize) and on the device (CUDA events
around the call on the current stream, for the frameworks that launch on
CuPy's or torch's current stream; jax launches on streams of its own, so it
has host figures only).  The floor of a workload is its bytes read once +
written once over the measured device-to-device copy bandwidth.

Sizes fill the GPU: elementwise workloads on 2**26 float32, softmax,
layernorm and the sums on (8192, 8192), the MLP with x (4096, 4096),
W1 (4096, 16384), W2 (16384, 4096).  Peers when installed: CuPy eager (the
same numpy code with ``np`` bound to cupy), a hand-written CuPy
ElementwiseKernel for workloads 1 and 2, jax.jit, torch.compile.
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from . import harness, peers, report
from .workloads import WORKLOADS, _normal

SCALE = 4.0            # 2**24 -> 2**26 elements, 4096**2 -> 8192**2
HANDWRITTEN = {        # workload key -> (params, body) of an elementwise kernel
    "arith": ("float32 a, float32 b, float32 c",
              "out = (a * b + c) * 0.5f - a / (1.0f + b * b)"),
    "transcendental": ("float32 a, float32 b, float32 c",
                       "out = tanhf(a) * expf(-b * b) + log1pf(fabsf(c))"),
}


def mlp_args(rng):
    """The GPU MLP: x (4096, 4096), W1 (4096, 16384), W2 (16384, 4096)."""
    return (_normal(rng, (4096, 4096)),
            _normal(rng, (4096, 16384), 4096 ** -0.5),
            _normal(rng, 16384, 0.1),
            _normal(rng, (16384, 4096), 16384 ** -0.5),
            _normal(rng, 4096, 0.1))


def make_args(workload, rng, quick: bool):
    if quick:
        return workload.make_args(rng, 1 / 256)
    if workload.key == "mlp":
        return mlp_args(rng)
    if workload.kind == "dispatch":
        return workload.make_args(rng, 1.0)
    return workload.make_args(rng, SCALE)


# ---- frameworks: (name, runner factory); a runner is peers.Runner --------
class GpuFramework:
    """One framework on the GPU; ``runner`` raises peers.NotApplicable."""
    name = ""
    events = "cupy"       # whose CUDA events time it: "cupy", "torch", None

    def runner(self, workload) -> peers.Runner:
        raise NotImplementedError


class TracejitCuda(GpuFramework):
    name = "tracejit"

    def __init__(self):
        import cupy
        import tracejit
        self.cp, self.tj = cupy, tracejit

    def runner(self, workload):
        jitted = self.tj.jit(workload.fn, backend="cuda")
        return peers.Runner(jitted, convert=_to_cupy(self.cp),
                            to_numpy=_from_cupy(self.cp))


class CupyEager(GpuFramework):
    name = "cupy"

    def __init__(self):
        import cupy
        self.cp = cupy

    def runner(self, workload):
        return peers.Runner(peers.rebind(workload.fn, self.cp),
                            convert=_to_cupy(self.cp),
                            to_numpy=_from_cupy(self.cp))


class CupyKernel(GpuFramework):
    name = "cupy kernel"

    def __init__(self):
        import cupy
        self.cp = cupy

    def runner(self, workload):
        if workload.key not in HANDWRITTEN:
            raise peers.NotApplicable("hand-written only for workloads 1-2")
        params, body = HANDWRITTEN[workload.key]
        kernel = self.cp.ElementwiseKernel(params, "float32 out", body,
                                           f"bench_{workload.key}")
        return peers.Runner(kernel, convert=_to_cupy(self.cp),
                            to_numpy=_from_cupy(self.cp))


class JaxGpu(GpuFramework):
    name, events = "jax", None

    def __init__(self):
        import jax
        import jax.numpy as jnp
        if jax.devices()[0].platform != "gpu":
            raise RuntimeError("jax has no GPU here")
        # true float32 matrix products, as every other framework here
        # (jax's default on GPUs is TF32)
        jax.config.update("jax_default_matmul_precision", "highest")
        self.jax, self.jnp = jax, jnp

    def runner(self, workload):
        jax = self.jax
        jitted = jax.jit(peers.rebind(workload.fn, self.jnp))
        return peers.Runner(
            lambda *a: jitted(*a),
            convert=lambda args: tuple(jax.device_put(a) for a in args))


class TorchCompile(GpuFramework):
    name, events = "torch.compile", "torch"

    def __init__(self):
        import torch
        if not torch.cuda.is_available():
            raise RuntimeError("torch has no GPU here")
        torch.backends.cuda.matmul.allow_tf32 = False   # true float32
        self.torch, self.ns = torch, peers.torch_namespace(torch)

    def runner(self, workload):
        torch = self.torch
        compiled = torch.compile(peers.rebind(workload.fn, self.ns),
                                 dynamic=False)

        def call(*args):
            with torch.no_grad():
                return compiled(*args)
        return peers.Runner(
            call,
            convert=lambda args: tuple(torch.from_numpy(a).cuda()
                                       for a in args),
            to_numpy=lambda r: peers.tree_map(
                lambda t: t.detach().cpu().numpy(), r))


def _to_cupy(cp):
    return lambda args: tuple(cp.asarray(a) for a in args)


def _from_cupy(cp):
    return lambda r: peers.tree_map(cp.asnumpy, r)


def discover(names=None):
    found, missing = [], []
    for cls in (TracejitCuda, CupyEager, CupyKernel, JaxGpu, TorchCompile):
        if names is not None and cls.name not in ("tracejit",) + tuple(
                names):
            continue
        try:
            found.append(cls())
        except Exception as err:          # noqa: BLE001 -- reported
            missing.append((cls.name, peers._first_line(err)))
    return found, missing


# ---- timing ------------------------------------------------------------
def synchronize():
    import cupy
    cupy.cuda.runtime.deviceSynchronize()


def host_times(call, sets, runs):
    """Seconds per call, host clock around call + device synchronize."""
    out = []
    for k in range(runs):
        args = sets[k % len(sets)]
        synchronize()
        t0 = time.perf_counter()
        call(*args)
        synchronize()
        out.append(time.perf_counter() - t0)
    return out


def event_times(fw, call, sets, runs):
    """Seconds per call between CUDA events on the current stream."""
    if fw.events == "torch":
        import torch
        make = lambda: torch.cuda.Event(enable_timing=True)   # noqa: E731
        elapsed = lambda a, b: a.elapsed_time(b) / 1e3        # noqa: E731
    elif fw.events == "cupy":
        import cupy
        make = cupy.cuda.Event
        elapsed = lambda a, b: cupy.cuda.get_elapsed_time(a, b) / 1e3  # noqa
    else:
        return []
    out = []
    for k in range(runs):
        args = sets[k % len(sets)]
        start, end = make(), make()
        start.record()
        call(*args)
        end.record()
        end.synchronize()
        out.append(elapsed(start, end))
    return out


def dispatch_times(call, sets, runs, batch=1000):
    """Host seconds per cached call, no synchronize inside the batch."""
    out = []
    for _ in range(runs):
        synchronize()
        t0 = time.perf_counter()
        for i in range(batch):
            call(*sets[i & 1])
        out.append((time.perf_counter() - t0) / batch)
        synchronize()
    return out


def copy_bandwidth(nbytes=1 << 30, repeats=10) -> float:
    """Device-to-device copy: (bytes read + written) per second."""
    import cupy
    src = cupy.ones(nbytes // 4, cupy.float32)
    dst = cupy.empty_like(src)
    cupy.copyto(dst, src)
    times = event_times(CupyEager.__new__(CupyEager),
                        lambda: cupy.copyto(dst, src), [()], repeats)
    return 2 * src.nbytes / statistics.median(times)


# ---- the run -------------------------------------------------------------
def run(args, say) -> int:
    quick = args.quick
    runs = args.runs if args.runs is not None else (5 if quick else 20)
    frameworks, missing = discover(args.peers)
    if not frameworks or frameworks[0].name != "tracejit":
        say("bench --backend cuda: needs CuPy and a GPU: "
            + "; ".join(f"{n}: {why}" for n, why in missing))
        return 2
    import cupy
    props = cupy.cuda.runtime.getDeviceProperties(0)
    bandwidth = copy_bandwidth(1 << 26 if quick else 1 << 30)
    say(f"GPU: {props['name'].decode()}, device copy bandwidth "
        f"{bandwidth / 1e9:.0f} GB/s; frameworks: "
        + ", ".join(f.name for f in frameworks)
        + "".join(f"; missing {n} ({why})" for n, why in missing))
    rng = np.random.default_rng(args.seed)
    rows, failed = [], []
    for w in WORKLOADS:
        if w.kind == "compile" or (args.only and w.id not in args.only):
            continue
        sets = [make_args(w, rng, quick) for _ in range(2)]
        want = w.fn(*sets[0])
        floor = (sum(a.nbytes for a in sets[0]) + sum(
            np.asarray(o).nbytes for o in harness.flat(want))) / bandwidth
        say(f"running #{w.label} {w.title} ...")
        for fw in frameworks:
            row = _time_one(fw, w, sets, want, runs, floor)
            rows.append(row)
            say("   " + "  ".join(str(c) for c in row[1:]))
            if fw.name == "tracejit" and row[-1] not in ("ok",):
                failed.append(w.label)
    say("")
    say(report.table(["#", "framework", "host median", "min-max",
                      "events median", "floor", "x floor", "check"],
                     rows, right_from=2))
    verdict = f"FAIL on {','.join(failed)}" if failed else \
        "all checked results match numpy"
    say(f"\ntracejit on the GPU: {verdict}")
    return 1 if failed else 0


def _time_one(fw, w, sets, want, runs, floor):
    unit = "us" if w.kind == "dispatch" else "ms"
    label = w.label
    try:
        runner = fw.runner(w)
        native = [runner.convert(a) for a in sets]
        got = runner.to_numpy(runner.call(*native[0]))   # warm-up, checked
        runner.call(*native[1])
        synchronize()
    except peers.NotApplicable as err:
        return [label, fw.name, "-", "-", "-", "-", "-", f"n/a: {err}"]
    except Exception as err:                  # noqa: BLE001 -- reported
        return [label, fw.name, "-", "-", "-", "-", "-",
                f"ERROR {peers._first_line(err)}"]
    check = harness.compare(got, want, w.rtol, w.atol_for(sets[0], want),
                            strict_dtype=fw.name == "tracejit")
    status = "ok" if check.ok else f"MISMATCH {check.message}"
    if w.kind == "dispatch":
        host = dispatch_times(runner.call, native, runs)
        events = []
    else:
        host = host_times(runner.call, native, runs)
        events = event_times(fw, runner.call, native, runs)
    med = statistics.median(host)
    ev = statistics.median(events) if events else None
    best = ev if ev is not None else med
    return [label, fw.name, report.fmt_time(med, unit),
            f"{report._num(min(host), unit)}-{report._num(max(host), unit)}",
            report.fmt_time(ev, unit),
            "-" if w.kind == "dispatch" else report.fmt_time(floor),
            "-" if w.kind == "dispatch" else f"{best / floor:.2f}x",
            status]
