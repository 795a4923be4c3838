"""Keeping an Azure JIT policy equal to its JitPolicy: sync on change, drift checks, delete.

Sync shape: read Azure once, decide purely (desired vs actual), write at most once, and
return the status to record. Azure is written only when desired differs from actual, so a
no-op resync costs one GET and no writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from azure_jit_operator.azure.access import AzureAccess
from azure_jit_operator.azure.errors import AzureError, FailureKind, classify
from azure_jit_operator.domain.azure_limits import MAX_POLICY_AND_VM_NAME, name_limit_violations
from azure_jit_operator.domain.azure_policy import (
    AzurePolicyContent,
    AzurePolicySnapshot,
    desired_policy,
    policy_resource_id,
    vm_resource_id,
)
from azure_jit_operator.domain.conditions import (
    FALSE,
    TRUE,
    Condition,
    find,
    parse_conditions,
    remove_condition,
    set_condition,
)
from azure_jit_operator.domain.credentials import CredentialError
from azure_jit_operator.domain.defender_plan import plan_problem
from azure_jit_operator.domain.governance import governance_keys
from azure_jit_operator.domain.specs import (
    AzureTarget,
    DeletionPolicy,
    JitPolicySpec,
    SpecError,
    parse_policy_spec,
)
from azure_jit_operator.domain.timestamps import format_timestamp
from azure_jit_operator.domain.vm_selection import membership_changes, select_vms
from azure_jit_operator.metrics import (
    DENY_RULES_RESTORED_TOTAL,
    DRIFT_CORRECTIONS_TOTAL,
    POLICY_LAST_SYNC,
    RECONCILE_ERRORS_TOTAL,
)
from azure_jit_operator.reconcile.exposure_check import (
    EXPOSED_CONDITION,
    ExposureOutcome,
    check_exposure,
)
from azure_jit_operator.reconcile.exposure_check import forget as forget_exposure
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
FIRST_RETRY_SECONDS = 10.0
MAX_RETRY_SECONDS = 600.0
# Azure answers a policy PUT with provisioningState Updating and settles later (E6): look
# again a few times, then report what it says; the drift check looks again later.
SETTLE_POLLS = 5
SETTLE_SECONDS = 2.0
# After a policy write, when to judge the NSGs (JIT applies deny rules asynchronously).
EXPOSURE_RECHECK_SECONDS = 15.0
# A missing deny rule is restored by re-applying the policy at most this often per policy
# (how long Azure takes to re-create it is not known; a PUT per recheck would be a loop).
RESTORE_HOLD = timedelta(minutes=2)
_last_restore: dict[tuple[str, str], datetime] = {}


@dataclass(slots=True)
class PolicyOutcome:
    status: dict[str, Any]
    events: list[tuple[str, str, str]] = field(default_factory=list)
    retry_in: float | None = None
    # A successful sync that wants its next look sooner than a drift interval (after a
    # write, the exposure check waits for Azure to apply it).
    check_again_in: float | None = None


@dataclass(frozen=True, slots=True)
class Conflict:
    """Another JitPolicy already governs this Azure policy or one of these VMs."""

    holder: str
    what: str


# Who else governs a key (see reconcile.policy_views.governance_holders), or None.
GovernedElsewhere = Callable[[str], str | None]

RECONCILE_POLICY_ANNOTATION = "azurejit.dev/reconcile-policy"


class ReconcilePolicy(StrEnum):
    """Like Azure Service Operator's reconcile-policy annotation."""

    MANAGE = "manage"  # write Azure to match the spec; delete per deletionPolicy
    SKIP = "skip"  # never write or delete in Azure; only report what Azure holds
    DETACH_ON_DELETE = "detach-on-delete"  # manage, but leave the Azure policy on deletion


def reconcile_policy_of(obj: ObjectView) -> ReconcilePolicy:
    raw = obj.annotations.get(RECONCILE_POLICY_ANNOTATION, ReconcilePolicy.MANAGE.value)
    try:
        return ReconcilePolicy(raw)
    except ValueError:
        return ReconcilePolicy.MANAGE


async def sync_policy(
    rt: Runtime,
    obj: ObjectView,
    *,
    governed_elsewhere: GovernedElsewhere,
    drift_check: bool,
    attempt: int = 0,
) -> PolicyOutcome:
    """One sync; ``attempt`` counts kopf's retries of it (0 on a fresh change or tick)."""
    report = _Report(obj, rt.clock.now(), attempt=attempt)
    wrote = False
    checked = _check(report, obj, governed_elsewhere)
    if isinstance(checked, PolicyOutcome):
        return checked
    spec, mode = checked
    target = spec.azure
    policy_id = policy_resource_id(
        target.subscription_id, target.resource_group, target.location, target.policy_name
    )
    owned = str(obj.status.get("azurePolicyId") or "").lower() == policy_id.lower()
    az = await _usable_azure(rt, obj, report, target)
    if isinstance(az, PolicyOutcome):
        return az
    try:
        selected, excluded = await _resolve_selector(az, spec, governed_elsewhere)
        too_long = _names_too_long(report, obj, target.policy_name, selected)
        # A drift check looks only at VMs it has not protected yet: resolving every VM's
        # NICs and subnets each interval would spend ARM's read quota on a rare change.
        protected = set(obj.status.get("virtualMachines") or ()) if drift_check else set()
        unguarded = await _vms_without_nsg(rt, az, spec.with_selected(selected), skip=protected)
        _refuse_listed_unguarded(report, spec, unguarded)
        effective = spec.with_selected(
            [n for n in selected if n not in unguarded and n not in too_long]
        )
        desired = desired_policy(effective)
        actual = await az.jit.get(target)
        if mode is ReconcilePolicy.SKIP:
            POLICY_LAST_SYNC.labels(obj.namespace, obj.name).set(rt.clock.now().timestamp())
            if actual is not None:  # report exposure, restore nothing
                report.exposure(await check_exposure(rt, az, obj, effective))
            return report.skipped(actual, policy_id=policy_id, desired=desired)
        if actual is not None and not owned:
            if not spec.adopt:
                raise _Refused(
                    report.fail(
                        "AzurePolicyExists",
                        f"an Azure JIT policy {target.policy_name!r} already exists in "
                        f"{target.resource_group}/{target.location} and was not created by this "
                        "JitPolicy; nothing was overwritten. Set spec.azure.adopt: true to take it "
                        "over, choose another spec.azure.policyName, or delete the Azure policy.",
                        stalled=True,
                        retry_in=SLOW_RETRY_SECONDS,
                    )
                )
            await rt.kube.patch_status(obj.ref, {"azurePolicyId": policy_id})
            report.event(
                "Normal", "Adopted", f"took over the existing Azure JIT policy {policy_id}"
            )
            owned, drift_check = True, False
        if actual is None or actual.content.differs_from(desired):
            actual = await _write(
                rt,
                az,
                obj,
                report,
                effective=effective,
                actual=actual,
                owned=owned,
                drift_check=drift_check,
                policy_id=policy_id,
            )
            wrote = True
        else:
            await _check_and_restore(
                rt, az, obj, report, effective=effective, policy_id=policy_id, desired=desired
            )
    except _Refused as refused:
        return refused.outcome
    except Exception as exc:  # classified below; cancellation is re-raised by classify
        failure = classify(exc)
        RECONCILE_ERRORS_TOTAL.labels(kind=failure.kind.value).inc()
        return report.azure_failure(failure)
    POLICY_LAST_SYNC.labels(obj.namespace, obj.name).set(rt.clock.now().timestamp())
    _report_membership(report, obj, effective, excluded)
    note = (
        f"; excluded {len(excluded)} selected VM(s) governed by other JitPolicies"
        if excluded
        else ""
    )
    note += _report_unguarded(report, obj, unguarded)
    outcome = report.ready(
        policy_id=actual.id or policy_id,
        provisioning_state=actual.provisioning_state or "Succeeded",
        vm_names=[vm.name for vm in effective.virtual_machines],
        message=f"Azure JIT policy matches the spec ({_summary(effective)}){note}",
    )
    if wrote or report.restored:
        outcome.check_again_in = EXPOSURE_RECHECK_SECONDS
    return outcome


async def _write(
    rt: Runtime,
    az: AzureAccess,
    obj: ObjectView,
    report: _Report,
    *,
    effective: JitPolicySpec,
    actual: AzurePolicySnapshot | None,
    owned: bool,
    drift_check: bool,
    policy_id: str,
) -> AzurePolicySnapshot:
    """Write the desired policy (Azure differs from it) and wait a little for it to settle."""
    if not owned:
        # Record ownership before the first write, so a crash right after the
        # PUT does not make our own policy look foreign on restart.
        await rt.kube.patch_status(obj.ref, {"azurePolicyId": policy_id})
    drifted = (
        owned and (drift_check or _already_synced(obj)) and not _membership_changed(obj, effective)
    )
    written = await az.jit.put(effective.azure, desired_policy(effective))
    if drifted:
        DRIFT_CORRECTIONS_TOTAL.inc()
        what = "deleted" if actual is None else "changed"
        report.event(
            "Normal",
            "DriftCorrected",
            f"Azure JIT policy was {what} outside the operator; re-applied {policy_id}",
        )
    else:
        report.event(
            "Normal", "Applied", f"Azure JIT policy {policy_id} written ({_summary(effective)})"
        )
    return await _settled(rt, az, effective.azure, written)


async def _check_and_restore(
    rt: Runtime,
    az: AzureAccess,
    obj: ObjectView,
    report: _Report,
    *,
    effective: JitPolicySpec,
    policy_id: str,
    desired: AzurePolicyContent,
) -> None:
    """The exposure check of a policy that matches its spec; when JIT's deny rule is gone,
    re-apply the policy so JIT re-creates it (the one thing it owns on the NSG)."""
    found = await check_exposure(rt, az, obj, effective)
    report.exposure(found)
    if not found.missing_deny:
        return
    key, now = (obj.namespace, obj.name), rt.clock.now()
    last = _last_restore.get(key)
    if last is not None and now - last < RESTORE_HOLD:
        return  # JIT may still be re-creating it: no PUT per recheck while Azure is slow
    _last_restore[key] = now
    await az.jit.put(effective.azure, desired)
    DENY_RULES_RESTORED_TOTAL.labels(obj.namespace, obj.name).inc()
    report.restored = True
    ports = ", ".join(f"{p.vm} {p.port}/{p.protocol}" for p in found.missing_deny[:5])
    more = f" and {len(found.missing_deny) - 5} more" if len(found.missing_deny) > 5 else ""
    report.event(
        "Normal",
        "DenyRuleRestored",
        f"JIT's deny rule was missing for {ports}{more} (removed outside Azure JIT); re-applied "
        f"Azure JIT policy {policy_id} so JIT re-creates it",
    )


async def _usable_azure(
    rt: Runtime, obj: ObjectView, report: _Report, target: AzureTarget
) -> AzureAccess | PolicyOutcome:
    """The namespace's Azure access, once its credential works and the subscription has
    the Defender plan JIT needs (said clearly before anything is written)."""
    try:
        az = await rt.azure_for(obj.namespace)
    except CredentialError as exc:
        return report.fail("CredentialInvalid", str(exc), stalled=True, retry_in=60.0)
    try:
        plan = await az.defender.servers_plan(target.subscription_id, now=rt.clock.now())
    except Exception as exc:  # classified; cancellation is re-raised by classify
        failure = classify(exc)
        RECONCILE_ERRORS_TOTAL.labels(kind=failure.kind.value).inc()
        return report.azure_failure(failure)
    problem = plan_problem(target.subscription_id, plan) if plan is not None else None
    if problem is not None:
        return report.fail(
            "DefenderPlanMissing", problem, stalled=True, retry_in=SLOW_RETRY_SECONDS
        )
    return az


async def _vms_without_nsg(
    rt: Runtime, az: AzureAccess, spec: JitPolicySpec, *, skip: set[str]
) -> list[str]:
    """VMs (other than ``skip``) with no NSG on any NIC or subnet: JIT has nowhere to put
    its rules (E5)."""
    target = spec.azure
    names = [vm.name for vm in spec.virtual_machines if vm.name not in skip]

    async def unguarded(name: str) -> bool:
        vm_id = vm_resource_id(target.subscription_id, target.resource_group, name)
        try:
            network = await az.vm_network(vm_id, now=rt.clock.now())
        except Exception:  # a missing VM or an outage is reported by the policy write
            return False
        return not network.nsg_ids

    found = await asyncio.gather(*(unguarded(n) for n in names))
    return [n for n, bare in zip(names, found, strict=True) if bare]


def _names_too_long(
    report: _Report, obj: ObjectView, policy_name: str, selected: Sequence[str]
) -> list[str]:
    """Selected VMs whose name with the Azure policy name exceeds Azure JIT's limit (E13):
    left out and reported (listed ones are refused at admission by the CRD)."""
    too_long = [n for n in selected if len(n) + len(policy_name) > MAX_POLICY_AND_VM_NAME]
    report.extra["virtualMachinesNameTooLong"] = too_long
    if too_long and sorted(obj.status.get("virtualMachinesNameTooLong") or ()) != too_long:
        report.event(
            "Warning",
            "NameTooLong",
            "left out of the Azure policy: "
            + "; ".join(name_limit_violations(policy_name, too_long)),
        )
    return too_long


class _Refused(Exception):  # noqa: N818 - control flow: a sync that ends with a report
    def __init__(self, outcome: PolicyOutcome) -> None:
        super().__init__(outcome)
        self.outcome = outcome


def _refuse_listed_unguarded(report: _Report, spec: JitPolicySpec, unguarded: list[str]) -> None:
    """A listed VM without any NSG: nothing is written (Azure JIT refuses such a VM)."""
    listed = [vm.name for vm in spec.virtual_machines if vm.name in unguarded]
    if listed:
        raise _Refused(
            report.fail(
                "NoNetworkSecurityGroup",
                f"{_unguarded_message(listed)}; nothing was written to Azure",
                stalled=True,
                retry_in=60.0,
            )
        )


def _unguarded_message(names: Sequence[str]) -> str:
    return (
        f"VM(s) without a network security group on any NIC or subnet, which JIT cannot "
        f"protect: {', '.join(names)}; attach an NSG to the VM's NIC or subnet"
    )


def _report_unguarded(report: _Report, obj: ObjectView, unguarded: list[str]) -> str:
    """Selected VMs left out because they have no NSG: on the status, Event on a change."""
    report.extra["virtualMachinesWithoutNsg"] = unguarded
    if not unguarded:
        return ""
    message = f"{_unguarded_message(unguarded)} (left out of the Azure policy)"
    if sorted(obj.status.get("virtualMachinesWithoutNsg") or ()) != sorted(unguarded):
        report.event("Warning", "NoNetworkSecurityGroup", message)
    return f"; {message}"


async def _settled(
    rt: Runtime, az: AzureAccess, target: AzureTarget, written: AzurePolicySnapshot
) -> AzurePolicySnapshot:
    """The policy once Azure says Succeeded, or as it is after a bounded wait (the content
    already matches, so requests need not wait for it)."""
    actual = written
    for _ in range(SETTLE_POLLS):
        if (actual.provisioning_state or "Succeeded").lower() in ("succeeded", "failed"):
            break
        await rt.clock.sleep(SETTLE_SECONDS)
        actual = await az.jit.get(target) or actual
    return actual


async def delete_policy(rt: Runtime, obj: ObjectView) -> str:
    """Apply the deletion policy; returns what happened, for the Event."""
    POLICY_LAST_SYNC.remove(obj.namespace, obj.name)  # nothing to keep in sync any more
    forget_exposure(obj.namespace, obj.name)
    _last_restore.pop((obj.namespace, obj.name), None)
    try:
        spec = parse_policy_spec(obj.spec, name=obj.name)
    except SpecError:
        return "spec was invalid; nothing was written to Azure, nothing to delete"
    target = spec.azure
    owned_id = str(obj.status.get("azurePolicyId") or "")
    if not owned_id:
        return "no Azure policy was created by this JitPolicy; nothing deleted"
    mode = reconcile_policy_of(obj)
    if mode is not ReconcilePolicy.MANAGE:
        return f"reconcile-policy {mode.value}: Azure JIT policy {owned_id} left in place"
    if spec.deletion_policy is DeletionPolicy.ORPHAN:
        return f"deletionPolicy Orphan: Azure JIT policy {owned_id} left in place"
    az = await rt.azure_for(obj.namespace)
    await az.jit.delete(target)
    return f"Azure JIT policy {owned_id} deleted"


def _check(
    report: _Report, obj: ObjectView, governed_elsewhere: GovernedElsewhere
) -> tuple[JitPolicySpec, ReconcilePolicy] | PolicyOutcome:
    """Guard clauses before any Azure call: annotation, spec, conflicts."""
    raw_mode = obj.annotations.get(RECONCILE_POLICY_ANNOTATION)
    if raw_mode is not None and raw_mode not in {m.value for m in ReconcilePolicy}:
        return report.fail(
            "InvalidAnnotation",
            f"annotation {RECONCILE_POLICY_ANNOTATION}={raw_mode!r} is not one of manage, skip, "
            "detach-on-delete; nothing was written to Azure",
            stalled=True,
        )
    try:
        spec = parse_policy_spec(obj.spec, name=obj.name)
    except SpecError as exc:
        return report.fail("InvalidSpec", f"{exc}; fix the JitPolicy spec", stalled=True)
    conflicts = _explicit_conflicts(spec, governed_elsewhere)
    if conflicts:
        first = conflicts[0]
        return report.fail(
            "Conflict",
            f"{first.what} is already governed by JitPolicy {first.holder}; nothing was written "
            "to Azure. Remove it from one of the two JitPolicies.",
            stalled=True,
            retry_in=60.0,
        )
    return spec, reconcile_policy_of(obj)


def _explicit_conflicts(
    spec: JitPolicySpec, governed_elsewhere: GovernedElsewhere
) -> list[Conflict]:
    listed_only = replace(spec, selector=None)
    conflicts = []
    for what, key in governance_keys(listed_only):
        holder = governed_elsewhere(key)
        if holder is not None:
            conflicts.append(Conflict(holder=holder, what=what))
    return conflicts


async def _resolve_selector(
    az: AzureAccess, spec: JitPolicySpec, governed_elsewhere: GovernedElsewhere
) -> tuple[list[str], list[str]]:
    """(selected VM names, VM names skipped because another JitPolicy governs them)."""
    if spec.selector is None:
        return [], []
    target = spec.azure
    vms = await az.compute.list_vms(target.subscription_id, target.resource_group)
    selected: list[str] = []
    excluded: list[str] = []
    for name in select_vms(spec.selector, vms, location=target.location):
        vm_id = vm_resource_id(target.subscription_id, target.resource_group, name)
        (excluded if governed_elsewhere(vm_id.lower()) else selected).append(name)
    return selected, excluded


def _membership_changed(obj: ObjectView, effective: JitPolicySpec) -> bool:
    before = {str(n).lower() for n in obj.status.get("virtualMachines") or ()}
    return bool(before) and before != {vm.name.lower() for vm in effective.virtual_machines}


def _report_membership(
    report: _Report, obj: ObjectView, effective: JitPolicySpec, excluded: Sequence[str]
) -> None:
    if "virtualMachines" not in obj.status:
        return
    onboarded, dropped = membership_changes(
        obj.status.get("virtualMachines") or (), [vm.name for vm in effective.virtual_machines]
    )
    if onboarded:
        report.event("Normal", "Onboarded", f"VM(s) now protected: {', '.join(onboarded)}")
    if dropped:
        report.event("Normal", "Dropped", f"VM(s) no longer protected: {', '.join(dropped)}")
    if excluded:
        report.event(
            "Warning",
            "Excluded",
            f"selected VM(s) governed by another JitPolicy were left out: {', '.join(excluded)}",
        )


# Refreshed on every sync, but written only with another change: a drift check that finds
# everything in place writes nothing (1,000 policies would otherwise wake every GitOps
# watcher a few times a second); the time of each sync is in policy_last_sync_timestamp_seconds.
VOLATILE_STATUS = frozenset({"lastSyncTime"})


def status_changed(current: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether writing ``new`` over ``current`` would change anything but the sync time."""
    return any(current.get(k) != v for k, v in new.items() if k not in VOLATILE_STATUS)


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

    def __init__(self, obj: ObjectView, now: datetime, *, attempt: int) -> None:
        self._obj = obj
        self._now = now
        self._attempt = attempt
        self.extra: dict[str, Any] = {}  # more status fields of a Ready outcome
        self.restored = False  # a missing deny rule made this sync re-apply the policy
        self._exposure_events: list[tuple[str, str, str]] = []
        self._conditions = parse_conditions(obj.status.get("conditions"))
        self._events: list[tuple[str, str, str]] = []

    def event(self, type_: str, reason: str, message: str) -> None:
        self._events.append((type_, reason, message))

    def exposure(self, found: ExposureOutcome) -> None:
        """The Exposed condition and status.exposure; its Events come after the sync's own."""
        status, reason, message = found.condition
        self._set(EXPOSED_CONDITION, status, reason, message)
        self.extra["exposure"] = found.status
        self._exposure_events.extend((e.type, e.reason, e.message) for e in found.events)

    def ready(
        self, *, policy_id: str, provisioning_state: str, vm_names: list[str], message: str
    ) -> PolicyOutcome:
        if provisioning_state.lower() == "failed":
            return self.fail(
                "AzureProvisioningFailed",
                f"Azure JIT policy {policy_id} reports provisioningState Failed: Azure did not "
                "apply it. Check it in Defender for Cloud; the operator looks again at the "
                "next drift check.",
                stalled=True,
                retry_in=SLOW_RETRY_SECONDS,
            )
        if provisioning_state.lower() != "succeeded":
            message += f"; Azure still reports provisioningState {provisioning_state}"
        flipped = self._set("Ready", TRUE, "Synced", message)
        self._conditions = remove_condition(self._conditions, "Reconciling")
        self._conditions = remove_condition(self._conditions, "Stalled")
        if flipped and not self._events:
            self.event("Normal", "Synced", message)
        self._events.extend(self._exposure_events)
        status = (
            self._status()
            | {
                "azurePolicyId": policy_id,
                "provisioningState": provisioning_state,
                "virtualMachineCount": len(vm_names),
                "virtualMachines": vm_names,
                "lastSyncTime": format_timestamp(self._now),
            }
            | self.extra
        )
        return PolicyOutcome(status=status, events=self._events)

    def skipped(
        self, actual: AzurePolicySnapshot | None, *, policy_id: str, desired: AzurePolicyContent
    ) -> PolicyOutcome:
        """reconcile-policy skip: report Azure's state, write nothing."""
        if actual is None:
            state, message = (
                "Absent",
                f"reconcile-policy skip: Azure JIT policy {policy_id} does not exist",
            )
        elif actual.content.differs_from(desired):
            state, message = (
                "Differs",
                "reconcile-policy skip: the Azure JIT policy differs from the spec",
            )
        else:
            state, message = (
                "Matches",
                "reconcile-policy skip: the Azure JIT policy matches the spec",
            )
        flipped = self._set("Ready", TRUE, "Skipped", message)
        self._conditions = remove_condition(self._conditions, "Reconciling")
        self._conditions = remove_condition(self._conditions, "Stalled")
        if flipped:
            self.event("Normal", "Skipped", message)
        self._events.extend(self._exposure_events)
        status = (
            self._status()
            | {"provisioningState": actual.provisioning_state if actual else state}
            | self.extra
        )
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
            # Back off exponentially up to minutes: a 5xx that repeats for a body the
            # operator built is not worth a hot loop (E14 shows a 500 for a bad body).
            delay = min(
                MAX_RETRY_SECONDS,
                max(failure.retry_after or 0.0, FIRST_RETRY_SECONDS * 2**self._attempt),
            )
            previous = find(self._conditions, "Ready")
            # Keep a Ready policy Ready through a passing outage, not through a lasting one.
            if previous is not None and previous.status == TRUE and self._attempt < 2:
                return PolicyOutcome(status={}, events=[], retry_in=delay)
            return self.fail(
                "AzureUnavailable",
                f"Azure is unavailable or throttling ({failure}); retrying in {delay:g}s",
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
