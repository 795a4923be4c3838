"""Extending a JitAccessRequest: a follow-on request (``spec.extends``) for the same VM,
ports and sources that shares the port with its predecessor and ends later.

The rules that keep an extension from bypassing the policy:

- the predecessor must exist and still be Active (before its ``expiresAt``) when the
  extension opens: an extension closes no gap after the port closed; a finished request is
  refused, not re-opened;
- the extension asks for exactly what the predecessor holds (policy, VM, ports, sources):
  it shares the predecessor's Azure grant (same source), never adds a second source;
- one extension per request: the oldest live request extending it wins, later ones are
  refused (extend the extension instead, which makes a chain);
- the chain's whole span, from its first request's start to the new end (the predecessor's
  ``expiresAt`` plus the extension's duration), stays within every requested port's
  ``maxRequestAccessDuration``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .durations import format_kube_duration
from .lifecycle import Phase
from .request_rules import Denial
from .specs import JitAccessRequestSpec, JitPolicySpec
from .timestamps import format_timestamp

PREDECESSOR_NOT_FOUND = "PredecessorNotFound"
PREDECESSOR_FINISHED = "PredecessorFinished"
ALREADY_EXTENDED = "AlreadyExtended"
EXTENSION_MISMATCH = "ExtensionMismatch"
CHAIN_TOO_LONG = "ChainExceedsMaximum"
WAITING_FOR_PREDECESSOR = "WaitingForPredecessor"


@dataclass(frozen=True, slots=True)
class Predecessor:
    """What an extension needs to know of the request it extends."""

    name: str
    phase: Phase
    spec: JitAccessRequestSpec | None
    start_time: datetime | None
    expires_at: datetime | None
    chain_start: datetime | None  # its own chain's start, when it is an extension itself


@dataclass(frozen=True, slots=True)
class Link:
    """An admissible extension: of whom, since when the chain runs, and its end."""

    predecessor: str
    chain_start: datetime
    ends_at: datetime


@dataclass(frozen=True, slots=True)
class NotYet:
    """The predecessor has not opened yet: the extension waits (its own timeout applies)."""

    reason: str
    message: str


def check_extension(  # noqa: PLR0911 - one outcome per rule, in the order they apply
    spec: JitAccessRequestSpec,
    predecessor: Predecessor | None,
    policy: JitPolicySpec,
    *,
    request_name: str,
    first_extension: str | None,
    now: datetime,
) -> Denial | NotYet | Link:
    """Judge an extension (``spec.extends`` set) against its predecessor and policy.

    ``first_extension`` is the name of the oldest live request extending the predecessor
    (None when there is none besides this one)."""
    wanted = spec.extends
    if predecessor is None:
        return Denial(
            PREDECESSOR_NOT_FOUND,
            f"spec.extends names {wanted!r}, which does not exist in this namespace; extend an "
            "Active request (kubectl jit list), or create a new request",
        )
    if first_extension is not None and first_extension != request_name:
        return Denial(
            ALREADY_EXTENDED,
            f"{wanted} is already extended by {first_extension}; extend {first_extension} "
            f"instead (kubectl jit extend {first_extension} --for ...)",
        )
    expires = predecessor.expires_at
    if predecessor.phase.is_terminal:
        ended = f" at {format_timestamp(expires)}" if expires else ""
        return Denial(
            PREDECESSOR_FINISHED,
            f"{wanted} is {predecessor.phase.value}{ended}: an extension only continues access "
            "that is still open, so its port closed; create a new request instead",
        )
    if predecessor.phase is Phase.ACTIVE and expires is not None and now >= expires:
        # Its close is running: judged again once it is recorded (then refused), so that the
        # predecessor's Expired message can still name this extension.
        return NotYet(
            WAITING_FOR_PREDECESSOR,
            f"{wanted} reached its expiry at {format_timestamp(expires)} before this "
            "extension could open; its port is closing",
        )
    mismatch = _mismatch(spec, predecessor)
    if mismatch:
        return Denial(
            EXTENSION_MISMATCH,
            f"an extension must ask for exactly what {wanted} holds; {mismatch} "
            "(kubectl jit extend copies them)",
        )
    if predecessor.phase is not Phase.ACTIVE or expires is None:
        return NotYet(
            WAITING_FOR_PREDECESSOR,
            f"{wanted} is not Active yet; this extension is judged once it is open",
        )
    start = predecessor.chain_start or predecessor.start_time or now
    ends = expires + spec.duration
    denial = _chain_denial(spec, policy, start=start, predecessor_end=expires, ends=ends)
    if denial is not None:
        return denial
    return Link(predecessor=predecessor.name, chain_start=start, ends_at=ends)


def chain_room(
    spec: JitAccessRequestSpec, policy: JitPolicySpec, *, start: datetime, predecessor_end: datetime
) -> timedelta:
    """How much longer than ``predecessor_end`` the chain may run on every requested port."""
    vm = policy.virtual_machine(spec.virtual_machine)
    limits = [
        rule.max_request_access_duration
        for port in spec.ports
        if vm is not None and (rule := vm.port(port.number)) is not None
    ]
    if not limits:
        return timedelta(0)
    return max(timedelta(0), start + min(limits) - predecessor_end)


def _chain_denial(
    spec: JitAccessRequestSpec,
    policy: JitPolicySpec,
    *,
    start: datetime,
    predecessor_end: datetime,
    ends: datetime,
) -> Denial | None:
    vm = policy.virtual_machine(spec.virtual_machine)
    if vm is None:
        return None  # check_request says so
    for port in spec.ports:
        rule = vm.port(port.number)
        if rule is None:
            continue
        limit = rule.max_request_access_duration
        if ends - start > limit:
            room = chain_room(spec, policy, start=start, predecessor_end=predecessor_end)
            more = (
                f"at most {format_kube_duration(room)} more is possible"
                if room >= timedelta(minutes=1)
                else "no extension is possible"
            )
            return Denial(
                CHAIN_TOO_LONG,
                f"extending by {format_kube_duration(spec.duration)} would keep port "
                f"{port.number} on {vm.name} open from {format_timestamp(start)} to "
                f"{format_timestamp(ends)} ({format_kube_duration(ends - start)}), over its "
                f"maximum {format_kube_duration(limit)}; {more}",
            )
    return None


def _mismatch(spec: JitAccessRequestSpec, predecessor: Predecessor) -> str:
    theirs = predecessor.spec
    if theirs is None:
        return "its spec is invalid"
    if spec.policy_name != theirs.policy_name:
        return f"policyName is {spec.policy_name!r}, not {theirs.policy_name!r}"
    if spec.virtual_machine.lower() != theirs.virtual_machine.lower():
        return f"virtualMachine is {spec.virtual_machine!r}, not {theirs.virtual_machine!r}"
    mine = sorted((p.number, p.source_prefix.text) for p in spec.ports)
    held = sorted((p.number, p.source_prefix.text) for p in theirs.ports)
    if mine != held:
        return f"ports are {_ports(mine)}, not {_ports(held)}"
    return ""


def _ports(ports: list[tuple[int, str]]) -> str:
    return ", ".join(f"{n} from {p}" for n, p in ports)
