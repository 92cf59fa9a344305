"""Integer index expressions and index maps.

An index map says, for every point of a kernel's iteration space, which
element of a buffer to read: one expression per buffer dimension, built from
the iteration variables.  View operations (transpose, broadcast, slice,
reshape) are functions from one index map to another, so a chain of views
costs no copy: the consumer simply reads through the composed map.

Expressions are kept in a canonical affine form, ``sum(coeff * atom) + const``,
where an atom is an iteration variable or a floor-division / modulo of another
affine expression by a positive constant (these appear only for reshapes).
``simplify`` removes divisions and modulos that the variable ranges make
redundant, so the common reshapes (adding or dropping size-1 axes, splitting a
contiguous axis) stay purely affine and therefore vectorizable.
"""
from __future__ import annotations

from dataclasses import dataclass
import functools
import math


@dataclass(frozen=True, order=True)
class Var:
    """Iteration variable number ``index`` of the kernel's loop nest."""

    index: int


@dataclass(frozen=True)
class FloorDiv:
    """``expr // divisor`` with a positive constant divisor."""

    expr: "Affine"
    divisor: int


@dataclass(frozen=True)
class Mod:
    """``expr % divisor`` with a positive constant divisor (result >= 0)."""

    expr: "Affine"
    divisor: int


Atom = Var | FloorDiv | Mod


@dataclass(frozen=True)
class Affine:
    """``const + sum(coeff * atom for atom, coeff in terms)``."""

    terms: tuple[tuple[Atom, int], ...] = ()
    const: int = 0

    @staticmethod
    def of(atom: Atom, coeff: int = 1) -> "Affine":
        return Affine(((atom, coeff),), 0) if coeff else Affine()

    def __add__(self, other: "Affine | int") -> "Affine":
        if isinstance(other, int):
            return Affine(self.terms, self.const + other)
        merged: dict = dict(self.terms)
        for atom, coeff in other.terms:
            merged[atom] = merged.get(atom, 0) + coeff
        return _make(merged, self.const + other.const)

    def scale(self, factor: int) -> "Affine":
        if factor == 0:
            return Affine()
        return Affine(tuple((a, c * factor) for a, c in self.terms),
                      self.const * factor)

    def coeff(self, atom: Atom) -> int:
        return dict(self.terms).get(atom, 0)

    def variables(self) -> set[int]:
        out: set[int] = set()
        for atom, _ in self.terms:
            if isinstance(atom, Var):
                out.add(atom.index)
            else:
                out |= atom.expr.variables()
        return out

    def is_constant(self) -> bool:
        return not self.terms

    def __str__(self) -> str:
        parts = [_term_str(a, c) for a, c in self.terms]
        if self.const or not parts:
            parts.append(str(self.const))
        return " + ".join(parts)


def _term_str(atom: Atom, coeff: int) -> str:
    if isinstance(atom, Var):
        name = f"i{atom.index}"
    elif isinstance(atom, FloorDiv):
        name = f"({atom.expr})//{atom.divisor}"
    else:
        name = f"({atom.expr})%{atom.divisor}"
    return name if coeff == 1 else f"{coeff}*{name}"


def _make(terms: dict, const: int) -> Affine:
    items = [(a, c) for a, c in terms.items() if c != 0]
    items.sort(key=lambda item: repr(item[0]))
    return Affine(tuple(items), const)


def var(index: int) -> Affine:
    return Affine.of(Var(index))


def const(value: int) -> Affine:
    return Affine((), value)


def bounds(expr: Affine, extents: tuple[int, ...]) -> tuple[int, int]:
    """Inclusive (low, high) of ``expr`` with ``0 <= i_k < extents[k]``."""
    low = high = expr.const
    for atom, coeff in expr.terms:
        a_low, a_high = _atom_bounds(atom, extents)
        if coeff >= 0:
            low, high = low + coeff * a_low, high + coeff * a_high
        else:
            low, high = low + coeff * a_high, high + coeff * a_low
    return low, high


def _atom_bounds(atom: Atom, extents: tuple[int, ...]) -> tuple[int, int]:
    if isinstance(atom, Var):
        return 0, max(extents[atom.index] - 1, 0)
    low, high = bounds(atom.expr, extents)
    if isinstance(atom, FloorDiv):
        return low // atom.divisor, high // atom.divisor
    if low >= 0 and high < atom.divisor:
        return low, high
    return 0, atom.divisor - 1


def floordiv(expr: Affine, divisor: int, extents: tuple[int, ...]) -> Affine:
    """``expr // divisor`` for a non-negative ``expr``, simplified.

    Terms whose coefficient the divisor divides leave the division; the rest
    stays inside it only while it is provably non-negative, so the argument
    of every FloorDiv atom is non-negative and renderers may use plain
    truncating division.
    """
    if divisor == 1:
        return expr
    whole: dict = {}
    rest: dict = {}
    for atom, coeff in expr.terms:
        (whole if coeff % divisor == 0 else rest)[atom] = coeff
    rest_expr = _make(rest, expr.const % divisor)
    low, high = bounds(rest_expr, extents)
    if low < 0:
        return Affine.of(FloorDiv(expr, divisor))
    quotient = _make({a: c // divisor for a, c in whole.items()},
                     expr.const // divisor)
    if high < divisor:
        return quotient
    if rest_expr == expr:
        return Affine.of(FloorDiv(expr, divisor))
    return quotient + Affine.of(FloorDiv(rest_expr, divisor))


def mod(expr: Affine, divisor: int, extents: tuple[int, ...]) -> Affine:
    """``expr % divisor`` for a non-negative ``expr``, simplified."""
    if divisor == 1:
        return const(0)
    rest = _make({a: c for a, c in expr.terms if c % divisor},
                 expr.const % divisor)
    low, high = bounds(rest, extents)
    if low < 0:
        return Affine.of(Mod(expr, divisor))
    if high < divisor:
        return rest
    return Affine.of(Mod(rest, divisor))


def substitute(expr: Affine, mapping: tuple[Affine, ...],
               extents: tuple[int, ...]) -> Affine:
    """Replace variable ``i_k`` by ``mapping[k]`` (ranges: ``extents``)."""
    out = const(expr.const)
    for atom, coeff in expr.terms:
        if isinstance(atom, Var):
            out = out + mapping[atom.index].scale(coeff)
            continue
        inner = substitute(atom.expr, mapping, extents)
        if isinstance(atom, FloorDiv):
            out = out + floordiv(inner, atom.divisor, extents).scale(coeff)
        else:
            out = out + mod(inner, atom.divisor, extents).scale(coeff)
    return out


@dataclass(frozen=True)
class IndexMap:
    """Maps points of an iteration space of ``extents`` to buffer indices.

    ``exprs[j]`` is the index along buffer dimension ``j``.
    """

    extents: tuple[int, ...]
    exprs: tuple[Affine, ...]

    def __hash__(self) -> int:
        # Maps key the planner's and lowering's memo tables; hashing the
        # nested expressions each time was most of lowering's time.
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = hash((self.extents, self.exprs))
            object.__setattr__(self, "_hash", cached)
        return cached

    def __eq__(self, other) -> bool:
        if self is other:
            return True
        if not isinstance(other, IndexMap):
            return NotImplemented
        return self.extents == other.extents and self.exprs == other.exprs

    @staticmethod
    def identity(shape: tuple[int, ...]) -> "IndexMap":
        return _identity_map(tuple(shape))

    def compose(self, inner: tuple[Affine, ...],
                extents: tuple[int, ...]) -> "IndexMap":
        """The map ``point -> self(inner(point))`` over ``extents``."""
        extents = tuple(extents)
        # Planning and lowering compose along every read; most maps are
        # identities, and composing with one changes nothing (unless a
        # unit extent's variable is there to drop).
        if extents == self.extents and 1 not in extents and \
                inner == _identity_exprs(len(extents)):
            return self
        # A variable over an extent of 1 is always 0: drop it up front.
        inner = tuple(_drop_unit_vars(e, extents) for e in inner)
        if self.is_identity():           # self(inner(p)) is inner(p)
            return IndexMap(extents, inner)
        return IndexMap(extents,
                        tuple(substitute(e, inner, extents) for e in self.exprs))

    # View operations: each returns the map of the view's own index space.

    def transpose(self, perm: tuple[int, ...]) -> "IndexMap":
        inner = [None] * len(perm)
        for out_dim, in_dim in enumerate(perm):
            inner[in_dim] = var(out_dim)
        extents = tuple(self.extents[p] for p in perm)
        return self.compose(tuple(inner), extents)

    def broadcast(self, shape: tuple[int, ...],
                  dims: tuple[int, ...]) -> "IndexMap":
        inner = []
        for in_dim, out_dim in enumerate(dims):
            same = self.extents[in_dim] == shape[out_dim]
            inner.append(var(out_dim) if same else const(0))
        return self.compose(tuple(inner), tuple(shape))

    def slice(self, starts: tuple[int, ...], steps: tuple[int, ...],
              shape: tuple[int, ...]) -> "IndexMap":
        inner = tuple(var(k).scale(step) + start
                      for k, (start, step) in enumerate(zip(starts, steps)))
        return self.compose(inner, tuple(shape))

    def reshape(self, shape: tuple[int, ...]) -> "IndexMap":
        shape = tuple(shape)
        if math.prod(shape) == 0:       # nothing is ever read
            return IndexMap(shape, tuple(const(0) for _ in self.exprs))
        linear = const(0)
        for k, stride in enumerate(_row_major_strides(shape)):
            linear = linear + var(k).scale(stride)
        inner = []
        for size, stride in zip(self.extents,
                                _row_major_strides(self.extents)):
            quotient = floordiv(linear, stride, shape)
            inner.append(mod(quotient, size, shape))
        return self.compose(tuple(inner), shape)

    def size(self) -> int:
        """Terms in every expression, nested ones included (iterative:
        nesting may be deep)."""
        count, stack = 0, list(self.exprs)
        while stack:
            terms = stack.pop().terms
            count += len(terms)
            stack += [atom.expr for atom, _ in terms
                      if not isinstance(atom, Var)]
        return count

    def is_identity(self) -> bool:
        return self.exprs == _identity_exprs(len(self.extents))

    def __str__(self) -> str:
        return "(" + ", ".join(str(e) for e in self.exprs) + ")"


@functools.lru_cache(maxsize=256)
def _identity_exprs(rank: int) -> tuple[Affine, ...]:
    return tuple(var(k) for k in range(rank))


@functools.lru_cache(maxsize=1024)
def _identity_map(shape: tuple[int, ...]) -> IndexMap:
    return IndexMap(shape, _identity_exprs(len(shape)))


def _drop_unit_vars(expr: Affine, extents: tuple[int, ...]) -> Affine:
    terms = {a: c for a, c in expr.terms
             if not (isinstance(a, Var) and extents[a.index] == 1)}
    return _make(terms, expr.const)


def _row_major_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides = []
    acc = 1
    for size in reversed(shape):
        strides.append(acc)
        acc *= max(size, 1)
    return tuple(reversed(strides))


def row_major_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Element strides of a C-contiguous array of ``shape``."""
    return _row_major_strides(tuple(shape))


def size_of(shape: tuple[int, ...]) -> int:
    return math.prod(shape)
