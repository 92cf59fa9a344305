"""Presentation of the figures: the printed tables, ``--json`` and ``--plot``.

Why a module of its own: the harness measures, this module only formats, so
the rules for what a ratio means live in one place:

* ``vs numpy`` = numpy's median / this framework's median (above 1: faster
  than numpy);
* ``vs best peer`` = the fastest peer's median / this median, where the
  peers are every framework but tracejit, numpy included (for tracejit's row:
  above 1 means tracejit beats every peer; the peer is named);
* the memory floor = (bytes of the inputs read once + bytes of the outputs
  written once) / measured copy bandwidth; ``x floor`` = median / floor.
"""
from __future__ import annotations

import json

# Workload statuses that make the run fail: tracejit computed a wrong answer
# or crashed on a workload it does not reject as unsupported.
FAILING = ("MISMATCH", "ERROR")


def table(header, rows, right_from=1) -> str:
    widths = [max(len(str(r[c])) for r in [header] + rows)
              for c in range(len(header))]

    def line(row):
        cells = [str(v).ljust(w) if c < right_from or c == len(row) - 1
                 else str(v).rjust(w)
                 for c, (v, w) in enumerate(zip(row, widths))]
        return "  " + "  ".join(cells).rstrip()

    rule = "  " + "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule] + [line(r) for r in rows])


def fmt_time(seconds, unit="ms") -> str:
    if seconds is None:
        return "-"
    v = seconds * (1e6 if unit == "us" else 1e3)
    text = f"{v:.0f}" if v >= 1000 else f"{v:.1f}" if v >= 100 else \
        f"{v:.2f}" if v >= 1 else f"{v:.3f}"
    return f"{text} {unit}"


def _num(seconds, unit):
    return fmt_time(seconds, unit).split()[0]


def unit_of(wr) -> str:
    return "us" if wr.workload.kind == "dispatch" else "ms"


def best_peer(wr):
    """(name, median) of the fastest framework other than tracejit."""
    timed = [(r.median, name) for name, r in wr.results.items()
             if name != "tracejit" and r.times]
    if not timed:
        return None, None
    median, name = min(timed)
    return name, median


def tracejit_status(wr) -> str:
    """ok, MISMATCH, ERROR or unsupported for tracejit on ``wr``."""
    r = wr.results.get("tracejit")
    if r is None:
        return "ERROR"
    if r.status != "timed":
        return r.status
    return "ok" if r.check is not None and r.check.ok else "MISMATCH"


def check_text(name, r) -> str:
    if r.status == "unsupported":
        return "unsupported by tracejit"
    if r.status != "timed":
        return r.status
    if name == "numpy":
        return "(reference)"
    c = r.check
    if name == "tracejit":
        return f"ok (max err {c.max_err:.1e})" if c.ok else "MISMATCH"
    if not c.ok:
        return "differs from numpy"
    return f"ok, {c.note}" if c.note else "ok"


def main_table(wrs) -> tuple[str, list[str]]:
    """The table of medians and ratios, and the notes below it."""
    rows, notes = [], []
    for wr in wrs:
        unit = unit_of(wr)
        numpy_median = wr.results["numpy"].median if "numpy" in wr.results \
            else None
        peer_name, peer_median = best_peer(wr)
        w = wr.workload
        labels = [w.title, wr.shapes] + \
            (["(us per call)"] if unit == "us" else [])
        for k, (name, r) in enumerate(wr.results.items()):
            med = r.median
            if med is not None:
                span = f"{_num(min(r.times), unit)}-{_num(max(r.times), unit)}"
                vs_np = f"{numpy_median / med:.2f}x" if numpy_median else "-"
                vs_best = f"{peer_median / med:.2f}x" if peer_median else "-"
                if name == "tracejit" and peer_median:
                    vs_best += f" ({peer_name})"
            else:
                span = vs_np = vs_best = "-"
            rows.append([w.label if k == 0 else "",
                         labels[k] if k < len(labels) else "", name,
                         fmt_time(med, unit), span, vs_np, vs_best,
                         check_text(name, r)])
            if r.status != "timed":
                notes.append(f"#{w.label} {name}: {r.message}")
            elif r.check is not None and not r.check.ok:
                notes.append(f"#{w.label} {name}: {r.check.message}")
        rows.append([""] * 8)
    if rows:
        rows.pop()
    header = ["#", "workload", "framework", "median", "min-max", "vs numpy",
              "vs best peer", "check"]
    return table(header, rows, right_from=3), notes


def floor_table(wrs, bandwidth) -> str:
    rows = []
    for wr in wrs:
        if wr.workload.kind != "time":
            continue
        floor = wr.floor_bytes / bandwidth
        trj = wr.results.get("tracejit")
        trj_med = trj.median if trj else None
        peer_name, peer_median = best_peer(wr)
        kernels = trj.info.get("kernels", "-") if trj and trj.times else "-"
        rows.append([
            wr.workload.label, wr.workload.key,
            f"{wr.floor_bytes / 2**20:.1f} MiB", fmt_time(floor),
            fmt_time(trj_med), f"{trj_med / floor:.1f}x" if trj_med else "-",
            str(kernels),
            f"{fmt_time(peer_median)} ({peer_name})" if peer_name else "-",
            f"{peer_median / floor:.1f}x" if peer_median else "-",
            f"{wr.other_cores:.2f}" if wr.other_cores is not None else "-"])
    return table(["#", "workload", "read+written", "floor", "tracejit",
                  "x floor", "kernels", "best peer", "x floor",
                  "other load"], rows, right_from=2)


def compile_table(cold) -> str:
    rows = []
    for c in cold:
        timed = c.get("status") == "timed"
        first, steady = c.get("first_s"), c.get("steady_s")
        rows.append([
            f"#{c['workload']} {c['key']}", c["framework"],
            f"{c['import_s']:.2f} s" if c.get("import_s") is not None
            else "-",
            fmt_time(first) if timed else "-",
            fmt_time(steady) if timed else "-",
            fmt_time(first - steady) if timed else
            ("unsupported by tracejit" if c["status"] == "unsupported"
             else c["status"]),
            fmt_time(c.get("aot_s"))])
    return table(["workload", "framework", "import", "first call",
                  "steady call", "first - steady (~compile)",
                  "compile alone (AOT, fresh process)"], rows,
                 right_from=2)


def to_json(meta, wrs, cold) -> dict:
    out = dict(meta)
    out["workloads"] = []
    for wr in wrs:
        w = wr.workload
        peer_name, peer_median = best_peer(wr)
        entry = {"id": w.id, "part": w.part, "key": w.key,
                 "title": w.title, "kind": w.kind,
                 "shapes": wr.shapes, "floor_bytes": wr.floor_bytes,
                 "floor_s": wr.floor_bytes / meta["copy_bandwidth_Bps"],
                 "other_cores": wr.other_cores,
                 "tracejit": tracejit_status(wr),
                 "best_peer": peer_name, "dispatch_batch": wr.batch or None,
                 "results": {}}
        numpy_median = wr.results["numpy"].median if "numpy" in wr.results \
            else None
        for name, r in wr.results.items():
            med = r.median
            entry["results"][name] = {
                "status": r.status, "message": r.message or None,
                "times_s": r.times, "median_s": med,
                "min_s": min(r.times) if r.times else None,
                "max_s": max(r.times) if r.times else None,
                "vs_numpy": numpy_median / med if med and numpy_median
                else None,
                "vs_best_peer": peer_median / med if med and peer_median
                else None,
                "check": None if r.check is None else {
                    "ok": r.check.ok, "max_abs_err": r.check.max_err,
                    "note": r.check.note or None,
                    "message": r.check.message or None},
                "info": r.info or None}
        out["workloads"].append(entry)
    out["cold_compile"] = cold
    return out


def save_json(path, data) -> None:
    with open(path, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")


def plot(path, wrs, title) -> str | None:
    """Bar chart of speedup over numpy; None, or why there is no plot."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install matplotlib)"
    wrs = [wr for wr in wrs if wr.workload.kind in ("time", "dispatch")
           and wr.results.get("numpy") and wr.results["numpy"].times]
    if not wrs:
        return "no timed workloads to plot"
    names = []
    for wr in wrs:
        names += [n for n in wr.results if n not in names]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(wrs)), 4.5))
    width = 0.8 / len(names)
    for j, name in enumerate(names):
        xs, ys = [], []
        for i, wr in enumerate(wrs):
            r = wr.results.get(name)
            if r is not None and r.times:
                xs.append(i + (j - (len(names) - 1) / 2) * width)
                ys.append(wr.results["numpy"].median / r.median)
        ax.bar(xs, ys, width, label=name)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(wrs)))
    ax.set_xticklabels([f"#{wr.workload.label} {wr.workload.key}" for wr in wrs],
                       rotation=20, ha="right")
    ax.set_ylabel("speedup over numpy (median, log scale)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None
