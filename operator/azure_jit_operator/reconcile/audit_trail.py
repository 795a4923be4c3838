"""What a request's status write means for the audit trail: the facts a record states,
gathered from the object and its status, and the records of one write (the decisions
recorded since the last write, then the transition itself).

Exactly once: a transition's record is emitted right after the status patch that makes it
(a retried or repeated reconcile writes nothing new, and so emits nothing); approvers'
decisions are counted in ``status.approval.decisionsAudited``, written in the same patch, so a
restarted operator does not record them again. A crash between a patch and its log line loses
that line; the records' ids are deterministic, so nothing else ever makes a duplicate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from azure_jit_operator.audit import emit
from azure_jit_operator.domain.approvals import Requester, parse_records
from azure_jit_operator.domain.audit import (
    Action,
    Actor,
    AuditRecord,
    Outcome,
    RequestFacts,
    decision_records,
    transition_records,
)
from azure_jit_operator.domain.prefixes import canonical_prefix
from azure_jit_operator.domain.request_status import RequestStatus
from azure_jit_operator.reconcile.objects import ObjectView


def decisions_audited(status: Mapping[str, Any]) -> int:
    """How many of ``status.approvals`` the audit log already holds (the persisted cursor)."""
    approval = status.get("approval")
    if not isinstance(approval, Mapping):
        return 0
    try:
        return max(0, int(approval.get("decisionsAudited") or 0))
    except (TypeError, ValueError):
        return 0


def decisions_count(status: Mapping[str, Any]) -> int:
    approvals = status.get("approvals")
    return len(approvals) if isinstance(approvals, list) else 0


def request_facts(obj: ObjectView, status: RequestStatus) -> RequestFacts:
    spec = obj.spec
    ports: list[tuple[int, str]] = []
    if status.ports:
        ports = [(p.number, p.source_prefix) for p in status.ports]
    else:
        for raw in spec.get("ports") or ():
            if isinstance(raw, Mapping):
                try:
                    number = int(raw.get("number", 0))
                except (TypeError, ValueError):
                    continue
                ports.append((number, canonical_prefix(str(raw.get("sourceAddressPrefix", "")))))
    requester = spec.get("requester")
    return RequestFacts(
        namespace=obj.namespace,
        name=obj.name,
        uid=obj.uid,
        policy=str(spec.get("policyName", "")),
        virtual_machine=str(spec.get("virtualMachine", "")),
        ports=tuple(ports),
        duration=str(spec.get("duration", "")),
        justification=str(spec.get("justification", "")),
        requester=Requester.from_dict(requester if isinstance(requester, Mapping) else None),
        virtual_machine_id=status.azure.vm_id,
        policy_id=status.azure.policy_id,
        initiation_id=status.azure.initiation_id,
        expires_at=status.expires_at,
    )


def write_records(
    obj: ObjectView,
    before: RequestStatus,
    after: RequestStatus,
    *,
    cursor: int,
    required_approvals: int,
    operator: str,
    now: datetime,
) -> list[AuditRecord]:
    """The records of one status write, decisions first (they led to the transition)."""
    facts = request_facts(obj, after)
    decisions = parse_records(obj.status.get("approvals"))
    records = decision_records(
        decisions, start=cursor, required=required_approvals, facts=facts, now=now
    )
    records += transition_records(before, after, facts=facts, operator=operator, now=now)
    return records


def emit_decision(
    obj: ObjectView,
    status: RequestStatus,
    action: Action,
    *,
    actor: Actor,
    time: datetime,
    reason: str,
    message: str,
    details: Mapping[str, str | int | float | bool | Sequence[str]] | None = None,
) -> None:
    """One record of a decision made outside the status write's own transition (an
    extension taking over, a break-glass opening, a review), right after the write that
    recorded it. One per object and action: the id is deterministic."""
    emit(
        AuditRecord(
            action,
            Outcome.SUCCESS,
            actor,
            request_facts(obj, status),
            time,
            reason,
            message,
            details=dict(details or {}),
        )
    )
