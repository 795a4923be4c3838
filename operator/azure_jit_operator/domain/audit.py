"""Audit records: one JSON-ready value per decision about a JitAccessRequest, in the versioned
shape of ``docs/audit/audit-record-v1.schema.json`` (documented in ``docs/audit.md``).

Pure: the reconcile layer gathers the facts (:class:`RequestFacts`) and says what changed;
this module decides which records that makes and builds them. Emitting them is
``azure_jit_operator.audit``'s job.

Actions: ``requested``, ``approved``, ``denied``, ``opened``, ``extended``, ``closed``,
``revoked``, ``emergency``, ``reviewed``. ``outcome`` follows the Elastic Common Schema's
``event.outcome`` (``success`` / ``failure`` / ``unknown``), which SIEMs already map.
Every record has a deterministic ``id`` (a UUID derived from the object's uid, the action and
a discriminator), so a collector can drop a duplicate should one ever be emitted twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from .approvals import APPROVED, DENIED, ApprovalRecord, Requester
from .conditions import Condition
from .lifecycle import Phase
from .request_status import RequestStatus
from .timestamps import format_timestamp

SCHEMA_VERSION = "azurejit.dev/audit/v1"
API_VERSION = "azurejit.dev/v1alpha1"
# Namespace of the records' deterministic ids (uuid5 of "<uid>/<action>/<discriminator>").
_ID_NAMESPACE = uuid.UUID("6f1b7b7e-3f0c-5a52-9d1e-8d0a1c2b3e4f")


class Action(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    DENIED = "denied"
    OPENED = "opened"
    EXTENDED = "extended"
    CLOSED = "closed"
    REVOKED = "revoked"
    EMERGENCY = "emergency"
    REVIEWED = "reviewed"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made the decision: a Kubernetes user (requester, approver, reviewer) or the
    operator itself (its own Kubernetes user name)."""

    type: str  # "user" | "operator"
    username: str
    groups: tuple[str, ...] = ()

    @classmethod
    def operator(cls, username: str) -> Actor:
        return cls("operator", username or "azure-jit-operator")

    @classmethod
    def user(cls, username: str, groups: Sequence[str] = ()) -> Actor:
        return cls("user", username, tuple(groups))

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "username": self.username}
        if self.groups:
            body["groups"] = list(self.groups)
        return body


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What a record says about the request, gathered by the caller from object and status."""

    namespace: str
    name: str
    uid: str
    policy: str
    virtual_machine: str
    ports: tuple[tuple[int, str], ...]  # (number, source prefix)
    duration: str = ""
    justification: str = ""
    requester: Requester | None = None
    virtual_machine_id: str = ""
    policy_id: str = ""
    initiation_id: str = ""
    expires_at: datetime | None = None
    kind: str = "JitAccessRequest"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    action: Action
    outcome: Outcome
    actor: Actor
    facts: RequestFacts
    time: datetime
    reason: str
    message: str
    # Distinguishes records of one action on one object (an approval's index, an extension's
    # number); part of the deterministic id.
    discriminator: str = "0"
    # Facts of this action only (extended: previousExpiresAt, expiresAt; reviewed: ...).
    details: Mapping[str, str | int | float | bool | Sequence[str]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        f = self.facts
        return str(uuid.uuid5(_ID_NAMESPACE, f"{f.uid}/{self.action.value}/{self.discriminator}"))

    def to_dict(self) -> dict[str, Any]:
        f = self.facts
        target: dict[str, Any] = {
            "virtualMachine": f.virtual_machine,
            "ports": [{"number": n, "sourceAddressPrefix": p} for n, p in f.ports],
        }
        if f.duration:
            target["duration"] = f.duration
        if f.expires_at is not None:
            target["expiresAt"] = format_timestamp(f.expires_at)
        azure: dict[str, Any] = {}
        if f.virtual_machine_id:
            azure["virtualMachineId"] = f.virtual_machine_id
        if f.policy_id:
            azure["policyId"] = f.policy_id
        if f.initiation_id:
            azure["initiationId"] = f.initiation_id
        body: dict[str, Any] = {
            "schemaVersion": SCHEMA_VERSION,
            "id": self.id,
            "time": format_timestamp(self.time),
            "action": self.action.value,
            "outcome": self.outcome.value,
            "actor": self.actor.to_dict(),
            "object": {
                "apiVersion": API_VERSION,
                "kind": f.kind,
                "namespace": f.namespace,
                "name": f.name,
                "uid": f.uid,
            },
            "policy": f.policy,
            "target": target,
            "azure": azure,
            "reason": self.reason,
            "message": self.message,
        }
        if f.requester is not None:
            body["requester"] = Actor.user(f.requester.username, f.requester.groups).to_dict()
        if f.justification:
            body["justification"] = f.justification
        if self.details:
            body["details"] = {
                k: list(v) if isinstance(v, (list, tuple)) else v for k, v in self.details.items()
            }
        return body


# A phase entered, the action it records, and its outcome.
_PHASE_ACTIONS: dict[Phase, tuple[Action, Outcome]] = {
    Phase.ACTIVE: (Action.OPENED, Outcome.SUCCESS),
    Phase.EXPIRED: (Action.CLOSED, Outcome.SUCCESS),
    Phase.REVOKED: (Action.REVOKED, Outcome.SUCCESS),
    Phase.DENIED: (Action.DENIED, Outcome.FAILURE),
    # A permanent Azure refusal: the open was attempted and failed.
    Phase.FAILED: (Action.OPENED, Outcome.FAILURE),
}
# A Denied phase with this reason repeats an approver's decision, which has its own record.
_APPROVER_DENIAL = "DeniedByApprover"


def never_written(status: RequestStatus) -> bool:
    """The operator has not written this request's status yet (it is new to it)."""
    return not status.conditions


# The Approved reason of a window request that carries its schedule's approval.
SCHEDULE_APPROVAL = "ApprovedWithSchedule"


def transition_records(
    before: RequestStatus,
    after: RequestStatus,
    *,
    facts: RequestFacts,
    operator: str,
    now: datetime,
) -> list[AuditRecord]:
    """The records of one status write: ``requested`` on the operator's first write of the
    request, and the action of the phase it entered, if the phase changed."""
    records: list[AuditRecord] = []
    if never_written(before):
        requester = facts.requester
        actor = (
            Actor.user(requester.username, requester.groups)
            if requester is not None
            else Actor.user("")
        )
        records.append(
            AuditRecord(
                Action.REQUESTED,
                Outcome.SUCCESS,
                actor,
                facts,
                now,
                "Requested",
                f"access to {_ports_text(facts)} on {facts.virtual_machine} "
                f"requested under JitPolicy {facts.policy!r}",
            )
        )
    scheduled = _schedule_approval(after)
    if scheduled is not None and _schedule_approval(before) is None:
        # A window of a JitAccessSchedule: approved once, on the schedule, by its approvers.
        records.append(
            AuditRecord(
                Action.APPROVED,
                Outcome.SUCCESS,
                Actor.operator(operator),
                facts,
                now,
                scheduled.reason,
                scheduled.message,
                discriminator="schedule",
            )
        )
    entered = after.phase != before.phase and after.phase in _PHASE_ACTIONS
    if entered and not (after.phase is Phase.DENIED and after.reason == _APPROVER_DENIAL):
        action, outcome = _PHASE_ACTIONS[after.phase]
        records.append(
            AuditRecord(
                action, outcome, Actor.operator(operator), facts, now, after.reason, after.message
            )
        )
    return records


def _schedule_approval(status: RequestStatus) -> Condition | None:
    found = next((c for c in status.conditions if c.type == "Approved"), None)
    return found if found is not None and found.reason == SCHEDULE_APPROVAL else None


def decision_records(
    decisions: Sequence[ApprovalRecord],
    *,
    start: int,
    required: int,
    facts: RequestFacts,
    now: datetime,
) -> list[AuditRecord]:
    """One record per approver's decision from index ``start`` on (decisions are permanent
    and append-only, so an index is an exact cursor). The requester's own entries, which the
    webhook refuses and the approval rules ignore, are recorded as failures, as is every
    denial (access refused, as for a ``denied`` by the operator)."""
    records: list[AuditRecord] = []
    requester = facts.requester.username if facts.requester is not None else None
    approvers: list[str] = [
        r.user
        for r in decisions[:start]
        if r.decision == APPROVED and r.user and r.user != requester
    ]
    for index in range(start, len(decisions)):
        entry = decisions[index]
        if entry.decision not in (APPROVED, DENIED):
            continue
        own = requester is not None and entry.user == requester
        when = entry.time or now
        if entry.decision == APPROVED:
            if not own and entry.user not in approvers:
                approvers.append(entry.user)
            message = (
                f"{entry.user} approved ({len(approvers)} of {required} approvals)"
                if not own
                else f"{entry.user} is the requester: their approval does not count"
            )
            action, reason = Action.APPROVED, "Approved"
        else:
            why = f": {entry.reason}" if entry.reason else ""
            message = f"{entry.user} denied the request{why}"
            action, reason = Action.DENIED, "DeniedByApprover"
        records.append(
            AuditRecord(
                action,
                Outcome.FAILURE if own or action is Action.DENIED else Outcome.SUCCESS,
                Actor.user(entry.user),
                facts,
                when,
                reason,
                message,
                discriminator=str(index),
            )
        )
    return records


def _ports_text(facts: RequestFacts) -> str:
    ports = ", ".join(f"{n} from {p}" for n, p in facts.ports) or "no ports"
    return f"port(s) {ports}"
