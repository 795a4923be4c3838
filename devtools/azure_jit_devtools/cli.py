"""Command line entry point: ``azure-jit-dev demo``.

Only parses arguments and dispatches, so importing it starts nothing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="azure-jit-dev", description="Developer tools for azure-jit-operator."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run control plane, emulator, operator and the examples")
    from azure_jit_devtools.demo.scenario import add_demo_arguments  # noqa: PLC0415

    add_demo_arguments(demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from azure_jit_devtools.demo.scenario import run as run_demo  # noqa: PLC0415

    return run_demo(args)


if __name__ == "__main__":
    sys.exit(main())
