"""The emulator's state: every resource of the world, indexed by case-insensitive id.

Built from a :class:`~azure_arm_emulator.world.World`; mutated by the ARM
handlers and the admin API. It also answers the one question that ties compute to network:
which NSGs guard a VM (its NICs' NSGs and their subnets' NSGs) and for which addresses.
Lookups that fail raise the ARM error a client would get for that resource.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

from azure_arm_emulator import errors, ids
from azure_arm_emulator.identities import Identity
from azure_arm_emulator.model import (
    JitPolicy,
    Nic,
    Nsg,
    ResourceGroup,
    SecurityRule,
    Subnet,
    Subscription,
    Vm,
    Vnet,
)
from azure_arm_emulator.world import VmSpec, World, WorldError

_FIRST_HOST = 4  # Azure reserves the first four addresses of every subnet


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a bearer token stands for, and where it may act (None = everywhere)."""

    name: str
    object_id: str
    scopes: tuple[str, ...] | None
    client_id: str | None = None  # the appid, for identities of the Entra endpoint


@dataclass
class Guard:
    """An NSG guarding a VM and the VM's private addresses behind it."""

    nsg: Nsg
    addresses: list[str] = field(default_factory=list)


@dataclass
class Attachments:
    """NSG key -> the NICs and subnets that use it."""

    nics: dict[str, list[Nic]] = field(default_factory=dict)
    subnets: dict[str, list[Subnet]] = field(default_factory=dict)


class Store:
    """All emulated resources. Keys are :func:`ids.key` of the resource id."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, Subscription] = {}
        self.resource_groups: dict[str, ResourceGroup] = {}
        self.vnets: dict[str, Vnet] = {}
        self.subnets: dict[str, Subnet] = {}
        self.nsgs: dict[str, Nsg] = {}
        self.nics: dict[str, Nic] = {}
        self.vms: dict[str, Vm] = {}
        self.policies: dict[str, JitPolicy] = {}
        self.tokens: dict[str, Principal] = {}
        self.identities: dict[str, Identity] = {}  # key: client id, lower case
        self._used_ips: dict[str, set[str]] = {}  # subnet key -> addresses taken
        self._next_offset: dict[str, int] = {}  # subnet key -> where allocation resumes

    # ----------------------------------------------------------------------- building

    @classmethod
    def from_world(cls, world: World, *, now: datetime) -> Store:
        store = cls()
        for token in world.tokens:
            store.tokens[token.token] = Principal(
                name=token.principal, object_id=token.object_id, scopes=tuple(token.scopes)
            )
        for identity in world.identities:
            store.identities[identity.key] = identity
        for sub in world.subscriptions:
            store.subscriptions[sub.id.lower()] = Subscription(sub.id, sub.display_name)
            for rg in sub.resource_groups:
                group = ResourceGroup(sub.id, rg.name, rg.location, dict(rg.tags))
                store.resource_groups[ids.key(group.id)] = group
                for nsg_spec in rg.network_security_groups:
                    nsg = Nsg(
                        sub.id,
                        rg.name,
                        nsg_spec.name,
                        nsg_spec.location or rg.location,
                        dict(nsg_spec.tags),
                    )
                    for rule in nsg_spec.security_rules:
                        name = str(rule.get("name", ""))
                        nsg.rules[name.lower()] = SecurityRule(
                            name=name, properties=dict(rule.get("properties", {}))
                        )
                    store.nsgs[ids.key(nsg.id)] = nsg
                for vnet_spec in rg.virtual_networks:
                    vnet = Vnet(
                        sub.id,
                        rg.name,
                        vnet_spec.name,
                        vnet_spec.location or rg.location,
                        list(vnet_spec.address_space),
                    )
                    store.vnets[ids.key(vnet.id)] = vnet
                    for subnet_spec in vnet_spec.subnets:
                        subnet = Subnet(
                            sub.id, rg.name, vnet.name, subnet_spec.name, subnet_spec.address_prefix
                        )
                        if subnet_spec.network_security_group:
                            subnet.nsg = store._nsg_ref(
                                sub.id, rg.name, subnet_spec.network_security_group, subnet.name
                            )
                        vnet.subnets[subnet.name.lower()] = subnet
                        store.subnets[ids.key(subnet.id)] = subnet
            for rg in sub.resource_groups:
                for vm_spec in rg.virtual_machines:
                    store.add_vm(sub.id, rg.name, vm_spec, now=now)
        return store

    def add_vm(self, sub: str, rg: str, spec: VmSpec, *, now: datetime) -> Vm:
        """Create a VM and its NICs; raises WorldError for dangling references."""
        group = self.resource_groups.get(ids.key(ids.resource_group_id(sub, rg)))
        if group is None:
            raise WorldError(f"VM {spec.name}: resource group {sub}/{rg} does not exist")
        vm = Vm(
            subscription=group.subscription,
            resource_group=group.name,
            name=spec.name,
            location=spec.location or group.location,
            nics=[],
            tags=dict(spec.tags),
            size=spec.size,
            os_type=spec.os_type,
            admin_username=spec.admin_username,
            user_data=spec.user_data,
            zones=list(spec.zones),
            time_created=now,
        )
        if spec.vm_id:
            vm.vm_id = spec.vm_id
        if ids.key(vm.id) in self.vms:
            raise WorldError(f"VM {vm.id} already exists")
        nics: list[Nic] = []
        for index, nic_spec in enumerate(spec.nics):
            subnet = self._subnet_ref(group.subscription, group.name, nic_spec.subnet, spec.name)
            nic = Nic(
                subscription=group.subscription,
                resource_group=group.name,
                name=nic_spec.name,
                location=vm.location,
                subnet=ids.key(subnet.id),
                private_ip=nic_spec.private_ip_address or self._allocate_ip(subnet),
                primary=index == 0,
                vm=ids.key(vm.id),
            )
            if nic_spec.network_security_group:
                nic.nsg = self._nsg_ref(
                    group.subscription, group.name, nic_spec.network_security_group, spec.name
                )
            if ids.key(nic.id) in self.nics:
                raise WorldError(f"network interface {nic.id} already exists")
            nics.append(nic)
        for nic in nics:
            self.nics[ids.key(nic.id)] = nic
            self._used_ips.setdefault(nic.subnet, set()).add(nic.private_ip)
            vm.nics.append(ids.key(nic.id))
        self.vms[ids.key(vm.id)] = vm
        return vm

    def remove_vm(self, vm: Vm) -> None:
        """Delete a VM and its NICs (the NSGs stay, as in Azure)."""
        for nic_key in vm.nics:
            nic = self.nics.pop(nic_key, None)
            if nic is not None:
                self._used_ips.get(nic.subnet, set()).discard(nic.private_ip)
        self.vms.pop(ids.key(vm.id), None)

    def _nsg_ref(self, sub: str, rg: str, ref: str, owner: str) -> str:
        nsg_key = ids.key(ref if ref.startswith("/") else ids.nsg_id(sub, rg, ref))
        if nsg_key not in self.nsgs:
            raise WorldError(f"{owner}: network security group {ref!r} does not exist")
        return nsg_key

    def _subnet_ref(self, sub: str, rg: str, ref: str, owner: str) -> Subnet:
        if ref.startswith("/"):
            subnet_key = ids.key(ref)
        else:
            vnet, _, name = ref.partition("/")
            subnet_key = ids.key(ids.subnet_id(sub, rg, vnet, name))
        subnet = self.subnets.get(subnet_key)
        if subnet is None:
            raise WorldError(f"{owner}: subnet {ref!r} does not exist (use vnet/subnet or an id)")
        return subnet

    def _allocate_ip(self, subnet: Subnet) -> str:
        """The lowest free address from a cursor that only moves forward (amortised O(1))."""
        network = ipaddress.ip_network(subnet.address_prefix, strict=False)
        subnet_key = ids.key(subnet.id)
        used = self._used_ips.get(subnet_key, set())
        offset = self._next_offset.get(subnet_key, _FIRST_HOST)
        while offset < network.num_addresses - 1:
            candidate = str(network.network_address + offset)
            offset += 1
            if candidate not in used:
                self._next_offset[subnet_key] = offset
                return candidate
        raise WorldError(f"subnet {subnet.id} has no free address left")

    # ----------------------------------------------------------------------- lookups

    def require_subscription(self, sub: str) -> Subscription:
        found = self.subscriptions.get(sub.lower())
        if found is None:
            if not ids.GUID_PATTERN.match(sub):
                raise errors.invalid_subscription_id(sub)
            raise errors.subscription_not_found(sub)
        return found

    def require_resource_group(self, sub: str, rg: str) -> ResourceGroup:
        self.require_subscription(sub)
        found = self.resource_groups.get(ids.key(ids.resource_group_id(sub, rg)))
        if found is None:
            raise errors.resource_group_not_found(rg)
        return found

    def require_nsg(self, sub: str, rg: str, name: str) -> Nsg:
        self.require_resource_group(sub, rg)
        found = self.nsgs.get(ids.key(ids.nsg_id(sub, rg, name)))
        if found is None:
            raise errors.resource_not_found("Microsoft.Network/networkSecurityGroups", name, rg)
        return found

    def require_vm(self, sub: str, rg: str, name: str) -> Vm:
        self.require_resource_group(sub, rg)
        found = self.vms.get(ids.key(ids.vm_id(sub, rg, name)))
        if found is None:
            raise errors.resource_not_found("Microsoft.Compute/virtualMachines", name, rg)
        return found

    def require_nic(self, sub: str, rg: str, name: str) -> Nic:
        self.require_resource_group(sub, rg)
        found = self.nics.get(ids.key(ids.nic_id(sub, rg, name)))
        if found is None:
            raise errors.resource_not_found("Microsoft.Network/networkInterfaces", name, rg)
        return found

    def require_vnet(self, sub: str, rg: str, name: str) -> Vnet:
        self.require_resource_group(sub, rg)
        found = self.vnets.get(ids.key(ids.vnet_id(sub, rg, name)))
        if found is None:
            raise errors.resource_not_found("Microsoft.Network/virtualNetworks", name, rg)
        return found

    def vm_by_id(self, resource_id: str) -> Vm | None:
        return self.vms.get(ids.key(resource_id))

    def resource_groups_of(self, sub: str) -> list[ResourceGroup]:
        return [
            rg for rg in self.resource_groups.values() if rg.subscription.lower() == sub.lower()
        ]

    # ----------------------------------------------------------------------- topology

    def guards(self, vm: Vm) -> list[Guard]:
        """The NSGs guarding ``vm`` (NIC NSGs, then subnet NSGs) with the VM's addresses."""
        found: dict[str, Guard] = {}
        for nic_key in vm.nics:
            nic = self.nics.get(nic_key)
            if nic is None:
                continue
            subnet = self.subnets.get(nic.subnet)
            for nsg_key in (nic.nsg, subnet.nsg if subnet else None):
                if nsg_key is None or nsg_key not in self.nsgs:
                    continue
                guard = found.setdefault(nsg_key, Guard(self.nsgs[nsg_key]))
                if nic.private_ip not in guard.addresses:
                    guard.addresses.append(nic.private_ip)
        return list(found.values())

    def attachments(self) -> Attachments:
        """Which NICs and subnets use each NSG, computed in one pass (for list renders)."""
        found = Attachments()
        for nic in self.nics.values():
            if nic.nsg is not None:
                found.nics.setdefault(nic.nsg, []).append(nic)
        for subnet in self.subnets.values():
            if subnet.nsg is not None:
                found.subnets.setdefault(subnet.nsg, []).append(subnet)
        return found

    def nics_of_nsg(self, nsg: Nsg) -> list[Nic]:
        nsg_key = ids.key(nsg.id)
        return [nic for nic in self.nics.values() if nic.nsg == nsg_key]

    def subnets_of_nsg(self, nsg: Nsg) -> list[Subnet]:
        nsg_key = ids.key(nsg.id)
        return [subnet for subnet in self.subnets.values() if subnet.nsg == nsg_key]


class _Scoped(Protocol):
    @property
    def subscription(self) -> str: ...

    @property
    def resource_group(self) -> str: ...


_S = TypeVar("_S", bound=_Scoped)


def in_scope(items: Iterable[_S], sub: str, rg: str | None = None) -> list[_S]:
    """The items in subscription ``sub`` (and resource group ``rg``), in store order."""
    return [
        item
        for item in items
        if item.subscription.lower() == sub.lower()
        and (rg is None or item.resource_group.lower() == rg.lower())
    ]
