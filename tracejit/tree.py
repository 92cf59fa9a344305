"""Pytrees: nested tuples, lists, dicts and None around array leaves.

``flatten`` returns the leaves in a fixed order and a hashable description
of the structure; ``unflatten`` rebuilds the structure around new leaves.
Dict keys are visited in sorted order, as JAX does.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TreeDef:
    kind: str                      # "leaf" | "none" | "tuple" | "list" | "dict"
    children: tuple["TreeDef", ...] = ()
    keys: tuple = ()

    @property
    def num_leaves(self) -> int:
        if self.kind == "leaf":
            return 1
        return sum(c.num_leaves for c in self.children)


LEAF = TreeDef("leaf")


def flatten(tree, path: str = "", paths: list | None = None):
    """(leaves, treedef); with ``paths`` given, appends each leaf's path."""
    leaves: list = []
    treedef = _flatten(tree, leaves, path, paths)
    return leaves, treedef


def _flatten(tree, leaves, path, paths) -> TreeDef:
    if tree is None:
        return TreeDef("none")
    if isinstance(tree, (tuple, list)) and not hasattr(tree, "_fields"):
        kids = tuple(_flatten(x, leaves, f"{path}[{k}]", paths)
                     for k, x in enumerate(tree))
        return TreeDef("tuple" if isinstance(tree, tuple) else "list", kids)
    if isinstance(tree, dict):
        try:
            keys = tuple(sorted(tree))
        except TypeError:
            raise TypeError(f"dict keys of {path or 'a pytree'} must be "
                            "sortable") from None
        kids = tuple(_flatten(tree[k], leaves, f"{path}[{k!r}]", paths)
                     for k in keys)
        return TreeDef("dict", kids, keys)
    leaves.append(tree)
    if paths is not None:
        paths.append(path)
    return LEAF


def unflatten(treedef: TreeDef, leaves):
    it = iter(leaves)
    out = _build(treedef, it)
    return out


def _build(treedef: TreeDef, it):
    if treedef.kind == "leaf":
        return next(it)
    if treedef.kind == "none":
        return None
    kids = [_build(c, it) for c in treedef.children]
    if treedef.kind == "tuple":
        return tuple(kids)
    if treedef.kind == "list":
        return kids
    return dict(zip(treedef.keys, kids))


def leaf_sequences(treedef: TreeDef, first: int = 0):
    """(kind, first leaf index, count) for every tuple or list in
    ``treedef`` whose children are all leaves, numbering leaves from
    ``first``.  A list of Python scalars is such a node: each element is a
    leaf of its own (as in JAX), not one array, which error messages may
    need to say."""
    found: list[tuple[str, int, int]] = []
    _leaf_sequences(treedef, first, found)
    return found


def _leaf_sequences(treedef: TreeDef, first: int, found: list) -> int:
    """Appends to ``found``; returns the index after this subtree's
    leaves."""
    kids = treedef.children
    if treedef.kind in ("tuple", "list") and kids and \
            all(c.kind == "leaf" for c in kids):
        found.append((treedef.kind, first, len(kids)))
        return first + len(kids)
    if treedef.kind == "leaf":
        return first + 1
    for child in kids:
        first = _leaf_sequences(child, first, found)
    return first
