"""The block pool: large outputs and arenas reuse memory the caller has
dropped, and never memory anyone still references."""
import numpy as np

from tracejit import jit
from tracejit.backends.cpu.pool import MIN_POOLED_BYTES, POOL, BlockPool

BIG = MIN_POOLED_BYTES


def test_a_dropped_block_is_reused_and_a_held_one_is_not():
    pool = BlockPool(limit=8 * BIG)
    a = pool.take(BIG)
    address = a.ctypes.data
    held = pool.take(BIG)
    assert held.ctypes.data != address          # ``a`` is still ours
    del a
    again = pool.take(BIG)
    assert again.ctypes.data == address and pool.reused == 1


def test_a_view_keeps_its_block_out_of_the_pool():
    pool = BlockPool(limit=8 * BIG)
    arr = pool.array((BIG // 4,), np.dtype(np.float32))
    view = arr[::2]
    block_address = arr.ctypes.data
    del arr
    assert pool.take(BIG).ctypes.data != block_address
    del view
    assert pool.take(BIG).ctypes.data == block_address


def test_small_requests_and_a_zero_limit_bypass_the_pool():
    pool = BlockPool(limit=0)
    pool.take(BIG)
    assert pool.held == 0
    pool = BlockPool(limit=8 * BIG)
    pool.take(BIG - 1)
    assert pool.held == 0


def test_the_limit_caps_what_the_pool_holds():
    pool = BlockPool(limit=2 * BIG)
    blocks = [pool.take(BIG) for _ in range(4)]
    assert pool.held == 2 * BIG and len(blocks) == 4
    pool.clear()
    assert pool.held == 0


def test_jitted_outputs_reuse_dropped_memory_and_stay_correct():
    f = jit(lambda x: np.exp(x) * 2 + x)
    x = np.linspace(-3, 3, BIG // 2, dtype=np.float32)
    first = f(x)
    assert first.base is not None           # a view of a pooled block
    address = first.ctypes.data
    np.testing.assert_allclose(first, np.exp(x) * 2 + x, rtol=1e-6, atol=1e-6)
    kept = f(x)                             # ``first`` alive: new memory
    assert kept.ctypes.data != address
    del first
    before = POOL.reused
    y = x[::-1].copy()
    again = f(y)                            # reuses the dropped block
    assert POOL.reused > before
    np.testing.assert_allclose(again, np.exp(y) * 2 + y, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(kept, np.exp(x) * 2 + x, rtol=1e-6, atol=1e-6)
