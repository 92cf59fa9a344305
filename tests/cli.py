"""Run ``python -m tracejit ...`` in a fresh process from the repo root."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def run_tracejit(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH")
                            else []))
    env.pop("TRACEJIT_DUMP", None)
    return subprocess.run([sys.executable, "-m", "tracejit", *args],
                          cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
