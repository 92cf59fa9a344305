"""What ``Jitted.lower`` and ``Lowered.compile`` return: one signature's
traced program and its executable, for inspection (HLO text, fusion
decisions, LLVM IR, memory) and for calls that skip the signature cache.

Both reach the jitted function's caches through it, so compiling here is
the same once-per-signature path a call takes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from . import tree
from .backends.cpu import CpuExecutable
from .memory import MemoryAnalysis, memory_analysis

if TYPE_CHECKING:                          # api imports this module
    from .api import Jitted, _Traced


class Lowered:
    """A traced and optimized program for one signature."""

    def __init__(self, jitted: Jitted, key, traced: _Traced):
        self._jitted, self._key, self._traced = jitted, key, traced

    def as_text(self) -> str:
        """The HLO module as text, after the passes (with fusion notes)."""
        return self._traced.module.text()

    def fusion_report(self) -> str:
        """Every fusion decision and refusal, with its reason."""
        plan = self._traced.module.fusion
        lines = [f"{len(plan.groups)} kernel groups, run in order "
                 f"{plan.order}"]
        for group in plan.groups:
            kind = ("library call" if group.library else
                    "reduction fusion" if group.row_axes else "loop fusion")
            roots = ", ".join(f"%{r}" for r in group.roots)
            rows = f", rows over axes {list(group.row_axes)}" \
                if group.row_axes else ""
            lines.append(f"  kernel {group.id}: {kind} over "
                         f"{list(group.space)}{rows}; roots {roots}")
        return "\n".join(lines + plan.report) + "\n"

    def compile(self) -> Compiled:
        (executable, out_tree, int32_leaves), _ = \
            self._jitted._compiled_for(self._key, lambda: self._traced)
        return Compiled(self._jitted, self._key, executable, out_tree,
                        int32_leaves)


class Compiled:
    """The executable for one signature."""

    def __init__(self, jitted: Jitted, key, executable: CpuExecutable,
                 out_tree, int32_leaves=()):
        self._jitted, self._key = jitted, key
        self.executable, self._out_tree = executable, out_tree
        self._int32_leaves = int32_leaves

    def as_text(self) -> str:
        """The generated LLVM IR."""
        return self.executable.as_text()

    def assembly(self) -> str:
        return self.executable.assembly()

    @property
    def kernel_count(self) -> int:
        return self.executable.kernel_count

    def memory_analysis(self) -> MemoryAnalysis:
        """Argument, output, temporary, arena and peak bytes of one call."""
        return memory_analysis(self.executable.program)

    def program_text(self) -> str:
        return self.executable.program.describe()

    def __call__(self, *args, **kwargs):
        key, arrays, specs, *_ = self._jitted._split(args, kwargs)
        if key != self._key:
            raise TypeError("arguments do not match the signature this "
                            "executable was compiled for")
        check_int32(self._int32_leaves, arrays, specs)
        return tree.unflatten(self._out_tree, self.executable(arrays))


def check_int32(leaves: tuple, arrays, specs) -> None:
    """numpy raises OverflowError for a Python int that does not fit the
    int32 it is cast to (NEP 50); the value is only known at call time."""
    for k in leaves:
        value = int(arrays[k])
        if not -2**31 <= value < 2**31:
            raise OverflowError(f"argument {specs[k].name}: Python integer "
                                f"{value} out of bounds for int32")
