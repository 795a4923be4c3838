"""The Azure JIT policy a JitPolicy should produce, and comparison with what Azure holds.

Both sides are normalised into the same plain value (sorted VMs and ports, prefixes as a
sorted tuple of canonical spellings, durations as timedelta) and compared with resource ids
case-folded, as ARM treats them, so a no-op resync writes nothing to Azure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from azure_jit_operator.domain.prefixes import canonical_prefix
from azure_jit_operator.domain.specs import AzureTarget, JitPolicySpec


@dataclass(frozen=True, slots=True)
class AzurePortRule:
    number: int
    protocol: str
    allowed_source_address_prefixes: tuple[str, ...]
    max_request_access_duration: timedelta


@dataclass(frozen=True, slots=True)
class AzureVmRule:
    id: str
    ports: tuple[AzurePortRule, ...]


@dataclass(frozen=True, slots=True)
class AzurePolicyContent:
    """What a JIT network access policy says, independent of who wrote it."""

    virtual_machines: tuple[AzureVmRule, ...]

    @classmethod
    def of(cls, vms: list[AzureVmRule] | tuple[AzureVmRule, ...]) -> AzurePolicyContent:
        """Build the normalised form; any order and id casing in, one canonical value out."""
        normalised = []
        for vm in vms:
            ports = tuple(
                AzurePortRule(
                    number=p.number,
                    protocol=p.protocol.upper() if p.protocol != "*" else "*",
                    allowed_source_address_prefixes=tuple(
                        sorted({canonical_prefix(x) for x in p.allowed_source_address_prefixes})
                    ),
                    max_request_access_duration=p.max_request_access_duration,
                )
                for p in sorted(vm.ports, key=lambda p: (p.number, p.protocol))
            )
            normalised.append(AzureVmRule(id=vm.id, ports=ports))
        return cls(virtual_machines=tuple(sorted(normalised, key=lambda v: v.id.lower())))

    def vm_ids(self) -> frozenset[str]:
        """Case-folded VM resource ids, for comparisons across policies."""
        return frozenset(vm.id.lower() for vm in self.virtual_machines)

    def differs_from(self, other: AzurePolicyContent) -> bool:
        return _comparable(self) != _comparable(other)


def _comparable(content: AzurePolicyContent) -> tuple[tuple[str, tuple[AzurePortRule, ...]], ...]:
    return tuple((vm.id.lower(), vm.ports) for vm in content.virtual_machines)


def vm_resource_id(subscription_id: str, resource_group: str, vm_name: str) -> str:
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.Compute/virtualMachines/{vm_name}"
    )


def policy_resource_id(subscription_id: str, resource_group: str, location: str, name: str) -> str:
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.Security/locations/{location}/jitNetworkAccessPolicies/{name}"
    )


def desired_policy(spec: JitPolicySpec) -> AzurePolicyContent:
    """The Azure policy content a JitPolicy spec asks for (canonical form)."""
    target = spec.azure
    return AzurePolicyContent.of(
        [
            AzureVmRule(
                id=vm_resource_id(target.subscription_id, target.resource_group, vm.name),
                ports=tuple(
                    AzurePortRule(
                        number=port.number,
                        protocol=port.protocol.value,
                        allowed_source_address_prefixes=tuple(
                            p.text for p in port.allowed_source_prefixes
                        ),
                        max_request_access_duration=port.max_request_access_duration,
                    )
                    for port in vm.ports
                ),
            )
            for vm in spec.virtual_machines
        ]
    )


@dataclass(frozen=True, slots=True)
class InitiatedPort:
    vm_id: str
    number: int
    source_prefixes: tuple[str, ...]
    end_time: datetime | None
    status: str
    status_reason: str


@dataclass(frozen=True, slots=True)
class InitiationRecord:
    """One entry of an Azure policy's ``requests`` history."""

    justification: str
    requestor: str
    start_time: datetime | None
    ports: tuple[InitiatedPort, ...]


@dataclass(frozen=True, slots=True)
class AzurePolicySnapshot:
    """An Azure JIT policy as read back from ARM."""

    id: str
    content: AzurePolicyContent
    provisioning_state: str
    initiations: tuple[InitiationRecord, ...]


_POLICY_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Security"
    r"/locations/(?P<loc>[^/]+)/jitNetworkAccessPolicies/(?P<name>[^/]+)$",
    re.IGNORECASE,
)


def parse_policy_id(policy_id: str) -> AzureTarget | None:
    """The target of a JIT policy resource id, or None when it is not one."""
    match = _POLICY_ID.match(policy_id)
    if match is None:
        return None
    return AzureTarget(
        subscription_id=match["sub"],
        resource_group=match["rg"],
        location=match["loc"],
        policy_name=match["name"],
    )
