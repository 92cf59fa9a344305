"""Test configuration shared by the whole suite.

* ``TRACEJIT_VERIFY=1``: the HLO verifier runs after every pass in tests.
* Hypothesis profiles, chosen with the ``HYPOTHESIS_PROFILE`` environment
  variable:

  - ``ci`` (the default): few examples, derandomized and without an example
    database, so every run tries the same inputs and the whole suite stays
    well under 10 minutes on a 2-core machine;
  - ``dev``: many more examples, randomized, for hunting bugs locally
    (``HYPOTHESIS_PROFILE=dev python3 -m pytest tests``).

  Tests that need more examples than the profile's default (the random
  program property) scale from ``settings().max_examples``.
"""
from __future__ import annotations

import os

os.environ["TRACEJIT_VERIFY"] = "1"

from hypothesis import HealthCheck, settings  # noqa: E402

_SLOW_CHECKS = [HealthCheck.too_slow, HealthCheck.data_too_large,
                HealthCheck.filter_too_much]

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=_SLOW_CHECKS,
)
settings.register_profile(
    "dev",
    max_examples=500,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SLOW_CHECKS,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def backend(request):
    """The backend a test decorated with ``backends.on_backends`` runs on:
    ``"cpu"``, or ``"cuda"`` where CuPy and a GPU are there (skipped
    otherwise).  Module-scoped, so CuPy is imported once per module and
    every later CUDA case of the module re-raises the cached skip."""
    name = getattr(request, "param", "cpu")
    if name == "cuda":
        cupy_or_skip()
    return name


def cupy_or_skip():
    """CuPy, or a skip of the calling test when CuPy or a GPU is missing."""
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() == 0:
            pytest.skip("no GPU")
    except pytest.skip.Exception:
        raise
    except Exception as exc:    # ImportError, or no usable device
        pytest.skip(f"CuPy or GPU unavailable: {exc}")
    return cupy


@pytest.fixture(scope="module")
def cp():
    """CuPy for GPU tests (skipped without CuPy or a GPU)."""
    return cupy_or_skip()
