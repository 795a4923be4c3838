"""Telling approvers: one webhook message per request waiting for approval, for JitPolicies
with ``spec.approval.notify``.

Its own keyed work queue and workers, apart from the request and VM reconciles: the judge
only says "this request waits" (:meth:`ApprovalNotifier.want`, which never blocks), and a
slow, failing or hanging webhook delays nothing but its own message. Failures (5xx,
timeouts, refused connections, a missing Secret) are retried with back-off for as long as the
request waits.

Exactly one message: once posted, ``status.approval.notifiedAt`` is written (and remembered
in memory until the watch shows it), so neither a retry nor a restarted operator posts again.
A crash in the instant between the post and that write would post once more (at least once
beats never telling anyone).

The webhook URL is read from the Secret when posting and is never logged, put in an Event
or status, or kept after the post.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from azure_jit_operator.domain.approvals import Requester
from azure_jit_operator.domain.lifecycle import Phase
from azure_jit_operator.domain.notify import (
    NotifyTarget,
    WaitingRequest,
    approval_message,
    approve_command,
    webhook_url_problem,
)
from azure_jit_operator.domain.timestamps import format_timestamp
from azure_jit_operator.kube.api import Gone
from azure_jit_operator.metrics import APPROVAL_NOTIFICATIONS_TOTAL
from azure_jit_operator.notify_webhook import WebhookError, WebhookPoster
from azure_jit_operator.reconcile.awaiting_approval import WAITING_FOR_APPROVAL
from azure_jit_operator.reconcile.cache import Cache
from azure_jit_operator.reconcile.runtime import Runtime
from azure_jit_operator.reconcile.tracked import RequestKey, Tracked
from azure_jit_operator.reconcile.work_queue import Backoff, RetryLater, WorkQueue

log = logging.getLogger("azure_jit_operator.notify")

WORKERS = 4  # posts wait on the network, not the CPU; few are ever due at once
# From 2 s to 5 min between tries: a webhook outage is ridden out without hammering it.
RETRY = Backoff(base_seconds=2.0, max_seconds=300.0)


def notified_at(tracked: Tracked) -> str:
    approval = tracked.obj.status.get("approval")
    return str(approval.get("notifiedAt") or "") if isinstance(approval, Mapping) else ""


class ApprovalNotifier:
    def __init__(self, rt: Runtime, cache: Cache, *, poster: WebhookPoster | None = None) -> None:
        self.rt = rt
        self.cache = cache
        self.queue: WorkQueue[RequestKey] = WorkQueue(rt.clock, backoff=RETRY)
        self._poster = poster or WebhookPoster()
        # Posted by this process, by uid: not posted again while the status write (or the
        # watch event that shows it) is still on its way.
        self._sent: dict[str, datetime] = {}
        self._failing: set[str] = set()  # uids whose last try failed (said once, not per try)

    def want(self, tracked: Tracked, target: NotifyTarget | None) -> None:
        """The request waits for approval under a policy that notifies ``target``."""
        if target is None or notified_at(tracked) or tracked.obj.uid in self._sent:
            return
        if tracked.key not in self.queue.running and self.queue.due_at(tracked.key) is None:
            self.queue.add(tracked.key)

    async def run(self) -> None:
        await self.queue.run(self._notify, workers=WORKERS)

    def forget(self, key: RequestKey, uid: str) -> None:
        """The request is gone: nothing more to post, nothing to remember."""
        self.queue.discard(key)
        self._sent.pop(uid, None)
        self._failing.discard(uid)

    def clear(self) -> None:
        """The controller paused for a peer: that peer notifies from now on."""
        self.queue.clear()
        self._sent.clear()
        self._failing.clear()

    async def close(self) -> None:
        await self._poster.close()

    async def _notify(self, key: RequestKey) -> datetime | None:
        tracked = self.cache.requests.get(key)
        if tracked is None or notified_at(tracked):
            return None
        status = tracked.status
        namespace, name = key
        policy_name = str(tracked.obj.spec.get("policyName", ""))
        policy = self.cache.policy(namespace, policy_name)
        target = policy.spec.approval.notify if policy and policy.spec else None
        label = policy_name if policy is not None else "<unknown>"
        waiting = status.phase is Phase.PENDING and status.reason == WAITING_FOR_APPROVAL
        if not waiting or target is None or tracked.revoking:
            if tracked.obj.uid in self._failing:
                self._failing.discard(tracked.obj.uid)
                self._count(namespace, label, "gave_up")
            return None
        uid = tracked.obj.uid
        sent = self._sent.get(uid)
        if sent is None:
            url = await self._url(tracked, target, label)
            message = approval_message(_waiting(tracked, policy_name, self._required(key)))
            try:
                await self._poster.post(url, message)
            except WebhookError as exc:
                self._failed(tracked, label, "retried" if exc.retryable else "rejected", str(exc))
                raise RetryLater(str(exc)) from None
            sent = self.rt.clock.now()
            self._sent[uid] = sent
            self._failing.discard(uid)
            self._count(namespace, label, "sent")
            log.info(
                "%s/%s: approvers notified (webhook of JitPolicy %s)",
                namespace,
                name,
                policy_name,
                extra={"k8s_namespace": namespace, "k8s_name": name},
            )
            self.rt.post_event(
                tracked.obj.identity,
                "Normal",
                "ApproversNotified",
                f"approvers were notified through JitPolicy {policy_name!r}'s webhook; they "
                f"approve with `{approve_command(_waiting(tracked, policy_name, 1))}`",
            )
        try:
            await self.rt.kube.patch_status(
                tracked.obj.ref, {"approval": {"notifiedAt": format_timestamp(sent)}}
            )
        except Gone:
            return None
        # _sent keeps the uid until the request goes: the watch event may lag this write.
        return None

    def _required(self, key: RequestKey) -> int:
        tracked = self.cache.requests.get(key)
        if tracked is None:
            return 1
        policy = self.cache.policy(key[0], str(tracked.obj.spec.get("policyName", "")))
        return policy.spec.approval.required if policy and policy.spec else 1

    async def _url(self, tracked: Tracked, target: NotifyTarget, label: str) -> str:
        namespace = tracked.obj.namespace
        where = f"Secret {namespace}/{target.secret_name} key {target.secret_key!r}"
        try:
            found = await self.rt.kube.read_secret(namespace, target.secret_name)
        except PermissionError:
            problem = (
                f"the operator may not read {where} (RBAC: get on secrets/"
                f"{target.secret_name}; see docs/install.md)"
            )
            found = None
        else:
            problem = ""
        if found is not None:
            url = found[0].get(target.secret_key)
            if url is None:
                problem = f"{where} does not exist"
            else:
                why = webhook_url_problem(url)
                if why is None:
                    return url.strip()
                problem = f"{where}: {why}"
        elif not problem:
            problem = f"{where} does not exist (the Secret is missing)"
        self._failed(tracked, label, "misconfigured", problem)
        raise RetryLater(problem)

    def _failed(self, tracked: Tracked, label: str, outcome: str, problem: str) -> None:
        self._count(tracked.obj.namespace, label, outcome)
        failures = self.queue.failures(tracked.key) + 1
        log.warning(
            "%s: notifying approvers failed (%s); retrying with back-off (try %d)",
            tracked.obj,
            problem,
            failures,
            extra={"k8s_namespace": tracked.obj.namespace, "k8s_name": tracked.obj.name},
        )
        if tracked.obj.uid not in self._failing:
            # One Warning per request and failure streak, not one per retry.
            self._failing.add(tracked.obj.uid)
            self.rt.post_event(
                tracked.obj.identity,
                "Warning",
                "NotifyFailed",
                f"could not notify approvers: {problem}; retrying with back-off while the "
                "request waits",
            )

    def _count(self, namespace: str, policy: str, outcome: str) -> None:
        APPROVAL_NOTIFICATIONS_TOTAL.labels(
            namespace=namespace, policy=policy, outcome=outcome
        ).inc()


def _waiting(tracked: Tracked, policy: str, required: int) -> WaitingRequest:
    spec = tracked.obj.spec
    raw = spec.get("requester")
    requester = Requester.from_dict(raw if isinstance(raw, Mapping) else None)
    ports = [
        (int(p.get("number", 0)), str(p.get("sourceAddressPrefix", "")))
        for p in spec.get("ports") or ()
        if isinstance(p, Mapping)
    ]
    return WaitingRequest(
        namespace=tracked.obj.namespace,
        name=tracked.obj.name,
        policy=policy,
        requester=requester.username if requester else "",
        virtual_machine=str(spec.get("virtualMachine", "")),
        ports=ports,
        duration=str(spec.get("duration", "")),
        justification=str(spec.get("justification", "")),
        required_approvals=required,
    )
