"""Keeping an Azure JIT policy equal to its JitPolicy: sync on change, drift checks, delete.

Sync shape: read Azure once, decide purely (desired vs actual), write at most once, and
return the status to record. Azure is written only when desired differs from actual, so a
no-op resync costs one GET and no writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure_jit_operator.azure.errors import AzureError, FailureKind, classify
from azure_jit_operator.domain.azure_policy import desired_policy, policy_resource_id
from azure_jit_operator.domain.conditions import (
    FALSE,
    TRUE,
    Condition,
    find,
    parse_conditions,
    remove_condition,
    set_condition,
)
from azure_jit_operator.domain.specs import (
    DeletionPolicy,
    JitPolicySpec,
    SpecError,
    parse_policy_spec,
)
from azure_jit_operator.domain.timestamps import format_timestamp
from azure_jit_operator.metrics import DRIFT_CORRECTIONS_TOTAL, RECONCILE_ERRORS_TOTAL
from azure_jit_operator.reconcile.objects import ObjectView
from azure_jit_operator.reconcile.runtime import Runtime

# Azure failures that the user (or an Azure admin) has to fix; retried slowly.
_REASONS = {
    FailureKind.NOT_FOUND: "AzureResourceNotFound",
    FailureKind.FORBIDDEN: "AzureForbidden",
    FailureKind.AUTH: "AzureAuthenticationFailed",
    FailureKind.INVALID: "AzureRejected",
    FailureKind.CONFLICT: "AzureConflict",
    FailureKind.PLAN: "DefenderPlanMissing",
}
_HINTS = {
    FailureKind.FORBIDDEN: " Grant the operator's identity the JIT permissions in the README.",
    FailureKind.AUTH: " Check the operator's Azure identity (Workload Identity federation).",
    FailureKind.PLAN: " Enable Microsoft Defender for Servers on the subscription; JIT needs it.",
    FailureKind.NOT_FOUND: " Check that every virtual machine exists in spec.azure.resourceGroup.",
}
SLOW_RETRY_SECONDS = 300.0


@dataclass(slots=True)
class PolicyOutcome:
    status: dict[str, Any]
    events: list[tuple[str, str, str]] = field(default_factory=list)
    retry_in: float | None = None


@dataclass(frozen=True, slots=True)
class Conflict:
    """Another JitPolicy already governs this Azure policy or one of these VMs."""

    holder: str
    what: str


async def sync_policy(
    rt: Runtime, obj: ObjectView, *, conflicts: Sequence[Conflict], drift_check: bool
) -> PolicyOutcome:
    now = rt.clock.now()
    report = _Report(obj, now)
    try:
        spec = parse_policy_spec(obj.spec, name=obj.name)
    except SpecError as exc:
        return report.fail("InvalidSpec", f"{exc}; fix the JitPolicy spec", stalled=True)
    if conflicts:
        first = conflicts[0]
        return report.fail(
            "Conflict",
            f"{first.what} is already governed by JitPolicy {first.holder}; nothing was written "
            "to Azure. Remove it from one of the two JitPolicies.",
            stalled=True,
            retry_in=60.0,
        )
    target = spec.azure
    policy_id = policy_resource_id(
        target.subscription_id, target.resource_group, target.location, target.policy_name
    )
    owned = str(obj.status.get("azurePolicyId") or "").lower() == policy_id.lower()
    desired = desired_policy(spec)
    try:
        actual = await rt.jit.get(target)
        if actual is not None and not owned:
            return report.fail(
                "AzurePolicyExists",
                f"an Azure JIT policy {target.policy_name!r} already exists in "
                f"{target.resource_group}/{target.location} and was not created by this "
                "JitPolicy; nothing was overwritten. Choose another spec.azure.policyName or "
                "delete the Azure policy.",
                stalled=True,
                retry_in=SLOW_RETRY_SECONDS,
            )
        if actual is None or actual.content.differs_from(desired):
            if not owned:
                # Record ownership before the first write, so a crash right after the
                # PUT does not make our own policy look foreign on restart.
                await rt.kube.patch_status(obj.ref, {"azurePolicyId": policy_id})
            drifted = drift_check or _already_synced(obj)
            written = await rt.jit.put(target, desired)
            if drifted and owned:
                DRIFT_CORRECTIONS_TOTAL.inc()
                what = "deleted" if actual is None else "changed"
                report.event(
                    "Normal",
                    "DriftCorrected",
                    f"Azure JIT policy was {what} outside the operator; re-applied {policy_id}",
                )
            else:
                report.event(
                    "Normal", "Applied", f"Azure JIT policy {policy_id} written ({_summary(spec)})"
                )
            actual = written
    except Exception as exc:  # classified below; cancellation is re-raised by classify
        failure = classify(exc)
        RECONCILE_ERRORS_TOTAL.labels(kind=failure.kind.value).inc()
        return report.azure_failure(failure)
    return report.ready(
        policy_id=actual.id or policy_id,
        provisioning_state=actual.provisioning_state or "Succeeded",
        vm_count=len(spec.virtual_machines),
        message=f"Azure JIT policy matches the spec ({_summary(spec)})",
    )


async def delete_policy(rt: Runtime, obj: ObjectView) -> str:
    """Apply the deletion policy; returns what happened, for the Event."""
    try:
        spec = parse_policy_spec(obj.spec, name=obj.name)
    except SpecError:
        return "spec was invalid; nothing was written to Azure, nothing to delete"
    target = spec.azure
    owned_id = str(obj.status.get("azurePolicyId") or "")
    if not owned_id:
        return "no Azure policy was created by this JitPolicy; nothing deleted"
    if spec.deletion_policy is DeletionPolicy.ORPHAN:
        return f"deletionPolicy Orphan: Azure JIT policy {owned_id} left in place"
    await rt.jit.delete(target)
    return f"Azure JIT policy {owned_id} deleted"


def _already_synced(obj: ObjectView) -> bool:
    ready = find(parse_conditions(obj.status.get("conditions")), "Ready")
    return (
        ready is not None
        and ready.status == TRUE
        and obj.status.get("observedGeneration") == obj.generation
    )


def _summary(spec: JitPolicySpec) -> str:
    ports = sum(len(vm.ports) for vm in spec.virtual_machines)
    return f"{len(spec.virtual_machines)} VM(s), {ports} port(s)"


class _Report:
    """Builds the status patch and transition Events of one sync."""

    def __init__(self, obj: ObjectView, now: datetime) -> None:
        self._obj = obj
        self._now = now
        self._conditions = parse_conditions(obj.status.get("conditions"))
        self._events: list[tuple[str, str, str]] = []

    def event(self, type_: str, reason: str, message: str) -> None:
        self._events.append((type_, reason, message))

    def ready(
        self, *, policy_id: str, provisioning_state: str, vm_count: int, message: str
    ) -> PolicyOutcome:
        flipped = self._set("Ready", TRUE, "Synced", message)
        self._conditions = remove_condition(self._conditions, "Reconciling")
        self._conditions = remove_condition(self._conditions, "Stalled")
        if flipped and not self._events:
            self.event("Normal", "Synced", message)
        status = self._status() | {
            "azurePolicyId": policy_id,
            "provisioningState": provisioning_state,
            "virtualMachineCount": vm_count,
            "lastSyncTime": format_timestamp(self._now),
        }
        return PolicyOutcome(status=status, events=self._events)

    def fail(
        self, reason: str, message: str, *, stalled: bool, retry_in: float | None = None
    ) -> PolicyOutcome:
        previous = find(self._conditions, "Ready")
        self._set("Ready", FALSE, reason, message)
        kind = "Stalled" if stalled else "Reconciling"
        other = "Reconciling" if stalled else "Stalled"
        self._conditions, _ = set_condition(
            self._conditions, Condition(kind, TRUE, reason, message), now=self._now
        )
        self._conditions = remove_condition(self._conditions, other)
        if previous is None or previous.reason != reason or previous.status != FALSE:
            self.event("Warning", reason, message)
        return PolicyOutcome(status=self._status(), events=self._events, retry_in=retry_in)

    def azure_failure(self, failure: AzureError) -> PolicyOutcome:
        if failure.retryable:
            # Keep a Ready policy Ready through a passing outage; kopf retries with backoff.
            previous = find(self._conditions, "Ready")
            delay = failure.retry_after or 10.0
            if previous is not None and previous.status == TRUE:
                return PolicyOutcome(status={}, events=[], retry_in=delay)
            return self.fail(
                "AzureUnavailable",
                f"Azure is unavailable or throttling ({failure}); retrying",
                stalled=False,
                retry_in=delay,
            )
        reason = _REASONS.get(failure.kind, "AzureError")
        return self.fail(
            reason,
            f"Azure refused the policy: {failure}.{_HINTS.get(failure.kind, '')}",
            stalled=True,
            retry_in=SLOW_RETRY_SECONDS,
        )

    def _set(self, type_: str, status: str, reason: str, message: str) -> bool:
        self._conditions, flipped = set_condition(
            self._conditions,
            Condition(type_, status, reason, message, observed_generation=self._obj.generation),
            now=self._now,
        )
        return flipped

    def _status(self) -> dict[str, Any]:
        return {
            "observedGeneration": self._obj.generation,
            "conditions": [c.to_dict() for c in self._conditions],
        }
