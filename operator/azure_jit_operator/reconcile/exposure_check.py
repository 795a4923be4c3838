"""The exposure part of a policy's drift check: read every NSG guarding the policy's VMs once,
judge each JIT port (domain.protection), and turn that into status, Events and metrics.

Reads only. The one write it may lead to is the caller's: re-applying the Azure policy when
JIT's deny rule is gone, so that JIT re-creates what it owns. Customer rules are reported,
never changed (the team that owns the NSG would otherwise fight the operator).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from azure_jit_operator.azure.access import AzureAccess
from azure_jit_operator.azure.errors import classify
from azure_jit_operator.domain.azure_policy import vm_resource_id
from azure_jit_operator.domain.nsg import SecurityRuleView
from azure_jit_operator.domain.protection import (
    MAX_LISTED,
    PortProtection,
    Protection,
    ProtectionReport,
    Transition,
    port_protection,
    report,
    transitions,
)
from azure_jit_operator.domain.specs import JitPolicySpec
from azure_jit_operator.metrics import (
    PORTS_EXPOSED,
    PORTS_EXPOSED_TO_INTERNET,
    PORTS_UNPROTECTED,
)
from azure_jit_operator.reconcile.objects import ObjectView
from azure_jit_operator.reconcile.runtime import Runtime

EXPOSED_CONDITION = "Exposed"


def shared_read_age(drift_interval: timedelta) -> timedelta:
    """How old a read of an NSG one routine check may take from another: the same drift
    interval's read (at most a minute), never the previous interval's."""
    return min(timedelta(seconds=60), drift_interval / 2)


@dataclass(slots=True)
class ExposureOutcome:
    """What one check found and what to say about it."""

    status: dict[str, Any]
    condition: tuple[str, str, str]  # status, reason, message
    events: list[Transition] = field(default_factory=list)
    missing_deny: list[PortProtection] = field(default_factory=list)


async def check_exposure(
    rt: Runtime, az: AzureAccess, obj: ObjectView, spec: JitPolicySpec
) -> ExposureOutcome:
    """Judge every port of ``spec`` (the VMs the Azure policy holds) against its NSGs."""
    try:
        protections = await _protections(rt, az, spec)
    except Exception as exc:  # an unreadable NSG: say so, never "protected"
        failure = classify(exc)
        return ExposureOutcome(
            status=dict(obj.status.get("exposure") or {}),
            condition=(
                "Unknown",
                "NsgUnreadable",
                f"could not read the VMs' network security groups ({failure}); exposure is "
                "unknown until the next drift check. Grant the operator "
                "Microsoft.Network/networkSecurityGroups/read and virtualNetworks/read.",
            ),
        )
    judged: ProtectionReport = report(protections)
    before = (obj.status.get("exposure") or {}).get("ports") or []
    previous_flagged = sum(
        int((obj.status.get("exposure") or {}).get(k) or 0) for k in ("exposed", "unprotected")
    )
    events = transitions(before, protections, listed_all=previous_flagged <= MAX_LISTED)
    publish(obj.namespace, obj.name, protections)
    return ExposureOutcome(
        status=judged.status,
        condition=(judged.condition_status, judged.reason, judged.message),
        events=events,
        missing_deny=[p for p in protections if p.state is Protection.UNPROTECTED],
    )


async def _protections(rt: Runtime, az: AzureAccess, spec: JitPolicySpec) -> list[PortProtection]:
    target = spec.azure
    now = rt.clock.now()
    vms = list(spec.virtual_machines)
    networks = await asyncio.gather(
        *(
            az.vm_network(
                vm_resource_id(target.subscription_id, target.resource_group, vm.name), now=now
            )
            for vm in vms
        )
    )
    # One read per NSG however many VMs it guards (a subnet NSG usually guards many).
    nsg_ids = list({n.lower(): n for net in networks for n in net.nsg_ids}.values())
    rule_lists = await asyncio.gather(
        *(
            az.nsg_rules(
                nsg,
                now=now,
                max_age=shared_read_age(rt.settings.drift_interval),
                deny_rules_only=True,
            )
            for nsg in nsg_ids
        )
    )
    rules_by_nsg: Mapping[str, Sequence[SecurityRuleView]] = dict(
        zip(nsg_ids, rule_lists, strict=True)
    )
    return [
        port_protection(
            vm.name, network, rules_by_nsg, port=port.number, protocol=port.protocol.value
        )
        for vm, network in zip(vms, networks, strict=True)
        for port in vm.ports
    ]


# (namespace, policy) -> the label sets last published, so vanished ports lose their series.
_published: dict[tuple[str, str], set[tuple[str, str]]] = {}


def publish(namespace: str, policy: str, protections: Sequence[PortProtection]) -> None:
    now = {(p.vm, str(p.port)) for p in protections}
    for vm, port in _published.get((namespace, policy), set()) - now:
        _remove(namespace, policy, vm, port)
    exposed: dict[tuple[str, str], list[PortProtection]] = {}
    for p in protections:
        exposed.setdefault((p.vm, str(p.port)), []).append(p)
    for (vm, port), group in exposed.items():
        labels = (namespace, policy, vm, port)
        PORTS_EXPOSED.labels(*labels).set(int(any(p.exposure.exposed for p in group)))
        PORTS_EXPOSED_TO_INTERNET.labels(*labels).set(int(any(p.internet for p in group)))
        PORTS_UNPROTECTED.labels(*labels).set(int(any(p.deny_missing for p in group)))
    _published[(namespace, policy)] = now


def forget(namespace: str, policy: str) -> None:
    """A policy is gone (or no longer this replica's): its series go with it."""
    for vm, port in _published.pop((namespace, policy), set()):
        _remove(namespace, policy, vm, port)


def forget_all() -> None:
    for namespace, policy in list(_published):
        forget(namespace, policy)


def _remove(namespace: str, policy: str, vm: str, port: str) -> None:
    for gauge in (PORTS_EXPOSED, PORTS_EXPOSED_TO_INTERNET, PORTS_UNPROTECTED):
        with contextlib.suppress(KeyError):
            gauge.remove(namespace, policy, vm, port)
