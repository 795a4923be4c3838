"""The reconcile of one JitAccessRequest that has nothing in Azure yet, or is finished:
judge it (spec, policy, approvals, finalizer) and hand it to its VM, or delete it after its
TTL. Everything that touches Azure happens in the VM's reconcile."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from azure_jit_operator.domain.break_glass import parse_reviews
from azure_jit_operator.domain.conditions import find
from azure_jit_operator.domain.lifecycle import Phase
from azure_jit_operator.domain.notify import NotifyTarget
from azure_jit_operator.domain.request_status import CLOSED, RequestStatus
from azure_jit_operator.domain.timestamps import parse_timestamp
from azure_jit_operator.reconcile import emergency_reviews
from azure_jit_operator.reconcile.awaiting_approval import WAITING_FOR_APPROVAL
from azure_jit_operator.reconcile.context import Context, vm_queue_key
from azure_jit_operator.reconcile.judge import Denied, Ready, Wait, judge
from azure_jit_operator.reconcile.tracked import RequestKey, Tracked

log = logging.getLogger("azure_jit_operator.requests")


class RequestReconciler:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def reconcile(self, key: RequestKey) -> datetime | None:
        tracked = self.ctx.cache.requests.get(key)
        if tracked is None:
            return None
        status = tracked.status
        if tracked.revoking and (status.phase.is_terminal or not status.azure.vm_id):
            await self._revoke_unopened(tracked)
            return None
        if status.phase.is_terminal:
            return await self._terminal(tracked)
        if status.phase is Phase.ACTIVE or status.azure.vm_id:
            self.ctx.enqueue(tracked)  # its VM looks after it
            return None
        return await self.judge(tracked)

    async def judge(self, tracked: Tracked) -> datetime | None:
        """Judge a Pending request; a Ready one is bound to its VM and queued there."""
        rt = self.ctx.rt
        now = rt.clock.now()
        verdict = judge(
            tracked.obj,
            live_status=tracked.obj.status,
            finalized=tracked.finalized,
            first_seen=tracked.first_seen,
            policies=self.ctx.cache.policy,
            webhooks=rt.settings.webhooks,
            now=now,
            chains=self.ctx.cache,
            schedules=self.ctx.cache.schedule,
            operator_user=rt.username,
        )
        if isinstance(verdict, Denied):
            tracked.binding = None
            await self.ctx.write(
                tracked,
                Phase.DENIED,
                verdict.reason,
                verdict.message,
                policy=verdict.policy,
                extra=verdict.extra,
            )
            return None
        if isinstance(verdict, Wait):
            tracked.binding = None
            self.ctx.cache.place(tracked)
            if verdict.report and not (
                verdict.reason == "WaitingForFinalizer" and tracked.finalizer_reported
            ):
                await self.ctx.write(
                    tracked, Phase.PENDING, verdict.reason, verdict.message, extra=verdict.extra
                )
                tracked.finalizer_reported = verdict.reason == "WaitingForFinalizer"
            if verdict.reason == WAITING_FOR_APPROVAL and self.ctx.notifier is not None:
                self.ctx.notifier.want(tracked, self._notify_target(tracked))
            return verdict.again_at
        assert isinstance(verdict, Ready)
        tracked.binding = verdict.binding
        tracked.approval = verdict.approval
        vm = self.ctx.cache.place(tracked)
        assert vm is not None
        self.ctx.queue.add(vm_queue_key(*vm))
        return None

    def _notify_target(self, tracked: Tracked) -> NotifyTarget | None:
        named = str(tracked.obj.spec.get("policyName", ""))
        policy = self.ctx.cache.policy(tracked.obj.namespace, named)
        return policy.spec.approval.notify if policy and policy.spec else None

    async def _terminal(self, tracked: Tracked) -> datetime | None:
        if emergency_reviews.stale(tracked):
            await self.ctx.rewrite(tracked)  # a review arrived after it finished
        if emergency_reviews.awaiting_review(tracked):
            # An unreviewed break-glass request is kept past its TTL: its review is the
            # point of letting it skip approval. The review's watch event brings it back.
            return None
        status = tracked.status
        finished = status.closed_at or _ready_since(status) or tracked.obj.created
        reviewed = _reviewed_at(tracked)
        if reviewed is not None:
            finished = max(finished, reviewed)  # the TTL runs from the review, too
        deadline = finished + self.ctx.rt.settings.terminal_ttl
        if self.ctx.rt.clock.now() < deadline:
            return deadline
        log.info("deleting %s: terminal for longer than the TTL", tracked.obj)
        await self.ctx.rt.kube.delete(tracked.obj.ref)
        return None

    async def _revoke_unopened(self, tracked: Tracked) -> None:
        """A deleted request that has nothing in Azure: record it and let the object go."""
        assert tracked.revoke is not None
        status = tracked.status
        if status.phase.is_terminal:
            message = f"request was already {status.phase.value}; nothing to close"
        else:
            message = "nothing was opened"
            await self.ctx.write(
                tracked,
                Phase.REVOKED,
                "Revoked",
                "deleted before anything was opened in Azure",
                ports=tuple(replace(p, state=CLOSED) for p in status.ports),
            )
        if not tracked.revoke.done():
            tracked.revoke.set_result(message)


def _reviewed_at(tracked: Tracked) -> datetime | None:
    if not emergency_reviews.is_emergency(tracked):
        return None
    times = [r.time for r in parse_reviews(tracked.obj.status.get("reviews")) if r.time]
    return min(times) if times else None


def _ready_since(status: RequestStatus) -> datetime | None:
    ready = find(status.conditions, "Ready")
    if ready is None or not ready.last_transition_time:
        return None
    return parse_timestamp(ready.last_transition_time)
