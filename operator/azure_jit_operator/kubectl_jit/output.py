"""What ``kubectl jit`` prints: the ``list`` table, the ``status`` description, the
connection hint of an open request, and times as people read them.

Pure functions of JSON dicts (as the API server returns them) and ``now``; nothing here
talks to the cluster, so every layout is unit-tested.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from azure_jit_operator.domain.approvals import (
    APPROVED,
    DENIED,
    ApprovalMode,
    Requester,
    parse_records,
)
from azure_jit_operator.domain.timestamps import parse_timestamp
from azure_jit_operator.kubectl_jit.chain_output import chain_lines

NONE = "-"
LIST_HEADERS = ("NAME", "POLICY", "VM", "PORTS", "PHASE", "EXPIRES", "REQUESTER", "APPROVALS")
WELL_KNOWN = {
    22: "ssh <user>@{vm}",
    3389: "mstsc /v:{vm}",
    5985: "Enter-PSSession -ComputerName {vm}",
    5986: "Enter-PSSession -ComputerName {vm} -UseSSL",
}


# ----------------------------------------------------------------------------- small pieces


def age(delta: timedelta) -> str:
    """kubectl's compact spelling of a span: 45s, 12m, 3h20m, 5d."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes}m"
    hours, rest = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    return f"{hours // 24}d"


def relative(moment: datetime, now: datetime) -> str:
    """``in 59m`` for the future, ``3m ago`` for the past."""
    if moment >= now:
        return f"in {age(moment - now)}"
    return f"{age(now - moment)} ago"


def when(text: object, now: datetime) -> str:
    """A recorded RFC 3339 time with its distance from now, or ``-``."""
    if not text:
        return NONE
    try:
        moment = parse_timestamp(str(text))
    except ValueError:
        return str(text)
    return f"{text} ({relative(moment, now)})"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, indent: str = "") -> str:
    """Columns padded to their widest cell, three spaces apart, as kubectl prints them."""
    grid = [list(headers), *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in grid) for i in range(len(headers))]
    lines = [
        indent + "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in grid
    ]
    return "\n".join(line.rstrip() for line in lines)


def _spec(request: Mapping[str, Any]) -> Mapping[str, Any]:
    return request.get("spec") or {}


def _status(request: Mapping[str, Any]) -> Mapping[str, Any]:
    return request.get("status") or {}


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def port_numbers(request: Mapping[str, Any]) -> list[int]:
    return [int(p["number"]) for p in _spec(request).get("ports") or () if "number" in p]


def format_ports(request: Mapping[str, Any]) -> str:
    """``port 22`` / ``ports 22, 443``."""
    numbers = port_numbers(request)
    if len(numbers) == 1:
        return f"port {numbers[0]}"
    return "ports " + ", ".join(str(n) for n in numbers) if numbers else "no ports"


def requester_name(request: Mapping[str, Any]) -> str:
    requester = Requester.from_dict(_spec(request).get("requester"))
    return requester.username if requester else ""


# ----------------------------------------------------------------------------- approvals


@dataclass(frozen=True, slots=True)
class ApprovalRule:
    """What a request's JitPolicy asks for: None ``required`` means automatic approval."""

    policy: str
    required: int | None


def approval_rule(policy: Mapping[str, Any]) -> ApprovalRule:
    """The approval part of a JitPolicy (the CRD defaults fill mode and count)."""
    approval = _spec(policy).get("approval") or {}
    name = str(_meta(policy).get("name", ""))
    if approval.get("mode", ApprovalMode.AUTOMATIC.value) != ApprovalMode.MANUAL.value:
        return ApprovalRule(policy=name, required=None)
    required = approval.get("requiredApprovals", 1)
    return ApprovalRule(policy=name, required=required if isinstance(required, int) else 1)


@dataclass(frozen=True, slots=True)
class ApprovalTally:
    approvers: tuple[str, ...]  # distinct, in order, never the requester
    denied_by: str | None


def tally(request: Mapping[str, Any]) -> ApprovalTally:
    """Count as the operator counts: the requester's own entries never count."""
    requester = requester_name(request)
    records = [r for r in parse_records(_status(request).get("approvals")) if r.user != requester]
    denial = next((r.user for r in records if r.decision == DENIED), None)
    approvers = tuple(dict.fromkeys(r.user for r in records if r.decision == APPROVED))
    return ApprovalTally(approvers=approvers, denied_by=denial)


def approvals_cell(request: Mapping[str, Any], rule: ApprovalRule | None) -> str:
    """``n/N`` under a manual policy, ``auto`` under an automatic one, ``n`` when unknown."""
    counted = tally(request)
    if counted.denied_by is not None:
        return "denied"
    if rule is None:
        return str(len(counted.approvers)) if counted.approvers else NONE
    if rule.required is None:
        return "auto"
    return f"{len(counted.approvers)}/{rule.required}"


# ----------------------------------------------------------------------------- list


def list_table(
    requests: Sequence[Mapping[str, Any]],
    *,
    rules: Mapping[tuple[str, str], ApprovalRule] | None,
    now: datetime,
    all_namespaces: bool,
) -> str:
    """The ``list`` table; ``rules`` maps (namespace, policy) to its approval rule, or is
    None when policies could not be read."""
    rows = []
    for request in sorted(
        requests, key=lambda r: (_meta(r).get("namespace", ""), _meta(r).get("name", ""))
    ):
        meta, spec, status = _meta(request), _spec(request), _status(request)
        namespace = str(meta.get("namespace", ""))
        policy = str(spec.get("policyName", ""))
        rule = (rules or {}).get((namespace, policy)) if rules is not None else None
        expires = status.get("expiresAt")
        row = [
            str(meta.get("name", "")),
            policy,
            str(spec.get("virtualMachine", "")),
            ",".join(str(n) for n in port_numbers(request)) or NONE,
            str(status.get("phase") or "Pending"),
            relative(parse_timestamp(str(expires)), now) if expires else NONE,
            requester_name(request) or NONE,
            approvals_cell(request, rule),
        ]
        rows.append([namespace, *row] if all_namespaces else row)
    headers = ("NAMESPACE", *LIST_HEADERS) if all_namespaces else LIST_HEADERS
    return table(headers, rows)


# ----------------------------------------------------------------------------- status


@dataclass(frozen=True, slots=True)
class EventLine:
    type: str
    reason: str
    message: str
    count: int
    last_seen: datetime | None


def describe(
    request: Mapping[str, Any],
    *,
    rule: ApprovalRule | None,
    events: Sequence[EventLine] | None,
    events_note: str = "",
    now: datetime,
) -> str:
    """The ``status`` description: fields, ports, approvals, conditions, recent Events.
    ``events`` None means they could not be read; ``events_note`` says why."""
    meta, spec, status = _meta(request), _spec(request), _status(request)
    name = str(meta.get("name", ""))
    phase = str(status.get("phase") or "Pending")
    fields = [
        ("Name", name),
        ("Namespace", str(meta.get("namespace", ""))),
        ("Policy", str(spec.get("policyName", ""))),
        ("VM", str(spec.get("virtualMachine", ""))),
        ("Duration", str(spec.get("duration", ""))),
        ("Reason", str(spec.get("justification", ""))),
        ("Requester", requester_name(request) or NONE),
        ("Created", when(meta.get("creationTimestamp"), now)),
        ("Phase", phase + ("  (being deleted)" if meta.get("deletionTimestamp") else "")),
        ("Message", str(status.get("message") or NONE)),
        ("Started", when(status.get("startTime"), now)),
        ("Expires", when(status.get("expiresAt"), now)),
        ("Closed", when(status.get("closedAt"), now)),
    ]
    lines = [f"{label + ':':<12}{value}" for label, value in fields]
    lines += chain_lines(request)
    lines += ["Ports:", table(("PORT", "SOURCE", "STATE"), _port_rows(request), indent="  ")]
    lines += _approval_lines(request, rule, now=now, phase=phase)
    conditions = status.get("conditions") or []
    lines.append("Conditions:" + ("" if conditions else f"  {NONE}"))
    if conditions:
        lines.append(
            table(
                ("TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"),
                (
                    [
                        str(c.get("type", "")),
                        str(c.get("status", "")),
                        str(c.get("reason", "")),
                        _since(c.get("lastTransitionTime"), now),
                        str(c.get("message", "")),
                    ]
                    for c in conditions
                ),
                indent="  ",
            )
        )
    lines += _event_lines(events, events_note, now=now)
    return "\n".join(lines)


def _since(text: object, now: datetime) -> str:
    if not text:
        return NONE
    try:
        return relative(parse_timestamp(str(text)), now)
    except ValueError:
        return str(text)


def _port_rows(request: Mapping[str, Any]) -> list[list[str]]:
    observed = {int(p["number"]): p for p in _status(request).get("ports") or () if "number" in p}
    rows = []
    for wanted in _spec(request).get("ports") or ():
        number = int(wanted.get("number", 0))
        seen = observed.get(number, {})
        source = seen.get("sourceAddressPrefix") or wanted.get("sourceAddressPrefix", "")
        rows.append([str(number), str(source), str(seen.get("state") or NONE)])
    return rows


def _approval_lines(
    request: Mapping[str, Any], rule: ApprovalRule | None, *, now: datetime, phase: str
) -> list[str]:
    records = parse_records(_status(request).get("approvals"))
    counted = tally(request)
    policy = str(_spec(request).get("policyName", ""))
    if rule is None:
        head = f"{len(counted.approvers)} approval(s) (cannot read JitPolicy {policy})"
    elif rule.required is None:
        head = f"not required (JitPolicy {policy} approves automatically)"
    else:
        head = f"{len(counted.approvers)} of {rule.required} required"
        if counted.denied_by:
            head += f"; denied by {counted.denied_by}"
    lines = [f"{'Approvals:':<12}{head}"]
    if records:
        lines.append(
            table(
                ("USER", "DECISION", "TIME", "REASON"),
                (
                    [
                        r.user,
                        r.decision,
                        _since_record(r.time, now),
                        r.reason or NONE,
                    ]
                    for r in records
                ),
                indent="  ",
            )
        )
    elif rule is not None and rule.required is not None and phase == "Pending":
        name = str(_meta(request).get("name", ""))
        lines.append(f"  none yet: an approver runs `kubectl jit approve {name}`")
    return lines


def _since_record(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return NONE
    return f"{moment.strftime('%Y-%m-%dT%H:%M:%SZ')} ({relative(moment, now)})"


def _event_lines(events: Sequence[EventLine] | None, note: str, *, now: datetime) -> list[str]:
    if events is None:
        return [f"Events:     (not shown: {note})" if note else "Events:     (not shown)"]
    if not events:
        return [f"Events:     {NONE}"]
    rows = [
        [
            relative(e.last_seen, now) if e.last_seen else NONE,
            e.type,
            e.reason,
            e.message + (f" (x{e.count})" if e.count > 1 else ""),
        ]
        for e in events
    ]
    return ["Events:", table(("LAST SEEN", "TYPE", "REASON", "MESSAGE"), rows, indent="  ")]


# ----------------------------------------------------------------------------- connecting


def connect_hint(request: Mapping[str, Any], *, now: datetime) -> str:
    """How to use an Active request. The VM's address is not in the request (Azure knows
    it, the operator does not record it), so the hint names the VM and says so."""
    spec, status = _spec(request), _status(request)
    vm = str(spec.get("virtualMachine", ""))
    name = str(_meta(request).get("name", ""))
    expires = status.get("expiresAt")
    until = f" until {when(expires, now)}" if expires else ""
    sources = {
        int(p["number"]): str(p.get("sourceAddressPrefix", ""))
        for p in status.get("ports") or spec.get("ports") or ()
        if "number" in p
    }
    commands = [
        (WELL_KNOWN.get(number, "{vm}:" + str(number)).format(vm=vm), number, source)
        for number, source in sorted(sources.items())
    ]
    width = max(len(command) for command, _, _ in commands) if commands else 0
    lines = [f"{vm} is open for you{until}:"]
    lines += [
        f"  {command.ljust(width)}   # port {number} open from {source}"
        for command, number, source in commands
    ]
    lines.append(
        f"({vm} is the Azure VM name: use its IP address or DNS name where it does not resolve)"
    )
    lines.append(f"close it early: kubectl jit revoke {name}")
    return "\n".join(lines)
