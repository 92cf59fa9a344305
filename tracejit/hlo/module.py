"""The HLO module: instructions in SSA form and topological order.

An instruction has an id, a primitive name, operand ids, a result shape and
dtype, and attributes.  A module has parameters (instructions with opcode
``parameter``) and a tuple of outputs.  The text form reads like XLA's::

    %2 = f32[4,8] add(%0, %1)
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

DTYPE_SHORT = {"bool": "pred", "int32": "s32", "int64": "s64",
               "float32": "f32", "float64": "f64"}
SHORT_DTYPE = {v: k for k, v in DTYPE_SHORT.items()}


@dataclass(frozen=True)
class Aval:
    """An abstract value: shape and dtype name."""

    shape: tuple[int, ...]
    dtype: str

    def __str__(self) -> str:
        dims = ",".join(str(d) for d in self.shape)
        return f"{DTYPE_SHORT.get(self.dtype, self.dtype)}[{dims}]"

    @property
    def size(self) -> int:
        out = 1
        for d in self.shape:
            out *= d
        return out


@dataclass(frozen=True)
class Instruction:
    id: int
    op: str
    operands: tuple[int, ...]
    aval: Aval
    attrs: tuple[tuple[str, object], ...] = ()
    loc: str | None = field(default=None, compare=False)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.aval.shape

    @property
    def dtype(self) -> str:
        return self.aval.dtype

    def attr(self, name: str, default=None):
        for key, value in self.attrs:
            if key == name:
                return value
        return default

    @property
    def attr_dict(self) -> dict:
        return dict(self.attrs)

    def text(self) -> str:
        args = ", ".join(f"%{o}" for o in self.operands)
        extra = "".join(f", {k}={_attr_text(v)}" for k, v in self.attrs)
        if (self.op == "parameter" or self.op == "constant") and self.attrs:
            args, extra = _attr_text(self.attrs[0][1]), ""
        return f"%{self.id} = {self.aval} {self.op}({args}{extra})"


def _attr_text(value) -> str:
    if isinstance(value, tuple):
        return "{" + ",".join(_attr_text(v) for v in value) + "}"
    if isinstance(value, np.ndarray):
        if value.size <= 8:
            flat = ", ".join(repr(v.item()) for v in value.reshape(-1))
            return f"{{{flat}}}" if value.ndim else flat
        return f"<{value.dtype}{list(value.shape)} data>"
    return str(value)


@dataclass
class Module:
    """A traced program: instructions in topological order."""

    name: str
    instructions: list[Instruction] = field(default_factory=list)
    outputs: tuple[int, ...] = ()

    def __post_init__(self):
        self._index()
        self.notes: dict[int, str] = {}   # printed after an instruction
        self.fusion = None                # set by the fusion pass

    def _index(self) -> None:
        """Rebuild the id table and the next free id (one pass, so that
        ``add`` costs O(1) and tracing n ops costs O(n))."""
        self._by_id = {ins.id: ins for ins in self.instructions}
        self._next_id = max(self._by_id, default=-1) + 1

    def add(self, op: str, operands, aval: Aval, attrs=(), loc=None) -> int:
        new_id = self._next_id
        self._next_id += 1
        ins = Instruction(new_id, op, tuple(operands), aval,
                          tuple(attrs), loc)
        self.instructions.append(ins)
        self._by_id[new_id] = ins
        return new_id

    def get(self, ins_id: int) -> Instruction:
        return self._by_id[ins_id]

    def replace_all(self, instructions: list[Instruction],
                    outputs: tuple[int, ...]) -> None:
        self.instructions = list(instructions)
        self.outputs = tuple(outputs)
        self._index()

    @property
    def parameters(self) -> list[Instruction]:
        params = [i for i in self.instructions if i.op == "parameter"]
        return sorted(params, key=lambda i: i.attr("index"))

    def users(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {i.id: [] for i in self.instructions}
        for ins in self.instructions:
            for o in ins.operands:
                out[o].append(ins.id)
        return out

    def copy(self) -> "Module":
        """A copy without notes or fusion plan (the instructions are
        immutable and shared)."""
        return Module(self.name, list(self.instructions), self.outputs)

    def text(self) -> str:
        params = ", ".join(f"{p.aval}" for p in self.parameters)
        outs = ", ".join(str(self.get(o).aval) for o in self.outputs)
        lines = [f"HloModule {self.name}({params}) -> ({outs})"]
        for ins in self.instructions:
            note = self.notes.get(ins.id)
            lines.append("  " + ins.text() + (f"  # {note}" if note else ""))
        lines.append("  ROOT tuple(" +
                     ", ".join(f"%{o}" for o in self.outputs) + ")")
        return "\n".join(lines) + "\n"

    __str__ = text


def with_operands(ins: Instruction, operands) -> Instruction:
    return replace(ins, operands=tuple(operands))
