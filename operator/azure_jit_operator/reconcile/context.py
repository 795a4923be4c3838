"""What both reconciles (of a request, of a VM) share: the runtime, the cache, the gauges,
the queue, and the one way a request's status is written."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure_jit_operator.azure.errors import AzureError, classify
from azure_jit_operator.domain.audit import Action, Actor
from azure_jit_operator.domain.break_glass import parse_reviews
from azure_jit_operator.domain.lifecycle import Phase
from azure_jit_operator.metrics import RECONCILE_ERRORS_TOTAL
from azure_jit_operator.reconcile import emergency_reviews
from azure_jit_operator.reconcile.approval_notifier import ApprovalNotifier
from azure_jit_operator.reconcile.audit_trail import emit_decision
from azure_jit_operator.reconcile.awaiting_approval import WAITING_FOR_APPROVAL, AwaitingApproval
from azure_jit_operator.reconcile.cache import Cache
from azure_jit_operator.reconcile.emergency_reviews import UnreviewedEmergencies
from azure_jit_operator.reconcile.judge import UNKNOWN_POLICY
from azure_jit_operator.reconcile.open_ports import OpenPorts
from azure_jit_operator.reconcile.recorder import Stop
from azure_jit_operator.reconcile.runtime import Runtime
from azure_jit_operator.reconcile.tracked import Tracked
from azure_jit_operator.reconcile.work_queue import WorkQueue

log = logging.getLogger("azure_jit_operator.requests")

# ("close", namespace, name): a request's close or revoke; ("vm", namespace, vm id): a VM's
# opens, confirms and checks; ("request", namespace, name): a request with nothing in Azure;
# ("policy", namespace, name): a JitPolicy's syncs and drift checks.
# Closes have keys of their own, one per request, so that a close never queues behind its
# VM's opens (an initiate or a read that hangs in Azure holds the VM's reconcile, never a
# close) nor behind another request's close on the same VM (a forced DELETE is a
# long-running operation: a second or more each).
QueueKey = tuple[str, str, str]


def vm_queue_key(namespace: str, vm_id: str) -> QueueKey:
    return ("vm", namespace, vm_id.lower())


def close_queue_key(namespace: str, name: str) -> QueueKey:
    return ("close", namespace, name)


def closing(tracked: Tracked, now: datetime) -> bool:
    """A close is this request's next step: it is being deleted, or past its expiry."""
    status = tracked.status
    if tracked.revoking:
        return True
    return (
        status.phase is Phase.ACTIVE and status.expires_at is not None and now >= status.expires_at
    )


def policy_queue_key(namespace: str, name: str) -> QueueKey:
    return ("policy", namespace, name)


def request_queue_key(namespace: str, name: str) -> QueueKey:
    return ("request", namespace, name)


def schedule_queue_key(namespace: str, name: str) -> QueueKey:
    """("schedule", namespace, name): a JitAccessSchedule's windows and history."""
    return ("schedule", namespace, name)


@dataclass(slots=True)
class Context:
    rt: Runtime
    cache: Cache
    open_ports: OpenPorts
    queue: WorkQueue[QueueKey]
    unreviewed: UnreviewedEmergencies = field(default_factory=UnreviewedEmergencies)
    awaiting: AwaitingApproval = field(default_factory=AwaitingApproval)
    notifier: ApprovalNotifier | None = None  # spec.approval.notify; its own queue

    def route(self, tracked: Tracked) -> QueueKey:
        """The key whose reconcile looks after this request now: its VM's once it has Azure
        state there (or is judged ready to open), else its own."""
        self.unreviewed.note(tracked, policy=self.policy_label(tracked))
        if not tracked.status.phase.is_terminal:
            vm = self.cache.place(tracked)
            if vm is not None:
                if closing(tracked, self.rt.clock.now()):
                    return close_queue_key(*tracked.key)
                return vm_queue_key(*vm)
        else:
            self.cache.place(tracked)
        return request_queue_key(*tracked.key)

    def enqueue(self, tracked: Tracked) -> None:
        self.queue.add(self.route(tracked))

    def required_approvals(self, tracked: Tracked) -> int:
        named = str(tracked.obj.spec.get("policyName", ""))
        policy = self.cache.policy(tracked.obj.namespace, named)
        return policy.spec.approval.required if policy and policy.spec else 1

    def policy_label(self, tracked: Tracked) -> str:
        """Metric labels carry only names of JitPolicies that exist, never a user's typo."""
        named = str(tracked.obj.spec.get("policyName", ""))
        return named if self.cache.policy(tracked.obj.namespace, named) else UNKNOWN_POLICY

    async def write(
        self,
        tracked: Tracked,
        phase: Phase,
        reason: str,
        message: str,
        *,
        policy: str | None = None,
        **changes: Any,
    ) -> bool:
        """Write the request's status (a no-op when nothing changed); False when the object
        is gone. Keeps the Pending gauges and the VM index current."""
        if tracked.status.phase.is_terminal and not phase.is_terminal:
            # A VM's two reconciles may both hold a request for a moment (its close and its
            # confirm): once finished (revoked, expired), nothing moves it back.
            return False
        extra = tuple(changes.get("extra", tracked.approval))
        # Every write carries the ReviewRequired its reviews call for, so whichever write of a
        # break-glass request lands last is right, and the condition survives Expired.
        review = emergency_reviews.condition_for(tracked, start_time=changes.get("start_time"))
        if review is not None:
            extra = (*(c for c in extra if c.type != review.type), review)
        changes["extra"] = extra
        reviewed_before = emergency_reviews.reviewed(tracked)
        label = policy or self.policy_label(tracked)
        try:
            await tracked.recorder.write(
                phase,
                reason,
                message,
                policy=label,
                required_approvals=self.required_approvals(tracked),
                **changes,
            )
        except Stop:
            return False
        if not reviewed_before and emergency_reviews.reviewed(tracked):
            self._announce_review(tracked)
        self.awaiting.update(
            tracked.ref,
            namespace=tracked.obj.namespace,
            policy=label,
            waiting=phase is Phase.PENDING and reason == WAITING_FOR_APPROVAL,
        )
        if phase is Phase.PENDING:
            self.open_ports.waiting(
                tracked.ref,
                namespace=tracked.obj.namespace,
                reason=reason,
                since=tracked.obj.created,
            )
        else:
            self.open_ports.settled(tracked.ref)
        self.cache.place(tracked)
        self.unreviewed.note(tracked, policy=self.policy_label(tracked))
        return True

    def _announce_review(self, tracked: Tracked) -> None:
        """The first valid review of an emergency request is now on its status."""
        condition = emergency_reviews.recorded(tracked)
        message = condition.message if condition else "reviewed"
        self.rt.post_event(tracked.obj.identity, "Normal", "Reviewed", message)
        reviews = parse_reviews(tracked.obj.status.get("reviews"))
        spec = tracked.spec()
        requester = spec.requester.username if spec and spec.requester else ""
        first = next((r for r in reviews if r.user and r.user != requester), None)
        emit_decision(
            tracked.obj,
            tracked.status,
            Action.REVIEWED,
            actor=Actor.user(first.user if first else ""),
            time=(first.time if first and first.time else self.rt.clock.now()),
            reason="Reviewed",
            message=message,
            details={"review": first.comment} if first and first.comment else None,
        )
        log.info(
            "%s: emergency access %s",
            tracked.obj,
            message,
            extra={"k8s_namespace": tracked.obj.namespace, "k8s_name": tracked.obj.name},
        )

    async def rewrite(self, tracked: Tracked) -> bool:
        """Write the request's status as it is, with conditions brought up to date (a review
        recorded meanwhile)."""
        status = tracked.status
        return await self.write(tracked, status.phase, status.reason, status.message)

    def observed(self, tracked: Tracked, ports: Sequence[int], open_ports: Iterable[int]) -> None:
        self.open_ports.observed(
            tracked.ref,
            namespace=tracked.obj.namespace,
            policy=self.policy_label(tracked),
            vm=str(tracked.obj.spec.get("virtualMachine", "")),
            ports=ports,
            open_ports=open_ports,
        )

    def failure(self, tracked: Tracked | str, exc: BaseException) -> AzureError:
        failure = classify(exc)
        RECONCILE_ERRORS_TOTAL.labels(kind=failure.kind.value).inc()
        log.warning("Azure call failed for %s: %s", getattr(tracked, "obj", tracked), failure)
        return failure
