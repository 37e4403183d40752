"""The ``grokvideo`` command (installed by ``pip install .``): for now its frame only, no commands yet.

It needs nothing beyond the standard library, so the Lambda layer, which ships this package
as it is, gains nothing by it.

>>> main(["--version"])
grokvideo ...
0
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from grokvideo import __version__

PROG = "grokvideo"
EXIT_USAGE = 2  # what argparse itself exits with on a command line it cannot use


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: ``--help`` and ``--version``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Command-line tool for a deployed grokvideo stack.",
        epilog="This version has no commands yet: it only answers --help and --version.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit status.

    ``--help`` and ``--version`` print and return 0; anything else is a usage error (2), since
    there is no command to run yet.
    """
    parser = build_parser()
    try:
        parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits after --help, --version and on a bad command line
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        return EXIT_USAGE
    parser.print_usage(sys.stderr)
    print(f"{PROG}: error: no command given (this version has none yet; see {PROG} --help)", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
