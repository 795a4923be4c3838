"""How Microsoft.Network resources read: NSGs (with default rules and back-references to
their NICs and subnets), network interfaces, virtual networks and subnets, in the shape of
the 2024-07-01/2025-07-01 examples and of what azure-mgmt-network deserializes."""

from __future__ import annotations

from typing import Any

from azure_arm_emulator import ids
from azure_arm_emulator.model import Nic, Nsg, Subnet, Vnet
from azure_arm_emulator.nsg_rules import render_default_rules, render_rule
from azure_arm_emulator.store import Attachments, Store


def _tags(tags: dict[str, str]) -> dict[str, Any]:
    return {"tags": dict(tags)} if tags else {}


def render_nsg(store: Store, nsg: Nsg, attachments: Attachments | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {
        "provisioningState": nsg.provisioning_state,
        "resourceGuid": nsg.resource_guid,
        "flushConnection": nsg.flush_connection,
        "securityRules": [render_rule(nsg, rule) for rule in nsg.rules.values()],
        "defaultSecurityRules": render_default_rules(nsg),
    }
    if attachments is None:
        nics, subnets = store.nics_of_nsg(nsg), store.subnets_of_nsg(nsg)
    else:
        nsg_key = ids.key(nsg.id)
        nics = attachments.nics.get(nsg_key, [])
        subnets = attachments.subnets.get(nsg_key, [])
    if nics:
        props["networkInterfaces"] = [{"id": nic.id} for nic in nics]
    if subnets:
        props["subnets"] = [{"id": subnet.id} for subnet in subnets]
    return {
        "name": nsg.name,
        "id": nsg.id,
        "etag": nsg.etag,
        "type": "Microsoft.Network/networkSecurityGroups",
        "location": nsg.location,
        **_tags(nsg.tags),
        "properties": props,
    }


def render_nic(store: Store, nic: Nic) -> dict[str, Any]:
    subnet = store.subnets.get(nic.subnet)
    ip_config: dict[str, Any] = {
        "name": "ipconfig1",
        "id": f"{nic.id}/ipConfigurations/ipconfig1",
        "etag": nic.etag,
        "type": "Microsoft.Network/networkInterfaces/ipConfigurations",
        "properties": {
            "provisioningState": "Succeeded",
            "privateIPAddress": nic.private_ip,
            "privateIPAllocationMethod": "Dynamic",
            "subnet": {"id": subnet.id if subnet else nic.subnet},
            "primary": True,
            "privateIPAddressVersion": "IPv4",
        },
    }
    props: dict[str, Any] = {
        "provisioningState": "Succeeded",
        "resourceGuid": nic.resource_guid,
        "ipConfigurations": [ip_config],
        "dnsSettings": {"dnsServers": [], "appliedDnsServers": []},
        "macAddress": nic.mac_address,
        "enableAcceleratedNetworking": False,
        "enableIPForwarding": False,
        "primary": nic.primary,
        "nicType": "Standard",
    }
    if nic.nsg and nic.nsg in store.nsgs:
        props["networkSecurityGroup"] = {"id": store.nsgs[nic.nsg].id}
    if nic.vm and nic.vm in store.vms:
        props["virtualMachine"] = {"id": store.vms[nic.vm].id}
    return {
        "name": nic.name,
        "id": nic.id,
        "etag": nic.etag,
        "type": "Microsoft.Network/networkInterfaces",
        "location": nic.location,
        **_tags(nic.tags),
        "properties": props,
    }


def render_subnet(store: Store, subnet: Subnet) -> dict[str, Any]:
    props: dict[str, Any] = {
        "provisioningState": "Succeeded",
        "addressPrefix": subnet.address_prefix,
        "delegations": [],
        "privateEndpointNetworkPolicies": "Disabled",
        "privateLinkServiceNetworkPolicies": "Enabled",
    }
    if subnet.nsg and subnet.nsg in store.nsgs:
        props["networkSecurityGroup"] = {"id": store.nsgs[subnet.nsg].id}
    configs = [
        {"id": f"{nic.id}/ipConfigurations/ipconfig1"}
        for nic in store.nics.values()
        if nic.subnet == ids.key(subnet.id)
    ]
    if configs:
        props["ipConfigurations"] = configs
    return {
        "name": subnet.name,
        "id": subnet.id,
        "etag": subnet.etag,
        "type": "Microsoft.Network/virtualNetworks/subnets",
        "properties": props,
    }


def render_vnet(store: Store, vnet: Vnet) -> dict[str, Any]:
    return {
        "name": vnet.name,
        "id": vnet.id,
        "etag": vnet.etag,
        "type": "Microsoft.Network/virtualNetworks",
        "location": vnet.location,
        **_tags(vnet.tags),
        "properties": {
            "provisioningState": "Succeeded",
            "resourceGuid": vnet.resource_guid,
            "addressSpace": {"addressPrefixes": list(vnet.address_space)},
            "subnets": [render_subnet(store, s) for s in vnet.subnets.values()],
            "virtualNetworkPeerings": [],
            "enableDdosProtection": False,
        },
    }
