"""Kernel description -> LLVM IR text.

Each kernel becomes a function taking one ``noalias`` pointer per buffer, a
pointer to the run-time element strides and the range ``[lo, hi)`` of the
kernel's split axis that this call covers (threads split a kernel there),
plus an ``_entry`` wrapper with the uniform signature ``(ptr args, ptr
strides, i64 lo, i64 hi)`` for callers.

Loop structure: one counted loop per iteration dimension (kept dimensions
outside, reduced dimensions inside).  In the innermost loop every access
whose index is affine in the innermost variable is a base offset plus
``step * i``; when some steps are only known at run time the innermost loop
is emitted twice, and the copy taken when those steps are all 1 has constant
unit strides, which LLVM's loop vectorizer turns into SIMD code.
"""
from __future__ import annotations

from ...fusion.kernel import Kernel, ScalarOp, combiner_identity
from ...layout.indexing import Affine, FloorDiv, IndexMap, Mod, Var
from . import scalar
from .compiler import QUICK_MARK, tier_mark
from .emitter import Declarations, Emitter, is_int
from .scalar import LLVM_TYPE, MEMORY_TYPE, RULES, literal
# scalar.py reaches the vector math lazily (the vmath modules import
# scalar.literal); loading them here keeps that import off the first call
from . import vmath, vmath_pow  # noqa: E402,F401


class KernelRenderer:
    def __init__(self, kernel: Kernel, declarations: set, helpers: set,
                 quick: bool = False):
        self.k = kernel
        self.quick = quick
        self.e = Emitter(declarations, helpers)
        self.vars: dict[int, str] = {}          # iteration var -> i64 value
        self.strides: dict[tuple[int, int], str] = {}

    # ---- index arithmetic ----------------------------------------------
    def expr(self, ex: Affine) -> str:
        total = None
        for atom, coeff in ex.terms:
            value = self.atom(atom)
            if coeff != 1:
                value = self.e.emit(f"mul i64 {value}, {coeff}")
            total = value if total is None else \
                self.e.emit(f"add i64 {total}, {value}")
        if total is None:
            return str(ex.const)
        if ex.const:
            total = self.e.emit(f"add i64 {total}, {ex.const}")
        return total

    def atom(self, atom) -> str:
        if isinstance(atom, Var):
            return self.vars[atom.index]
        inner = self.expr(atom.expr)
        op = "udiv" if isinstance(atom, FloorDiv) else "urem"
        return self.e.emit(f"{op} i64 {inner}, {atom.divisor}")

    def stride(self, arg: int, dim: int) -> str:
        static = self.k.args[arg].strides
        if static is not None:
            return str(static[dim])
        return self.strides[(arg, dim)]

    def offset(self, arg: int, index: IndexMap) -> str:
        total = "0"
        for dim, ex in enumerate(index.exprs):
            term = self.expr(ex)
            if term == "0":
                continue
            stride = self.stride(arg, dim)
            if stride != "1":
                term = self.e.emit(f"mul i64 {term}, {stride}")
            total = term if total == "0" else \
                self.e.emit(f"add i64 {total}, {term}")
        return total

    def split(self, arg: int, index: IndexMap, inner: int | None):
        """(base offset without the inner var, step per inner iteration),
        or None when the inner var sits inside a division or modulo."""
        if inner is None:
            return None
        static_step, dynamic = 0, []
        zeroed = []
        for dim, ex in enumerate(index.exprs):
            coeff = ex.coeff(Var(inner))
            rest = Affine(tuple(t for t in ex.terms if t[0] != Var(inner)),
                          ex.const)
            if inner in rest.variables():
                return None
            zeroed.append(rest)
            if not coeff:
                continue
            static = self.k.args[arg].strides
            if static is not None:
                static_step += static[dim] * coeff
            else:
                stride = self.strides[(arg, dim)]
                dynamic.append(stride if coeff == 1 else
                               self.e.emit(f"mul i64 {stride}, {coeff}"))
        step = str(static_step)
        for term in dynamic:
            step = term if step == "0" else \
                self.e.emit(f"add i64 {step}, {term}")
        base = self.offset(arg, IndexMap(index.extents, tuple(zeroed)))
        return base, step

    # ---- memory --------------------------------------------------------
    def address(self, arg: int, offset: str) -> str:
        t = MEMORY_TYPE[self.k.args[arg].dtype]
        return self.e.emit(f"getelementptr inbounds {t}, ptr %a{arg}, "
                           f"i64 {offset}")

    def load(self, arg: int, offset: str) -> str:
        dtype = self.k.args[arg].dtype
        ptr = self.address(arg, offset)
        value = self.e.emit(f"load {MEMORY_TYPE[dtype]}, ptr {ptr}")
        if dtype == "bool":
            value = self.e.emit(f"icmp ne i8 {value}, 0")
        return value

    def store(self, arg: int, offset: str, value: str) -> None:
        dtype = self.k.args[arg].dtype
        if dtype == "bool":
            value = self.e.emit(f"zext i1 {value} to i8")
        ptr = self.address(arg, offset)
        self.e.raw(f"store {MEMORY_TYPE[dtype]} {value}, ptr {ptr}")

    # ---- scalar programs -------------------------------------------------
    def scalar_ops(self, ops: tuple[ScalarOp, ...], offsets) -> list[str]:
        """Render ``ops``; ``offsets[k]`` is load k's element offset."""
        values: list[str] = []
        for k, op in enumerate(ops):
            if op.op == "load":
                offset = offsets[k] if k in offsets else \
                    self.offset(op.arg, op.index)
                values.append(self.load(op.arg, offset))
            elif op.op == "const":
                values.append(literal(op.value, op.dtype))
            elif op.op == "reduced":
                slot, acc_dtype = self.acc(op.args[0])
                t = LLVM_TYPE[acc_dtype]
                v = self.e.emit(f"load {t}, ptr {slot}")
                values.append(scalar.convert(self.e, v, acc_dtype, op.dtype))
            elif op.op == "point":
                values.append(self.points[tuple(op.args)])
            else:
                args = [values[a] for a in op.args]
                dtypes = [ops[a].dtype for a in op.args]
                values.append(RULES[op.op](self.e, args, dtypes, op.dtype))
        return values

    # ---- loops -----------------------------------------------------------
    def loop(self, var: int, body, tag: str = "") -> None:
        """``for i_var in range(extent): body()`` with an alloca counter;
        ``tag`` is metadata for the back edge."""
        e = self.e
        extent, start = self.k.shape[var], "0"
        if var == self.k.split_axis:            # this thread's share
            extent, start = "%hi", "%lo"
        slot = self.alloca("i64")
        e.raw(f"store i64 {start}, ptr {slot}")
        cond, block, end = e.label("cond"), e.label("body"), e.label("end")
        e.raw(f"br label %{cond}")
        e.raw(f"{cond}:")
        i = e.emit(f"load i64, ptr {slot}", "i")
        e.raw(f"br i1 {e.emit(f'icmp slt i64 {i}, {extent}')}, "
              f"label %{block}, label %{end}")
        e.raw(f"{block}:")
        self.vars[var] = i
        body()
        e.raw(f"store i64 {e.emit(f'add nuw nsw i64 {i}, 1')}, ptr {slot}")
        e.raw(f"br label %{cond}{tag}")
        e.raw(f"{end}:")

    def alloca(self, t: str) -> str:
        name = self.e.fresh("slot")
        self.allocas.append(f"  {name} = alloca {t}")
        return name

    def nest(self, dims: list[int], innermost) -> None:
        if not dims:
            innermost()
            return
        self.loop(dims[0], lambda: self.nest(dims[1:], innermost))

    def innermost_versions(self, inner: int | None, stage, per_point):
        """Emit the innermost loop, twice when run-time steps exist."""
        accesses = [(k, op.arg, op.index) for k, op in enumerate(stage.ops)
                    if op.op == "load"]
        accesses += [(("store", n), st.arg, st.index)
                     for n, st in enumerate(stage.stores)]
        splits = {key: self.split(arg, idx, inner)
                  for key, arg, idx in accesses}
        runtime_steps = [s[1] for s in splits.values()
                         if s is not None and not is_int(s[1])]

        def body(unit: bool):
            offsets = {}
            for key, arg, idx in accesses:
                sp = splits[key]
                if sp is None:
                    offsets[key] = self.offset(arg, idx)
                    continue
                base, step = sp
                if unit and not is_int(step):
                    step = "1"
                moved = self.vars[inner] if step == "1" else \
                    self.e.emit(f"mul i64 {self.vars[inner]}, {step}")
                offsets[key] = moved if base == "0" else \
                    self.e.emit(f"add i64 {base}, {moved}")
            per_point(offsets)

        if inner is None:
            body(False)
            return
        if not runtime_steps or self.quick:
            self.loop(inner, lambda: body(False))
            return
        e = self.e
        unit = "true"
        for step in runtime_steps:
            unit = e.emit(f"and i1 {unit}, {e.emit(f'icmp eq i64 {step}, 1')}")
        fast, slow, done = e.label("unit"), e.label("strided"), e.label("join")
        e.raw(f"br i1 {unit}, label %{fast}, label %{slow}")
        e.raw(f"{fast}:")
        self.loop(inner, lambda: body(True))
        e.raw(f"br label %{done}")
        e.raw(f"{slow}:")
        # Strided reads make gathers, no faster than scalar code here, and
        # vectorizing this copy too would double LLVM's work per kernel.
        self.loop(inner, lambda: body(False), e.scalar_loop_tag())
        e.raw(f"br label %{done}")
        e.raw(f"{done}:")

    # ---- the function ----------------------------------------------------
    def render(self) -> str:
        k, e = self.k, self.e
        self.allocas: list[str] = []
        self.accs: list[tuple[str, str]] = []
        self.points: dict[tuple[int, int], str] = {}
        for arg, slot in k.stride_slots().items():
            for dim in range(len(k.args[arg].shape)):
                ptr = e.emit(f"getelementptr inbounds i64, ptr %strides, "
                             f"i64 {slot + dim}")
                self.strides[(arg, dim)] = e.emit(f"load i64, ptr {ptr}", "s")
        self.column = column_axis(k)
        width = f", i64 {k.shape[self.column]}" if self.column is not None \
            else ""
        for red in k.reductions:
            self.accs.append((self.alloca(LLVM_TYPE[red.acc_dtype] + width),
                              red.acc_dtype))
        if self.column is not None:
            self.nest(list(k.kept_axes[:-1]), self.column_point)
        elif k.reduce_axes:
            self.nest(list(k.kept_axes), self.kept_point)
        else:
            dims = list(range(len(k.shape)))
            inner = dims[-1] if dims else None
            stage = k.stages[0]
            self.nest(dims[:-1], lambda: self.innermost_versions(
                inner, stage, lambda offsets: self.point(0, offsets)))
        params = ", ".join(f"ptr noalias %a{n}" for n in range(len(k.args)))
        head = (f"define internal void @{k.name}({params}, "
                f"ptr noalias %strides, i64 %lo, i64 %hi) nounwind "
                f"{{\nentry:")
        return "\n".join([head] + self.allocas + e.lines +
                         ["  ret void", "}"]) + "\n" + self.entry()

    def point(self, s: int, offsets) -> None:
        """One point of stage ``s``'s loop: ops, reductions, stores."""
        e, stage = self.e, self.k.stages[s]
        values = self.scalar_ops(stage.ops, offsets)
        first = self.k.first_reduction[s]
        for n, red in enumerate(stage.reductions):
            slot, acc_dtype = self.acc(first + n)
            v = scalar.convert(e, values[red.value],
                               stage.ops[red.value].dtype, acc_dtype)
            t = LLVM_TYPE[acc_dtype]
            acc = e.emit(f"load {t}, ptr {slot}")
            if red.combiner in REASSOCIABLE and acc_dtype.startswith("float"):
                # Partial sums in vector lanes, combined at the end: the
                # vectorizer needs leave to reorder this one addition.
                folded = e.emit(f"{REASSOCIABLE[red.combiner]} reassoc {t} "
                                f"{acc}, {v}")
            elif red.combiner in IEEE_EXTREMA and \
                    acc_dtype.startswith("float"):
                # NaN-propagating max/min, which LLVM vectorizes as a
                # reduction (the select form of scalar.max it does not).
                bits = 32 if t == "float" else 64
                fn = f"llvm.{IEEE_EXTREMA[red.combiner]}.f{bits}"
                e.declare(f"declare {t} @{fn}({t}, {t})")
                folded = e.emit(f"call {t} @{fn}({t} {acc}, {t} {v})")
            else:
                folded = RULES[red.combiner](e, [acc, v], [acc_dtype] * 2,
                                             acc_dtype)
            e.raw(f"store {t} {folded}, ptr {slot}")
        for n, st in enumerate(stage.stores):
            self.store(st.arg, offsets[("store", n)], values[st.value])

    def kept_point(self) -> None:
        """Everything a kernel with reduce axes does for one kept point."""
        k, e = self.k, self.e
        rows = list(k.reduce_axes)
        first = 0
        for s, stage in enumerate(k.stages):
            for n, red in enumerate(stage.reductions):
                slot, acc_dtype = self.accs[first + n]
                ident = combiner_identity(red.combiner, acc_dtype)
                e.raw(f"store {LLVM_TYPE[acc_dtype]} "
                      f"{literal(ident, acc_dtype)}, ptr {slot}")
            first += len(stage.reductions)
            if stage.ops or stage.stores:
                self.nest(rows[:-1], lambda s=s, stage=stage:
                          self.innermost_versions(
                              rows[-1], stage,
                              lambda offsets: self.point(s, offsets)))
            values = self.scalar_ops(stage.after, {})
            for n, v in enumerate(values):
                self.points[(s, n)] = v
            for st in stage.after_stores:
                self.store(st.arg, self.offset(st.arg, st.index),
                           values[st.value])


    def acc(self, n: int) -> tuple[str, str]:
        """(pointer, dtype) of reduction n's accumulator at this point."""
        slot, acc_dtype = self.accs[n]
        if self.column is None:
            return slot, acc_dtype
        ptr = self.e.emit(f"getelementptr inbounds {LLVM_TYPE[acc_dtype]}, "
                          f"ptr {slot}, i64 {self.vars[self.column]}")
        return ptr, acc_dtype

    def column_point(self) -> None:
        """A reduction over leading axes: the reduced axes loop outside
        and the contiguous last axis inside, with one accumulator per
        column (rows are read in memory order and the inner loop
        vectorizes)."""
        k, e = self.k, self.e
        (stage,), col = k.stages, self.column

        def init():
            for n, red in enumerate(stage.reductions):
                slot, acc_dtype = self.acc(n)
                ident = combiner_identity(red.combiner, acc_dtype)
                e.raw(f"store {LLVM_TYPE[acc_dtype]} "
                      f"{literal(ident, acc_dtype)}, ptr {slot}")

        def finish():
            values = self.scalar_ops(stage.after, {})
            for st in stage.after_stores:
                self.store(st.arg, self.offset(st.arg, st.index),
                           values[st.value])

        self.loop(col, init)
        self.nest(list(k.reduce_axes), lambda: self.innermost_versions(
            col, stage, lambda offsets: self.point(0, offsets)))
        self.loop(col, finish)

    def entry(self) -> str:
        k = self.k
        lines = [f"define void @{k.name}_entry(ptr %args, ptr %strides, "
                 "i64 %lo, i64 %hi) nounwind {", "entry:"]
        names = []
        for n, arg in enumerate(k.args):
            if arg.local:       # one row of scratch per call (per chunk)
                lines.append(f"  %p{n} = alloca {MEMORY_TYPE[arg.dtype]}, "
                             f"i64 {arg.local_size}, align 64")
            else:
                lines.append(f"  %p{n}.addr = getelementptr inbounds ptr, "
                             f"ptr %args, i64 {n}")
                lines.append(f"  %p{n} = load ptr, ptr %p{n}.addr")
            names.append(f"ptr %p{n}")
        lines.append(f"  call void @{k.name}({', '.join(names)}, "
                     "ptr %strides, i64 %lo, i64 %hi)")
        lines += ["  ret void", "}"]
        return "\n".join(lines) + "\n"


REASSOCIABLE = {"add": "fadd", "mul": "fmul"}
IEEE_EXTREMA = {"max": "maximum", "min": "minimum"}
COLUMN_SCRATCH_BYTES = 1 << 16     # accumulators kept on the stack


def column_axis(k: Kernel) -> int | None:
    """The last axis, when the kernel reduces only axes before it in one
    stage that stores nothing per row: it can then loop rows outside and
    columns inside."""
    last = len(k.shape) - 1
    if not k.reduce_axes or last in k.reduce_axes or len(k.stages) != 1:
        return None
    stage = k.stages[0]
    ops = stage.ops + stage.after
    if stage.stores or any(op.op == "point" for op in ops):
        return None
    width = k.shape[last]
    if width < 2 or width * 8 * len(stage.reductions) > COLUMN_SCRATCH_BYTES:
        return None
    return last


def render_module(kernels: list[Kernel], name: str = "tracejit") -> str:
    """One LLVM module holding every kernel of a program."""
    declarations: set = Declarations()
    helpers: set = set()
    # big programs compile in a cheaper tier (compiler.py); in the quick
    # one each inner loop is emitted once (its unit-stride copy is there
    # for the vectorizer, which that tier does not run)
    mark = tier_mark(sum(k.op_count for k in kernels))
    quick = mark == QUICK_MARK
    bodies = [KernelRenderer(k, declarations, helpers, quick).render()
              for k in kernels]
    head = [mark] if mark else []     # first: compiler.py reads it there
    head += [f"; ModuleID = '{name}'"]
    head += sorted(declarations)
    head += [scalar.ipow_helper(t) for _, t in sorted(helpers)]
    return "\n".join(head) + "\n\n" + "\n".join(bodies)
