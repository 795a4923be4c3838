"""The benchmark world: a generated emulator world (VMs spread over resource groups, every
fifth VM behind a shared subnet NSG) plus the JitPolicies and JitAccessRequests on top.

Every VM gets ten JIT ports, so ten requests can hold one VM at once without waiting for
each other (Azure JIT keeps one source per VM port).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from tests.support.identity import OPERATOR, TENANT_ID

from azure_arm_emulator.world import generate_world, world_to_dict

SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
LOCATION = "westeurope"
PORTS = (22, 2201, 2202, 2203, 2204, 2205, 2206, 2207, 2208, 2209)
ALLOWED = "10.0.0.0/8"
API_VERSION = "azurejit.dev/v1alpha1"


@dataclass(frozen=True)
class Layout:
    vms: int
    resource_groups: int

    def resource_group(self, vm: int) -> str:
        return f"rg-scale-{vm % self.resource_groups + 1}"

    @staticmethod
    def vm_name(vm: int) -> str:
        return f"vm-{vm:05d}"

    def vm_id(self, vm: int) -> str:
        return (
            f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{self.resource_group(vm)}"
            f"/providers/Microsoft.Compute/virtualMachines/{self.vm_name(vm)}"
        )


def write_world(path: Path, layout: Layout) -> Path:
    """The generated world plus the operator's Entra identity (Workload Identity subject and
    client secret, access everywhere), as a world file the emulator can reset to."""
    world = world_to_dict(
        generate_world(
            vms=layout.vms, subscriptions=1, resource_groups_per_subscription=layout.resource_groups
        )
    )
    world["identities"] = [
        {
            "clientId": OPERATOR.client_id,
            "tenantId": TENANT_ID,
            "objectId": OPERATOR.object_id,
            "displayName": "azure-jit-operator (benchmarks)",
            "secret": OPERATOR.secret,
            "federatedSubjects": [OPERATOR.subject],
            "scopes": ["/"],
        }
    ]
    path.write_text(yaml.safe_dump(world, sort_keys=False), encoding="utf-8")
    return path


def port_rules(ports: Sequence[int] = PORTS) -> list[dict[str, Any]]:
    return [
        {
            "number": port,
            "protocol": "TCP",
            "allowedSourceAddressPrefixes": [ALLOWED],
            "maxRequestAccessDuration": "24h",
        }
        for port in ports
    ]


def policy(
    name: str, layout: Layout, resource_group: str, vms: Iterable[int], *, azure_name: str
) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "JitPolicy",
        "metadata": {"name": name},
        "spec": {
            "azure": {
                "subscriptionId": SUBSCRIPTION,
                "resourceGroup": resource_group,
                "location": LOCATION,
                "policyName": azure_name,
            },
            "virtualMachines": [
                {"name": layout.vm_name(vm), "ports": port_rules()} for vm in sorted(vms)
            ],
        },
    }


def policies_by_resource_group(
    layout: Layout, vms: Iterable[int], *, prefix: str
) -> tuple[list[dict[str, Any]], dict[int, str]]:
    """One JitPolicy per resource group covering the given VMs; and VM -> policy name."""
    groups: dict[str, list[int]] = defaultdict(list)
    for vm in vms:
        groups[layout.resource_group(vm)].append(vm)
    bodies, owner = [], {}
    for group, members in sorted(groups.items()):
        name = f"{prefix}-{group}"
        bodies.append(policy(name, layout, group, members, azure_name=name))
        owner.update(dict.fromkeys(members, name))
    return bodies, owner


def source(index: int) -> str:
    """A distinct /32 inside ALLOWED for every request index."""
    return f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}/32"


def request(
    name: str,
    *,
    policy_name: str,
    vm_name: str,
    port: int,
    index: int,
    duration: str,
) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "JitAccessRequest",
        "metadata": {"name": name},
        "spec": {
            "policyName": policy_name,
            "virtualMachine": vm_name,
            "ports": [{"number": port, "sourceAddressPrefix": source(index)}],
            "duration": duration,
            "justification": f"benchmark request {index}",
        },
    }


def spread_requests(
    count: int,
    *,
    vms: Sequence[int],
    owner: dict[int, str],
    layout: Layout,
    duration: str,
    prefix: str,
    first_index: int = 0,
) -> list[dict[str, Any]]:
    """``count`` requests round-robin over ``vms``, each VM port taken by one request only."""
    if count > len(vms) * len(PORTS):
        raise ValueError(f"{count} requests do not fit on {len(vms)} VMs x {len(PORTS)} ports")
    bodies = []
    for k in range(count):
        vm = vms[k % len(vms)]
        port = PORTS[k // len(vms)]
        index = first_index + k
        bodies.append(
            request(
                f"{prefix}-{index:05d}",
                policy_name=owner[vm],
                vm_name=layout.vm_name(vm),
                port=port,
                index=index,
                duration=duration,
            )
        )
    return bodies
