"""``python -m tracejit demo --quick`` runs end to end in a fresh process:
it compiles GELU, softmax and the MLP, they match numpy, and it prints the
HLO and the timing table."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH")
                            else []))
    env.pop("TRACEJIT_DUMP", None)
    return subprocess.run([sys.executable, "-m", "tracejit", *args],
                          cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_demo_quick():
    proc = _run("demo", "--quick")
    out = proc.stdout
    assert proc.returncode == 0, (
        f"exit code {proc.returncode}\nstdout:\n{out}\nstderr:\n{proc.stderr}")
    assert "HloModule" in out
    for name in ("gelu", "softmax", "mlp"):
        assert name in out
    assert "MISMATCH" not in out
    assert "speedup" in out


def test_missing_or_unknown_command_exits_2():
    for args in ((), ("no-such-command",)):
        proc = _run(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert "usage:" in proc.stderr
