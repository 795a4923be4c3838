"""Whether a request carries its JitAccessSchedule's approval: the one way a window's request
opens under a Manual JitPolicy without approvals of its own.

Honoured only when all of it holds, so that nobody can forge it by creating a request that
claims a schedule: the request was created by the operator itself (its spec.requester, which
the admission webhook stamps from the authenticated user, is the operator's own user), its
controlling owner is that schedule (same uid), its spec is the schedule's template, and the
schedule's recorded approvals approve the schedule's current generation, which the operator
confirmed in status.approvedGeneration and status.approvedSpecHash (only the operator writes
a schedule's status other than its approvals: the guard-schedule-approvals webhook, which a
Manual policy requires, sees to it).
"""

from __future__ import annotations

from collections.abc import Callable

from azure_jit_operator.domain.approvals import APPROVED, ApprovalPolicy
from azure_jit_operator.domain.conditions import TRUE, Condition
from azure_jit_operator.domain.schedules import (
    approval_digest,
    parse_schedule_approvals,
    parse_schedule_spec,
    schedule_approval_verdict,
    template_matches,
)
from azure_jit_operator.domain.specs import JitAccessRequestSpec, SpecError
from azure_jit_operator.reconcile.objects import ObjectView

ScheduleLookup = Callable[[str, str], ObjectView | None]


def approval_from_schedule(  # noqa: PLR0911 - one guard per condition the approval needs
    obj: ObjectView,
    spec: JitAccessRequestSpec,
    policy: ApprovalPolicy,
    *,
    schedules: ScheduleLookup,
    operator_user: str,
) -> Condition | None:
    """The request's Approved condition from its schedule, or None (judge it on its own)."""
    owner = obj.controller
    if owner is None or owner[0] != "JitAccessSchedule":
        return None
    if not operator_user or spec.requester is None or spec.requester.username != operator_user:
        return None
    if spec.emergency or spec.extends:
        return None  # a window's request is neither; break-glass and extensions judge apart
    schedule = schedules(obj.namespace, owner[1])
    if schedule is None or schedule.uid != owner[2]:
        return None
    try:
        schedule_spec = parse_schedule_spec(schedule.spec)
    except SpecError:
        return None
    if not template_matches(schedule_spec, spec):
        return None
    if schedule.status.get("approvedGeneration") != schedule.generation or schedule.status.get(
        "approvedSpecHash"
    ) != approval_digest(schedule.spec):
        return None
    verdict = schedule_approval_verdict(
        policy,
        requester=schedule_spec.requester,
        approvals=parse_schedule_approvals(schedule.status.get("approvals")),
        generation=schedule.generation,
        schedule_name=schedule.name,
    )
    if verdict.state == "denied":
        return None
    approvers = sorted(
        {
            a.record.user
            for a in parse_schedule_approvals(schedule.status.get("approvals"))
            if a.record.decision == APPROVED
        }
    )
    return Condition(
        "Approved",
        TRUE,
        "ApprovedWithSchedule",
        f"approved with JitAccessSchedule {schedule.name} (generation {schedule.generation}), "
        f"approved by {', '.join(approvers) or 'its approvers'}",
    )
