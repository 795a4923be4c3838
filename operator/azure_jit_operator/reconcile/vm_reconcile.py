"""The reconcile of one VM (for one namespace): every request with Azure state on it, against
the NSG rules actually there, read once per pass and shared by all of them.

One pass, in this order, and it never sleeps (a wait is "look again at t"):

1. revokes (requests being deleted): narrow a shared grant, delete the rule, confirm;
2. closes (Active past ``expiresAt``): one read at expiry, the forced delete when it is due
   (``force_close_at``), a confirming read, Expired;
3. confirms (an initiate recorded in the status): adopt what reached Azure, go Active when the
   rule is on the NSG (``AzureApplying`` meanwhile, at most ``CONFIRM_DEADLINE``);
4. verifications (Active, once per drift interval): heal a grant Azure closed early;
5. opens: the requests judged ready that may have their port (same source shares, another
   source waits), initiated together: one initiate per Azure policy for all of them.

A close therefore waits for nothing another request does but the one Azure call of this VM's
pass in flight: retries and back-offs are re-queues, not waits.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from azure_jit_operator.azure.access import AzureAccess
from azure_jit_operator.azure.jit import PortOpening
from azure_jit_operator.domain.azure_policy import parse_policy_id
from azure_jit_operator.domain.close_timing import force_close_at
from azure_jit_operator.domain.credentials import CredentialError
from azure_jit_operator.domain.grants import (
    Claim,
    PortBusy,
    busy_ports,
    grant_for_port,
    source_admitted,
    sources_beyond_grant,
)
from azure_jit_operator.domain.initiation_marker import find_ours, marked_end, still_applying
from azure_jit_operator.domain.lifecycle import Phase
from azure_jit_operator.domain.nsg import SecurityRuleView, VmNetwork, jit_allow_rules
from azure_jit_operator.domain.prefixes import canonical_prefix
from azure_jit_operator.domain.request_status import CLOSED, OPEN, AzureRecord, PortState
from azure_jit_operator.domain.specs import AzureTarget
from azure_jit_operator.domain.timestamps import format_timestamp
from azure_jit_operator.metrics import CLOSE_LAG_SECONDS, REQUEST_OPEN_SECONDS
from azure_jit_operator.reconcile import emergency_reviews, port_ops
from azure_jit_operator.reconcile.chains import (
    announce_emergency,
    chain_fields,
    extension_note,
    link_predecessor,
)
from azure_jit_operator.reconcile.context import (
    Context,
    close_queue_key,
    closing,
    request_queue_key,
    vm_queue_key,
)
from azure_jit_operator.reconcile.exposure_check import shared_read_age
from azure_jit_operator.reconcile.judge import Ready, judge
from azure_jit_operator.reconcile.port_ops import PortObservation
from azure_jit_operator.reconcile.tracked import RequestKey, Tracked, VmKey
from azure_jit_operator.reconcile.work_queue import RetryLater

log = logging.getLogger("azure_jit_operator.requests")

# Azure applies an initiate asynchronously; scripts wait ~12 s, "give it 2 minutes" is also
# reported (U2). Past this the request is Active with the rule reported missing.
CONFIRM_DEADLINE = timedelta(minutes=5)
MAX_WAIT_SECONDS = 30.0
APPLYING_POLL = timedelta(seconds=1)
ZERO = timedelta(0)


class StillOpenError(Exception):
    """A rule a deleted request opened is still on the NSG; the deletion must be retried."""


@dataclass(frozen=True, slots=True)
class NsgRead:
    """One read of every NSG guarding the VM."""

    network: VmNetwork
    rules: tuple[SecurityRuleView, ...]

    def classify(
        self, ports: Iterable[int], claims: Sequence[Claim], *, now: datetime
    ) -> dict[int, PortObservation]:
        result = {}
        for port in ports:
            grant = grant_for_port(claims, port, now=now)
            found = jit_allow_rules(self.rules, port=port, network=self.network)
            result[port] = PortObservation(
                port=port,
                rules=tuple(found),
                beyond_grant=tuple(r for r in found if sources_beyond_grant(r.sources, grant)),
            )
        return result


async def read_nsgs(
    az: AzureAccess, vm_id: str, *, now: datetime, max_age: timedelta = timedelta(0)
) -> NsgRead:
    """Every NSG guarding the VM; fresh unless ``max_age`` lets a routine check share."""
    network = await az.vm_network(vm_id, now=now)
    rule_lists = await asyncio.gather(
        *(az.nsg_rules(nsg, now=now, max_age=max_age) for nsg in network.nsg_ids)
    )
    return NsgRead(network, tuple(r for rs in rule_lists for r in rs))


async def delete_beyond(
    az: AzureAccess, vm_id: str, observed: Iterable[dict[int, PortObservation]]
) -> int:
    """Delete the JIT allow rules no live claim covers (only rules whose name proves they are
    JIT's; one recognised by its description alone stays, and keeps being reported open)."""
    doomed = {
        (r.nsg_id, r.name)
        for obs in observed
        for o in obs.values()
        for r in o.beyond_grant
        if r.deletable
    }
    await asyncio.gather(*(az.network.delete_rule(nsg, name) for nsg, name in doomed))
    if doomed:
        log.info(
            "deleted %d JIT allow rule(s) on %s",
            len(doomed),
            vm_id.rsplit("/", 1)[-1],
            extra={"azure_operation": "SecurityRules_Delete", "vm_id": vm_id},
        )
    return len(doomed)


class VmReconciler:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @property
    def _clock_now(self) -> datetime:
        return self.ctx.rt.clock.now()

    async def close(self, key: RequestKey) -> datetime | None:
        """One request's close or revoke, on its VM (whose other grants stay)."""
        tracked = self.ctx.cache.requests.get(key)
        if tracked is None:
            return None
        vm = self.ctx.cache.placed(key)
        if tracked.status.phase.is_terminal or vm is None or not closing(tracked, self._clock_now):
            self.ctx.enqueue(tracked)  # not a close (any more): to whoever has it now
            return None
        return await self._run(vm, [tracked])

    async def reconcile(self, key: VmKey) -> datetime | None:
        """Everything on the VM but its closes (those have a key per request)."""
        now = self._clock_now
        members = []
        for tracked in self.ctx.cache.on_vm(key):
            if tracked.status.phase.is_terminal:
                self.ctx.enqueue(tracked)  # back to its own reconcile (TTL, revoke bookkeeping)
            elif closing(tracked, now):
                self.ctx.queue.add(close_queue_key(*tracked.key))  # came due since queued
            else:
                members.append(tracked)
        if not members:
            return None
        return await self._run(key, members)

    async def _run(self, key: VmKey, members: list[Tracked]) -> datetime | None:
        namespace, vm_id = key
        try:
            az = await self.ctx.rt.azure_for(namespace)
        except CredentialError as exc:
            return await self._no_identity(members, exc)
        neighbours = [t for t in self.ctx.cache.on_vm(key) if not t.status.phase.is_terminal]
        return await _Pass(self.ctx, az, vm_id, members, neighbours).run()

    async def _no_identity(self, members: list[Tracked], exc: CredentialError) -> datetime:
        now = self._clock_now
        for tracked in members:
            if tracked.revoking and tracked.revoke is not None:
                tracked.revoke.set_exception(StillOpenError(f"no usable Azure identity: {exc}"))
            elif tracked.status.phase is Phase.PENDING:
                await self.ctx.write(tracked, Phase.PENDING, "CredentialInvalid", str(exc))
            else:
                log.warning("%s: cannot use the namespace's Azure identity: %s", tracked.obj, exc)
        closes = [t.status.expires_at for t in members if t.status.expires_at is not None]
        again = now + timedelta(seconds=30)
        if closes:
            again = min(again, max(now + timedelta(seconds=1), min(closes)))
        return again


class _Pass:
    """One reconcile of one VM: the members, one NSG read, the decisions, the writes."""

    def __init__(
        self,
        ctx: Context,
        az: AzureAccess,
        vm_id: str,
        members: list[Tracked],
        neighbours: list[Tracked],
    ) -> None:
        self.ctx = ctx
        self.rt = ctx.rt
        self.az = az
        self.vm_id = vm_id
        self.members = members  # what this pass acts on
        self.neighbours = neighbours  # every request on the VM (whose grants stay)
        self.now = ctx.rt.clock.now()
        self.next: list[datetime] = []
        self.retry: RetryLater | None = None
        self._read: NsgRead | None = None
        self._writes: list[Awaitable[bool]] = []  # status writes gathered into one await
        self._expirations: list[tuple[Tracked, datetime]] = []

    # -- the pass ------------------------------------------------------------------

    async def run(self) -> datetime | None:
        now = self.now
        revoking = [t for t in self.members if t.revoking]
        live = [t for t in self.members if not t.revoking]
        closing_ = [t for t in live if t.status.phase is Phase.ACTIVE and _expired(t, now)]
        active = [t for t in live if t.status.phase is Phase.ACTIVE and not _expired(t, now)]
        confirming = [t for t in live if _has_intent(t)]
        openers = [t for t in live if t.status.phase is Phase.PENDING and not _has_intent(t)]
        verifying = [t for t in active if self._verify_due(t)]
        if revoking or closing_ or confirming or verifying:
            # Only a pass of routine verifications may share a recent read (a policy's
            # exposure check of the same interval); anything that decides a close reads anew.
            routine = not (revoking or closing_ or confirming)
            try:
                self._read = await read_nsgs(
                    self.az,
                    self.vm_id,
                    now=now,
                    max_age=shared_read_age(self.rt.settings.drift_interval) if routine else ZERO,
                )
            except Exception as exc:
                return self._unreadable(exc, revoking, closing_)
        for tracked in revoking:
            await self._revoke(tracked)
        if closing_:
            await self._close(closing_)
        reinitiate = []
        for tracked in confirming:
            if not await self._confirm(tracked):
                reinitiate.append(tracked)
        for tracked in verifying:
            await self._verify(tracked)
        for tracked in active:
            if emergency_reviews.stale(tracked):
                await self.ctx.rewrite(tracked)  # a review was recorded
        self._schedule_checks(active, verifying)
        try:
            if openers or reinitiate:
                await self._open(openers, reinitiate)
        finally:
            await self._write_expirations()
        return self._outcome()

    def _schedule_checks(self, active: list[Tracked], verifying: list[Tracked]) -> None:
        """Every Active request is checked again a drift interval later, and closed by the
        VM's close reconcile at its expiry."""
        for tracked in active:
            if tracked not in verifying and tracked.verified_at is not None:
                self._again(tracked.verified_at + self._verify_every(tracked))
            assert tracked.status.expires_at is not None
            self.ctx.queue.add(close_queue_key(*tracked.key), tracked.status.expires_at)

    def _outcome(self) -> datetime | None:
        if self.retry is not None:
            soonest = min(self.next) if self.next else None
            not_after = self.retry.not_after
            if soonest is not None:
                not_after = min(not_after, soonest) if not_after else soonest
            raise RetryLater(
                str(self.retry), retry_after=self.retry.retry_after, not_after=not_after
            )
        return min(self.next) if self.next else None

    def _again(self, at: datetime) -> None:
        self.next.append(at)

    def _retry(self, reason: str, *, retry_after: float | None, within_grace: bool) -> None:
        """A passing failure: the queue backs this VM off; a close's retry comes within a
        quarter of the grace, whatever the back-off says."""
        not_after = None
        if within_grace:
            quarter = max(1.0, self.rt.settings.close_grace.total_seconds() / 4)
            not_after = self.rt.clock.now() + timedelta(seconds=quarter)
        if self.retry is not None and self.retry.not_after is not None:
            not_after = min(self.retry.not_after, not_after) if not_after else self.retry.not_after
        self.retry = RetryLater(reason, retry_after=retry_after, not_after=not_after)

    def _claims(self, *, excluding: Iterable[Tracked] = ()) -> list[Claim]:
        skip = {t.key for t in excluding}
        return [
            c for t in self.neighbours if t.key not in skip and not t.revoking for c in t.claims()
        ]

    def _unreadable(
        self, exc: Exception, revoking: list[Tracked], closing: list[Tracked]
    ) -> datetime | None:
        failure = self.ctx.failure(self.vm_id, exc)
        for tracked in closing:
            # Cannot tell: past the deadline that counts as open (the alert fires).
            deadline = _deadline(tracked, self.rt.settings.close_grace)
            ports = len(tracked.ports()) if self.now >= deadline else 0
            self.ctx.open_ports.past_expiry(tracked.ref, ports)
        for tracked in revoking:
            assert tracked.revoke is not None
            tracked.revoke.set_exception(StillOpenError(f"cannot read the NSGs: {failure}"))
        within = bool(closing or revoking)
        quarter = max(1.0, self.rt.settings.close_grace.total_seconds() / 4)
        raise RetryLater(
            str(failure),
            retry_after=failure.retry_after,
            not_after=self.now + timedelta(seconds=quarter) if within else None,
        )

    # -- 1. revoke -----------------------------------------------------------------------

    async def _revoke(self, tracked: Tracked) -> None:
        assert tracked.revoke is not None
        assert self._read is not None
        try:
            message = await self._revoke_one(tracked)
        except StillOpenError as exc:
            tracked.revoke.set_exception(exc)
            return
        except Exception as exc:
            failure = self.ctx.failure(tracked, exc)
            tracked.revoke.set_exception(StillOpenError(f"closing failed: {failure}"))
            return
        tracked.revoke.set_result(message)

    async def _revoke_one(self, tracked: Tracked) -> str:
        assert self._read is not None
        status = tracked.status
        ports = tracked.ports()
        target = parse_policy_id(status.azure.policy_id)
        if tracked.initiating:
            # Its initiate may land after a revoke that saw nothing to delete: wait for it.
            raise StillOpenError("an initiate for this request is in flight; waiting for it")
        if target is not None and status.azure.initiation_id:
            # A request deleted while Azure still applies its initiate keeps its finalizer
            # until the rule is there to delete: finishing now would let the rule appear
            # afterwards, open until Azure's own end time with no request to close it (U2).
            history = await self.az.jit.get(target)
            if still_applying(
                history.initiations if history else (),
                status.azure.initiation_id,
                vm_id=status.azure.vm_id,
                ports=ports,
            ):
                raise StillOpenError(
                    "Azure is still applying this request's initiate; waiting to delete it"
                )
        before = self._claims()
        before.extend(tracked.claims())
        after = self._claims(excluding=[tracked])
        now = self.rt.clock.now()
        if target is not None:
            openings = port_ops.narrowed_openings(before, after, ports, now=now)
            if openings:
                # Same-source requests remain: end Azure's grant at their expiry, not ours.
                await port_ops.initiate(
                    self.az,
                    target,
                    vm_id=self.vm_id,
                    openings=openings,
                    justification=f"azurejit-revoke k8s:{tracked.ref}: access revoked early",
                )
        await delete_beyond(self.az, self.vm_id, [self._read.classify(ports, after, now=now)])
        confirm = await read_nsgs(self.az, self.vm_id, now=self.rt.clock.now())
        if any(o.beyond_grant for o in confirm.classify(ports, after, now=now).values()):
            raise StillOpenError("an allow rule is still on the NSG after deleting it")
        message = f"deleted: port(s) {', '.join(map(str, ports))} closed before expiry"
        await self.ctx.write(
            tracked,
            Phase.REVOKED,
            "Revoked",
            message,
            closed_at=self.rt.clock.now(),
            ports=tuple(replace(p, state=CLOSED) for p in status.ports),
        )
        self.ctx.open_ports.closed(tracked.ref)
        self.ctx.queue.add(vm_queue_key(tracked.obj.namespace, self.vm_id))
        return message

    # -- 2. close ------------------------------------------------------------------------

    async def _close(self, closing: list[Tracked]) -> None:
        assert self._read is not None
        remaining = self._claims(excluding=closing)
        due = [t for t in closing if not await self._judge_close(t, self._read, remaining)]
        if not due:
            return
        now = self.rt.clock.now()
        for tracked in due:
            tracked.forcing_since = tracked.forcing_since or now
            tracked.deleted_at = now
        try:
            await delete_beyond(
                self.az,
                self.vm_id,
                [self._read.classify(t.ports(), remaining, now=now) for t in due],
            )
            confirm = await read_nsgs(self.az, self.vm_id, now=self.rt.clock.now())
        except Exception as exc:
            failure = self.ctx.failure(self.vm_id, exc)
            self._retry(str(failure), retry_after=failure.retry_after, within_grace=True)
            return
        for tracked in due:
            if not await self._judge_close(tracked, confirm, remaining, after_delete=True):
                # The rule survived a delete: look again, never spin.
                self._again(now + self._poll())
        return

    def _waiting(self) -> list[tuple[Tracked, list[tuple[int, str]]]]:
        """Requests on this VM judged ready and waiting for a port, oldest first."""
        return [
            (t, t.wanted())
            for t in self.neighbours
            if t.status.phase is Phase.PENDING and not _has_intent(t) and t.binding is not None
        ]

    def _poll(self) -> timedelta:
        return timedelta(seconds=max(1.0, self.rt.settings.close_grace.total_seconds() / 8))

    async def _judge_close(
        self, tracked: Tracked, read: NsgRead, remaining: list[Claim], *, after_delete: bool = False
    ) -> bool:
        """Record the close if the NSG shows it done; else say when to look again. False when
        the forced delete is due now."""
        now = self.rt.clock.now()
        expires = tracked.status.expires_at
        assert expires is not None
        grace = self.rt.settings.close_grace
        deadline = expires + grace
        ports = tracked.ports()
        observed = read.classify(ports, remaining, now=now)
        still_open = [p for p, o in observed.items() if o.beyond_grant]
        self.ctx.observed(tracked, ports, [p for p, o in observed.items() if o.rules])
        self.ctx.open_ports.past_expiry(tracked.ref, len(still_open) if now >= deadline else 0)
        if not still_open:
            await self._expired(tracked, remaining)
            return True
        if after_delete:
            return False
        subscription = _subscription_of(self.vm_id)
        force_at = force_close_at(expires, grace, self.rt.close_timings.estimate(subscription))
        if now < force_at:
            # One read at expiry, the next when the delete is due: polling meanwhile costs a
            # read per request every few seconds, which at a thousand closes at once starves
            # the deletes themselves of CPU.
            self._again(force_at)
            return True
        if tracked.deleted_at is not None and now - tracked.deleted_at < self._poll():
            self._again(tracked.deleted_at + self._poll())
            return True
        return False

    async def _expired(self, tracked: Tracked, remaining: list[Claim]) -> None:
        """The close is confirmed; its status is written at the end of the pass, so that it
        can name who has the port next (a waiting request opens in the same pass)."""
        closed = self.rt.clock.now()
        expires = tracked.status.expires_at
        assert expires is not None
        if tracked.forcing_since is not None:
            # What deleting took, so the next close on this subscription starts in time.
            self.rt.close_timings.record(
                _subscription_of(self.vm_id), (closed - tracked.forcing_since).total_seconds()
            )
        self.ctx.open_ports.past_expiry(tracked.ref, 0)
        CLOSE_LAG_SECONDS.observe(max(0.0, (closed - expires).total_seconds()))
        self._expirations.append((tracked, closed))

    async def _write_expirations(self) -> None:
        expirations, self._expirations = self._expirations, []
        for tracked, closed in expirations:
            expires = tracked.status.expires_at
            assert expires is not None
            held = self._claims(excluding=[tracked])
            note = _handover_note(held, tracked.claims(), now=closed, next_up=self._waiting())
            note += extension_note(self.ctx, tracked)
            vm_name = str(tracked.obj.spec.get("virtualMachine", ""))
            await self.ctx.write(
                tracked,
                Phase.EXPIRED,
                "Expired",
                f"access to {vm_name} ended at {format_timestamp(expires)}; rule(s) confirmed "
                f"gone from the NSG{note}",
                closed_at=closed,
                ports=tuple(replace(p, state=CLOSED) for p in tracked.status.ports),
            )
            self.ctx.open_ports.closed(tracked.ref)
            self.ctx.enqueue(tracked)  # its TTL
        if expirations:
            # A request waiting for one of these ports opens now, not at its next look.
            self.ctx.queue.add(vm_queue_key(expirations[0][0].obj.namespace, self.vm_id))

    # -- 3. confirm ------------------------------------------------------------------------

    async def _confirm(self, tracked: Tracked) -> bool:
        """Go Active once the NSG shows the rules; False when the recorded initiate never
        reached Azure and must be made again."""
        assert self._read is not None
        status = tracked.status
        wanted = tracked.wanted()
        if not tracked.initiate_known:
            adopted = await self._adoptable(tracked, wanted)
            if adopted is None:
                return True  # cannot tell yet; retried
            if not adopted:
                return False
            tracked.initiate_known = True
        start = status.start_time or self.now
        expires = status.expires_at or start
        mine = tracked.claims()
        observed = self._read.classify([c.port for c in mine], self._claims(), now=self.now)
        served = {c.port for c in mine if source_admitted(observed[c.port].sources, c.prefix)}
        deadline = min(start + CONFIRM_DEADLINE, expires)
        vm_name = str(tracked.obj.spec.get("virtualMachine", ""))
        ports = [c.port for c in mine]
        if len(served) < len(mine) and self.now < deadline:
            await self.ctx.write(
                tracked,
                Phase.PENDING,
                "AzureApplying",
                f"Azure accepted the initiate for port(s) {_ports(ports)} on {vm_name} and is "
                "applying it: the allow rule is not on the NSG yet (waiting until "
                f"{format_timestamp(deadline)} at most, without initiating again)",
            )
            self._again(min(deadline, self.now + APPLYING_POLL))
            return True
        states = tuple(
            PortState(c.port, c.prefix, OPEN if c.port in served else CLOSED) for c in mine
        )
        opened = ", ".join(f"{c.port} from {c.prefix}" for c in mine)
        note = (
            ""
            if len(served) == len(mine)
            else " (Azure accepted; the rule is not yet visible on the NSG)"
        )
        if not await self.ctx.write(
            tracked,
            Phase.ACTIVE,
            "Opened",
            f"port(s) {opened} open on {vm_name} until {format_timestamp(expires)}{note}",
            start_time=start,
            expires_at=expires,
            ports=states,
            azure=replace(status.azure, initiated_at=start),
        ):
            return True
        REQUEST_OPEN_SECONDS.observe(max(0.0, (self.now - tracked.obj.created).total_seconds()))
        announce_emergency(self.ctx, tracked, expires)
        await link_predecessor(self.ctx, tracked)
        self.ctx.observed(tracked, ports, served)
        tracked.verified_at = self.now
        # Until the NSG has shown every port, look again soon rather than a drift later.
        self._again(min(expires, self.now + self._verify_every(tracked)))
        self.ctx.queue.add(close_queue_key(*tracked.key), expires)
        return True

    async def _adoptable(self, tracked: Tracked, wanted: Sequence[tuple[int, str]]) -> bool | None:
        """Whether the last operator's initiate reached Azure (None: cannot tell yet).

        Azure's history tells when it still holds the entry (by the marker in endTimeUtc or in
        the justification). When it does not (U1, U7), the NSG does: a rule admitting this
        request's source on every port means it is open for it, so it is adopted rather than
        initiated again."""
        assert self._read is not None
        status = tracked.status
        ports = [n for n, _ in wanted]
        target = parse_policy_id(status.azure.policy_id)
        try:
            if target is not None:
                history = await self.az.jit.get(target)
                if history is not None and find_ours(
                    history.initiations,
                    status.azure.initiation_id,
                    vm_id=status.azure.vm_id,
                    ports=ports,
                ):
                    return True
        except Exception as exc:
            failure = self.ctx.failure(tracked, exc)
            self._retry(str(failure), retry_after=failure.retry_after, within_grace=False)
            return None
        observed = self._read.classify(ports, self._claims(), now=self.now)
        if all(source_admitted(observed[n].sources, p) for n, p in wanted):
            log.info(
                "%s: its initiate is not in Azure's history, but the NSG admits its source on "
                "port(s) %s: adopting instead of initiating again",
                tracked.obj,
                _ports(ports),
            )
            return True
        return False

    # -- 4. verify -------------------------------------------------------------------------

    def _verify_every(self, tracked: Tracked) -> timedelta:
        every = self.rt.settings.drift_interval
        if not self.ctx.open_ports.knows(tracked.ref):
            every = min(every, timedelta(seconds=MAX_WAIT_SECONDS))
        return every

    def _verify_due(self, tracked: Tracked) -> bool:
        seen = tracked.verified_at
        return seen is None or self.now - seen >= self._verify_every(tracked)

    async def _verify(self, tracked: Tracked) -> None:
        """Heal a grant that vanished early (e.g. Azure closed a shared one while we were
        down)."""
        assert self._read is not None
        mine = tracked.claims()
        ports = [c.port for c in mine]
        observed = self._read.classify(ports, self._claims(), now=self.now)
        missing = [c for c in mine if not source_admitted(observed[c.port].sources, c.prefix)]
        tracked.verified_at = self.now
        self.ctx.observed(tracked, ports, [c.port for c in mine if c not in missing])
        if missing:
            await self._heal(tracked, mine, missing)
        self._again(self.now + self._verify_every(tracked))

    async def _heal(
        self, tracked: Tracked, mine: Sequence[Claim], missing: Sequence[Claim]
    ) -> None:
        """Initiate again what Azure closed before expiresAt."""
        status = tracked.status
        expires = status.expires_at
        policy = self.ctx.cache.policy(
            tracked.obj.namespace, str(tracked.obj.spec.get("policyName", ""))
        )
        if policy is None or policy.spec is None or expires is None:
            return  # nothing to heal with
        if self.now >= expires - timedelta(seconds=1):
            return  # Azure's marked end (a second early) has come
        target = policy.spec.azure
        try:
            history = await self.az.jit.get(target)
            if still_applying(
                history.initiations if history else (),
                status.azure.initiation_id,
                vm_id=self.vm_id,
                ports=[c.port for c in missing],
            ):
                log.info("%s: rule not on the NSG yet, Azure is still applying", tracked.obj)
                return
            spec = tracked.spec()
            if spec is None:
                return  # a spec broken after it opened heals nothing; its close still runs
            await self._initiate(
                target,
                missing,
                status.azure.initiation_id,
                _justification(
                    spec.justification,
                    str(tracked.ref),
                    status.azure.initiation_id,
                    requester=spec.requester.username if spec.requester else None,
                    vouched=self.rt.settings.webhooks != "off",
                ),
                others=self._claims(excluding=[tracked]),
            )
        except Exception as exc:
            failure = self.ctx.failure(tracked, exc)
            self._retry(str(failure), retry_after=failure.retry_after, within_grace=False)
            return
        # Azure accepted the re-initiate and applies it within seconds: report the ports open
        # now rather than closed until the next verification reads them.
        self.ctx.observed(tracked, [c.port for c in mine], [c.port for c in mine])
        self.rt.post_event(
            tracked.obj.identity,
            "Warning",
            "Reopened",
            f"port(s) {_ports([c.port for c in missing])} were closed in Azure before "
            "expiresAt; re-initiated",
        )

    # -- 5. open ---------------------------------------------------------------------------

    async def _open(self, openers: list[Tracked], reinitiate: list[Tracked]) -> None:
        subscription = _subscription_of(self.vm_id)
        held = self.az.clients.throttled_for(subscription, "writes")
        if held > 0:
            # ARM's write quota is spent: wait for it here, as a re-queue, not in a call.
            self._again(self.now + timedelta(seconds=held))
            return
        now = self.rt.clock.now()
        claims = self._claims(excluding=[*openers, *reinitiate])
        batches: dict[str, list[tuple[Tracked, list[Claim]]]] = {}
        for tracked in sorted([*reinitiate, *openers], key=lambda t: t.obj.created):
            picked = self._admit(tracked, claims, now)
            if picked is None:
                continue
            claims.extend(picked)
            # A request whose earlier initiate never arrived keeps its id (its own batch).
            batch = tracked.status.azure.initiation_id or "new"
            batches.setdefault(batch, []).append((tracked, picked))
        await self._flush_writes()
        for batch_id, members in batches.items():
            await self._initiate_batch(
                members, uuid.uuid4().hex[:12] if batch_id == "new" else batch_id, claims
            )

    def _admit(self, tracked: Tracked, claims: list[Claim], now: datetime) -> list[Claim] | None:
        """The claims a ready request may take now (None: it waits, or is no longer ready)."""
        if not _has_intent(tracked):
            verdict = judge(
                tracked.obj,
                live_status=tracked.obj.status,
                finalized=tracked.finalized,
                first_seen=tracked.first_seen,
                policies=self.ctx.cache.policy,
                webhooks=self.rt.settings.webhooks,
                now=now,
                chains=self.ctx.cache,
                schedules=self.ctx.cache.schedule,
                operator_user=self.rt.username,
            )
            if not isinstance(verdict, Ready) or verdict.binding.vm_id.lower() != self.vm_id:
                tracked.binding = None  # back to its own reconcile, which says why
                self.ctx.queue.add(request_queue_key(*tracked.key))
                self.ctx.cache.place(tracked)
                return None
            tracked.binding = verdict.binding
            tracked.approval = verdict.approval
        spec = tracked.spec()
        if spec is None:
            return None
        wanted = tracked.wanted()
        probe = port_ops.claims_of(tracked.ref, wanted, now + spec.duration)
        busy = busy_ports(claims, probe, now=now)
        if busy:
            self._waiting_for_port(tracked, busy[0], now)
            return None
        if _has_intent(tracked) and tracked.status.expires_at is not None:
            return port_ops.claims_of(tracked.ref, wanted, tracked.status.expires_at)
        link = tracked.binding.extension if tracked.binding else None
        if link is not None:
            # An extension shares its predecessor's grant from now on and ends where the
            # chain does: the predecessor's expiry then finds the port still claimed.
            return port_ops.claims_of(tracked.ref, wanted, link.ends_at)
        start = now.replace(microsecond=0)
        return port_ops.claims_of(tracked.ref, wanted, start + spec.duration)

    def _waiting_for_port(self, tracked: Tracked, first: PortBusy, now: datetime) -> None:
        vm_name = str(tracked.obj.spec.get("virtualMachine", ""))
        holders = ", ".join(str(h) for h in first.holders)
        message = (
            f"port {first.port} on {vm_name} is open to {first.holder_prefix} for {holders} "
            f"until {format_timestamp(first.until)}; Azure JIT allows one source per port, so "
            "this request opens when that access ends (or is revoked)"
        )
        self._writes.append(
            self.ctx.write(tracked, Phase.PENDING, "WaitingForPort", message, clear_intent=True)
        )
        wait = min(MAX_WAIT_SECONDS, (first.until - now).total_seconds() + 0.5)
        self._again(now + timedelta(seconds=max(0.5, wait)))

    async def _initiate_batch(
        self, members: list[tuple[Tracked, list[Claim]]], initiation_id: str, claims: list[Claim]
    ) -> None:
        """Record the intent of every member, then one initiate per Azure policy for all."""
        by_target: dict[str, list[tuple[Tracked, list[Claim]]]] = {}
        for tracked, mine in members:
            binding = tracked.binding
            policy_id = binding.policy_id if binding else tracked.status.azure.policy_id
            by_target.setdefault(policy_id, []).append((tracked, mine))
        for policy_id, group in by_target.items():
            target = parse_policy_id(policy_id)
            if target is None:
                continue
            intents = []
            for tracked, mine in group:
                start = tracked.status.start_time if _has_intent(tracked) else None
                start = start or self.now.replace(microsecond=0)
                vm_name = str(tracked.obj.spec.get("virtualMachine", ""))
                chain = chain_fields(tracked)
                intents.append(
                    self.ctx.write(
                        tracked,
                        Phase.PENDING,
                        "Initiating",
                        f"opening port(s) {_ports([c.port for c in mine])} on {vm_name}",
                        azure=AzureRecord(
                            policy_id=policy_id,
                            vm_id=_vm_id_of(tracked, self.vm_id),
                            initiation_id=initiation_id,
                        ),
                        start_time=start,
                        expires_at=mine[0].expires_at,
                        **chain,
                    )
                )
            # The intent lands in Kubernetes before the initiate reaches Azure.
            written = await asyncio.gather(*intents)
            opening = [m for m, ok in zip(group, written, strict=True) if ok]
            if not opening:
                continue
            first, _ = opening[0]
            spec = first.spec()
            justification = _justification(
                spec.justification if spec else "",
                str(first.ref) + (f" +{len(opening) - 1} more" if len(opening) > 1 else ""),
                initiation_id,
                requester=spec.requester.username if spec and spec.requester else None,
                vouched=self.rt.settings.webhooks != "off",
            )
            mine_all = [c for _, mine in opening for c in mine]
            for tracked, _ in opening:
                tracked.initiating = True
            try:
                await self._initiate(target, mine_all, initiation_id, justification, others=claims)
            except Exception as exc:
                await self._initiate_failed(opening, exc)
                continue
            finally:
                for tracked, _ in opening:
                    tracked.initiating = False
            for tracked, _ in opening:
                tracked.initiate_known = True
            self._again(self.rt.clock.now())  # confirm on the NSG at once

    async def _initiate_failed(
        self, group: list[tuple[Tracked, list[Claim]]], exc: Exception
    ) -> None:
        failure = self.ctx.failure(self.vm_id, exc)
        for tracked, _ in group:
            # The initiate may have reached Azure: the port stays claimed for this source (the
            # intent stays) until the next pass asks Azure's history before initiating again.
            tracked.initiate_known = False
            if not failure.retryable:
                await self.ctx.write(
                    tracked,
                    Phase.FAILED,
                    "AzureRejected",
                    f"Azure refused to open the port(s): {failure}",
                )
            else:
                await self.ctx.write(
                    tracked,
                    Phase.PENDING,
                    "AzureUnavailable",
                    f"Azure is unavailable ({failure}); retrying",
                )
        if failure.retryable:
            self._retry(str(failure), retry_after=failure.retry_after, within_grace=False)

    async def _initiate(
        self,
        target: AzureTarget,
        mine: Sequence[Claim],
        initiation_id: str,
        justification: str,
        *,
        others: Sequence[Claim],
    ) -> None:
        """One initiate for ``mine``: each port's end is its grant's (a same-source grant ends
        at its latest member's expiry), carrying the marker of ``initiation_id``."""
        theirs = [c for c in others if all(c.request != m.request for m in mine)]
        openings: dict[int, PortOpening] = {}
        for opening in port_ops.openings_for([*theirs, *mine], mine, now=self.rt.clock.now()):
            marked = replace(opening, end=marked_end(opening.end, initiation_id))
            openings[opening.number] = marked
        await port_ops.initiate(
            self.az,
            target,
            vm_id=self.vm_id,
            openings=list(openings.values()),
            justification=justification,
        )

    async def _flush_writes(self) -> None:
        writes, self._writes = self._writes, []
        if writes:
            await asyncio.gather(*writes)


def _has_intent(tracked: Tracked) -> bool:
    status = tracked.status
    return status.phase is Phase.PENDING and bool(status.azure.initiation_id)


def _expired(tracked: Tracked, now: datetime) -> bool:
    expires = tracked.status.expires_at
    return expires is not None and now >= expires


def _deadline(tracked: Tracked, grace: timedelta) -> datetime:
    expires = tracked.status.expires_at
    assert expires is not None
    return expires + grace


def _vm_id_of(tracked: Tracked, fallback: str) -> str:
    if tracked.binding is not None:
        return tracked.binding.vm_id
    return tracked.status.azure.vm_id or fallback


def _subscription_of(vm_id: str) -> str:
    parts = vm_id.split("/")
    return parts[2].lower() if len(parts) > 2 else ""


def _ports(ports: Sequence[int]) -> str:
    return ", ".join(str(number) for number in ports)


def _handover_note(
    held: Sequence[Claim],
    mine: Sequence[Claim],
    *,
    now: datetime,
    next_up: Sequence[tuple[Tracked, list[tuple[int, str]]]] = (),
) -> str:
    """Who has this request's ports now, or who waits for them, by name and source (empty
    when nobody)."""
    notes = []
    for claim in mine:
        grant = grant_for_port(held, claim.port, now=now)
        if grant is None:
            waiting = [(t, p) for t, ports in next_up for n, p in ports if n == claim.port]
            if waiting:
                tracked, prefix = waiting[0]
                notes.append(
                    f"port {claim.port} goes next to {canonical_prefix(prefix)} for "
                    f"{tracked.ref} (waiting for it)"
                )
            continue
        holders = ", ".join(str(m) for m in grant.members)
        if grant.prefix == claim.prefix:
            notes.append(
                f"port {claim.port} stays open to {grant.prefix} for another request from "
                f"the same source ({holders})"
            )
        else:
            notes.append(f"port {claim.port} is now open to {grant.prefix} for {holders}")
    return "; " + "; ".join(notes) if notes else ""


def _justification(
    text: str, who: str, initiation_id: str, *, requester: str | None, vouched: bool
) -> str:
    # The marker leads, so it survives any truncation on Azure's side; Activity Log readers
    # see which Kubernetes object asked, and for whom (only when the webhooks stamped it).
    by = f" by:{requester}" if requester and vouched else ""
    return f"azurejit-{initiation_id} k8s:{who}{by}: {text}"[:500]
