"""The request controller: a cache filled by one paged LIST, kept current by kopf's watch,
and a keyed work queue whose bounded pool of workers runs level-triggered reconciles (of a
VM, or of a request with nothing in Azure yet). No task per request.

On start, and again when it resumes after pausing for a peer, the controller lists every
JitPolicy and JitAccessRequest, then queues each key by when it is due, so the closes that
came due while nobody was active run first. While a peer of higher priority is alive (kopf
peering) it runs nothing and forgets what it knew: the peer may change every status.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from azure_jit_operator.domain.lifecycle import Phase
from azure_jit_operator.kube.api import POLICIES, REQUESTS, SCHEDULES
from azure_jit_operator.reconcile.approval_notifier import ApprovalNotifier
from azure_jit_operator.reconcile.cache import Cache
from azure_jit_operator.reconcile.context import (
    Context,
    QueueKey,
    close_queue_key,
    policy_queue_key,
    request_queue_key,
    schedule_queue_key,
)
from azure_jit_operator.reconcile.objects import ObjectView
from azure_jit_operator.reconcile.open_ports import OpenPorts
from azure_jit_operator.reconcile.policy_reconcile import PolicyReconciler
from azure_jit_operator.reconcile.policy_views import governance_holders, policy_view
from azure_jit_operator.reconcile.request_reconcile import RequestReconciler
from azure_jit_operator.reconcile.runtime import Runtime
from azure_jit_operator.reconcile.schedule_reconcile import ScheduleReconciler
from azure_jit_operator.reconcile.tracked import Tracked
from azure_jit_operator.reconcile.vm_reconcile import StillOpenError, VmReconciler
from azure_jit_operator.reconcile.work_queue import Backoff, RetryLater, WorkQueue

log = logging.getLogger("azure_jit_operator.controller")

# Reconciles mostly wait on Azure and Kubernetes (a forced close waits a second or more for
# its long-running DELETE), not on the CPU: enough that a thousand closes due within seconds
# overlap their waits, few enough that a burst cannot flood the API server. Measured:
# 16 workers closed 500 overdue ports 71 s after a restart at 10,000 requests (64: 41 s), and
# 64 workers let 1,000 forced closes at a 10 s grace run 12 s late.
WORKERS = 256
LIST_RETRY = Backoff(base_seconds=1.0, max_seconds=30.0)
# kopf pauses its watches the moment it sees a peer of higher priority; the controller must
# notice too (and forget what it knew) before that peer has had time to change much.
PEERING_CHECK_SECONDS = 1.0
# Time given to the reconciles in flight (an Azure call and its status write) when the
# operator stops; the Deployment's terminationGracePeriodSeconds leaves room for it.
GRACEFUL_STOP_SECONDS = 60.0


class Controller:
    def __init__(
        self,
        rt: Runtime,
        open_ports: OpenPorts,
        *,
        workers: int = WORKERS,
    ) -> None:
        self.rt = rt
        self.open_ports = open_ports
        self.cache = Cache(rt)
        self.queue: WorkQueue[QueueKey] = WorkQueue(rt.clock)
        self.ctx = Context(rt, self.cache, open_ports, self.queue)
        self.notifier = ApprovalNotifier(rt, self.cache)
        self.ctx.notifier = self.notifier
        self._notifying: asyncio.Task[None] | None = None
        self._requests = RequestReconciler(self.ctx)
        self._vms = VmReconciler(self.ctx)
        self._policies = PolicyReconciler(rt, self.cache)
        self._schedules = ScheduleReconciler(rt, self.cache)
        self._workers = workers
        self._running: asyncio.Task[None] | None = None
        self._active = False
        self._filled = asyncio.Event()
        self._kopf_context: contextvars.Context | None = None

    # -- start, pause, stop --------------------------------------------------------

    @property
    def active(self) -> bool:
        return self._active

    async def start(self) -> None:
        """Fill the cache from one LIST of each kind, queue every key by its due time, and
        start the workers (retries the LIST until it succeeds)."""
        if self._active:
            return
        self._active = True
        failures = 0
        while True:
            try:
                await self._fill()
                break
            except Exception as exc:
                failures += 1
                delay = LIST_RETRY.delay(failures)
                log.warning("listing JIT objects failed (%s); again in %.0fs", exc, delay)
                await asyncio.sleep(delay)
        self._filled.set()
        self._ensure_workers()

    def _ensure_workers(self, *, from_kopf: bool = False) -> None:
        """Start the workers in kopf's context: their Events go through kopf's poster, which
        works only in tasks started from it. The start-up handlers run outside it, so the
        context is taken from the first watch event (delivered right after them)."""
        if from_kopf and self._kopf_context is None:
            self._kopf_context = contextvars.copy_context()
        if self._running is None and self._filled.is_set() and self._kopf_context is not None:
            self._running = asyncio.get_running_loop().create_task(
                self.queue.run(self._reconcile, workers=self._workers),
                context=self._kopf_context,
            )
            # Approvers' notifications run apart: a slow webhook holds back no reconcile.
            self._notifying = asyncio.get_running_loop().create_task(
                self.notifier.run(), context=self._kopf_context
            )

    async def pause(self) -> None:
        """Stop acting and forget everything (a peer is active and may change any status)."""
        if not self._active:
            return
        self._active = False
        self._filled.clear()
        await self._stop_workers()
        for tracked in self.cache.requests.values():
            self.open_ports.forget(tracked.ref)
            if tracked.revoke is not None and not tracked.revoke.done():
                tracked.revoke.set_exception(StillOpenError("the operator paused for a peer"))
        self.ctx.unreviewed.forget_all()
        self.cache.clear()
        self.queue.clear()
        self._policies.forget()
        self.notifier.clear()
        self.ctx.awaiting.clear()
        self._schedules.forget()

    async def stop(self) -> None:
        self._active = False
        await self._stop_workers()
        await self.notifier.close()

    async def _stop_workers(self) -> None:
        notifying, self._notifying = self._notifying, None
        if notifying is not None:
            # A notification in flight is only a message: it is retried after a restart.
            notifying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await notifying
        running, self._running = self._running, None
        if running is None:
            return
        self.queue.shut_down()
        try:
            await asyncio.wait_for(asyncio.shield(running), GRACEFUL_STOP_SECONDS)
        except TimeoutError:
            log.warning("reconciles still running after %.0fs; cancelling", GRACEFUL_STOP_SECONDS)
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running

    async def _fill(self) -> None:
        started = time.monotonic()
        self.cache.clear()
        namespaces = self.rt.settings.namespaces
        async for page in self.rt.kube.list_pages(POLICIES, namespaces=namespaces):
            for body in page:
                obj = self._put_policy(body)
                self.queue.add(policy_queue_key(obj.namespace, obj.name))
        async for page in self.rt.kube.list_pages(SCHEDULES, namespaces=namespaces):
            for body in page:
                schedule = self.cache.put_schedule(body)
                if schedule is not None:
                    self.queue.add(schedule_queue_key(schedule.namespace, schedule.name))
        listed = 0
        now = self.rt.clock.now()
        async for page in self.rt.kube.list_pages(REQUESTS, namespaces=namespaces):
            listed += len(page)
            for body in page:
                self.cache.put_request(body, now=now)
        for tracked in self.cache.requests.values():
            self.queue.add(self.ctx.route(tracked), _due(tracked, now))
            vm = self.cache.placed(tracked.key)
            expires = tracked.status.expires_at
            if vm is not None and expires is not None and tracked.status.phase is Phase.ACTIVE:
                self.queue.add(close_queue_key(*tracked.key), expires)  # overdue ones first
        log.info(
            "controller filled from %d JitPolicy(ies) and %d JitAccessRequest(s) in %.1fs; "
            "%d queued, overdue first",
            len(self.cache.policies),
            listed,
            time.monotonic() - started,
            len(self.queue),
        )

    async def _reconcile(self, key: QueueKey) -> datetime | None:
        kind, namespace, name = key
        if kind == "policy":
            return await self._policies.reconcile((namespace, name))
        if kind == "request":
            return await self._requests.reconcile((namespace, name))
        if kind == "schedule":
            return await self._schedules.reconcile((namespace, name))
        if kind == "vm":
            return await self._vms.reconcile((namespace, name))
        try:
            return await self._vms.close((namespace, name))
        except (RetryLater, asyncio.CancelledError):
            raise
        except Exception as exc:
            # Whatever went wrong, a close is retried within a quarter of the grace, never
            # after the queue's longer back-off.
            log.exception("closing on %s failed; retrying within the grace", name)
            quarter = max(1.0, self.rt.settings.close_grace.total_seconds() / 4)
            raise RetryLater(
                str(exc), not_after=self.rt.clock.now() + timedelta(seconds=quarter)
            ) from exc

    # -- watch events ------------------------------------------------------------------

    def request_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        if not self._active:
            return
        self._ensure_workers(from_kopf=True)
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        if event_type == "DELETED":
            tracked = self.cache.remove_request(key)
            if tracked is not None:
                self.open_ports.forget(tracked.ref)
                self.ctx.unreviewed.forget(tracked.ref)
                self.ctx.awaiting.forget(tracked.ref)
                self.queue.discard(request_queue_key(*key))
                self.notifier.forget(key, tracked.obj.uid)
            self._wake_schedule_of(body)
            return
        tracked = self.cache.put_request(body, now=self.rt.clock.now())
        if tracked is not None:
            self.ctx.enqueue(tracked)
        self._wake_schedule_of(body)

    def _wake_schedule_of(self, body: Mapping[str, Any]) -> None:
        """A window's request changed (or went): its schedule updates its active list and
        history."""
        meta = body.get("metadata") or {}
        for owner in meta.get("ownerReferences") or ():
            if owner.get("controller") is True and owner.get("kind") == "JitAccessSchedule":
                namespace = str(meta.get("namespace", ""))
                if (namespace, str(owner.get("name"))) in self.cache.schedules:
                    self.queue.add(schedule_queue_key(namespace, str(owner.get("name"))))

    def schedule_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        if not self._active:
            return
        self._ensure_workers(from_kopf=True)
        meta = body.get("metadata") or {}
        namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        if event_type == "DELETED":
            self.cache.remove_schedule(namespace, name)
            self.queue.discard(schedule_queue_key(namespace, name))
            self._schedules.forget((namespace, name))
            return
        if self.cache.put_schedule(body) is not None:
            self.queue.add(schedule_queue_key(namespace, name))
            # Its requests' approval follows the schedule's: judge the waiting ones again.
            for tracked in self.cache.owned_by(namespace, name):
                if not tracked.status.phase.is_terminal:
                    self.ctx.enqueue(tracked)

    def policy_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        if not self._active:
            return
        self._ensure_workers(from_kopf=True)
        meta = body.get("metadata") or {}
        namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        if event_type == "DELETED":
            self.cache.remove_policy(namespace, name)
            self.queue.discard(policy_queue_key(namespace, name))
            self._policies.forget((namespace, name))
        else:
            obj = self._put_policy(body)
            if self._policies.needs_sync(obj):
                self.queue.add(policy_queue_key(namespace, name))
        for tracked in self.cache.waiting_on_policy(namespace, name):
            if not tracked.status.phase.is_terminal:
                self.ctx.enqueue(tracked)
        for schedule in list(self.cache.schedules.values()):
            template = schedule.spec.get("requestTemplate") or {}
            if schedule.namespace == namespace and template.get("policyName") == name:
                self.queue.add(schedule_queue_key(namespace, schedule.name))

    def _put_policy(self, body: Mapping[str, Any]) -> ObjectView:
        return self.cache.put_policy(body, policy_view(body), governance_holders(body))

    # -- deletion ------------------------------------------------------------------------

    async def revoke(self, body: Mapping[str, Any]) -> str:
        """Close what a deleted request opened, through its VM's reconcile; raises
        StillOpenError while anything it opened is still observed open."""
        if not self._active:
            raise StillOpenError("the operator is paused for a peer")
        await self._filled.wait()
        tracked = self.cache.put_request(body, now=self.rt.clock.now())
        if tracked is None:
            meta = body.get("metadata") or {}
            tracked = self.cache.requests.get(
                (str(meta.get("namespace", "")), str(meta.get("name", "")))
            )
        if tracked is None:
            return "already gone"
        if tracked.revoke is None or tracked.revoke.done():
            tracked.revoke = asyncio.get_running_loop().create_future()
        future = tracked.revoke
        self.ctx.enqueue(tracked)
        return await asyncio.shield(future)

    # -- peering ---------------------------------------------------------------------------

    async def follow_peering(self, identity: str, priority: int) -> None:
        """Run while this replica is the one kopf peering lets act; pause otherwise. Reads the
        same peering records kopf does and applies its rule: a live peer of higher or equal
        priority pauses this one."""
        while True:
            try:
                blocked = await self._blocked_by_peer(identity, priority)
            except Exception as exc:
                log.warning("cannot read the peering records (%s); keeping the state", exc)
                blocked = not self._active
            if blocked and self._active:
                log.info("pausing: a peer of higher priority is active")
                await self.pause()
            elif not blocked and not self._active:
                log.info("resuming: no peer of higher priority is active; listing again")
                await self.start()
            await asyncio.sleep(PEERING_CHECK_SECONDS)

    async def _blocked_by_peer(self, identity: str, priority: int) -> bool:
        records = await self.rt.kube.peering_records(
            self.rt.settings.peering_name,
            namespaces=() if self.rt.settings.clusterwide else self.rt.settings.namespaces,
        )
        now = datetime.now(UTC)
        for peers in records:
            for peer_id, info in peers.items():
                if peer_id == identity or not isinstance(info, Mapping):
                    continue
                try:
                    seen = datetime.fromisoformat(str(info.get("lastseen")))
                    lifetime = timedelta(seconds=int(info.get("lifetime", 60)))
                    peer_priority = int(info.get("priority", 0))
                except (TypeError, ValueError):
                    continue
                if seen.tzinfo is None:
                    seen = seen.replace(tzinfo=UTC)
                if seen + lifetime > now and peer_priority >= priority:
                    return True
        return False


def _due(tracked: Tracked, now: datetime) -> datetime:
    """When a key first needs a look after a (re)start: an Active request past expiry at its
    expiry (in the past: it sorts first), anything else now."""
    status = tracked.status
    if status.expires_at is not None and status.expires_at <= now:
        return status.expires_at
    return now
