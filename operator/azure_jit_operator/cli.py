"""Command line entry point: `azure-jit-operator run`.

The work lives in :mod:`azure_jit_operator.run`; this file only parses arguments and
dispatches, so importing it starts nothing. The Azure emulator (``azure-arm-emulator``) and
the demo (``azure-jit-dev demo``) are separate distributions, not part of the operator.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="azure-jit-operator",
        description="Declarative Azure Just-in-Time VM access for Kubernetes.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the operator against the current kubeconfig")
    from azure_jit_operator.run import add_run_arguments  # noqa: PLC0415

    add_run_arguments(run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from azure_jit_operator.run import run_command  # noqa: PLC0415

    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
