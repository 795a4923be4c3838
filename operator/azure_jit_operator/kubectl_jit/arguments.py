"""Command line parsing for ``kubectl jit``: the parser and the typed options it yields.

Values are checked here, before anything talks to the cluster, with the same rules as the
CRD (durations 1m..24h, ports 1-65535, prefixes without host bits), so a typo is a usage
error (exit code 2) with a sentence saying what is accepted, not a round trip to the API
server. The connection flags (``--kubeconfig``, ``--context``, ``-n``) work before and after
the subcommand, as with kubectl.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from azure_jit_operator.domain.approvals import APPROVED, DENIED
from azure_jit_operator.domain.durations import DurationError, parse_kube_duration
from azure_jit_operator.domain.prefixes import PrefixError, parse_prefix
from azure_jit_operator.kubectl_jit import chain_arguments
from azure_jit_operator.kubectl_jit.chain_arguments import ChainOptions
from azure_jit_operator.kubectl_jit.schedule_arguments import (
    ScheduleOptions,
    add_schedule_parser,
    schedule_options,
    schedule_target,
)

PROG = "kubectl jit"
USAGE_ERROR = 2
MIN_DURATION = timedelta(minutes=1)
MAX_DURATION = timedelta(hours=24)
MAX_JUSTIFICATION = 500  # spec.justification in the CRD
MAX_DECISION_REASON = 1024  # status.approvals[].reason in the CRD
DEFAULT_WAIT = timedelta(minutes=5)
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_VM = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9_])?$")

EPILOG = """\
examples:
  kubectl jit request --policy web-admins --vm vm-web-01 --port 22 --for 1h \\
      --reason "INC-4711 disk full" --from 198.51.100.7/32 --wait
  kubectl jit list -A
  kubectl jit approve vm-web-01-22-x7k2p
  kubectl jit deny vm-web-01-22-x7k2p --reason "change freeze until Monday"
  kubectl jit status vm-web-01-22-x7k2p
  kubectl jit revoke vm-web-01-22-x7k2p --wait
  kubectl jit extend vm-web-01-22-x7k2p --for 30m
  kubectl jit request --emergency --policy web-admins --vm vm-web-01 --port 22 --for 30m \
      --reason "INC-4712 outage, database down" --from 198.51.100.7/32
  kubectl jit review vm-web-01-22-x7k2p
  kubectl jit schedule create weekday-maintenance --cron '0 9 * * 1-5' \
      --time-zone Europe/Berlin --for 1h --policy web-admins --vm vm-web-01 --port 22 \
      --from 198.51.100.7/32 --reason "CHG-1234 weekday maintenance"
  kubectl jit approve schedule/weekday-maintenance
  kubectl jit schedule list
  kubectl jit schedule suspend weekday-maintenance

exit codes: 0 done, 1 refused / denied / failed / timed out, 2 usage error
"""


@dataclass(frozen=True, slots=True)
class Connection:
    """Where to connect: kubeconfig file(s), context and namespace (None: the context's)."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None


@dataclass(frozen=True, slots=True)
class RequestOptions:
    policy: str
    vm: str
    ports: tuple[int, ...]
    duration: timedelta
    reason: str
    source: str | None  # None with --my-ip: detected when the command runs
    name: str | None
    wait: bool
    timeout: timedelta
    emergency: bool = False  # break-glass: spec.emergency


@dataclass(frozen=True, slots=True)
class DecisionOptions:
    name: str
    decision: str  # Approved | Denied
    reason: str
    schedule: bool = False  # NAME was schedule/NAME: a decision on a JitAccessSchedule


@dataclass(frozen=True, slots=True)
class RevokeOptions:
    name: str
    wait: bool
    timeout: timedelta


@dataclass(frozen=True, slots=True)
class ListOptions:
    all_namespaces: bool


@dataclass(frozen=True, slots=True)
class StatusOptions:
    name: str
    events: int


Options = (
    RequestOptions
    | DecisionOptions
    | RevokeOptions
    | ListOptions
    | StatusOptions
    | ChainOptions
    | ScheduleOptions
)


@dataclass(frozen=True, slots=True)
class Invocation:
    """One parsed command line."""

    connection: Connection
    options: Options


# ----------------------------------------------------------------------------- value types


def duration(text: str) -> timedelta:
    """``--for``: 1m..24h in the manifests' spelling (90m, 1h30m)."""
    try:
        value = parse_kube_duration(text)
    except DurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not MIN_DURATION <= value <= MAX_DURATION:
        raise argparse.ArgumentTypeError(f"{text} is out of range: use 1m to 24h")
    return value


def wait_timeout(text: str) -> timedelta:
    """``--timeout``: any positive duration (5m, 30s, 2h)."""
    try:
        value = parse_kube_duration(text)
    except DurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value <= timedelta(0):
        raise argparse.ArgumentTypeError("the timeout must be longer than 0s")
    return value


def port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: use a number from 1 to 65535")
    return int(text)


def source_prefix(text: str) -> str:
    """``--from``: an IP address, a CIDR range without host bits, or ``*``."""
    try:
        parse_prefix(text)
    except PrefixError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def object_name(text: str) -> str:
    if len(text) > 253 or not _NAME.match(text):
        raise argparse.ArgumentTypeError(
            f"invalid name {text!r}: use lower-case letters, digits, '-' and '.', starting and "
            "ending with a letter or digit (at most 253 characters)"
        )
    return text


def decision_target(text: str) -> str:
    """``NAME`` of a request, or ``schedule/NAME`` of a JitAccessSchedule."""
    name = schedule_target(text)
    object_name(text if name is None else name)
    return text


def vm_name(text: str) -> str:
    if len(text) > 64 or not _VM.match(text):
        raise argparse.ArgumentTypeError(
            f"invalid virtual machine name {text!r}: use the VM's Azure name as listed in the "
            "JitPolicy (letters, digits, '.', '_' and '-', at most 64 characters)"
        )
    return text


def _text(limit: int, what: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{what} must not be empty")
        if len(text) > limit:
            raise argparse.ArgumentTypeError(f"{what} is too long: at most {limit} characters")
        return text

    return check


# ----------------------------------------------------------------------------- the parser


def _connection_flags() -> argparse.ArgumentParser:
    """Flags accepted before and after the subcommand. SUPPRESS keeps a subcommand's absent
    flag from overwriting one given before it."""
    flags = argparse.ArgumentParser(add_help=False)
    group = flags.add_argument_group("connection")
    group.add_argument(
        "--kubeconfig",
        default=argparse.SUPPRESS,
        help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)",
    )
    group.add_argument(
        "--context", default=argparse.SUPPRESS, help="kubeconfig context (default: current)"
    )
    group.add_argument(
        "-n",
        "--namespace",
        default=argparse.SUPPRESS,
        type=object_name,
        help="namespace (default: the context's namespace, else 'default')",
    )
    return flags


def build_parser() -> argparse.ArgumentParser:
    common = _connection_flags()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Ask for, approve and revoke Just-in-Time access to Azure VM ports.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    request = sub.add_parser(
        "request",
        parents=[common],
        help="ask for ports of a VM to be opened",
        description="Create a JitAccessRequest and print its name. The operator checks it "
        "against the JitPolicy, waits for approvals where the policy wants them, and opens "
        "the ports through Azure JIT until the time is up.",
    )
    request.add_argument("--policy", required=True, type=object_name, help="the JitPolicy")
    request.add_argument("--vm", required=True, type=vm_name, help="the virtual machine")
    request.add_argument(
        "--port",
        dest="ports",
        action="append",
        required=True,
        type=port,
        metavar="PORT",
        help="a port to open (repeat for more)",
    )
    request.add_argument(
        "--for",
        dest="duration",
        required=True,
        type=duration,
        metavar="DURATION",
        help="how long, 1m to 24h (e.g. 30m, 1h, 1h30m)",
    )
    request.add_argument(
        "--reason",
        required=True,
        type=_text(MAX_JUSTIFICATION, "the reason"),
        help="why, e.g. a ticket id (recorded in Azure and in Events)",
    )
    source = request.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--from",
        dest="source",
        type=source_prefix,
        metavar="PREFIX",
        help="where you connect from: an IP address or CIDR range (e.g. 198.51.100.7/32)",
    )
    source.add_argument(
        "--my-ip",
        action="store_true",
        help="your public IP address, from $KUBECTL_JIT_MY_IP or the echo service named in "
        "$KUBECTL_JIT_MY_IP_URL",
    )
    request.add_argument(
        "--name", type=object_name, help="name of the request (default: <vm>-<port>-<random>)"
    )
    _wait_flags(request, "until the ports are open (or the request is Denied or Failed)")
    request.add_argument(
        "--emergency",
        action="store_true",
        help="break-glass: open without approval where the JitPolicy allows it "
        "(spec.breakGlass); raises an alert and needs an approver's review afterwards "
        "(kubectl jit review); the reason must say what the emergency is (10+ characters)",
    )

    approve = sub.add_parser(
        "approve",
        parents=[common],
        help="approve a request (needs the 'approve' verb on its JitPolicy)",
        description="Record your approval in the request's status.approvals.",
    )
    approve.add_argument(
        "name",
        type=decision_target,
        metavar="NAME",
        help="a request, or schedule/NAME to approve a JitAccessSchedule for all its windows",
    )
    approve.add_argument(
        "--reason",
        default=None,
        type=_text(MAX_DECISION_REASON, "the reason"),
        help="optional note recorded with the approval",
    )

    deny = sub.add_parser(
        "deny",
        parents=[common],
        help="deny a request (needs the 'approve' verb on its JitPolicy)",
        description="Record your denial, with a reason, in the request's status.approvals; "
        "one denial denies the request.",
    )
    deny.add_argument(
        "name", type=decision_target, metavar="NAME", help="a request, or schedule/NAME"
    )
    deny.add_argument(
        "--reason",
        required=True,
        type=_text(MAX_DECISION_REASON, "the reason"),
        help="why (shown to the requester)",
    )

    revoke = sub.add_parser(
        "revoke",
        parents=[common],
        help="close the ports now and delete the request",
        description="Delete the request; the operator closes its ports before it goes.",
    )
    revoke.add_argument("name", type=object_name, metavar="NAME")
    _wait_flags(revoke, "until the ports are closed and the request is gone")

    listing = sub.add_parser(
        "list", parents=[common], help="list requests", description="List JitAccessRequests."
    )
    listing.add_argument(
        "-A", "--all-namespaces", action="store_true", help="list requests in every namespace"
    )

    status = sub.add_parser(
        "status",
        parents=[common],
        help="show one request in detail",
        description="Phase, conditions, ports, approvals, times and recent Events.",
    )
    status.add_argument("name", type=object_name, metavar="NAME")
    status.add_argument(
        "--events", type=int, default=10, metavar="N", help="how many recent Events (default 10)"
    )
    chain_arguments.add_parsers(
        sub,
        common,
        object_name=object_name,
        duration=duration,
        text=_text,
        wait_flags=_wait_flags,
    )
    add_schedule_parser(
        sub,
        common,
        types={
            "name": object_name,
            "vm": vm_name,
            "port": port,
            "prefix": source_prefix,
            "duration": duration,
            "text": _text(MAX_JUSTIFICATION, "the reason"),
        },
    )
    return parser


def _wait_flags(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--wait", action="store_true", help=f"wait {what}")
    parser.add_argument(
        "--timeout",
        type=wait_timeout,
        default=None,
        metavar="DURATION",
        help="how long --wait waits (default 5m)",
    )


def parse_args(argv: Sequence[str] | None = None) -> Invocation:
    """Parse a command line; usage errors exit with code 2 (argparse's convention)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "timeout", None) is not None and not args.wait:
        parser.error("--timeout only applies with --wait")
    if getattr(args, "events", 0) < 0:
        parser.error("--events must be 0 or more")
    connection = Connection(
        kubeconfig=getattr(args, "kubeconfig", None),
        context=getattr(args, "context", None),
        namespace=getattr(args, "namespace", None),
    )
    return Invocation(connection=connection, options=_options(args))


def _options(args: argparse.Namespace) -> Options:  # noqa: PLR0911 - one command each
    command: str = args.command
    chained = chain_arguments.options_from(args, default_wait=DEFAULT_WAIT)
    if chained is not None:
        return chained
    if command == "request":
        return RequestOptions(
            policy=args.policy,
            vm=args.vm,
            ports=tuple(dict.fromkeys(args.ports)),
            duration=args.duration,
            reason=args.reason,
            source=args.source,
            name=args.name,
            wait=args.wait,
            timeout=args.timeout or DEFAULT_WAIT,
            emergency=args.emergency,
        )
    if command in ("approve", "deny"):
        scheduled = schedule_target(args.name)
        return DecisionOptions(
            name=scheduled or args.name,
            decision=APPROVED if command == "approve" else DENIED,
            reason=args.reason or "",
            schedule=scheduled is not None,
        )
    if command == "schedule":
        return schedule_options(args)
    if command == "revoke":
        return RevokeOptions(name=args.name, wait=args.wait, timeout=args.timeout or DEFAULT_WAIT)
    if command == "list":
        return ListOptions(all_namespaces=args.all_namespaces)
    return StatusOptions(name=args.name, events=args.events)
