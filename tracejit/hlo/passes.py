"""HLO passes and the pass manager.

Every pass is a function ``run(module) -> bool`` (True if it changed the
module) with a docstring stating what it guarantees.  ``run_pipeline`` runs
them in order; with TRACEJIT_VERIFY=1 (always in tests) the verifier runs
after each pass, and with TRACEJIT_DUMP=DIR the module text after each pass
is written to numbered files in DIR.
"""
from __future__ import annotations

import os

from .module import Module
from .verifier import verify


def dce(module: Module) -> bool:
    """Dead code elimination: removes every instruction no output depends
    on.  Parameters always stay, so the signature is unchanged."""
    live = set(module.outputs)
    for ins in reversed(module.instructions):
        if ins.id in live:
            live.update(ins.operands)
    kept = [i for i in module.instructions
            if i.id in live or i.op == "parameter"]
    changed = len(kept) != len(module.instructions)
    module.replace_all(kept, module.outputs)
    return changed


class FixedPoint:
    """Run ``passes`` in order, again and again, until none changes the
    module (at most ``limit`` rounds)."""

    def __init__(self, *passes, limit: int = 8):
        self.passes, self.limit = passes, limit


def run_pipeline(module: Module, passes) -> Module:
    """Run ``passes`` (functions or FixedPoint groups) over ``module``."""
    dump_dir = os.environ.get("TRACEJIT_DUMP")
    check = os.environ.get("TRACEJIT_VERIFY") == "1"
    counter = [0]
    stem = None
    if dump_dir:
        os.makedirs(dump_dir, exist_ok=True)
        stem = _dump_stem(dump_dir, module.name)
        module.dump_stem = stem
        _dump(dump_dir, stem, module, 0, "traced")

    def run_one(pass_fn) -> bool:
        changed = bool(pass_fn(module))
        if check:
            verify(module)
            extra = getattr(pass_fn, "verify", None)
            if extra is not None:
                extra(module)
        if dump_dir:
            counter[0] += 1
            _dump(dump_dir, stem, module, counter[0], pass_fn.__name__)
        return changed

    for item in passes:
        if isinstance(item, FixedPoint):
            for _ in range(item.limit):
                if not any([run_one(p) for p in item.passes]):
                    break
        else:
            run_one(item)
    return module


def dump_text(module: Module, label: str, text: str) -> None:
    """With TRACEJIT_DUMP set, write ``text`` (e.g. the lowered program)
    beside the module's pass dumps, under the same stem."""
    dump_dir = os.environ.get("TRACEJIT_DUMP")
    if not dump_dir:
        return
    os.makedirs(dump_dir, exist_ok=True)
    stem = getattr(module, "dump_stem", module.name)
    with open(os.path.join(dump_dir, f"{stem}.{label}.txt"), "w") as f:
        f.write(text)


def _dump_stem(dump_dir: str, name: str) -> str:
    """``name``, or ``name_K`` if an earlier trace (another signature of the
    same function) already dumped under ``name``: dumps never overwrite."""
    stem, k = name, 0
    while os.path.exists(os.path.join(dump_dir, f"{stem}.00.traced.txt")):
        k += 1
        stem = f"{name}_{k}"
    return stem


def _dump(dump_dir: str, stem: str, module: Module, n: int,
          name: str) -> None:
    path = os.path.join(dump_dir, f"{stem}.{n:02d}.{name}.txt")
    with open(path, "w") as f:
        f.write(module.text())
