"""The LLVM IR text builder a kernel renderer writes through: fresh SSA
names, labels, module-level declarations and helpers, loop tags.  Kept
apart from render.py, which decides what to write."""
from __future__ import annotations


class Emitter:
    """Accumulates LLVM instructions with fresh SSA names."""

    def __init__(self, declarations: set, helpers: set):
        self.lines: list[str] = []
        self.counter = 0
        self.declarations = declarations
        self.helpers = helpers

    def fresh(self, hint: str = "t") -> str:
        self.counter += 1
        return f"%{hint}{self.counter}"

    def emit(self, rhs: str, hint: str = "t") -> str:
        name = self.fresh(hint)
        self.lines.append(f"  {name} = {rhs}")
        return name

    def raw(self, line: str) -> None:
        self.lines.append(line if line.endswith(":") else f"  {line}")

    def label(self, hint: str) -> str:
        self.counter += 1
        return f"{hint}{self.counter}"

    def declare(self, decl: str) -> None:
        self.declarations.add(decl)

    def need_helper(self, name: str, t: str) -> None:
        self.helpers.add((name, t))

    def scalar_loop_tag(self) -> str:
        """Loop metadata that keeps the vectorizer off one loop (each loop
        needs its own distinct id; the property node !0 is shared)."""
        self.declare('!0 = !{!"llvm.loop.vectorize.enable", i1 false}')
        self.declarations.loop_tags += 1      # O(1): no scan of the set
        n = self.declarations.loop_tags
        self.declare(f"!{n} = distinct !{{!{n}, !0}}")
        return f", !llvm.loop !{n}"


class Declarations(set):
    """The module's declarations, and how many loop tags they hold."""

    loop_tags = 0


def is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()
