"""HLO passes and the pass manager.

Every pass is a function ``run(module) -> bool`` (True if it changed the
module) with a docstring stating what it guarantees.  ``run_pipeline`` runs
them in order; with TRACEJIT_VERIFY=1 (always in tests) the verifier runs
after each pass, and with TRACEJIT_DUMP=DIR the module text after each pass
is written to numbered files in DIR.

Passes are deterministic, so a pass that changed nothing has nothing to do
until another pass changes the module: ``run_pipeline`` skips it until then.
That drops the confirming last round of a fixed point and the clean-up
passes after a pass that changed nothing (compile time is the user's first
call).  A pass must therefore report every change it makes.
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
    """Run ``passes`` (functions or FixedPoint groups) over ``module``.

    ``module.pass_log`` lists the passes that ran, in order, as (name,
    changed) pairs; skipped passes (see the module docstring) are not in
    it."""
    dump_dir = os.environ.get("TRACEJIT_DUMP")
    check = os.environ.get("TRACEJIT_VERIFY") == "1"
    counter = [0]
    stem = None
    if dump_dir:
        os.makedirs(dump_dir, exist_ok=True)
        stem = _dump_stem(dump_dir, module.name)
        module.dump_stem = stem
        _dump(dump_dir, stem, module, 0, "traced")
    version = 0             # how many pass runs changed the module so far
    idle_at: dict = {}      # pass -> version at its last run without change
    module.pass_log = []

    def run_one(pass_fn) -> bool:
        nonlocal version
        if idle_at.get(pass_fn) == version:
            return False    # the same input it left unchanged before
        changed = bool(pass_fn(module))
        module.pass_log.append((pass_fn.__name__, changed))
        if changed:
            version += 1
        else:
            idle_at[pass_fn] = version
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
