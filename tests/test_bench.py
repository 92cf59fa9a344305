"""``python -m tracejit bench``: the benchmark suite runs end to end and its
correctness checks catch a wrong tracejit result.

Nothing here asserts on a timing: the figures depend on the machine and its
load.  The end-to-end test runs ``--quick`` (small sizes, 5 runs) in a fresh
process, with whatever peers are installed.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

import numpy as np
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from benchmarks import harness, peers, run  # noqa: E402
from benchmarks.workloads import WORKLOADS  # noqa: E402
from cli import run_tracejit  # noqa: E402


def test_bench_quick_end_to_end(tmp_path):
    json_path, png_path = tmp_path / "bench.json", tmp_path / "bench.png"
    proc = run_tracejit("bench", "--quick", "--json", str(json_path),
                    "--plot", str(png_path))
    out = proc.stdout
    assert proc.returncode == 0, (
        f"exit code {proc.returncode}\nstdout:\n{out}\nstderr:\n{proc.stderr}")
    for text in ("frameworks found:", "frameworks missing:",
                 "copy bandwidth", "Memory floor", "load before:",
                 "load after:", "Cold compile", "tracejit correctness:"):
        assert text in out, text
    assert "MISMATCH" not in out and "FAIL" not in out

    # every workload is in the tables: 1-8 in the timing table, 9 as the
    # cold-compile table of workloads 2 and 7
    for w in WORKLOADS:
        if w.kind == "compile":
            continue
        assert f"{w.title}" in out, w.title
    assert "#2 transcendental" in out and "#7 mlp" in out

    data = json.loads(json_path.read_text())
    by_id = {f'{w["id"]}{w["part"]}': w for w in data["workloads"]}
    assert sorted(by_id) == ["1", "2", "3", "4", "5", "6a", "6b", "6c", "7",
                             "8"]
    for wid, w in by_id.items():
        numpy_result = w["results"]["numpy"]
        assert len(numpy_result["times_s"]) == 5
        trj = w["results"]["tracejit"]
        if w["tracejit"] == "unsupported":
            # recorded as such, never replaced by another formula
            assert trj["status"] == "unsupported" and not trj["times_s"]
            assert "unsupported by tracejit" in trj["message"]
            continue
        # tracejit's correctness check ran and passed, and it was timed
        assert w["tracejit"] == "ok", (wid, trj)
        assert trj["check"]["ok"] is True, (wid, trj["check"])
        assert len(trj["times_s"]) == 5
    assert all(w["tracejit"] == "ok" for w in by_id.values())

    cold = {(c["workload"], c["framework"]): c for c in data["cold_compile"]}
    for wid in (2, 7):
        for fw in ("tracejit", "numpy"):
            assert (wid, fw) in cold, (wid, fw)
    assert cold[(7, "tracejit")]["status"] == "timed"
    assert cold[(7, "tracejit")]["first_s"] > 0

    if "bar chart saved" in out:
        assert png_path.stat().st_size > 0
    else:
        assert "no plot:" in out


# ---- a wrong answer is caught -----------------------------------------------
class _WrongTracejit(peers.Tracejit):
    """tracejit, with 1 added to every result."""

    def runner(self, workload):
        inner = super().runner(workload)
        call = inner.call
        inner.call = lambda *args: peers.tree_map(lambda r: r + 1,
                                                  call(*args))
        return inner


class _CrashingTracejit(peers.Tracejit):
    def runner(self, workload):
        def call(*args):
            raise RuntimeError("simulated crash in the compiler")
        return peers.Runner(call)


def _args(*argv):
    parser = argparse.ArgumentParser()
    run.add_arguments(parser)
    return parser.parse_args(list(argv))


def _frameworks(tracejit_cls):
    numpy_fw = peers.Numpy()
    numpy_fw.load()
    fw = tracejit_cls()
    fw.load()
    return [fw, numpy_fw]


def test_wrong_tracejit_result_is_a_mismatch(capsys, tmp_path):
    json_path = tmp_path / "bench.json"
    code = run.main(_args("--quick", "--only", "1,6", "--runs", "2",
                          "--json", str(json_path)),
                    frameworks=_frameworks(_WrongTracejit))
    out = capsys.readouterr().out
    assert code == 1, out
    assert "MISMATCH" in out
    assert "FAIL on 1,6a,6b,6c" in out
    data = json.loads(json_path.read_text())
    assert data["tracejit_failed"] == ["1", "6a", "6b", "6c"]
    for w in data["workloads"]:
        assert w["tracejit"] == "MISMATCH"
        assert w["results"]["tracejit"]["check"]["ok"] is False


def test_tracejit_crash_fails_the_run(capsys):
    code = run.main(_args("--quick", "--only", "1", "--runs", "2"),
                    frameworks=_frameworks(_CrashingTracejit))
    out = capsys.readouterr().out
    assert code == 1, out
    assert "ERROR" in out and "simulated crash" in out


# ---- pieces -----------------------------------------------------------------
def test_compare():
    want = np.arange(6, dtype=np.float32)
    assert harness.compare(want.copy(), want, 1e-6, 0.0, True).ok
    off = want.copy()
    off[3] += 1
    bad = harness.compare(off, want, 1e-6, 0.0, True)
    assert not bad.ok and "1 of 6 elements" in bad.message
    # a peer's float64 answer is noted; tracejit's would fail
    wide = want.astype(np.float64)
    assert harness.compare(wide, want, 1e-6, 0.0, False).note == \
        "float64 result"
    assert not harness.compare(wide, want, 1e-6, 0.0, True).ok
    assert not harness.compare(want[:5], want, 1e-6, 0.0, True).ok
    assert not harness.compare((want,), (want, want), 1e-6, 0.0, True).ok


def test_numexpr_constants_become_float32():
    expr, consts = peers.numexpr_float32(
        "0.5 * x * (1.0 + tanh(0.79 * (x + 4.4e-2 * x**3))) + log1p(y) + 2")
    assert expr == ("_c0 * x * (_c1 + tanh(_c2 * (x + _c3 * x**3))) "
                    "+ log1p(y) + 2")
    assert [consts[f"_c{k}"] for k in range(4)] == \
        [np.float32(v) for v in (0.5, 1.0, 0.79, 4.4e-2)]
    assert all(type(v) is np.float32 for v in consts.values())


def test_rebind_runs_the_same_code_on_another_namespace():
    import types
    from benchmarks.workloads import softmax
    calls = []
    fake = types.SimpleNamespace(
        exp=lambda x: calls.append("exp") or np.exp(x),
        max=lambda x, **kw: calls.append("max") or np.max(x, **kw),
        sum=lambda x, **kw: calls.append("sum") or np.sum(x, **kw))
    x = np.ones((2, 3), dtype=np.float32)
    np.testing.assert_allclose(peers.rebind(softmax, fake)(x), softmax(x))
    assert calls == ["max", "exp", "sum"]


def test_cpu_meter_and_bandwidth():
    meter = harness.CpuMeter()
    if meter.available:
        load = meter.idle_probe(0.3)
        assert load is not None and 0.0 <= load <= (os.cpu_count() or 1)
    figures = harness.copy_bandwidths(2**22, 2)
    assert len(figures) == 3 and min(figures.values()) > 0


@pytest.mark.parametrize("bad", ["0,4", "10", "x", ""])
def test_only_rejects_bad_lists(bad):
    with pytest.raises(SystemExit):
        _args("--only", bad)


def test_cuda_suite_without_a_gpu_says_what_is_missing(capsys):
    import importlib.util
    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed: the GPU suite itself runs (cuda)")
    code = run.main(_args("--backend", "cuda", "--quick"))
    out = capsys.readouterr().out
    assert code == 2
    assert "needs CuPy and a GPU" in out and "cupy" in out
