"""Azure resource ids: building, parsing and the case-insensitive keys the store uses.

ARM treats resource ids, names and provider namespaces case-insensitively but returns them
as they were created. The store therefore indexes by :func:`key` (lower case) and keeps the
spelling it was given for rendering.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

GUID_PATTERN = re.compile(r"^[0-9A-Fa-f]{8}-([0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$")


def key(resource_id: str) -> str:
    """The case-insensitive lookup key of a resource id (no trailing slash)."""
    return resource_id.rstrip("/").lower()


def subscription_id(sub: str) -> str:
    return f"/subscriptions/{sub}"


def resource_group_id(sub: str, rg: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}"


def provider_id(sub: str, rg: str, namespace: str, type_: str, name: str) -> str:
    return f"{resource_group_id(sub, rg)}/providers/{namespace}/{type_}/{name}"


def vm_id(sub: str, rg: str, name: str) -> str:
    return provider_id(sub, rg, "Microsoft.Compute", "virtualMachines", name)


def nic_id(sub: str, rg: str, name: str) -> str:
    return provider_id(sub, rg, "Microsoft.Network", "networkInterfaces", name)


def nsg_id(sub: str, rg: str, name: str) -> str:
    return provider_id(sub, rg, "Microsoft.Network", "networkSecurityGroups", name)


def vnet_id(sub: str, rg: str, name: str) -> str:
    return provider_id(sub, rg, "Microsoft.Network", "virtualNetworks", name)


def subnet_id(sub: str, rg: str, vnet: str, name: str) -> str:
    return f"{vnet_id(sub, rg, vnet)}/subnets/{name}"


def jit_policy_id(sub: str, rg: str, location: str, name: str) -> str:
    return (
        f"{resource_group_id(sub, rg)}/providers/Microsoft.Security/locations/{location}"
        f"/jitNetworkAccessPolicies/{name}"
    )


@dataclass(frozen=True, slots=True)
class ParsedId:
    """``/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/{type}/{name}[/{child}/{n}]``."""

    subscription: str
    resource_group: str
    namespace: str
    types: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.names[-1]

    def is_type(self, namespace: str, *types: str) -> bool:
        return self.namespace.lower() == namespace.lower() and tuple(
            t.lower() for t in self.types
        ) == tuple(t.lower() for t in types)


def parse(resource_id: str) -> ParsedId | None:
    """Parse a resource-group scoped provider resource id; None when it is not one."""
    parts = [p for p in resource_id.strip().split("/") if p != ""]
    if len(parts) < 8 or len(parts) % 2 != 0:
        return None
    if parts[0].lower() != "subscriptions" or parts[2].lower() != "resourcegroups":
        return None
    if parts[4].lower() != "providers":
        return None
    rest = parts[6:]
    types = tuple(rest[0::2])
    names = tuple(rest[1::2])
    return ParsedId(
        subscription=parts[1],
        resource_group=parts[3],
        namespace=parts[5],
        types=types,
        names=names,
    )
