"""Judging a Pending request before anything happens in Azure: its spec, its policy, its
approvals and the finalizer. No I/O: the request reconcile writes what this decides."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from azure_jit_operator.domain.approvals import ApprovalMode, approval_verdict, parse_records
from azure_jit_operator.domain.azure_policy import policy_resource_id, vm_resource_id
from azure_jit_operator.domain.break_glass import EMERGENCY_APPROVAL_REASON, check_emergency
from azure_jit_operator.domain.conditions import FALSE, TRUE, Condition
from azure_jit_operator.domain.extension import Link, NotYet, Predecessor, check_extension
from azure_jit_operator.domain.request_rules import Denial, check_request, policy_not_found
from azure_jit_operator.domain.specs import (
    JitAccessRequestSpec,
    JitPolicySpec,
    SpecError,
    parse_request_spec,
)
from azure_jit_operator.reconcile.objects import ObjectView
from azure_jit_operator.reconcile.schedule_approval import ScheduleLookup, approval_from_schedule
from azure_jit_operator.reconcile.tracked import Binding

POLICY_GRACE = timedelta(seconds=30)  # a request may arrive just before its policy
# Long enough that a burst of thousands of new requests, which kopf takes minutes to reach,
# does not add a status write per request to its backlog; short enough to explain a real stall.
FINALIZER_REPORT_AFTER = timedelta(minutes=2)
UNKNOWN_POLICY = "<unknown>"


@dataclass(frozen=True, slots=True)
class PolicyView:
    """A JitPolicy as the request side needs it."""

    name: str
    spec: JitPolicySpec | None
    ready: bool
    ready_message: str


PolicyLookup = Callable[[str, str], PolicyView | None]


class ChainLookup(Protocol):
    """What judging an extension reads of the other requests (the controller's cache)."""

    def predecessor(self, namespace: str, name: str) -> Predecessor | None: ...

    def first_extension(self, namespace: str, name: str) -> str | None: ...


class _NoChains:
    def predecessor(self, namespace: str, name: str) -> Predecessor | None:
        return None

    def first_extension(self, namespace: str, name: str) -> str | None:
        return None


NO_CHAINS: ChainLookup = _NoChains()


@dataclass(frozen=True, slots=True)
class Denied:
    reason: str
    message: str
    policy: str
    extra: tuple[Condition, ...] = ()


@dataclass(frozen=True, slots=True)
class Wait:
    reason: str
    message: str
    again_at: datetime | None  # besides any watch event that may change the verdict
    extra: tuple[Condition, ...] = ()
    report: bool = True  # False: keep the status as it is (nothing new to say yet)


@dataclass(frozen=True, slots=True)
class Ready:
    binding: Binding
    approval: tuple[Condition, ...]


Verdict = Denied | Wait | Ready


# Break-glass skips approval; the ReviewRequired condition is set once it opens.
BREAK_GLASS_APPROVED = Condition(
    "Approved",
    TRUE,
    EMERGENCY_APPROVAL_REASON,
    "emergency request: opens without approval under the policy's spec.breakGlass",
)


def _extension(
    spec: JitAccessRequestSpec,
    obj: ObjectView,
    policy: PolicyView,
    chains: ChainLookup,
    *,
    now: datetime,
) -> Link | Denied | Wait | None:
    """An extension's link to its predecessor, or why it cannot open (None: no extension)."""
    if not spec.extends or policy.spec is None:
        return None
    judged = check_extension(
        spec,
        chains.predecessor(obj.namespace, spec.extends),
        policy.spec,
        request_name=obj.name,
        first_extension=chains.first_extension(obj.namespace, spec.extends),
        now=now,
    )
    if isinstance(judged, Denial):
        return Denied(judged.reason, judged.message, policy.name)
    if isinstance(judged, NotYet):
        return Wait(judged.reason, judged.message, now + timedelta(seconds=2))
    return judged


def _approval(  # noqa: PLR0911 - one outcome per approval rule
    spec: JitAccessRequestSpec,
    obj: ObjectView,
    policy: PolicyView,
    live_status: Mapping[str, Any],
    *,
    webhooks: str,
    now: datetime,
    schedules: ScheduleLookup | None = None,
    operator_user: str = "",
) -> tuple[Condition, ...] | Denied | Wait:
    """The Approved condition(s) a request opens with, or why it may not open (yet)."""
    assert policy.spec is not None
    if spec.emergency:
        refusal = check_emergency(
            spec.duration, policy.spec.break_glass, policy_name=policy.name, webhooks=webhooks
        )
        if refusal is not None:
            return Denied(refusal.reason, refusal.message, policy.name)
        return (BREAK_GLASS_APPROVED,)  # ReviewRequired is its price
    if policy.spec.approval.mode is ApprovalMode.MANUAL:
        if webhooks == "off":
            # Without the admission webhooks nobody vouches for spec.requester or for the
            # approvers' identities: approvals would be forgeable.
            return Denied(
                "ApprovalNeedsWebhooks",
                f"JitPolicy {policy.name!r} requires approval, which needs the operator's "
                "admission webhooks (AZURE_JIT_WEBHOOKS=managed or external; deploy/components)",
                policy.name,
            )
        if schedules is not None:
            # A window's request carries its JitAccessSchedule's approval (approved once).
            by_schedule = approval_from_schedule(
                obj,
                spec,
                policy.spec.approval,
                schedules=schedules,
                operator_user=operator_user,
            )
            if by_schedule is not None:
                return (by_schedule,)
        verdict = approval_verdict(
            policy.spec.approval,
            requester=spec.requester,
            records=parse_records(live_status.get("approvals")),
            created=obj.created,
            now=now,
            request_name=obj.name,
        )
        condition = Condition(
            "Approved",
            TRUE if verdict.state == "approved" else FALSE,
            verdict.reason,
            verdict.message,
        )
        if verdict.state == "denied":
            return Denied(verdict.reason, verdict.message, policy.name, (condition,))
        if verdict.state != "approved":
            # Decisions arrive through the watch; the deadline is looked at in any case.
            deadline = obj.created + policy.spec.approval.timeout
            return Wait(
                verdict.reason,
                verdict.message,
                min(deadline, now + timedelta(seconds=2)),
                (condition,),
            )
        return (condition,)
    return ()


def judge(  # noqa: PLR0911 - one verdict per rule, in the order a person checks them
    obj: ObjectView,
    *,
    live_status: Mapping[str, Any],
    finalized: bool,
    first_seen: datetime,
    policies: PolicyLookup,
    webhooks: str,
    now: datetime,
    chains: ChainLookup = NO_CHAINS,
    schedules: ScheduleLookup | None = None,
    operator_user: str = "",
) -> Verdict:
    try:
        spec = parse_request_spec(obj.spec)
    except SpecError as exc:
        return Denied("InvalidSpec", str(exc), UNKNOWN_POLICY)
    policy = policies(obj.namespace, spec.policy_name)
    if policy is None:
        if now - obj.created < POLICY_GRACE:
            return Wait(
                "WaitingForPolicy",
                f"JitPolicy {spec.policy_name!r} not found yet; waiting briefly",
                now + timedelta(seconds=2),
            )
        missing = policy_not_found(spec.policy_name, obj.namespace)
        return Denied(missing.reason, missing.message, UNKNOWN_POLICY)
    if policy.spec is None or not policy.ready:
        return Wait(
            "WaitingForPolicy",
            f"JitPolicy {policy.name!r} is not Ready ({policy.ready_message}); "
            "the request opens once the policy is in Azure",
            now + timedelta(seconds=5),
        )
    denial = check_request(spec, policy.spec, policy_name=policy.name)
    if denial is not None:
        return Denied(denial.reason, denial.message, policy.name)
    link = _extension(spec, obj, policy, chains, now=now)
    if not isinstance(link, Link | None):
        return link
    approval = _approval(
        spec,
        obj,
        policy,
        live_status,
        webhooks=webhooks,
        now=now,
        schedules=schedules,
        operator_user=operator_user,
    )
    if not isinstance(approval, tuple):
        return approval
    if not finalized:
        # kopf adds its finalizer when it first handles the object. Open nothing before it is
        # there: a deletion in between would skip the early close. Say so only if it lasts.
        report_at = first_seen + FINALIZER_REPORT_AFTER
        if now < report_at:
            return Wait("WaitingForFinalizer", "", report_at, report=False)
        return Wait(
            "WaitingForFinalizer",
            "the operator's finalizer is not on the request yet, so nothing is opened (it "
            "guarantees the early close on deletion); if this persists, check that the "
            "operator may patch jitaccessrequests",
            now + timedelta(seconds=30),
        )
    vm_rule = policy.spec.virtual_machine(spec.virtual_machine)
    assert vm_rule is not None  # check_request guarantees it
    target = policy.spec.azure
    return Ready(
        Binding(
            policy_name=policy.name,
            vm_name=vm_rule.name,
            vm_id=vm_resource_id(target.subscription_id, target.resource_group, vm_rule.name),
            policy_id=policy_resource_id(
                target.subscription_id,
                target.resource_group,
                target.location,
                target.policy_name,
            ),
            target=target,
            spec=spec,
            extension=link,
        ),
        approval,
    )
