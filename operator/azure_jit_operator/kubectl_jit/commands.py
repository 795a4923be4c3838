"""What each ``kubectl jit`` command does, against one :class:`~.client.Cluster`.

Every command returns its exit code (0 done, 1 refused / denied / failed / timed out) and
writes results to ``out`` and progress to ``err``. Waiting polls the request with a
deadline: a ``get`` every half second needs only the ``get`` verb a requester already has,
where a watch would need ``watch`` too.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from azure_jit_operator.domain.approvals import APPROVED
from azure_jit_operator.domain.durations import format_kube_duration
from azure_jit_operator.kubectl_jit.arguments import (
    DecisionOptions,
    ListOptions,
    RequestOptions,
    RevokeOptions,
    StatusOptions,
)
from azure_jit_operator.kubectl_jit.client import (
    GROUP,
    KIND,
    REFUSED,
    VERSION,
    CliError,
    Cluster,
)
from azure_jit_operator.kubectl_jit.decisions import record_decision
from azure_jit_operator.kubectl_jit.output import (
    ApprovalRule,
    approval_rule,
    connect_hint,
    describe,
    format_ports,
    list_table,
)
from azure_jit_operator.kubectl_jit.schedules import record_schedule_decision

OK = 0
FAILED_PHASES = ("Denied", "Failed", "Expired", "Revoked")
_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Console:
    """Where a command writes, what time it is, and how it waits (replaceable in tests)."""

    out: TextIO
    err: TextIO
    now: Callable[[], datetime] = utc_now
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    interval: float = 0.5
    _said: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def note(self, text: str) -> None:
        """Progress on stderr, each distinct line once."""
        if not self._said or self._said[-1] != text:
            self._said.append(text)
            print(text, file=self.err, flush=True)


# ----------------------------------------------------------------------------- request


def request_manifest(options: RequestOptions, *, source: str) -> dict[str, Any]:
    """The JitAccessRequest to create (``spec.requester`` is stamped by the cluster)."""
    metadata: dict[str, Any] = (
        {"name": options.name}
        if options.name
        else {"generateName": generated_prefix(options.vm, options.ports)}
    )
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": metadata,
        "spec": {
            "policyName": options.policy,
            "virtualMachine": options.vm,
            "ports": [{"number": n, "sourceAddressPrefix": source} for n in options.ports],
            "duration": format_kube_duration(options.duration),
            "justification": options.reason,
            **({"emergency": True} if options.emergency else {}),
        },
    }


def generated_prefix(vm: str, ports: tuple[int, ...]) -> str:
    """``vm-web-01-22-`` : readable, a valid name, room left for the random suffix."""
    stem = _NOT_DNS.sub("-", vm.lower()).strip("-")[:40].strip("-") or "request"
    return f"{stem}-{ports[0]}-" if ports else f"{stem}-"


def run_request(cluster: Cluster, options: RequestOptions, *, source: str, io: Console) -> int:
    try:
        created = cluster.create_request(request_manifest(options, source=source))
    except CliError as exc:
        if exc.status == 409:
            raise CliError(f"{exc.message}\npick another --name, or leave it out") from None
        raise
    name = str(created["metadata"]["name"])
    io.say(f"jitaccessrequest/{name} created in namespace {cluster.namespace}")
    if not options.wait:
        io.say(
            f"follow it: kubectl jit status {name} -n {cluster.namespace}  "
            "(or create it with --wait to wait until it is open)"
        )
        return OK
    final = wait_until_settled(cluster, name, timeout=options.timeout, io=io)
    phase = str((final.get("status") or {}).get("phase"))
    if phase == "Active":
        io.say(connect_hint(final, now=io.now()))
        return OK
    message = str((final.get("status") or {}).get("message") or "no reason recorded")
    io.err.write(f"jitaccessrequest/{name} is {phase}: {message}\n")
    return REFUSED


def wait_until_settled(
    cluster: Cluster, name: str, *, timeout: timedelta, io: Console
) -> dict[str, Any]:
    """Poll until the request is Active or terminal; progress (Pending reasons) to stderr."""
    deadline = io.monotonic() + timeout.total_seconds()
    io.note(f"waiting up to {format_kube_duration(timeout)} for {name} to open ...")
    last: dict[str, Any] = {}
    while True:
        found = cluster.get_request(name)
        if found is None:
            raise CliError(
                f"jitaccessrequest/{name} disappeared while waiting (revoked, or cleaned up); "
                "nothing is open for it"
            )
        last = found
        status = found.get("status") or {}
        phase = str(status.get("phase") or "")
        if phase == "Active" or phase in FAILED_PHASES:
            return found
        if status.get("message"):
            io.note(f"{phase or 'Pending'}: {status['message']}")
        if io.monotonic() >= deadline:
            break
        io.sleep(io.interval)
    message = str((last.get("status") or {}).get("message") or "the operator has not seen it yet")
    raise CliError(
        f"jitaccessrequest/{name} is still Pending after {format_kube_duration(timeout)}: "
        f"{message}\nit stays until it opens or is denied: follow it with "
        f"`kubectl jit status {name}`, or withdraw it with `kubectl jit revoke {name}`"
    )


# ----------------------------------------------------------------------------- approve / deny


def run_decision(cluster: Cluster, options: DecisionOptions, *, io: Console) -> int:
    if options.schedule:
        return _schedule_decision(cluster, options, io=io)
    user = record_decision(
        cluster, options.name, decision=options.decision, reason=options.reason, now=io.now
    )
    name = options.name
    if options.decision == APPROVED:
        io.say(f"jitaccessrequest/{name} approved by {user}")
        io.say(
            "the operator opens it once the JitPolicy's required approvals are in: "
            f"kubectl jit status {name}"
        )
    else:
        io.say(f"jitaccessrequest/{name} denied by {user}: {options.reason}")
        io.say(f"the operator marks it Denied; nothing is opened: kubectl jit status {name}")
    return OK


def _schedule_decision(cluster: Cluster, options: DecisionOptions, *, io: Console) -> int:
    name = options.name
    user, generation = record_schedule_decision(
        cluster, name, decision=options.decision, reason=options.reason, now=io.now
    )
    if options.decision == APPROVED:
        io.say(f"jitaccessschedule/{name} (generation {generation}) approved by {user}")
        io.say(
            "its windows open without further approval once the JitPolicy's required "
            "approvals are in, until its spec changes: kubectl jit schedule list"
        )
    else:
        io.say(
            f"jitaccessschedule/{name} (generation {generation}) denied by {user}: {options.reason}"
        )
        io.say("no window of this generation opens")
    return OK


# ----------------------------------------------------------------------------- revoke


def run_revoke(cluster: Cluster, options: RevokeOptions, *, io: Console) -> int:
    name = options.name
    found = cluster.get_request(name)
    if found is None or not cluster.delete_request(name):
        raise CliError(
            f"jitaccessrequest/{name} not found in namespace {cluster.namespace}: nothing to "
            "revoke (`kubectl jit list` shows what there is)"
        )
    spec = found.get("spec") or {}
    what = f"{format_ports(found)} on {spec.get('virtualMachine', '?')}"
    phase = str((found.get("status") or {}).get("phase") or "Pending")
    successor = (found.get("status") or {}).get("extendedBy")
    if successor and phase == "Active":
        io.say(
            f"note: its extension {successor} is a request of its own and keeps the port open "
            f"until it expires; end it too with `kubectl jit revoke {successor}`"
        )
    if not options.wait:
        io.say(f"jitaccessrequest/{name} deleted")
        if phase == "Active":
            io.say(f"the operator closes {what} before the request goes (--wait waits for it)")
        return OK
    deadline = io.monotonic() + options.timeout.total_seconds()
    while cluster.get_request(name) is not None:
        if io.monotonic() >= deadline:
            raise CliError(
                f"jitaccessrequest/{name} is still there after "
                f"{format_kube_duration(options.timeout)}: the operator closes the ports before "
                "it lets the request go; is the operator running? "
                f"(`kubectl jit status {name}`)"
            )
        io.note(f"waiting for the operator to close {what} ...")
        io.sleep(io.interval)
    if phase == "Active":
        io.say(f"{what} closed; jitaccessrequest/{name} is gone")
    else:
        io.say(f"jitaccessrequest/{name} is gone ({phase}: nothing was open)")
    return OK


# ----------------------------------------------------------------------------- list


def run_list(cluster: Cluster, options: ListOptions, *, io: Console) -> int:
    try:
        requests = cluster.list_requests(all_namespaces=options.all_namespaces)
    except CliError as exc:
        if exc.status == 403 and options.all_namespaces:
            raise CliError(
                f"{exc.message}\nyou may list requests per namespace only: leave out -A "
                "(and pick one with -n)"
            ) from None
        raise
    if not requests:
        where = "any namespace" if options.all_namespaces else f"namespace {cluster.namespace}"
        io.say(
            f"No JitAccessRequests found in {where}. "
            "Ask for access with `kubectl jit request --help`."
        )
        return OK
    policies = cluster.list_policies(all_namespaces=options.all_namespaces)
    rules = None if policies is None else _rules(policies)
    io.say(list_table(requests, rules=rules, now=io.now(), all_namespaces=options.all_namespaces))
    return OK


def _rules(policies: list[dict[str, Any]]) -> dict[tuple[str, str], ApprovalRule]:
    return {
        (
            str((p.get("metadata") or {}).get("namespace", "")),
            str((p.get("metadata") or {}).get("name", "")),
        ): approval_rule(p)
        for p in policies
    }


# ----------------------------------------------------------------------------- status


def run_status(cluster: Cluster, options: StatusOptions, *, io: Console) -> int:
    name = options.name
    found = _read_for_status(cluster, name)
    policy_name = str((found.get("spec") or {}).get("policyName", ""))
    policy = cluster.get_policy(policy_name) if policy_name else None
    events = None
    note = ""
    if options.events:
        try:
            events = cluster.events(name)[-options.events :]
        except CliError as exc:
            if exc.status not in (401, 403):
                raise
            note = f"you may not list events in namespace {cluster.namespace}"
    else:
        note = "--events 0"
    io.say(
        describe(
            found,
            rule=approval_rule(policy) if policy is not None else None,
            events=events,
            events_note=note,
            now=io.now(),
        )
    )
    return OK


def _read_for_status(cluster: Cluster, name: str) -> Mapping[str, Any]:
    try:
        found = cluster.get_request(name)
    except CliError as exc:
        if exc.status != 403:
            raise
        found = cluster.get_request_status(name)  # approvers may read only the status
    if found is None:
        raise CliError(
            f"jitaccessrequest/{name} not found in namespace {cluster.namespace}; list them "
            "with `kubectl jit list` (or -A for every namespace)"
        )
    return found
