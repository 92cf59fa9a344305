"""Command line: ``python -m tracejit <command>``.

Commands:

* ``demo`` -- compile a few real numpy functions, check them against numpy,
  show the HLO of one, and time jit against numpy (``tracejit/demo.py``).

To add a command (``bench`` comes with the CPU-performance work): write a
module with ``add_arguments(parser)`` and ``main(args) -> int``, and list it
in ``COMMANDS`` below.  A command module's import should stay cheap: every
command's module is imported to build the argument parser.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# command name -> (module implementing it, one-line help)
COMMANDS = {
    "demo": ("tracejit.demo",
             "compile GELU, softmax and an MLP; check against numpy; time them"),
    # "bench": ("tracejit.bench", "benchmark suite"),   # not implemented yet
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tracejit",
        description="tracejit: a tracing JIT compiler for numpy code.")
    sub = parser.add_subparsers(dest="command", metavar="command",
                                required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        module = importlib.import_module(module_name)
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
