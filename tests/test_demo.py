"""``python -m tracejit demo --quick`` runs end to end in a fresh process:
it compiles GELU, softmax and the MLP, they match numpy, and it prints the
HLO and the timing table."""
from __future__ import annotations

from cli import run_tracejit


def test_demo_quick():
    proc = run_tracejit("demo", "--quick")
    out = proc.stdout
    assert proc.returncode == 0, (
        f"exit code {proc.returncode}\nstdout:\n{out}\nstderr:\n{proc.stderr}")
    assert "HloModule" in out
    for name in ("gelu", "softmax", "mlp"):
        assert name in out
    assert "MISMATCH" not in out
    assert "speedup" in out
    assert "platform math library" not in out   # inline vector math now


def test_missing_or_unknown_command_exits_2():
    for args in ((), ("no-such-command",)):
        proc = run_tracejit(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert "usage:" in proc.stderr
