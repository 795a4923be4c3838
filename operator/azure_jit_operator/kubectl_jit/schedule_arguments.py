"""Command line of ``kubectl jit schedule create|list|suspend|resume`` and the
``schedule/NAME`` target of ``approve``/``deny``: the ``schedule`` parser and its typed
options (what the commands do is :mod:`.schedules`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from azure_jit_operator.domain.durations import DurationError, parse_kube_duration

SCHEDULE_PREFIXES = ("schedule/", "jitaccessschedule/", "jitsched/")


@dataclass(frozen=True, slots=True)
class ScheduleCreateOptions:
    name: str
    cron: str
    time_zone: str
    policy: str
    vm: str
    ports: tuple[int, ...]
    source: str
    duration: timedelta
    reason: str
    starting_deadline: timedelta | None
    suspend: bool


@dataclass(frozen=True, slots=True)
class ScheduleListOptions:
    all_namespaces: bool


@dataclass(frozen=True, slots=True)
class ScheduleSuspendOptions:
    name: str
    suspend: bool  # False: resume


ScheduleOptions = ScheduleCreateOptions | ScheduleListOptions | ScheduleSuspendOptions


def schedule_target(name: str) -> str | None:
    """The schedule's name in ``schedule/NAME`` (approve, deny), else None (a request)."""
    for prefix in SCHEDULE_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return None


# ----------------------------------------------------------------------------- the parser


def add_schedule_parser(
    sub: Any,
    common: argparse.ArgumentParser,
    *,
    types: Mapping[str, Callable[[str], Any]],
) -> None:
    """Add ``schedule`` with its subcommands; ``types`` are the value checks of
    :mod:`.arguments` (name, vm, port, prefix, duration, text)."""
    schedule = sub.add_parser(
        "schedule",
        parents=[common],
        help="recurring access windows (JitAccessSchedules)",
        description="Standing windows: at each start of a cron schedule the operator opens "
        "the same access for a fixed time, one JitAccessRequest per window. Under a JitPolicy "
        "that requires approval, approve the schedule once: kubectl jit approve schedule/NAME.",
    )
    verbs = schedule.add_subparsers(dest="schedule_command", required=True, metavar="SUBCOMMAND")
    create = verbs.add_parser(
        "create",
        parents=[common],
        help="create a schedule",
        description="Create a JitAccessSchedule. Example: kubectl jit schedule create "
        "weekday-maintenance --cron '0 9 * * 1-5' --time-zone Europe/Berlin --for 1h "
        "--policy web-admins --vm vm-web-01 --port 22 --from 198.51.100.7/32 "
        "--reason 'CHG-1234 weekday maintenance'",
    )
    create.add_argument("name", type=types["name"], metavar="NAME")
    create.add_argument(
        "--cron",
        required=True,
        help="when each window starts: five cron fields (e.g. '0 9 * * 1-5') or @daily etc.",
    )
    create.add_argument("--time-zone", default="UTC", help="IANA time zone of --cron (default UTC)")
    create.add_argument(
        "--for",
        dest="duration",
        required=True,
        type=types["duration"],
        metavar="DURATION",
        help="how long each window lasts, 1m to 24h",
    )
    create.add_argument("--policy", required=True, type=types["name"], help="the JitPolicy")
    create.add_argument("--vm", required=True, type=types["vm"], help="the virtual machine")
    create.add_argument(
        "--port",
        dest="ports",
        action="append",
        required=True,
        type=types["port"],
        metavar="PORT",
        help="a port to open in each window (repeat for more)",
    )
    create.add_argument(
        "--from",
        dest="source",
        required=True,
        type=types["prefix"],
        metavar="PREFIX",
        help="where connections come from: an IP address or CIDR range",
    )
    create.add_argument(
        "--reason", required=True, type=types["text"], help="why, e.g. a change ticket"
    )
    create.add_argument(
        "--starting-deadline",
        type=_deadline,
        default=None,
        metavar="DURATION",
        help="after operator downtime, skip a window whose start was missed by more than "
        "this (default: open it late for what is left)",
    )
    create.add_argument(
        "--suspended", action="store_true", help="create it suspended (no window opens)"
    )

    listing = verbs.add_parser(
        "list", parents=[common], help="list schedules", description="List JitAccessSchedules."
    )
    listing.add_argument(
        "-A", "--all-namespaces", action="store_true", help="list schedules in every namespace"
    )
    for verb, what in (
        ("suspend", "stop opening windows (open ones keep their end)"),
        ("resume", "open windows again, from the next start on"),
    ):
        parser = verbs.add_parser(verb, parents=[common], help=what, description=what)
        parser.add_argument("name", type=types["name"], metavar="NAME")


def _deadline(text: str) -> timedelta:
    try:
        value = parse_kube_duration(text)
    except DurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value > timedelta(hours=24):
        raise argparse.ArgumentTypeError(f"{text} is out of range: use 0s to 24h")
    return value


def schedule_options(args: argparse.Namespace) -> ScheduleOptions:
    command: str = args.schedule_command
    if command == "create":
        return ScheduleCreateOptions(
            name=args.name,
            cron=args.cron,
            time_zone=args.time_zone,
            policy=args.policy,
            vm=args.vm,
            ports=tuple(dict.fromkeys(args.ports)),
            source=args.source,
            duration=args.duration,
            reason=args.reason,
            starting_deadline=args.starting_deadline,
            suspend=args.suspended,
        )
    if command == "list":
        return ScheduleListOptions(all_namespaces=args.all_namespaces)
    return ScheduleSuspendOptions(name=args.name, suspend=command == "suspend")
