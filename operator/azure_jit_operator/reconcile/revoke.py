"""Early revoke: a JitAccessRequest deleted while its ports may be open.

Azure JIT has no revoke API, so the operator deletes the allow rule itself (or, when another
request from the same source still needs the port, re-initiates with that request's earlier
end), confirms on the NSG, and only then lets the finalizer go. Raises while anything it
opened is still observed open, so kopf retries the deletion.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from azure_jit_operator.azure.access import AzureAccess
from azure_jit_operator.azure.errors import classify
from azure_jit_operator.domain.azure_policy import parse_policy_id
from azure_jit_operator.domain.credentials import CredentialError
from azure_jit_operator.domain.grants import Claim, RequestRef, busy_ports
from azure_jit_operator.domain.initiation_marker import still_applying
from azure_jit_operator.domain.lifecycle import Phase
from azure_jit_operator.domain.request_status import CLOSED, RequestStatus
from azure_jit_operator.kube.api import Gone
from azure_jit_operator.reconcile import port_ops
from azure_jit_operator.reconcile.objects import ObjectView
from azure_jit_operator.reconcile.open_ports import OpenPorts
from azure_jit_operator.reconcile.recorder import Recorder, Stop
from azure_jit_operator.reconcile.requests import UNKNOWN_POLICY
from azure_jit_operator.reconcile.runtime import Runtime


class StillOpenError(Exception):
    """A rule this request opened is still on the NSG; the deletion must be retried."""


async def revoke_request(
    rt: Runtime,
    obj: ObjectView,
    *,
    open_ports: OpenPorts,
    policy_exists: Callable[[str], bool],
) -> str:
    with rt.ports.in_use():
        return await _revoke(rt, obj, open_ports=open_ports, policy_exists=policy_exists)


async def _revoke(
    rt: Runtime,
    obj: ObjectView,
    *,
    open_ports: OpenPorts,
    policy_exists: Callable[[str], bool],
) -> str:
    rt.revoked.add(obj.uid)  # from here on, the request's worker writes nothing
    try:
        fresh = ObjectView.decode(obj.kind, await rt.kube.get(obj.ref))
    except Gone:
        return "already gone"
    status = RequestStatus.from_dict(fresh.status)
    named = str(fresh.spec.get("policyName", ""))
    # Metric labels carry only names of JitPolicies that exist, never a user's typo.
    policy_name = named if policy_exists(named) else UNKNOWN_POLICY
    recorder = Recorder(rt, fresh, status)
    me = RequestRef(fresh.namespace, fresh.name, fresh.uid)
    if status.phase.is_terminal:
        return f"request was already {status.phase.value}; nothing to close"
    vm_id = status.azure.vm_id
    if not vm_id:
        await _record(recorder, policy_name, "deleted before anything was opened in Azure")
        return "nothing was opened"
    ports = [p.number for p in status.ports] or [
        int(p["number"]) for p in fresh.spec.get("ports", [])
    ]
    try:
        await rt.seed_ports()
    except Exception as exc:
        raise StillOpenError(f"cannot list the requests that hold ports: {exc}") from exc
    try:
        az = await rt.azure_for(fresh.namespace)
    except CredentialError as exc:
        raise StillOpenError(f"no usable Azure identity: {exc}") from exc
    await _wait_while_azure_applies(az, status, ports)
    # No lock: the claim is dropped at once; only the narrowing initiate takes the VM's
    # initiate turn, and the delete waits for nobody.
    now = rt.clock.now()
    before = rt.ports.claims(vm_id)
    rt.ports.drop(vm_id, me)
    try:
        target = parse_policy_id(status.azure.policy_id)
        if target is not None:
            async with rt.ports.initiating(vm_id):
                after = rt.ports.claims(vm_id)
                openings = port_ops.narrowed_openings(before, after, ports, now=now)
                if openings:
                    # Same-source requests remain: end Azure's grant at their expiry, not ours.
                    await port_ops.initiate(
                        az,
                        target,
                        vm_id=vm_id,
                        openings=openings,
                        justification=f"azurejit-revoke k8s:{me}: access revoked early",
                    )
        await port_ops.close_beyond_grants(rt, az, vm_id, ports, now=now)
        observed = await port_ops.observe(rt, az, vm_id, ports, now=rt.clock.now())
    except Exception as exc:
        _reclaim(rt, vm_id, me, before)
        raise StillOpenError(f"closing failed: {classify(exc)}") from exc
    if any(o.beyond_grant for o in observed.values()):
        _reclaim(rt, vm_id, me, before)
        raise StillOpenError("an allow rule is still on the NSG after deleting it")
    message = f"deleted: port(s) {', '.join(map(str, ports))} closed before expiry"
    await _record(recorder, policy_name, message, closed_at=rt.clock.now())
    open_ports.closed(me)
    return message


async def _wait_while_azure_applies(
    az: AzureAccess, status: RequestStatus, ports: list[int]
) -> None:
    """A request deleted while Azure still applies its initiate keeps its finalizer until the
    rule is there to delete: finishing now would let the rule appear afterwards, open until
    Azure's own end time with no request left to close it (U2)."""
    target = parse_policy_id(status.azure.policy_id)
    if target is None or not status.azure.initiation_id:
        return
    try:
        snapshot = await az.jit.get(target)
    except Exception as exc:
        raise StillOpenError(f"cannot read Azure's request history: {classify(exc)}") from exc
    applying = still_applying(
        snapshot.initiations if snapshot else (),
        status.azure.initiation_id,
        vm_id=status.azure.vm_id,
        ports=ports,
    )
    if applying:
        raise StillOpenError(
            "Azure is still applying this request's initiate; waiting to delete it"
        )


def _reclaim(rt: Runtime, vm_id: str, me: RequestRef, before: list[Claim]) -> None:
    """Put this request's claims back for kopf's retry of the deletion (not while another
    request for a different source has taken the port meanwhile)."""
    mine = [c for c in before if c.request == me]
    if mine and not busy_ports(rt.ports.claims(vm_id, excluding=me), mine, now=rt.clock.now()):
        rt.ports.put(vm_id, me, mine)


async def _record(recorder: Recorder, policy: str, message: str, **changes: Any) -> None:
    try:
        await recorder.write(
            Phase.REVOKED,
            "Revoked",
            message,
            policy=policy,
            ports=tuple(replace(p, state=CLOSED) for p in recorder.status.ports),
            **changes,
        )
    except Stop:
        return
