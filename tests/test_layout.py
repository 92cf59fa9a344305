"""Tests of index maps (tracejit.layout.indexing).

A view chain (transpose / broadcast / slice / reshape) applied to an
``np.arange`` buffer is mirrored by the same chain of IndexMap methods; a
tiny independent evaluator of Affine / FloorDiv / Mod expressions then reads
the buffer through the composed map at every point, and must pick exactly the
element numpy's own view chain picks.
"""
from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from hypothesis import given, strategies as st

from tracejit.layout.indexing import (Affine, FloorDiv, IndexMap, Mod, Var,
                                      bounds, const, var)


# ---- an independent evaluator ---------------------------------------------

def eval_expr(expr: Affine, point: tuple[int, ...]) -> int:
    total = expr.const
    for atom, coeff in expr.terms:
        total += coeff * eval_atom(atom, point)
    return total


def eval_atom(atom, point) -> int:
    if isinstance(atom, Var):
        return point[atom.index]
    inner = eval_expr(atom.expr, point)
    assert atom.divisor > 0
    if isinstance(atom, FloorDiv):
        # renderers use truncating (unsigned) division: the argument must
        # be non-negative for that to be floor division
        assert inner >= 0, f"negative FloorDiv argument {inner} in {atom}"
        return inner // atom.divisor
    assert isinstance(atom, Mod), atom
    assert inner >= 0, f"negative Mod argument {inner} in {atom}"
    return inner % atom.divisor


def atoms(expr: Affine):
    for atom, _ in expr.terms:
        yield atom
        if not isinstance(atom, Var):
            yield from atoms(atom.expr)


def has_div_or_mod(index: IndexMap) -> bool:
    return any(isinstance(a, (FloorDiv, Mod))
               for e in index.exprs for a in atoms(e))


def gather(index: IndexMap, buffer: np.ndarray) -> np.ndarray:
    """Read ``buffer`` through ``index`` at every point of its extents."""
    out = np.empty(index.extents, buffer.dtype)
    for point in itertools.product(*(range(n) for n in index.extents)):
        where = tuple(eval_expr(e, point) for e in index.exprs)
        for w, n in zip(where, buffer.shape):
            assert 0 <= w < n, f"index {where} out of {buffer.shape}"
        out[point] = buffer[where]
    return out


# ---- random view chains ----------------------------------------------------

def random_view(rng: random.Random, shape: tuple[int, ...]):
    """(description, numpy function, IndexMap function, new shape)."""
    kinds = ["transpose", "broadcast", "slice", "reshape", "reshape"]
    kind = rng.choice(kinds)
    ndim = len(shape)
    if kind == "transpose" and ndim >= 2:
        perm = list(range(ndim))
        rng.shuffle(perm)
        perm = tuple(perm)
        new = tuple(shape[p] for p in perm)
        return (f"transpose{perm}", lambda a: np.transpose(a, perm),
                lambda m: m.transpose(perm), new)
    if kind == "broadcast" and ndim <= 3:
        lead = rng.randint(0, 1)
        new = [rng.randint(1, 3) for _ in range(lead)]
        new += [n if n != 1 else rng.choice([1, 2, 3]) for n in shape]
        new = tuple(new)
        dims = tuple(range(lead, lead + ndim))
        return (f"broadcast{new}", lambda a: np.broadcast_to(a, new),
                lambda m: m.broadcast(new, dims), new)
    if kind == "slice" and ndim >= 1:
        starts, steps, sizes, index = [], [], [], []
        for n in shape:
            step = rng.choice([1, 1, 2, 3, -1, -2])
            rng_range = range(n)
            if step > 0:
                start = rng.randrange(n)
                stop = rng.randint(start, n)
            else:
                start = rng.randrange(n)
                stop = rng.randint(-1, start)
            r = range(start, stop, step)
            size = len(r)
            if size == 0:            # keep every dimension non-empty
                r, step, size = range(start, start + 1), 1, 1
            starts.append(r.start)
            steps.append(r.step)
            sizes.append(size)
            stop_idx = r.start + r.step * size
            index.append(slice(r.start, stop_idx if stop_idx >= 0 else None,
                               r.step))
            del rng_range
        index = tuple(index)
        starts, steps, sizes = tuple(starts), tuple(steps), tuple(sizes)
        return (f"slice{index}", lambda a: a[index],
                lambda m: m.slice(starts, steps, sizes), sizes)
    # reshape: a random factorization of the size
    size = int(np.prod(shape))
    new = _random_shape_of_size(rng, size)
    return (f"reshape{new}", lambda a: a.reshape(new),
            lambda m: m.reshape(new), new)


def _random_shape_of_size(rng: random.Random, size: int):
    factors = []
    n = size
    for p in (2, 3, 5, 7):
        while n % p == 0:
            factors.append(p)
            n //= p
    if n > 1:
        factors.append(n)
    rng.shuffle(factors)
    dims = []
    for f in factors:
        if dims and rng.random() < 0.4:
            dims[-1] *= f
        else:
            dims.append(f)
    for _ in range(rng.randint(0, 2)):
        dims.insert(rng.randint(0, len(dims)), 1)
    return tuple(dims)


def check_chain(seed: int, n_views: int):
    rng = random.Random(seed)
    ndim = rng.randint(1, 3)
    shape = tuple(rng.randint(1, 4) for _ in range(ndim))
    buffer = np.arange(int(np.prod(shape))).reshape(shape)
    view, index, steps = buffer, IndexMap.identity(shape), []
    for _ in range(n_views):
        desc, np_fn, map_fn, new = random_view(rng, view.shape)
        if int(np.prod(new)) > 400:
            continue
        steps.append(desc)
        view = np_fn(view)
        index = map_fn(index)
        assert view.shape == new
        assert index.extents == view.shape, steps
    got = gather(index, buffer)
    np.testing.assert_array_equal(
        got, view, err_msg=f"shape {shape}, chain {steps}, map {index}")


@pytest.mark.parametrize("seed", range(300))
def test_random_view_chain_matches_numpy(seed):
    check_chain(seed, n_views=1 + seed % 5)


@given(st.integers(0, 2**32 - 1), st.integers(1, 6))
def test_random_view_chain_matches_numpy_hypothesis(seed, n_views):
    check_chain(seed, n_views)


# ---- each view on its own ---------------------------------------------------

def test_identity():
    m = IndexMap.identity((2, 3))
    assert m.is_identity()
    assert m.exprs == (var(0), var(1))
    buf = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(gather(m, buf), buf)


def test_transpose_is_a_permutation_of_variables():
    m = IndexMap.identity((2, 3, 4)).transpose((2, 0, 1))
    assert m.extents == (4, 2, 3)
    # buffer dim 0 is read by output var 1, dim 1 by var 2, dim 2 by var 0
    assert m.exprs == (var(1), var(2), var(0))
    assert not m.is_identity()
    back = m.transpose((1, 2, 0))
    assert back.is_identity()


def test_broadcast_reads_index_zero_along_expanded_dims():
    m = IndexMap.identity((3, 1)).broadcast((2, 3, 5), (1, 2))
    assert m.extents == (2, 3, 5)
    assert m.exprs == (var(1), const(0))
    buf = np.arange(3).reshape(3, 1)
    np.testing.assert_array_equal(gather(m, buf),
                                  np.broadcast_to(buf, (2, 3, 5)))


def test_negative_step_slice():
    m = IndexMap.identity((7,)).slice((6,), (-2,), (4,))
    assert m.exprs == (Affine.of(Var(0), -2) + 6,)
    np.testing.assert_array_equal(gather(m, np.arange(7)),
                                  np.arange(7)[::-2])


def test_bounds():
    e = var(0).scale(3) + Affine.of(Var(1), -2) + 5
    assert bounds(e, (4, 3)) == (5 - 4, 5 + 9)


# ---- reshapes that must stay affine ------------------------------------------

AFFINE_RESHAPES = [
    ((3, 4), (3, 1, 4)),            # add a unit dim
    ((3, 1, 4), (3, 4)),            # drop a unit dim
    ((1, 3, 4), (3, 4, 1)),         # move unit dims around
    ((12,), (3, 4)),                # split a contiguous axis
    ((12,), (2, 3, 2)),
    ((5, 12), (5, 3, 4)),           # split an inner axis
    ((5, 12), (1, 5, 1, 3, 4, 1)),  # split and add unit dims
    ((1,), ()),                     # to a scalar
    ((), (1, 1)),                   # from a scalar
]


@pytest.mark.parametrize("src,dst", AFFINE_RESHAPES)
def test_unit_dim_and_split_reshapes_stay_affine(src, dst):
    m = IndexMap.identity(src).reshape(dst)
    assert not has_div_or_mod(m), f"{src} -> {dst}: {m}"
    buf = np.arange(int(np.prod(src))).reshape(src)
    np.testing.assert_array_equal(gather(m, buf), buf.reshape(dst))


@pytest.mark.parametrize("src,dst", [((3, 4), (3, 1, 4)), ((12,), (3, 4)),
                                     ((2, 6), (2, 2, 3))])
def test_affine_reshapes_after_transpose_or_slice_stay_affine(src, dst):
    """A split of a (possibly strided) axis stays affine after other views:
    the split acts on one buffer dimension's expression only."""
    buf = np.arange(int(np.prod(src)) * 2).reshape(src[:-1] + (src[-1] * 2,))
    m = IndexMap.identity(buf.shape).slice(
        (0,) * len(src), (1,) * (len(src) - 1) + (2,), src)
    view = buf[..., ::2]
    m2 = m.reshape(dst)
    assert not has_div_or_mod(m2), str(m2)
    np.testing.assert_array_equal(gather(m2, buf), view.reshape(dst))


def test_merging_axes_then_splitting_back_is_affine():
    m = IndexMap.identity((3, 4)).reshape((12,)).reshape((3, 4))
    assert not has_div_or_mod(m), str(m)
    assert m.is_identity()


def test_merge_of_transposed_axes_needs_division():
    """A real merge (of axes that are not contiguous in the buffer) cannot be
    affine; this guards the helper above against being vacuous."""
    m = IndexMap.identity((3, 4)).transpose((1, 0)).reshape((12,))
    assert has_div_or_mod(m)
    buf = np.arange(12).reshape(3, 4)
    np.testing.assert_array_equal(gather(m, buf), buf.T.reshape(12))


@pytest.mark.parametrize("src,dst", [((0, 3), (3, 0)), ((0, 3), (0,)),
                                     ((2, 0), (1, 2, 0))])
def test_zero_size_reshape(src, dst):
    m = IndexMap.identity(src).reshape(dst)
    assert m.extents == dst
    assert len(m.exprs) == len(src)
