"""``python -m tracejit bench``: the CPU benchmark suite.

Why this module: it is the command (``add_arguments`` / ``main``, as
``tracejit/__main__.py`` expects) and only puts the pieces together -- find
the peers (peers.py), measure the machine, run each workload (workloads.py)
through the harness (harness.py), and print the tables (report.py).  Its
import stays cheap: everything heavy is imported inside ``main``.

Exit status: 0 when tracejit matches numpy on every workload it supports, 1
when a result differs (MISMATCH) or tracejit fails with anything but
UnsupportedError (ERROR), 2 for bad arguments.
"""
from __future__ import annotations

import argparse
import sys

QUICK_SCALE = 1 / 256


def _id_list(text: str) -> list[int]:
    try:
        ids = sorted({int(t) for t in text.split(",") if t.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of workload numbers: "
                                         f"{text!r}") from None
    bad = [i for i in ids if not 1 <= i <= 9]
    if bad or not ids:
        raise argparse.ArgumentTypeError(f"workloads are numbered 1-9, got "
                                         f"{text!r}")
    return ids


def _size_list(text: str) -> list[int]:
    try:
        sizes = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"not a list of program sizes: "
                                         f"{text!r}")
    return sizes


def _name_list(text: str) -> list[str]:
    return [] if text.strip() in ("", "none") else \
        [t.strip() for t in text.split(",") if t.strip()]


def add_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="small sizes (1/256 of the elements) and 5 runs, "
                             "for tests and CI")
    parser.add_argument("--runs", type=int, default=None,
                        help="timed calls per framework and workload; the "
                             "table shows their median (default 20, 5 with "
                             "--quick)")
    parser.add_argument("--size-scale", type=float, default=None,
                        metavar="S",
                        help="multiply every array's element count by S "
                             "(default 1, 1/256 with --quick)")
    parser.add_argument("--only", type=_id_list, default=None,
                        metavar="1,4,...",
                        help="run only these workloads (1-9)")
    parser.add_argument("--peers", type=_name_list, default=None,
                        metavar="LIST",
                        help="optional peers to use, comma-separated, or "
                             "'none' (default: every installed one of "
                             "numexpr, numba, jax, torch)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed of the inputs (default 0)")
    parser.add_argument("--backend", choices=("cpu", "cuda"), default="cpu",
                        help="cpu (default) or cuda: the GPU suite "
                             "(CuPy, jax, torch.compile on the GPU)")
    parser.add_argument("--compile-scaling", action="store_true",
                        help="instead of the workloads: compile time "
                             "against program size (chains and diamonds "
                             "of 10 to 10,000 instructions), tracejit and "
                             "jax (scaling.py)")
    parser.add_argument("--scaling-sizes", type=_size_list, default=None,
                        metavar="10,100,...",
                        help="program sizes for --compile-scaling "
                             "(default 10,100,1000,10000)")
    parser.add_argument("--json", metavar="FILE", default=None,
                        help="save every figure to FILE as JSON")
    parser.add_argument("--plot", metavar="FILE.png", default=None,
                        help="draw a bar chart of speedups (needs matplotlib)")


def main(args, frameworks=None) -> int:
    """Run the suite.  ``frameworks`` (a list of peers.Framework) replaces
    discovery; tests use it."""
    import os
    import platform

    import numpy as np

    from . import harness, peers, report
    from .workloads import WORKLOADS, selected

    if args.backend == "cuda":
        from . import gpu
        return gpu.run(args, lambda text="": print(text, flush=True))
    if args.compile_scaling:
        from . import scaling
        return scaling.run(args, lambda text="": print(text, flush=True))
    quick = args.quick
    runs = args.runs if args.runs is not None else (5 if quick else 20)
    scale = args.size_scale if args.size_scale is not None else \
        (QUICK_SCALE if quick else 1.0)
    if runs < 1 or scale <= 0:
        print("bench: --runs must be at least 1 and --size-scale positive",
              file=sys.stderr)
        return 2
    if args.peers is not None:
        unknown = sorted(set(args.peers) - set(peers.PEER_NAMES))
        if unknown:
            print(f"bench: unknown peer(s) {', '.join(unknown)}; known: "
                  f"{', '.join(peers.PEER_NAMES)}", file=sys.stderr)
            return 2
    workloads = selected(args.only) if args.only else WORKLOADS

    def say(text=""):
        print(text, flush=True)

    say(f"tracejit bench{' --quick' if quick else ''}: Python "
        f"{platform.python_version()}, numpy {np.__version__}, "
        f"{platform.machine()} {os.cpu_count()} cores "
        f"({_cpu_model()}); float32 inputs, size scale {scale:g}, "
        f"{runs} timed runs, {harness.N_SETS} input sets")
    if runs < 20:
        say(f"note: {runs} runs (fewer than 20): medians are rough")
    for var in ("TRACEJIT_VERIFY", "TRACEJIT_DUMP"):
        if os.environ.get(var):
            say(f"note: {var} is set; tracejit's compile times include it")

    # ---- frameworks
    if frameworks is None:
        frameworks, missing = peers.discover(args.peers)
    else:
        missing = []
    say("frameworks found:   " + "; ".join(
        f"{fw.name} {fw.version} ({fw.threads})" if fw.threads else
        f"{fw.name} {fw.version}" for fw in frameworks))
    not_asked = [] if args.peers is None else \
        [n for n in peers.PEER_NAMES if n not in args.peers]
    say("frameworks missing: " + ("; ".join(
        f"{fw.name} ({fw.version or fw.install})" for fw in missing)
        or "none") + (f"  (left out by --peers: {', '.join(not_asked)})"
                      if not_asked else ""))

    # ---- the machine
    meter = harness.CpuMeter()
    load_before = harness.loadavg()
    idle = meter.idle_probe(0.25 if quick else 1.0)
    copies = harness.copy_bandwidths(2**25 if quick else 2**28,
                                     3 if quick else 7)
    bandwidth = max(copies.values())
    say(f"copy bandwidth ({(2**25 if quick else 2**28) >> 20} MiB, read + "
        "write, median): " + ", ".join(f"{name} {bw / 1e9:.1f} GB/s"
                                       for name, bw in copies.items())
        + f"; floors use the fastest, {bandwidth / 1e9:.1f} GB/s")
    say(f"load before: /proc/loadavg {load_before}; other processes "
        f"{_cores(idle)} cores while idle")
    warnings_ = []
    if idle is not None and idle > harness.LOAD_LIMIT:
        warnings_.append(f"other processes kept {idle:.2f} cores busy "
                         "before the run")
    say()

    # ---- the workloads
    rng = np.random.default_rng(args.seed)
    results, cold = [], []
    s_all = meter.snapshot()
    for w in workloads:
        say(f"running #{w.label} {w.title} ...")
        if w.kind == "compile":
            cold += _cold(w, frameworks, scale, args.seed, quick, say)
            continue
        wr = harness.run_workload(w, frameworks, runs, scale, rng, meter,
                                  0.002 if quick else 0.01)
        results.append(wr)
    loaded = [wr for wr in results if wr.other_cores is not None and
              wr.other_cores > harness.LOAD_LIMIT]
    if loaded:
        lo = min(wr.other_cores for wr in loaded)
        hi = max(wr.other_cores for wr in loaded)
        warnings_.append(
            f"other processes kept {lo:.2f}" +
            (f"-{hi:.2f}" if hi - lo >= 0.005 else "") +
            " cores busy during workload(s) " +
            _ids([wr.workload.label for wr in loaded]))
    during = meter.other_cores(s_all, meter.snapshot())
    load_after = harness.loadavg()
    say()

    # ---- the tables
    if results:
        text, notes = report.main_table(results)
        say("Median time per call (warm-up excluded); min-max over the runs; "
            "vs numpy = numpy median / median; vs best peer = fastest "
            "non-tracejit median / median (above 1: faster)")
        say()
        say(text)
        say()
        for note in notes:
            say(f"  note {note}")
        if notes:
            say()
        say(f"Memory floor: bytes read once + written once, at the measured "
            f"copy bandwidth ({bandwidth / 1e9:.1f} GB/s); x floor = median "
            "/ floor; kernels = tracejit's compiled kernels; other load = "
            "cores used by other processes during the workload ('-': too "
            "short to tell)")
        say()
        say(report.floor_table(results, bandwidth))
        for wr in results:
            if wr.workload.note and wr.workload.kind == "time":
                say(f"  #{wr.workload.label}: {wr.workload.note}")
        say()
    if cold:
        say("Cold compile: first call of a new function in a fresh process "
            "(the framework's import is not in 'first call'; numpy's row is "
            "the baseline of first-call costs that are not compilation, "
            "such as page faults on fresh memory)")
        say()
        say(report.compile_table(cold))
        say()

    # ---- load, correctness summary
    say(f"load after: /proc/loadavg {load_after}; other processes "
        f"{_cores(during)} cores on average during the run")
    if during is not None and during > harness.LOAD_LIMIT:
        warnings_.append(f"other processes kept {during:.2f} cores busy on "
                         "average during the run")
    if warnings_:
        busy = harness.busiest_other_processes()
        for text in warnings_:
            say(f"WARNING: {text}; timings may be inflated")
        if busy:
            say(f"WARNING: busiest other processes now: {', '.join(busy)}")
    failed = [wr for wr in results
              if report.tracejit_status(wr) in report.FAILING]
    checked = [wr.workload.label for wr in results
               if report.tracejit_status(wr) in ("ok", "MISMATCH")]
    unsupported = [wr.workload.label for wr in results
                   if report.tracejit_status(wr) == "unsupported"]
    say(f"tracejit correctness: checked against numpy on workloads "
        f"{_ids(checked)}; unsupported by tracejit: {_ids(unsupported)}; "
        + (f"FAIL on {_ids([wr.workload.label for wr in failed])}" if failed
           else "all checked results match"))

    # ---- files
    meta = {"argv": sys.argv[1:], "quick": quick, "runs": runs,
            "size_scale": scale, "seed": args.seed,
            "python": platform.python_version(), "numpy": np.__version__,
            "machine": platform.machine(), "cpu_model": _cpu_model(),
            "cpu_count": os.cpu_count(),
            "copy_bandwidth_Bps": bandwidth,
            "frameworks": {fw.name: {"version": fw.version,
                                     "threads": fw.threads}
                           for fw in frameworks},
            "missing": [fw.name for fw in missing],
            "load": {"loadavg_before": load_before,
                     "loadavg_after": load_after,
                     "other_cores_idle": idle, "other_cores_during": during,
                     "warnings": warnings_},
            "tracejit_failed": [wr.workload.label for wr in failed],
            "tracejit_unsupported": unsupported}
    if args.json:
        report.save_json(args.json, report.to_json(meta, results, cold))
        say(f"figures saved to {args.json}")
    if args.plot:
        why_not = report.plot(args.plot, results,
                              f"tracejit bench, {platform.machine()} "
                              f"{os.cpu_count()} cores, scale {scale:g}")
        say(f"no plot: {why_not}" if why_not else
            f"bar chart saved to {args.plot}")
    return 1 if failed else 0


def _cold(w, frameworks, scale, seed, quick, say) -> list[dict]:
    from . import harness, peers
    from .workloads import BY_ID
    out = []
    for wid in w.compile_of:
        target = BY_ID[wid]
        for fw in frameworks:
            entry = {"workload": wid, "key": target.key, "framework": fw.name}
            try:
                runner = fw.runner(target)   # cheap: nothing compiled yet
            except peers.NotApplicable as err:
                entry.update(status="n/a", message=str(err))
                out.append(entry)
                continue
            timeout = 120 if quick else 600
            entry.update(harness.cold_compile(fw.name, wid, scale, seed,
                                              timeout))
            if runner.aot is not None:
                aot = harness.cold_compile(fw.name, wid, scale, seed,
                                           timeout, mode="aot")
                entry["aot_s"] = aot.get("aot_s")
            out.append(entry)
    return out


def _cores(x) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _ids(ids) -> str:
    return ",".join(map(str, ids)) if ids else "none"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or "unknown CPU"
