"""A JitAccessRequest's life, run as one coroutine per request (a kopf daemon).

Every step re-derives where it is from ``status`` alone, so a restarted operator resumes
exactly where the last one stopped:

- Pending, no intent: judge against the policy -> Denied, or wait (policy not Ready, port
  held for another source), or record the intent (an initiation id) and initiate.
- Pending with an intent: the last initiate may or may not have reached Azure. The id is in
  the Azure justification, so the policy's request history tells; initiate only if absent.
- Active: verify the grant now and then, sleep until expiresAt, then close: give Azure the
  first half of the close grace to remove its rule, then delete it, confirm, Expired.
- Terminal: wait for the TTL, then delete the object.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from azure_jit_operator.azure.access import AzureAccess
from azure_jit_operator.azure.errors import AzureError, classify
from azure_jit_operator.domain.approvals import ApprovalMode, approval_verdict, parse_records
from azure_jit_operator.domain.azure_policy import policy_resource_id, vm_resource_id
from azure_jit_operator.domain.close_timing import force_close_at
from azure_jit_operator.domain.conditions import FALSE, TRUE, Condition, find
from azure_jit_operator.domain.credentials import CredentialError
from azure_jit_operator.domain.grants import (
    Claim,
    RequestRef,
    busy_ports,
    grant_for_port,
    source_admitted,
)
from azure_jit_operator.domain.initiation_marker import find_ours, marked_end, still_applying
from azure_jit_operator.domain.lifecycle import Phase
from azure_jit_operator.domain.request_rules import check_request, policy_not_found
from azure_jit_operator.domain.request_status import (
    CLOSED,
    OPEN,
    AzureRecord,
    PortState,
    RequestStatus,
)
from azure_jit_operator.domain.specs import (
    AzureTarget,
    JitAccessRequestSpec,
    JitPolicySpec,
    SpecError,
    parse_request_spec,
)
from azure_jit_operator.domain.timestamps import format_timestamp, parse_timestamp
from azure_jit_operator.metrics import (
    CLOSE_LAG_SECONDS,
    RECONCILE_ERRORS_TOTAL,
    REQUEST_OPEN_SECONDS,
)
from azure_jit_operator.reconcile import port_ops
from azure_jit_operator.reconcile.objects import ObjectView
from azure_jit_operator.reconcile.open_ports import OpenPorts
from azure_jit_operator.reconcile.recorder import Recorder, Stop
from azure_jit_operator.reconcile.runtime import Runtime

log = logging.getLogger("azure_jit_operator.requests")

POLICY_GRACE = timedelta(seconds=30)  # a request may arrive just before its policy
FINALIZER_POLL_SECONDS = 0.2
FINALIZER_POLL_MAX_SECONDS = 2.0
FINALIZER_REPORT_AFTER = timedelta(seconds=30)
# Azure applies an initiate asynchronously; scripts wait ~12 s, "give it 2 minutes" is also
# reported (U2). Past this the request is Active with the rule reported missing.
CONFIRM_DEADLINE = timedelta(minutes=5)
MAX_WAIT_SECONDS = 30.0
UNKNOWN_POLICY = "<unknown>"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PolicyView:
    """A JitPolicy as the request side needs it (from kopf's index)."""

    name: str
    spec: JitPolicySpec | None
    ready: bool
    ready_message: str


PolicyLookup = Callable[[str, str], PolicyView | None]


@dataclass(frozen=True, slots=True)
class Opened:
    """Azure accepted the initiate (now, or before a restart): the claims it serves."""

    claims: list[Claim]
    start: datetime


class RequestWorker:
    def __init__(
        self,
        rt: Runtime,
        obj: ObjectView,
        *,
        policies: PolicyLookup,
        open_ports: OpenPorts,
        stopped: Callable[[], Awaitable[object]],
        is_stopped: Callable[[], bool],
        live_status: Callable[[], Mapping[str, Any]] = dict,
        protected: Callable[[], bool] = lambda: True,
    ) -> None:
        self.rt = rt
        self.obj = obj
        self.me = RequestRef(obj.namespace, obj.name, obj.uid)
        self.recorder = Recorder(
            rt,
            obj,
            RequestStatus.from_dict(obj.status),
            may_write=lambda: obj.uid not in rt.revoked,
        )
        self._policies = policies
        self._open_ports = open_ports
        self._stopped = stopped
        self._is_stopped = is_stopped
        self._backoff = 1.0
        self.az: AzureAccess  # chosen per step by _resolve_identity
        self._approval: tuple[Condition, ...] = ()  # the Approved condition, once approved
        self._closing = False  # past expiresAt: retries must stay within the close grace
        self._live_status = live_status
        self._protected = protected

    # -- the loop ------------------------------------------------------------------

    async def run(self) -> None:
        with self.rt.ports.in_use():
            await self._run()

    async def _run(self) -> None:
        try:
            while not self._is_stopped():
                phase = self.status.phase
                if not phase.is_terminal and not await self._resolve_identity():
                    continue
                if phase is Phase.PENDING:
                    await self._pending()
                elif phase is Phase.ACTIVE:
                    await self._active()
                else:
                    await self._terminal()
                    return
        except Stop:
            return
        finally:
            # Whatever this worker reported open or pending is no longer known here.
            self._open_ports.forget(self.me)

    async def _resolve_identity(self) -> bool:
        """Pick the namespace's Azure identity for this step; False after reporting a problem."""
        try:
            self.az = await self.rt.azure_for(self.obj.namespace)
        except CredentialError as exc:
            if self.status.phase is Phase.PENDING:
                await self._write(Phase.PENDING, "CredentialInvalid", str(exc))
            else:
                log.warning("%s: cannot use the namespace's Azure identity: %s", self.obj, exc)
            await self._nap(max(1.0, self._until_close(30.0)))
            return False
        return True

    async def _nap(self, seconds: float) -> None:
        if not await self.rt.clock.sleep(seconds, interrupt=self._stopped()):
            raise Stop

    # -- Pending ---------------------------------------------------------------------

    async def _pending(self) -> None:
        try:
            spec = parse_request_spec(self.obj.spec)
        except SpecError as exc:
            await self._write(Phase.DENIED, "InvalidSpec", str(exc), policy=UNKNOWN_POLICY)
            return
        policy = self._policies(self.obj.namespace, spec.policy_name)
        if policy is None:
            if self.rt.clock.now() - self.obj.created < POLICY_GRACE:
                await self._wait(
                    "WaitingForPolicy",
                    f"JitPolicy {spec.policy_name!r} not found yet; waiting briefly",
                    seconds=2.0,
                )
                return
            missing = policy_not_found(spec.policy_name, self.obj.namespace)
            await self._write(Phase.DENIED, missing.reason, missing.message, policy=UNKNOWN_POLICY)
            return
        if policy.spec is None or not policy.ready:
            await self._wait(
                "WaitingForPolicy",
                f"JitPolicy {policy.name!r} is not Ready ({policy.ready_message}); "
                "the request opens once the policy is in Azure",
                seconds=5.0,
            )
            return
        denial = check_request(spec, policy.spec, policy_name=policy.name)
        if denial is not None:
            await self._write(Phase.DENIED, denial.reason, denial.message, policy=policy.name)
            return
        if not await self._approved(spec, policy.name, policy.spec):
            return
        await self._open(spec, policy.name, policy.spec)

    async def _approved(
        self, spec: JitAccessRequestSpec, policy_name: str, policy: JitPolicySpec
    ) -> bool:
        """Whether the policy's approval rules are met; records the wait or the denial."""
        if policy.approval.mode is ApprovalMode.MANUAL and self.rt.settings.webhooks == "off":
            # Without the admission webhooks nobody vouches for spec.requester or for the
            # approvers' identities: approvals would be forgeable.
            message = (
                f"JitPolicy {policy_name!r} requires approval, which needs the operator's "
                "admission webhooks (AZURE_JIT_WEBHOOKS=managed or external; deploy/components)"
            )
            await self._write(Phase.DENIED, "ApprovalNeedsWebhooks", message, policy=policy_name)
            return False
        verdict = approval_verdict(
            policy.approval,
            requester=spec.requester,
            records=parse_records(self._live_status().get("approvals")),
            created=self.obj.created,
            now=self.rt.clock.now(),
            request_name=self.obj.name,
        )
        if verdict.state == "approved":
            if policy.approval.mode is ApprovalMode.MANUAL:
                self._approval = (Condition("Approved", TRUE, verdict.reason, verdict.message),)
            return True
        if verdict.state == "denied":
            await self._write(
                Phase.DENIED,
                verdict.reason,
                verdict.message,
                policy=policy_name,
                extra=(Condition("Approved", FALSE, verdict.reason, verdict.message),),
            )
            return False
        await self._write(
            Phase.PENDING,
            verdict.reason,
            verdict.message,
            extra=(Condition("Approved", FALSE, verdict.reason, verdict.message),),
        )
        # Decisions arrive through the watch (kopf updates the live body); re-judge soon,
        # and no later than the approval deadline.
        deadline = self.obj.created + policy.approval.timeout
        await self._nap(max(0.0, min(2.0, (deadline - self.rt.clock.now()).total_seconds())))
        return False

    async def _wait(self, reason: str, message: str, *, seconds: float) -> None:
        await self._write(Phase.PENDING, reason, message)
        await self._nap(seconds)

    async def _open(
        self, spec: JitAccessRequestSpec, policy_name: str, policy: JitPolicySpec
    ) -> None:
        if not self._protected():
            # kopf adds the finalizer in the same cycle that starts this worker. Open nothing
            # before it is on the object: a deletion in between would skip the early close.
            await self._wait_for_finalizer()
            return
        vm_rule = policy.virtual_machine(spec.virtual_machine)
        assert vm_rule is not None  # check_request guarantees it
        target = policy.azure
        vm_id = vm_resource_id(target.subscription_id, target.resource_group, vm_rule.name)
        policy_id = policy_resource_id(
            target.subscription_id, target.resource_group, target.location, target.policy_name
        )
        await self.rt.seed_ports()
        wanted = [(p.number, p.source_prefix.text) for p in spec.ports]
        # Check the port and reserve it with no await in between: on one event loop that is
        # atomic, so two requests for different sources never both find a port free, and no
        # lock is held while this request waits, retries or polls (a close never waits for
        # it). The reservation is a claim like any other: closes on this VM leave a rule for
        # this source alone while the initiate is under way.
        now = self.rt.clock.now()
        probe = port_ops.claims_of(self.me, wanted, now + spec.duration)
        busy = busy_ports(self.rt.ports.claims(vm_id, excluding=self.me), probe, now=now)
        if busy:
            first = busy[0]
            holders = ", ".join(str(h) for h in first.holders)
            message = (
                f"port {first.port} on {vm_rule.name} is open to {first.holder_prefix} for "
                f"{holders} until {format_timestamp(first.until)}; Azure JIT allows one "
                "source per port, so this request opens when that access ends (or is "
                "revoked)"
            )
            await self._write(Phase.PENDING, "WaitingForPort", message, clear_intent=True)
            wait = min(MAX_WAIT_SECONDS, (first.until - now).total_seconds() + 0.5)
            await self._wait_for_port(vm_id, wait)
            return
        initiation_id = self.status.azure.initiation_id or uuid.uuid4().hex[:12]
        start = now.replace(microsecond=0)
        reservation = port_ops.claims_of(self.me, wanted, start + spec.duration)
        self.rt.ports.put(vm_id, self.me, reservation)
        try:
            outcome = await self._initiate_reserved(
                spec,
                policy_name,
                target,
                vm_name=vm_rule.name,
                azure=AzureRecord(policy_id=policy_id, vm_id=vm_id, initiation_id=initiation_id),
                wanted=wanted,
                start=start,
            )
        except BaseException:
            self.rt.ports.drop(vm_id, self.me)  # nothing known to be open: release the port
            raise
        if outcome is None:
            self.rt.ports.drop(vm_id, self.me)  # refused: nothing was opened
            return
        if not isinstance(outcome, Opened):
            # The initiate may have reached Azure: the port stays claimed for this source until
            # the next pass tells (it reads the history before initiating again). Released, it
            # could go to another source while a rule for this one may be open and unclaimed.
            # A claim is no lock: closes never wait for it.
            await self._retry_later(outcome)
            return
        self.rt.ports.put(vm_id, self.me, outcome.claims)
        await self._confirm_and_activate(
            vm_id, policy_name, vm_rule.name, outcome.claims, outcome.start
        )

    async def _wait_for_finalizer(self) -> None:
        """Until kopf's finalizer is on the object: a cheap check with a growing pause (under
        a burst of new requests kopf may take seconds to reach each one, and a 1,000 workers
        re-judging their request five times a second starve it further); the status says so
        if it takes long (e.g. RBAC without ``patch`` on jitaccessrequests)."""
        pause = FINALIZER_POLL_SECONDS
        since = self.rt.clock.now()
        reported = False
        while not self._protected():
            if not reported and self.rt.clock.now() - since >= FINALIZER_REPORT_AFTER:
                await self._write(
                    Phase.PENDING,
                    "WaitingForFinalizer",
                    "the operator's finalizer is not on the request yet, so nothing is opened "
                    "(it guarantees the early close on deletion); if this persists, check that "
                    "the operator may patch jitaccessrequests",
                )
                reported = True
            await self._nap(pause)
            pause = min(pause * 2, FINALIZER_POLL_MAX_SECONDS)

    async def _initiate_reserved(
        self,
        spec: JitAccessRequestSpec,
        policy_name: str,
        target: AzureTarget,
        *,
        vm_name: str,
        azure: AzureRecord,
        wanted: Sequence[tuple[int, str]],
        start: datetime,
    ) -> Opened | AzureError | None:
        """Initiate (or adopt the last operator's initiate); Opened, a passing failure to
        retry after, or None once a refusal is recorded. Sleeps nowhere."""
        vm_id = azure.vm_id
        if self.status.azure.initiation_id:
            # The last initiate may have reached Azure: adopt it, never repeat it.
            adopted = await self._adoptable(target, azure, wanted)
            if not isinstance(adopted, bool):
                return adopted
            if adopted:
                start = self.status.start_time or start
                expires = self.status.expires_at or start + spec.duration
                return Opened(port_ops.claims_of(self.me, wanted, expires), start)
        expires = start + spec.duration
        mine = port_ops.claims_of(self.me, wanted, expires)
        # The intent lands in Kubernetes before the initiate reaches Azure.
        await self._write(
            Phase.PENDING,
            "Initiating",
            f"opening port(s) {_ports(wanted)} on {vm_name}",
            azure=azure,
            start_time=start,
            expires_at=expires,
        )
        justification = _justification(
            spec, self.me, azure.initiation_id, vouched=self.rt.settings.webhooks != "off"
        )
        try:
            await self._initiate(target, vm_id, mine, justification)
        except Exception as exc:
            failure = self._failure(exc)
            if not failure.retryable:
                await self._write(
                    Phase.FAILED,
                    "AzureRejected",
                    f"Azure refused to open the port(s): {failure}",
                    policy=policy_name,
                )
                return None
            await self._write(
                Phase.PENDING, "AzureUnavailable", f"Azure is unavailable ({failure}); retrying"
            )
            return failure
        return Opened(mine, start)

    async def _adoptable(
        self, target: AzureTarget, azure: AzureRecord, wanted: Sequence[tuple[int, str]]
    ) -> bool | AzureError:
        """Whether the last operator's initiate reached Azure (an error: cannot tell yet).

        Azure's history tells when it still holds the entry (by the marker in endTimeUtc or
        in the justification). When it does not, the operator cannot tell from the history
        (U1, U7) and looks at the NSG: a rule admitting this request's source on every port
        means the port is open for it, so it is adopted rather than initiated again."""
        ports = [number for number, _ in wanted]
        try:
            snapshot = await self.az.jit.get(target)
            if snapshot is not None and find_ours(
                snapshot.initiations, azure.initiation_id, vm_id=azure.vm_id, ports=ports
            ):
                return True
            observed = await port_ops.observe(
                self.rt, self.az, azure.vm_id, ports, now=self.rt.clock.now()
            )
        except Exception as exc:
            return self._failure(exc)
        if all(source_admitted(observed[n].sources, p) for n, p in wanted):
            log.info(
                "%s: its initiate is not in Azure's history, but the NSG admits its source on "
                "port(s) %s: adopting instead of initiating again",
                self.obj,
                _ports(wanted),
            )
            return True
        return False

    async def _initiate(
        self, target: AzureTarget, vm_id: str, mine: Sequence[Claim], justification: str
    ) -> None:
        """One initiate for ``mine``, serialised with the other initiates on this VM.

        Initiates on one VM take turns so that each computes Azure's end time from the claims
        the previous one left (a same-source grant ends at its latest member's expiry). The
        turn covers that computation and the one HTTP call (the SDK does not retry
        initiates), nothing else: any wait for ARM's write throttle happens before it.
        Closes never take a turn. A rule DELETE can therefore meet an initiate on the same
        port, and the close wins: it deletes only rules that no claim covers (this request's
        claim covers its own), and if Azure rewrites a rule the DELETE is removing, the
        port ends up closed, this request's confirm or drift check finds its rule missing and
        initiates again. Closed-and-healed is safe; open past a deadline is not.
        """
        held = self.az.clients.throttled_for(target.subscription_id, "writes")
        if held > 0:
            await self._nap(held)
        async with self.rt.ports.initiating(vm_id):
            openings = [
                replace(o, end=marked_end(o.end, self.status.azure.initiation_id))
                for o in port_ops.openings_for(
                    self.rt.ports.claims(vm_id, excluding=self.me), mine, now=self.rt.clock.now()
                )
            ]
            await port_ops.initiate(
                self.az, target, vm_id=vm_id, openings=openings, justification=justification
            )

    def _failure(self, exc: BaseException) -> AzureError:
        failure = classify(exc)
        RECONCILE_ERRORS_TOTAL.labels(kind=failure.kind.value).inc()
        log.warning("Azure call failed for %s: %s", self.obj, failure)
        return failure

    async def _wait_for_port(self, vm_id: str, seconds: float) -> None:
        waiter = asyncio.ensure_future(self.rt.ports.wait_for_change(vm_id))
        try:
            if not await self.rt.clock.sleep(seconds, interrupt=waiter) and self._is_stopped():
                raise Stop
        finally:
            waiter.cancel()

    async def _confirm_and_activate(
        self, vm_id: str, policy_name: str, vm_name: str, mine: Sequence[Claim], start: datetime
    ) -> None:
        """Wait until the NSG shows the rules, then go Active (holding no lock: a slow apply
        on Azure's side delays only this request).

        Azure applies an initiate asynchronously and nobody has shown how fast (U2): the
        request stays Pending (``AzureApplying``) meanwhile and is never initiated again. The
        wait is anchored at the initiate, so a restart does not extend it, and ends at the
        latest at expiry; then the request goes Active with the rule reported missing, and
        its close (which reads the NSG) takes over."""
        expires = mine[0].expires_at
        deadline = min(start + CONFIRM_DEADLINE, expires)
        ports = [c.port for c in mine]
        while True:
            observed = await self._azure(
                port_ops.observe(self.rt, self.az, vm_id, ports, now=self.rt.clock.now()),
                policy=policy_name,
            )
            if observed is None:
                return
            served = {c.port for c in mine if source_admitted(observed[c.port].sources, c.prefix)}
            if len(served) == len(mine) or self.rt.clock.now() >= deadline:
                break
            await self._write(
                Phase.PENDING,
                "AzureApplying",
                f"Azure accepted the initiate for port(s) {_ports([(p, '') for p in ports])} on "
                f"{vm_name} and is applying it: the allow rule is not on the NSG yet (waiting "
                f"until {format_timestamp(deadline)} at most, without initiating again)",
            )
            await self._nap(1.0)
        states = tuple(
            PortState(c.port, c.prefix, OPEN if c.port in served else CLOSED) for c in mine
        )
        opened = ", ".join(f"{c.port} from {c.prefix}" for c in mine)
        note = (
            ""
            if len(served) == len(mine)
            else " (Azure accepted; the rule is not yet visible on the NSG)"
        )
        await self._write(
            Phase.ACTIVE,
            "Opened",
            f"port(s) {opened} open on {vm_name} until {format_timestamp(expires)}{note}",
            policy=policy_name,
            start_time=start,
            expires_at=expires,
            ports=states,
            azure=replace(self.status.azure, initiated_at=start),
        )
        REQUEST_OPEN_SECONDS.observe(
            max(0.0, (self.rt.clock.now() - self.obj.created).total_seconds())
        )
        self._observed(policy_name, vm_name, ports, open_ports=served)

    # -- Active ----------------------------------------------------------------------

    async def _active(self) -> None:
        status = self.status
        vm_id = status.azure.vm_id
        expires = status.expires_at
        if not vm_id or expires is None:
            # Cannot happen for statuses we wrote; refuse to guess what is open.
            await self._write(Phase.EXPIRED, "StatusIncomplete", "status lost its Azure record")
            return
        mine = [Claim(self.me, p.number, p.source_prefix, expires) for p in status.ports]
        await self.rt.seed_ports()
        if not self.rt.ports.holds(vm_id, self.me) and expires > self.rt.clock.now():
            self.rt.ports.put(vm_id, self.me, mine)
        while self.rt.clock.now() < expires:
            await self._verify(vm_id, mine)
            # Until this worker has seen the NSG (e.g. Azure failed right after a restart),
            # open_ports does not report the request: look again soon.
            every = self.rt.settings.drift_interval
            if not self._open_ports.knows(self.me):
                every = min(every, timedelta(seconds=MAX_WAIT_SECONDS))
            check_at = self.rt.clock.now() + every
            if not await self.rt.clock.sleep_until(
                min(expires, check_at), interrupt=self._stopped()
            ):
                raise Stop
        await self._expire(vm_id, mine)

    async def _verify(self, vm_id: str, mine: Sequence[Claim]) -> None:
        """Heal a grant that vanished early (e.g. Azure closed a shared one while we were down)."""
        now = self.rt.clock.now()
        recent = self.rt.ports.verified_since(vm_id, now - self.rt.settings.drift_interval)
        if recent and self._open_ports.knows(self.me):
            return
        expires = max((c.expires_at for c in mine), default=now)
        if not await self._routine_slot(expires):
            return  # expiry came first: the close reads the NSG itself
        try:
            now = self.rt.clock.now()
            observed = await self._azure(
                port_ops.observe(self.rt, self.az, vm_id, [c.port for c in mine], now=now)
            )
        finally:
            self.rt.routine_checks.release()
        if observed is None:
            return
        self.rt.ports.mark_verified(vm_id, now)
        missing = [c for c in mine if not source_admitted(observed[c.port].sources, c.prefix)]
        self._observed(
            *self._labels(),
            [c.port for c in mine],
            open_ports=[c.port for c in mine if c not in missing],
        )
        if missing:
            await self._heal(vm_id, mine, missing, expires=expires)

    async def _heal(
        self, vm_id: str, mine: Sequence[Claim], missing: Sequence[Claim], *, expires: datetime
    ) -> None:
        """Initiate again what Azure closed before expiresAt."""
        policy = self._policies(self.obj.namespace, str(self.obj.spec.get("policyName", "")))
        now = self.rt.clock.now()
        if policy is None or policy.spec is None or now >= expires - timedelta(seconds=1):
            return  # nothing to heal with, or Azure's marked end (a second early) has come
        if await self._still_applying(policy.spec.azure, vm_id, missing):
            return
        try:
            spec = parse_request_spec(self.obj.spec)
        except SpecError:
            return  # a spec broken after it opened heals nothing; its close still runs
        vouched = self.rt.settings.webhooks != "off"
        justification = _justification(
            spec, self.me, self.status.azure.initiation_id, vouched=vouched
        )
        try:
            await self._initiate(policy.spec.azure, vm_id, missing, justification)
        except Exception as exc:
            await self._retry_later(self._failure(exc))  # holding nothing
            return
        self._backoff = 1.0
        # Azure accepted the re-initiate and applies it within seconds: report the ports
        # open now rather than closed until the next verification reads them.
        self._observed(*self._labels(), [c.port for c in mine], open_ports=[c.port for c in mine])
        self.rt.post_event(
            self.obj.identity,
            "Warning",
            "Reopened",
            f"port(s) {_ports([(c.port, c.prefix) for c in missing])} were closed in Azure "
            "before expiresAt; re-initiated",
        )

    async def _still_applying(
        self, target: AzureTarget, vm_id: str, missing: Sequence[Claim]
    ) -> bool:
        """True while Azure still applies this request's initiate (its history entry says
        ``Initiating``), or when that cannot be read: never initiate over a pending one."""
        try:
            snapshot = await self.az.jit.get(target)
        except Exception as exc:
            await self._retry_later(self._failure(exc))
            return True
        applying = still_applying(
            snapshot.initiations if snapshot else (),
            self.status.azure.initiation_id,
            vm_id=vm_id,
            ports=[c.port for c in missing],
        )
        if applying:
            log.info("%s: rule not on the NSG yet, Azure is still applying the initiate", self.obj)
        return applying

    async def _routine_slot(self, deadline: datetime) -> bool:
        """Take a routine-check slot; False, holding none, if ``deadline`` comes first (a
        request must not queue for a check past its expiry, when its close is due)."""
        acquire = asyncio.ensure_future(self.rt.routine_checks.acquire())
        try:
            await self.rt.clock.sleep_until(deadline, interrupt=acquire)
        except BaseException:  # the worker is cancelled: leave no slot taken
            if acquire.done() and not acquire.cancelled():
                self.rt.routine_checks.release()
            acquire.cancel()
            raise
        if not acquire.done() or acquire.cancelled():
            acquire.cancel()
            return False
        if self.rt.clock.now() >= deadline:
            self.rt.routine_checks.release()
            return False
        return True

    async def _expire(self, vm_id: str, mine: Sequence[Claim]) -> None:
        """Close: give Azure time to revoke, delete what it left, confirm on the NSG.

        Nothing here waits for another request: the claim is dropped at once (no lock), and
        the reads and deletes take no turn, slot or lock (see ``_initiate`` for a delete
        that meets an initiate)."""
        self._closing = True
        expires = mine[0].expires_at
        ports = [c.port for c in mine]
        subscription = _subscription_of(vm_id)
        self.rt.ports.drop(vm_id, self.me)
        grace = self.rt.settings.close_grace
        deadline = expires + grace
        poll = max(1.0, grace.total_seconds() / 8)
        policy_name, vm_name = self._labels()
        forcing_since: datetime | None = None
        deleted_at: datetime | None = None
        while True:
            now = self.rt.clock.now()
            force_at = force_close_at(expires, grace, self.rt.close_timings.estimate(subscription))
            observed = await self._azure(port_ops.observe(self.rt, self.az, vm_id, ports, now=now))
            if observed is None:
                # Cannot tell: past the deadline that counts as open (the alert fires).
                self._open_ports.past_expiry(self.me, len(ports) if now >= deadline else 0)
                continue
            still_open = [p for p, o in observed.items() if o.beyond_grant]
            self._observed(
                policy_name, vm_name, ports, open_ports=[p for p, o in observed.items() if o.rules]
            )
            self._open_ports.past_expiry(self.me, len(still_open) if now >= deadline else 0)
            if not still_open:
                break
            if now < force_at:
                # One read at expiry, the next when the delete is due: polling meanwhile
                # costs a read per request every few seconds, which at a thousand closes at
                # once starves the deletes themselves of CPU.
                await self._nap((force_at - now).total_seconds())
                continue
            if deleted_at is not None and now - deleted_at < timedelta(seconds=poll):
                await self._nap(poll)  # the rule survived a delete: look again, never spin
                continue
            forcing_since = forcing_since or now
            deleted_at = now
            await self._azure(
                port_ops.close_beyond_grants(
                    self.rt, self.az, vm_id, still_open, now=now, observed=observed
                )
            )
        closed = self.rt.clock.now()
        if forcing_since is not None:
            # What deleting took, so the next close on this subscription starts in time.
            self.rt.close_timings.record(subscription, (closed - forcing_since).total_seconds())
        self._open_ports.past_expiry(self.me, 0)
        CLOSE_LAG_SECONDS.observe(max(0.0, (closed - expires).total_seconds()))
        note = _handover_note(self.rt.ports.claims(vm_id), mine, now=closed)
        await self._write(
            Phase.EXPIRED,
            "Expired",
            f"access to {vm_name} ended at {format_timestamp(expires)}; rule(s) confirmed "
            f"gone from the NSG{note}",
            policy=policy_name,
            closed_at=closed,
            ports=tuple(replace(p, state=CLOSED) for p in self.status.ports),
        )
        self._open_ports.closed(self.me)

    # -- Terminal --------------------------------------------------------------------

    async def _terminal(self) -> None:
        finished = self.status.closed_at or _ready_since(self.status) or self.obj.created
        deadline = finished + self.rt.settings.terminal_ttl
        if not await self.rt.clock.sleep_until(deadline, interrupt=self._stopped()):
            raise Stop
        log.info("deleting %s: terminal for longer than the TTL", self.obj)
        await self.rt.kube.delete(self.obj.ref)
        raise Stop

    # -- helpers ---------------------------------------------------------------------

    def _observed(
        self, policy: str, vm: str, ports: Sequence[int], *, open_ports: Iterable[int]
    ) -> None:
        self._open_ports.observed(
            self.me,
            namespace=self.obj.namespace,
            policy=policy,
            vm=vm,
            ports=ports,
            open_ports=open_ports,
        )

    def _labels(self) -> tuple[str, str]:
        return (
            str(self.obj.spec.get("policyName", UNKNOWN_POLICY)),
            str(self.obj.spec.get("virtualMachine", "")),
        )

    async def _azure(self, call: Awaitable[T], *, policy: str | None = None) -> T | None:
        """Run an Azure read/write; on a passing failure, back off and return None."""
        try:
            result = await call
        except Exception as exc:
            failure = classify(exc)
            RECONCILE_ERRORS_TOTAL.labels(kind=failure.kind.value).inc()
            log.warning("Azure call failed for %s: %s", self.obj, failure)
            await self._retry_later(failure)
            return None
        self._backoff = 1.0
        return result

    async def _retry_later(self, failure: AzureError) -> None:
        delay = failure.retry_after if failure.retry_after else self._backoff
        self._backoff = min(self._backoff * 2, 60.0)
        if self._closing:
            # A port past expiry waits for nobody: retry within the close grace.
            delay = min(delay, max(1.0, self.rt.settings.close_grace.total_seconds() / 4))
        await self._nap(self._until_close(delay))

    def _until_close(self, seconds: float) -> float:
        """An Active request's waits (a failed check's back-off) end when its close is due."""
        expires = self.status.expires_at
        if self.status.phase is Phase.ACTIVE and expires is not None and not self._closing:
            return min(seconds, max(0.0, (expires - self.rt.clock.now()).total_seconds()))
        return seconds

    async def _write(
        self, phase: Phase, reason: str, message: str, *, policy: str | None = None, **changes: Any
    ) -> None:
        changes.setdefault("extra", self._approval)
        await self.recorder.write(
            phase, reason, message, policy=policy or self._labels()[0], **changes
        )
        if phase is Phase.PENDING:
            self._open_ports.waiting(
                self.me, namespace=self.obj.namespace, reason=reason, since=self.obj.created
            )
        else:
            self._open_ports.settled(self.me)

    @property
    def status(self) -> RequestStatus:
        return self.recorder.status


def _subscription_of(vm_id: str) -> str:
    parts = vm_id.split("/")
    return parts[2].lower() if len(parts) > 2 else ""


def _handover_note(held: Sequence[Claim], mine: Sequence[Claim], *, now: datetime) -> str:
    """Who has this request's ports now, by name and source (empty when nobody)."""
    notes = []
    for claim in mine:
        grant = grant_for_port(held, claim.port, now=now)
        if grant is None:
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


def _ready_since(status: RequestStatus) -> datetime | None:
    ready = find(status.conditions, "Ready")
    if ready is None or not ready.last_transition_time:
        return None
    return parse_timestamp(ready.last_transition_time)


def _ports(ports: Sequence[tuple[int, str]]) -> str:
    return ", ".join(str(number) for number, _ in ports)


def _justification(
    spec: JitAccessRequestSpec, me: RequestRef, initiation_id: str, *, vouched: bool
) -> str:
    # The marker leads, so it survives any truncation on Azure's side; Activity Log readers
    # see which Kubernetes object asked, and for whom (only when the webhooks stamped it).
    by = f" by:{spec.requester.username}" if spec.requester and vouched else ""
    return f"azurejit-{initiation_id} k8s:{me}{by}: {spec.justification}"[:500]
