"""``azure-arm-emulator``: arguments and the process lifecycle.

Prints the endpoint, the CA bundle, the admin API, the Entra authority host and finally a
ready line::

    emulator ready: https://127.0.0.1:8443 ca=/tmp/azure-jit-emulator-x/ca.pem admin=https://127.0.0.1:8443/_emulator

and serves until SIGTERM or SIGINT, then shuts down cleanly (exit status 0).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from azure_arm_emulator.clock import EmulatorClock
from azure_arm_emulator.core import Emulator
from azure_arm_emulator.jit_rule_names import GENERATIONS
from azure_arm_emulator.server import EmulatorServer
from azure_arm_emulator.settings import EmulatorSettings
from azure_arm_emulator.world import WorldError, generate_world, load_world

DEFAULT_PORT = 8443
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="azure-arm-emulator",
        description="Serve the local Azure Resource Manager and Entra ID emulator on 127.0.0.1.",
    )
    add_emulator_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``azure-arm-emulator`` console script."""
    return run(build_parser().parse_args(argv))


def add_emulator_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--world",
        type=Path,
        default=None,
        help="world YAML file (default: the packaged default world)",
    )
    parser.add_argument(
        "--generate-vms",
        type=int,
        default=None,
        metavar="N",
        help="instead of --world, generate a world of N VMs (benchmarks, scale tests)",
    )
    parser.add_argument("--generate-subscriptions", type=int, default=1, metavar="N")
    parser.add_argument("--generate-resource-groups", type=int, default=4, metavar="N")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port on 127.0.0.1 (0 picks a free one)"
    )
    parser.add_argument(
        "--cert-dir",
        type=Path,
        default=None,
        help="where ca.pem and the server certificate go (default: a new temporary directory)",
    )
    parser.add_argument(
        "--revoke-lag",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="how long after endTimeUtc Azure removes the allow rules",
    )
    parser.add_argument(
        "--never-revoke",
        action="store_true",
        help="never remove allow rules at endTimeUtc (test the client's own forced close)",
    )
    parser.add_argument(
        "--apply-delay",
        type=float,
        default=EmulatorSettings.apply_delay_seconds,
        metavar="SECONDS",
        help="how long an initiated port stays Initiating before its allow rule appears",
    )
    parser.add_argument(
        "--policy-settle",
        type=float,
        default=EmulatorSettings.policy_settle_seconds,
        metavar="SECONDS",
        help="how long a JIT policy says provisioningState Updating after a PUT",
    )
    parser.add_argument(
        "--jit-rule-generation",
        choices=GENERATIONS,
        default=EmulatorSettings.jit_rule_generation,
        help="names of new JIT NSG rules: MicrosoftDefenderForCloud-… (current), "
        "SecurityCenter-… (legacy), or legacy deny with current allow rules (mixed)",
    )
    parser.add_argument("--page-size", type=int, default=100, help="items per list page")
    parser.add_argument(
        "--arm-latency", type=float, default=0.0, metavar="SECONDS", help="added to every ARM call"
    )
    parser.add_argument(
        "--lro-retry-after",
        type=int,
        default=1,
        metavar="SECONDS",
        help="Retry-After on long-running operations (0: send none)",
    )
    parser.add_argument(
        "--lro-polls",
        type=int,
        default=1,
        metavar="N",
        help="status polls answered InProgress before an LRO completes",
    )
    parser.add_argument(
        "--strict-tokens",
        action="store_true",
        help="accept only the tokens listed in the world file (default: any bearer token)",
    )
    parser.add_argument(
        "--admin-token", default=None, help="require this X-Emulator-Admin-Token on /_emulator"
    )
    parser.add_argument(
        "--clock-offset",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="start the emulator clock this far from real time",
    )


def run(args: argparse.Namespace) -> int:
    """Run the emulator until SIGTERM/SIGINT; returns the process exit status."""

    try:
        if args.generate_vms is not None:
            world = generate_world(
                vms=args.generate_vms,
                subscriptions=args.generate_subscriptions,
                resource_groups_per_subscription=args.generate_resource_groups,
            )
        else:
            world = load_world(args.world)
        settings = EmulatorSettings(
            revoke_lag_seconds=args.revoke_lag,
            never_revoke=args.never_revoke,
            apply_delay_seconds=args.apply_delay,
            policy_settle_seconds=args.policy_settle,
            jit_rule_generation=args.jit_rule_generation,
            page_size=args.page_size,
            arm_latency_seconds=args.arm_latency,
            lro_in_progress_polls=args.lro_polls,
            lro_retry_after_seconds=args.lro_retry_after or None,
            accept_any_token=not args.strict_tokens,
        )
        emulator = Emulator(
            world,
            settings=settings,
            clock=EmulatorClock(offset=timedelta(seconds=args.clock_offset)),
        )
    except (WorldError, ValueError) as exc:
        print(f"azure-arm-emulator: {exc}", file=sys.stderr)
        return EXIT_USAGE
    cert_dir = args.cert_dir or Path(tempfile.mkdtemp(prefix="azure-jit-emulator-"))
    try:
        asyncio.run(
            _serve(emulator, cert_dir=cert_dir, port=args.port, admin_token=args.admin_token)
        )
    except OSError as exc:
        print(f"azure-arm-emulator: cannot serve: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


async def _serve(emulator: Emulator, *, cert_dir: Path, port: int, admin_token: str | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = EmulatorServer(emulator, cert_dir=cert_dir, port=port, admin_token=admin_token)
    await server.start()
    try:
        print(f"emulator endpoint: {server.base_url}", flush=True)
        print(f"emulator ca bundle: {server.ca_path}", flush=True)
        print(f"emulator admin api: {server.admin_url}", flush=True)
        print(f"emulator entra authority: {server.base_url} (AZURE_AUTHORITY_HOST)", flush=True)
        print(
            f"emulator ready: {server.base_url} ca={server.ca_path} admin={server.admin_url}",
            flush=True,
        )
        await stop.wait()
    finally:
        await server.stop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        print("emulator stopped", flush=True)
