"""``python -m benchmarks [args]``: the same as ``python -m tracejit bench
[args]``, for running the suite from a checkout without going through the
tracejit command line."""
from __future__ import annotations

import argparse
import sys

from .run import add_arguments, main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description=__doc__)
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
