"""The reconcile of one JitAccessSchedule's key: judge the schedule (spec, policy, approval),
create the one JitAccessRequest of a window that is due (or report the window skipped),
trim the history of finished requests, write the status, and look again at the next start.

A window's request has a name fixed by the window's start, so a create repeated after a
restart or a lost status write finds it there (AlreadyExists) and never opens the window
twice. The request then lives like any other: the request and VM reconciles open and close
it; the schedule never touches Azure.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from azure_jit_operator.audit import emit
from azure_jit_operator.domain.approvals import APPROVED, ApprovalMode
from azure_jit_operator.domain.audit import Action, Actor, AuditRecord, Outcome, RequestFacts
from azure_jit_operator.domain.conditions import (
    FALSE,
    TRUE,
    Condition,
    parse_conditions,
    set_condition,
)
from azure_jit_operator.domain.durations import format_kube_duration
from azure_jit_operator.domain.lifecycle import Phase
from azure_jit_operator.domain.request_rules import check_request
from azure_jit_operator.domain.schedules import (
    ScheduleSpec,
    Window,
    approval_digest,
    decide,
    parse_schedule_approvals,
    parse_schedule_spec,
    remaining_duration,
    request_name,
    schedule_approval_verdict,
)
from azure_jit_operator.domain.specs import SpecError
from azure_jit_operator.domain.timestamps import format_timestamp, parse_timestamp
from azure_jit_operator.kube.api import REQUESTS, AlreadyExists, Gone
from azure_jit_operator.reconcile.cache import Cache
from azure_jit_operator.reconcile.objects import API_VERSION, ObjectView
from azure_jit_operator.reconcile.runtime import Runtime
from azure_jit_operator.reconcile.tracked import Tracked

log = logging.getLogger("azure_jit_operator.schedules")

ScheduleKey = tuple[str, str]  # namespace, name
SCHEDULE_LABEL = "azurejit.dev/schedule"
WINDOW_START_ANNOTATION = "azurejit.dev/window-start"
WINDOW_END_ANNOTATION = "azurejit.dev/window-end"
SUCCEEDED = frozenset({Phase.EXPIRED, Phase.REVOKED})
POLICY_RECHECK = timedelta(seconds=30)
# Ready=False reasons a person must fix: kstatus (Flux) and Argo CD read Stalled=True as
# failed rather than still in progress. Waiting for approval is progress.
STALLED_REASONS = frozenset(
    {"InvalidSpec", "PolicyNotFound", "TemplateDenied", "ApprovalNeedsWebhooks", "DeniedByApprover"}
)
LATE_AFTER = timedelta(minutes=1)  # a window opened this late says so in its Event


@dataclass(frozen=True, slots=True)
class _Gate:
    """Whether windows may open now; if not, the Ready condition saying why."""

    open: bool
    ready: Condition
    approval: Condition | None = None
    approved_generation: int | None = None
    approved_digest: str = ""


class ScheduleReconciler:
    def __init__(self, rt: Runtime, cache: Cache) -> None:
        self.rt = rt
        self.cache = cache
        # The last window each schedule handled, as written: the watch may bring the status
        # back later than the next reconcile runs, and a window must be handled once.
        self._handled: dict[ScheduleKey, datetime] = {}

    def forget(self, key: ScheduleKey | None = None) -> None:
        if key is None:
            self._handled.clear()
        else:
            self._handled.pop(key, None)

    async def reconcile(self, key: ScheduleKey) -> datetime | None:
        obj = self.cache.schedules.get(key)
        if obj is None or obj.deleting:
            return None  # its requests go with it (ownerReferences: garbage collection)
        now = self.rt.clock.now()
        try:
            spec = parse_schedule_spec(obj.spec)
        except SpecError as exc:
            await self._write(obj, _ready(FALSE, "InvalidSpec", str(exc)), event="Warning")
            return None
        gate = self._gate(obj, spec)
        recorded_generation = obj.status.get("approvedGeneration")
        since = self._since(obj)
        decision = decide(spec, since=since, now=now)
        handled: datetime | None = None
        if gate.open and decision.open is not None:
            if gate.approved_generation not in (None, obj.status.get("approvedGeneration")):
                # First, so that the request's judge finds the approval it is created with.
                obj = await self._confirm_approval(obj, gate)
                self._audit_approval(obj, spec, gate)
                recorded_generation = gate.approved_generation
            await self._open(obj, spec, decision.open, now=now)
            handled = decision.open.start
        elif gate.open and decision.skipped is not None:
            self._post(obj, "Warning", "WindowSkipped", _skipped(decision.skipped, decision.why))
            handled = decision.skipped.start
        if handled is not None and decision.missed:
            self._post(
                obj,
                "Warning",
                "WindowsMissed",
                f"{decision.missed} earlier window(s) went by unopened while the operator "
                "was not running",
            )
        if handled is not None:
            self._handled[key] = handled
        owned = self.cache.owned_by(obj.namespace, obj.name)
        await self._trim_history(spec, owned)
        status: dict[str, Any] = {
            "observedGeneration": obj.generation,
            "nextScheduleTime": format_timestamp(decision.next_start),
            "active": [t.obj.name for t in owned if not t.status.phase.is_terminal],
        }
        last = handled or _last_schedule_time(obj)
        if last is not None:
            status["lastScheduleTime"] = format_timestamp(last)
        if gate.approved_generation is not None:
            status["approvedGeneration"] = gate.approved_generation
            status["approvedSpecHash"] = gate.approved_digest
        await self._write(obj, gate.ready, approval=gate.approval, extra=status)
        if gate.approved_generation not in (None, recorded_generation):
            self._audit_approval(obj, spec, gate)
        if not gate.open and gate.ready.reason == "PolicyNotFound":
            return min(now + POLICY_RECHECK, decision.next_start)
        # Approvals, policy and spec changes arrive through the watch; a closed gate still
        # looks again at each start, to keep nextScheduleTime true.
        return decision.next_start

    # -- judging -----------------------------------------------------------------------

    def _gate(self, obj: ObjectView, spec: ScheduleSpec) -> _Gate:
        policy = self.cache.policy(obj.namespace, spec.request.policy_name)
        if policy is None:
            return _Gate(
                False,
                _ready(
                    FALSE,
                    "PolicyNotFound",
                    f"JitPolicy {spec.request.policy_name!r} does not exist in namespace "
                    f"{obj.namespace}; create it or fix spec.requestTemplate.policyName",
                ),
            )
        if policy.spec is not None:
            denial = check_request(spec.request, policy.spec, policy_name=policy.name)
            if denial is not None:
                return _Gate(
                    False,
                    _ready(FALSE, "TemplateDenied", f"spec.requestTemplate: {denial.message}"),
                )
        scheduling = _ready(TRUE, "Scheduling", "windows open on schedule")
        if spec.suspend:
            scheduling = _ready(TRUE, "Suspended", "spec.suspend is true: no window opens")
        if policy.spec is None or policy.spec.approval.mode is not ApprovalMode.MANUAL:
            return _Gate(True, scheduling)
        if self.rt.settings.webhooks == "off":
            return _Gate(
                False,
                _ready(
                    FALSE,
                    "ApprovalNeedsWebhooks",
                    f"JitPolicy {policy.name!r} requires approval, which needs the operator's "
                    "admission webhooks (AZURE_JIT_WEBHOOKS=managed or external)",
                ),
            )
        verdict = schedule_approval_verdict(
            policy.spec.approval,
            requester=spec.requester,
            approvals=parse_schedule_approvals(obj.status.get("approvals")),
            generation=obj.generation,
            schedule_name=obj.name,
        )
        digest = approval_digest(obj.spec)
        if verdict.state == "pending" and obj.status.get("approvedSpecHash") == digest:
            # Approved before; since then only suspend or the history limits changed.
            verdict = replace(
                verdict,
                state="approved",
                reason="Approved",
                message="approved for an earlier generation; since then only suspend or the "
                "history limits changed",
            )
        approved = verdict.state == "approved"
        approval = Condition(
            "Approved", TRUE if approved else FALSE, verdict.reason, verdict.message
        )
        if approved:
            return _Gate(
                True,
                scheduling,
                approval,
                approved_generation=obj.generation,
                approved_digest=digest,
            )
        return _Gate(False, _ready(FALSE, verdict.reason, verdict.message), approval)

    def _since(self, obj: ObjectView) -> datetime:
        """Every window starting up to this is dealt with: the last handled, else creation."""
        candidates = [obj.created]
        written = _last_schedule_time(obj)
        if written is not None:
            candidates.append(written)
        remembered = self._handled.get((obj.namespace, obj.name))
        if remembered is not None:
            candidates.append(remembered)
        return max(candidates)

    # -- acting ------------------------------------------------------------------------

    async def _open(
        self, obj: ObjectView, spec: ScheduleSpec, window: Window, *, now: datetime
    ) -> None:
        name = request_name(obj.name, window.start)
        duration = remaining_duration(window, now)
        body = {
            "apiVersion": API_VERSION,
            "kind": "JitAccessRequest",
            "metadata": {
                "name": name,
                "namespace": obj.namespace,
                "labels": {SCHEDULE_LABEL: obj.name},
                "annotations": {
                    WINDOW_START_ANNOTATION: format_timestamp(window.start),
                    WINDOW_END_ANNOTATION: format_timestamp(window.end),
                },
                "ownerReferences": [
                    {
                        "apiVersion": API_VERSION,
                        "kind": "JitAccessSchedule",
                        "name": obj.name,
                        "uid": obj.uid,
                        "controller": True,
                    }
                ],
            },
            "spec": {
                "policyName": spec.request.policy_name,
                "virtualMachine": spec.request.virtual_machine,
                "ports": [
                    {"number": p["number"], "sourceAddressPrefix": p["sourceAddressPrefix"]}
                    for p in obj.spec["requestTemplate"]["ports"]
                ],
                "duration": format_kube_duration(duration),
                "justification": spec.request.justification,
            },
        }
        try:
            await self.rt.kube.create_object(REQUESTS, obj.namespace, body)
        except AlreadyExists:
            log.info("%s: the request of the window at %s exists already", obj, window.start)
            return
        late = (
            f" (opened late: {format_kube_duration(duration)} left)"
            if now - window.start >= LATE_AFTER
            else ""
        )
        self._post(
            obj,
            "Normal",
            "WindowOpened",
            f"created JitAccessRequest {name} for the window "
            f"{format_timestamp(window.start)} to {format_timestamp(window.end)}{late}",
        )

    async def _confirm_approval(self, obj: ObjectView, gate: _Gate) -> ObjectView:
        approved = {
            "approvedGeneration": gate.approved_generation,
            "approvedSpecHash": gate.approved_digest,
        }
        await self.rt.kube.patch_status(obj.ref, approved)
        self._remember(obj, approved)
        return replace(obj, status={**obj.status, **approved})

    def _audit_approval(self, obj: ObjectView, spec: ScheduleSpec, gate: _Gate) -> None:
        """The schedule's approval for a generation, once, right after the status write that
        records it (approvedGeneration): its windows open on it without approvals of their own."""
        generation = gate.approved_generation
        approvers = sorted(
            {
                a.record.user
                for a in parse_schedule_approvals(obj.status.get("approvals"))
                if a.generation == generation and a.record.decision == APPROVED
            }
        )
        template = spec.request
        facts = RequestFacts(
            namespace=obj.namespace,
            name=obj.name,
            uid=obj.uid,
            policy=template.policy_name,
            virtual_machine=template.virtual_machine,
            ports=tuple((p.number, p.source_prefix.text) for p in template.ports),
            duration=format_kube_duration(spec.duration),
            justification=template.justification,
            requester=spec.requester,
            kind="JitAccessSchedule",
        )
        emit(
            AuditRecord(
                Action.APPROVED,
                Outcome.SUCCESS,
                Actor.operator(self.rt.username),
                facts,
                self.rt.clock.now(),
                "ScheduleApproved",
                f"JitAccessSchedule {obj.name} (generation {generation}) approved by "
                f"{', '.join(approvers) or 'its approvers'}: its windows open without "
                "further approval until its spec changes",
                discriminator=f"generation-{generation}",
                details={"generation": int(generation or 0), "approvers": approvers},
            )
        )

    async def _trim_history(self, spec: ScheduleSpec, owned: list[Tracked]) -> None:
        """Delete the oldest finished requests beyond the history limits."""
        finished = [t for t in owned if t.status.phase.is_terminal and not t.obj.deleting]
        succeeded = [t for t in finished if t.status.phase in SUCCEEDED]
        failed = [t for t in finished if t.status.phase not in SUCCEEDED]
        for group, keep in ((succeeded, spec.successful_history), (failed, spec.failed_history)):
            for tracked in group[: max(0, len(group) - keep)]:
                log.info("deleting %s: beyond its schedule's history limit", tracked.obj)
                await self.rt.kube.delete(tracked.obj.ref)

    async def _write(
        self,
        obj: ObjectView,
        ready: Condition,
        *,
        approval: Condition | None = None,
        extra: dict[str, Any] | None = None,
        event: str | None = None,
    ) -> None:
        """Patch the status when it differs; an Event when Ready flips (``event`` type)."""
        now = self.rt.clock.now()
        old = parse_conditions(obj.status.get("conditions"))
        generation = obj.generation
        conditions, flipped = schedule_conditions(
            old, ready, approval=approval, generation=generation, now=now
        )
        status: dict[str, Any] = dict(extra or {"observedGeneration": generation})
        status["conditions"] = [c.to_dict() for c in conditions]
        if all(obj.status.get(k) == v for k, v in status.items()):
            return
        try:
            await self.rt.kube.patch_status(obj.ref, status)
        except Gone:
            return
        self._remember(obj, status)
        changed_reason = next((c.reason for c in old if c.type == "Ready"), None) != ready.reason
        if flipped or changed_reason:
            kind = event or ("Normal" if ready.status == TRUE else "Warning")
            self._post(obj, kind, ready.reason, ready.message)

    def _remember(self, obj: ObjectView, status: dict[str, Any]) -> None:
        """Keep the cached schedule's status what was written (the watch brings it later).
        Into the cached object as it is now: a newer spec may have arrived meanwhile."""
        key = (obj.namespace, obj.name)
        current = self.cache.schedules.get(key)
        if current is not None and current.uid == obj.uid:
            self.cache.schedules[key] = replace(current, status={**current.status, **status})

    def _post(self, obj: ObjectView, type_: str, reason: str, message: str) -> None:
        self.rt.post_event(obj.identity, type_, reason, message)
        log.info(
            "%s: %s %s",
            obj,
            reason,
            message,
            extra={"k8s_namespace": obj.namespace, "k8s_name": obj.name},
        )


def schedule_conditions(
    old: Sequence[Condition],
    ready: Condition,
    *,
    approval: Condition | None,
    generation: int,
    now: datetime,
) -> tuple[tuple[Condition, ...], bool]:
    """A schedule's conditions after ``ready`` (and ``approval``): Ready, Approved, and the
    kstatus pair derived from Ready; and whether Ready flipped."""
    conditions, flipped = set_condition(
        old, replace(ready, observed_generation=generation), now=now
    )
    if approval is not None:
        conditions, _ = set_condition(
            conditions, replace(approval, observed_generation=generation), now=now
        )
    stalled = ready.status == FALSE and ready.reason in STALLED_REASONS
    # kstatus reads Reconciling=True as in progress (e.g. waiting for approval).
    reconciling = ready.status == FALSE and not stalled
    conditions, _ = set_condition(
        conditions,
        Condition(
            "Reconciling",
            TRUE if reconciling else FALSE,
            ready.reason,
            ready.message if reconciling else "",
            observed_generation=generation,
        ),
        now=now,
    )
    conditions, _ = set_condition(
        conditions,
        Condition(
            "Stalled",
            TRUE if stalled else FALSE,
            ready.reason if stalled else "Progressing",
            ready.message if stalled else "",
            observed_generation=generation,
        ),
        now=now,
    )
    return conditions, flipped


def _ready(status: str, reason: str, message: str) -> Condition:
    return Condition("Ready", status, reason, message)


def _last_schedule_time(obj: ObjectView) -> datetime | None:
    raw = obj.status.get("lastScheduleTime")
    return parse_timestamp(str(raw)) if raw else None


def _skipped(window: Window, why: str) -> str:
    return (
        f"skipped the window {format_timestamp(window.start)} to "
        f"{format_timestamp(window.end)}: {why}"
    )
