"""Command line entry point: `azure-jit-operator run | emulator | demo`.

Each subcommand's work lives in its own module; this file only parses arguments and
dispatches, so importing it starts nothing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

NOT_AVAILABLE = 2


def _not_available(name: str) -> int:
    print(f"azure-jit-operator {name}: not available yet", file=sys.stderr)
    return NOT_AVAILABLE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="azure-jit-operator",
        description="Declarative Azure Just-in-Time VM access for Kubernetes.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the operator against the current kubeconfig")
    from azure_jit_operator.run import add_run_arguments  # noqa: PLC0415

    add_run_arguments(run)
    emulator = sub.add_parser("emulator", help="serve the local Azure Resource Manager emulator")
    from azure_jit_operator.emulator.command import add_emulator_arguments  # noqa: PLC0415

    add_emulator_arguments(emulator)
    demo = sub.add_parser("demo", help="run control plane, emulator, operator and the examples")
    from azure_jit_operator.demo.scenario import add_demo_arguments  # noqa: PLC0415

    add_demo_arguments(demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        from azure_jit_operator.run import run_command  # noqa: PLC0415

        return run_command(args)
    if args.command == "demo":
        from azure_jit_operator.demo.scenario import run as run_demo  # noqa: PLC0415

        return run_demo(args)
    if args.command == "emulator":
        from azure_jit_operator.emulator.command import run as run_emulator  # noqa: PLC0415

        return run_emulator(args)
    return _not_available(args.command)


if __name__ == "__main__":
    sys.exit(main())
