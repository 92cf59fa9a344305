"""``jit(f, backend="cuda")``: the API side of the CUDA backend.

The checks of argument placement run everywhere (a stand-in object with a
``__cuda_array_interface__`` plays the GPU array); the rest needs CuPy and
a GPU and carries the ``cuda`` marker.
"""
import sys

import numpy as np
import pytest

from tracejit import jit
from tracejit.backends.cuda import CudaUnavailable


class DeviceArray:
    """Looks like a GPU array to the argument checks."""
    __cuda_array_interface__ = {"shape": (3,), "typestr": "<f4",
                                "data": (0, False), "version": 3}
    shape, dtype = (3,), np.dtype(np.float32)


def test_mixing_host_and_device_arrays_names_both_arguments():
    f = jit(lambda x, y: x + y, backend="cuda")
    with pytest.raises(TypeError, match=r"argument y is a numpy array .* "
                                        r"argument x is a CuPy array"):
        f(DeviceArray(), np.ones(3, np.float32))


def test_a_gpu_array_on_the_cpu_backend_is_a_clear_error():
    with pytest.raises(TypeError, match="lives on the GPU.*backend='cuda'"):
        jit(lambda x: x + 1)(DeviceArray())


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="unknown backend.*cpu, cuda"):
        jit(lambda x: x, backend="tpu")


def test_cuda_backend_without_cupy_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(CudaUnavailable, match="CuPy"):
        jit(lambda x: x * 2, backend="cuda")(np.ones(4, np.float32))




@pytest.mark.cuda
def test_cupy_in_cupy_out_and_cached(cp):
    f = jit(lambda x, y: (np.exp(x) * y, (x - y).sum(axis=1)),
            backend="cuda")
    x = cp.asarray(np.linspace(-2, 2, 60, dtype=np.float32).reshape(6, 10))
    y = cp.asarray(np.ones((6, 10), np.float32))
    for _ in range(3):
        a, b = f(x, y)
    assert isinstance(a, cp.ndarray) and isinstance(b, cp.ndarray)
    hx, hy = cp.asnumpy(x), cp.asnumpy(y)
    np.testing.assert_allclose(cp.asnumpy(a), np.exp(hx) * hy, rtol=1e-6)
    np.testing.assert_allclose(cp.asnumpy(b), (hx - hy).sum(axis=1),
                               rtol=1e-5, atol=1e-6)
    info = f.cache_info()
    assert info.compiles == 1 and info.hits == 2


@pytest.mark.cuda
def test_numpy_in_cupy_out(cp):
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = jit(lambda x: x.T * 2, backend="cuda")(x)
    assert isinstance(out, cp.ndarray)
    np.testing.assert_array_equal(cp.asnumpy(out), x.T * 2)


@pytest.mark.cuda
def test_views_of_cupy_arrays_are_read_in_place(cp):
    base = cp.asarray(np.arange(40, dtype=np.float32).reshape(5, 8))
    f = jit(lambda x: x + 1, backend="cuda")
    for view in (base[::-1], base.T, base[:, ::2]):
        np.testing.assert_array_equal(cp.asnumpy(f(view)),
                                      cp.asnumpy(view) + 1)
