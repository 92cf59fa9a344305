"""Command line: ``python -m tracejit <command>``.

Commands:

* ``demo`` -- compile a few real numpy functions, check them against numpy,
  show the HLO of one, and time jit against numpy (``tracejit/demo.py``).
* ``bench`` -- the CPU benchmark suite (``benchmarks/run.py``; it lives in the
  source checkout, not in the installed package, so run it from the
  repository root).

To add a command: write a module with ``add_arguments(parser)`` and
``main(args) -> int``, and list it in ``COMMANDS`` below.  A command
module's import should stay cheap: every command's module is imported to
build the argument parser.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# command name -> (module implementing it, one-line help)
COMMANDS = {
    "demo": ("tracejit.demo",
             "compile GELU, softmax and an MLP; check against numpy; time them"),
    "bench": ("benchmarks.run",
              "time workloads under tracejit, numpy and installed peers"),
}


class _Unavailable:
    """Stands in for a command module that cannot be imported."""

    def __init__(self, command: str, module_name: str):
        self.command, self.module_name = command, module_name

    def add_arguments(self, parser) -> None:
        # accept any arguments, so that main() can say what is wrong
        parse = parser.parse_known_args
        parser.parse_known_args = lambda a=None, ns=None: (parse(a, ns)[0], [])

    def main(self, args) -> int:
        print(f"{self.command}: module {self.module_name} is not importable; "
              "run from the root of a tracejit source checkout",
              file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tracejit",
        description="tracejit: a tracing JIT compiler for numpy code.")
    sub = parser.add_subparsers(dest="command", metavar="command",
                                required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            # ``bench`` outside a source checkout: benchmarks/ is not
            # installed; the other commands still work.
            if err.name != module_name.split(".")[0]:
                raise
            module = _Unavailable(name, module_name)
        module.add_arguments(cmd)
        cmd.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # argparse prints the usage and exits with status 2 on a missing or
    # unknown command.
    args = parser.parse_args(argv)
    return args._module.main(args)


if __name__ == "__main__":
    sys.exit(main())
