"""Which argument leaves jit accepts, and the errors for those it refuses.

ndarray subclasses whose meaning jit would drop (a mask, matrix semantics,
a user subclass's additions) are refused naming the argument, its type and
the function, with the fix; ``np.memmap`` is accepted because numpy itself
returns plain ndarrays from ufuncs on it.
"""
import re

import numpy as np
import pytest

from tracejit import jit, tree
from tracejit.errors import TracejitError, UnsupportedError


def double(x):
    return x * 2


def masked():
    return np.ma.array([1.0, 2.0, 3.0], mask=[0, 1, 0])


def test_masked_array_is_refused_naming_argument_type_and_fix():
    with pytest.raises(UnsupportedError) as info:
        jit(double)(masked())
    message = str(info.value)
    assert "argument x of double" in message
    assert "numpy.ma.MaskedArray" in message
    assert "np.asarray(x)" in message and "x.filled(" in message
    # the line of the call, in this file
    assert re.search(r"test_arguments\.py:\d+", message), message


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_matrix_is_refused():
    with pytest.raises(UnsupportedError, match=r"argument x .*numpy\.matrix"
                                               r".*np\.asarray\(x\)"):
        jit(double)(np.matrix([[1.0, 2.0]]))


def test_user_subclasses_are_refused():
    class Tagged(np.ndarray):
        pass

    with pytest.raises(UnsupportedError, match="Tagged, an ndarray subclass"):
        jit(double)(np.arange(3.0).view(Tagged))


def test_subclass_is_refused_after_a_plain_array_filled_the_fast_path():
    f = jit(double)
    x = np.arange(3.0)
    f(x)
    f(x)                                    # a fast-path hit
    with pytest.raises(UnsupportedError, match="MaskedArray"):
        f(masked())


def test_subclass_nested_in_a_pytree_is_named_by_its_path():
    f = jit(lambda p, xs: p["w"][1] + xs[0])
    plain = np.ones(3)
    with pytest.raises(UnsupportedError, match=r"argument p\['w'\]\[1\] "):
        f({"w": [plain, masked()]}, [plain])
    with pytest.raises(UnsupportedError, match=r"argument xs\[0\] "):
        f({"w": [plain, plain]}, [masked()])
    with pytest.raises(UnsupportedError, match=r"argument args\[1\] "):
        jit(lambda *args: args[0] + args[1])(plain, masked())


def test_subclasses_are_refused_on_the_cuda_backend_too():
    # refused while the arguments are read, before CuPy is needed
    with pytest.raises(UnsupportedError, match="argument x .*MaskedArray"):
        jit(double, backend="cuda")(masked())


def test_plain_views_are_accepted():
    f = jit(double)
    base = np.arange(12.0).reshape(3, 4)
    views = [base[::2], base.T, base[:, ::-1], base.view(),
             np.broadcast_to(base[0], (3, 4)), np.asarray(masked())]
    for view in views:
        got = f(view)
        assert type(got) is np.ndarray
        np.testing.assert_array_equal(got, view * 2)


def test_memmap_is_accepted_and_gives_numpy_s_result_type(tmp_path):
    data = np.memmap(tmp_path / "data.bin", dtype=np.float32, mode="w+",
                     shape=(2, 5))
    data[:] = np.arange(10, dtype=np.float32).reshape(2, 5)
    want = data * 2
    assert type(want) is np.ndarray          # numpy drops memmap too
    got = jit(double)(data)
    assert type(got) is np.ndarray
    np.testing.assert_array_equal(got, want)
    read_only = np.memmap(tmp_path / "data.bin", dtype=np.float32, mode="r",
                          shape=(2, 5))
    np.testing.assert_array_equal(jit(double)(read_only[:, 1:]),
                                  read_only[:, 1:] * 2)


def test_object_dtype_is_refused_naming_the_argument():
    with pytest.raises(UnsupportedError,
                       match=r"argument xs\[1\] of <lambda> .*dtype object"):
        jit(lambda xs: xs[0] + xs[1])(
            [np.ones(2), np.array([1, "a"], dtype=object)])


def test_structured_dtype_is_refused_naming_the_argument():
    record = np.zeros(3, dtype=[("a", "f4"), ("b", "i4")])
    with pytest.raises(UnsupportedError,
                       match=r"argument x of double .*structured dtype.*"
                             r"fields as separate arrays"):
        jit(double)(record)


def test_unknown_argument_type_names_path_type_and_the_way_out():
    with pytest.raises(TypeError, match=r"argument cfg\['mode'\] of <lambda>"
                                        r" .*str is not a valid jit argument"
                                        r".*static"):
        jit(lambda x, cfg: x)(np.ones(2), {"mode": "fast"})


# ---- lists of scalars are pytrees, not arrays ------------------------------

def full_text(error) -> str:
    """The message and its notes, as a traceback shows them."""
    return "\n".join([str(error)] + getattr(error, "__notes__", []))


def test_tracing_error_on_a_list_of_scalars_says_to_pass_an_array():
    for fun in (np.exp, np.sum):
        with pytest.raises(TracejitError) as info:
            jit(lambda x: fun(x))([1.0, 2.0])
        text = full_text(info.value)
        assert "np.asarray(x)" in text and "separate scalars" in text, text
        assert text.count("np.asarray(x)") == 1, text     # said once


def test_branch_on_a_list_element_names_the_list_argument():
    # the error names x[0], which static_argnames cannot take: a note
    # says that x is the argument and what to pass instead
    with pytest.raises(TracejitError) as info:
        jit(lambda x: x[1] if x[0] > 0 else -x[1])([1.0, 2.0])
    text = full_text(info.value)
    assert "argument x is a list of 2 scalars" in text, text
    assert "np.asarray(x)" in text


def test_scalar_tuple_keyword_is_named_and_array_lists_are_not():
    f = jit(lambda a, b=None: a[0] if b[2] > 0 else a[0] + 1)
    with pytest.raises(TracejitError) as info:
        f([np.ones(2)], b=(1.0, 2.0, 3.0))
    notes = getattr(info.value, "__notes__", [])
    assert len(notes) == 1 and "argument b is a tuple of 3" in notes[0]


def test_leaf_sequences_finds_lists_of_leaves_with_their_leaf_range():
    _, treedef = tree.flatten([np.ones(2), {"k": [1.0, 2.0]}, (3, 4, 5)])
    assert tree.leaf_sequences(treedef, 10) == [("list", 11, 2),
                                                ("tuple", 13, 3)]
    assert tree.leaf_sequences(tree.flatten(1.0)[1]) == []
