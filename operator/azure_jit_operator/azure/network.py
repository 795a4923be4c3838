"""The network side of JIT: which NSGs guard a VM, what their rules open, and deleting a
JIT allow rule (Azure JIT has no revoke API). Reads go through the compute and network
clients; models are read in their REST shape (``as_dict``) as the specs define it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.core.rest import HttpRequest

from azure_jit_operator.domain.nsg import NicGuards, SecurityRuleView, VmNetwork

from .clients import AzureClients
from .errors import AzureError, FailureKind, classify

LRO_DEADLINE_SECONDS = 120.0
# The version azure-mgmt-network (pinned in uv.lock) sends for NetworkSecurityGroups_Get.
NSG_API_VERSION = "2026-03-01"

_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"(?P<provider>[^/]+)/(?P<type>[^/]+)/(?P<name>[^/]+)(?:/(?P<child_type>[^/]+)/(?P<child>[^/]+))?$",
    re.IGNORECASE,
)


class ResourceId:
    """A parsed ARM resource id (case preserved; compare with ``.lower()``)."""

    def __init__(self, text: str) -> None:
        match = _ID.match(text)
        if match is None:
            raise AzureError(FailureKind.INVALID, "InvalidResourceId", f"cannot parse {text!r}")
        self.text = text
        self.subscription = match["sub"]
        self.resource_group = match["rg"]
        self.name = match["name"]
        self.child = match["child"]


class NetworkAccess:
    def __init__(self, clients: AzureClients) -> None:
        self._clients = clients

    async def vm_network(self, vm_id: str) -> VmNetwork:
        """Resolve a VM to the NSGs on its NICs and their subnets, and its private IPs."""
        vm = ResourceId(vm_id)
        clients = self._clients.for_subscription(vm.subscription)
        try:
            machine = _rest(await clients.compute.virtual_machines.get(vm.resource_group, vm.name))
            nic_ids = [
                nic["id"]
                for nic in machine.get("properties", {})
                .get("networkProfile", {})
                .get("networkInterfaces", [])
                if nic.get("id")
            ]
            nsg_ids: list[str] = []
            ips: list[str] = []
            # (private IP, NIC NSG, subnet id) per IP configuration, resolved below.
            configs: list[tuple[str, str | None, str | None]] = []
            for nic_id in nic_ids:
                nic_ref = ResourceId(nic_id)
                nic = _rest(
                    await self._clients.for_subscription(
                        nic_ref.subscription
                    ).network.network_interfaces.get(nic_ref.resource_group, nic_ref.name)
                )
                props = nic.get("properties", {})
                nic_nsg = props.get("networkSecurityGroup", {}).get("id") or None
                if nic_nsg:
                    nsg_ids.append(nic_nsg)
                for config in props.get("ipConfigurations", []):
                    cprops = config.get("properties", {})
                    ip = cprops.get("privateIPAddress")
                    if ip:
                        ips.append(ip)
                    subnet = cprops.get("subnet", {}).get("id") or None
                    if ip:
                        configs.append((ip, nic_nsg, subnet))
            subnets: dict[str, tuple[str | None, tuple[str, ...]]] = {}
            for subnet_id in dict.fromkeys(s for _, _, s in configs if s):
                subnets[subnet_id] = await self._subnet_guard(subnet_id)
                if nsg := subnets[subnet_id][0]:
                    nsg_ids.append(nsg)
            paths = tuple(
                NicGuards(
                    private_ip=ip,
                    nic_nsg=nic_nsg,
                    subnet_nsg=subnets[subnet][0] if subnet else None,
                    vnet_prefixes=subnets[subnet][1] if subnet else (),
                )
                for ip, nic_nsg, subnet in configs
            )
        except Exception as exc:
            raise classify(exc) from exc
        unique = {n.lower(): n for n in nsg_ids}
        return VmNetwork(
            vm_id=vm_id, nsg_ids=tuple(unique.values()), private_ips=tuple(ips), paths=paths
        )

    async def _subnet_guard(self, subnet_id: str) -> tuple[str | None, tuple[str, ...]]:
        """The subnet's NSG and its virtual network's address space (what the
        VirtualNetwork service tag covers for exposure; empty if the VNet cannot be read)."""
        ref = ResourceId(subnet_id)
        network = self._clients.for_subscription(ref.subscription).network
        subnet = _rest(await network.subnets.get(ref.resource_group, ref.name, ref.child or ""))
        nsg = subnet.get("properties", {}).get("networkSecurityGroup", {}).get("id") or None
        try:
            vnet = _rest(await network.virtual_networks.get(ref.resource_group, ref.name))
        except Exception:  # exposure then treats VirtualNetwork as unknown, never as none
            return nsg, ()
        space = vnet.get("properties", {}).get("addressSpace", {}).get("addressPrefixes") or ()
        return nsg, tuple(str(p) for p in space)

    async def rules(self, nsg_id: str) -> list[SecurityRuleView]:
        """The custom security rules of one NSG (default rules never open JIT ports).

        One ``NetworkSecurityGroups_Get`` (rules inline) rather than ``SecurityRules_List``:
        a paged list is not a snapshot, so a rule can slip between pages while other rules
        come and go, and a close would then be confirmed with the rule still there.

        Sent through the client's own pipeline (credential, retries, throttle, metrics) but
        read as plain JSON: the SDK's model deserialization of an NSG with hundreds of rules
        cost more CPU than anything else a close does, and the REST shape is all we read."""
        nsg = ResourceId(nsg_id)
        client = self._clients.for_subscription(nsg.subscription).network
        request = HttpRequest(
            "GET", f"{nsg_id}?api-version={NSG_API_VERSION}", headers={"Accept": "application/json"}
        )
        try:
            response = await client.send_request(request)
            if response.status_code == 404:
                return []
            response.raise_for_status()
            body = response.json()
        except Exception as exc:
            raise classify(exc) from exc
        rules = (body.get("properties") or {}).get("securityRules") or []
        return [rule_view(nsg_id, rule) for rule in rules]

    async def delete_rule(self, nsg_id: str, rule_name: str) -> None:
        """Delete one rule and wait for the long-running operation; gone already is done."""
        nsg = ResourceId(nsg_id)
        ops = self._clients.for_subscription(nsg.subscription).network.security_rules
        try:
            poller = await ops.begin_delete(nsg.resource_group, nsg.name, rule_name)
            await asyncio.wait_for(poller.result(), timeout=LRO_DEADLINE_SECONDS)
        except ResourceNotFoundError:
            return
        except Exception as exc:
            raise classify(exc) from exc


def _rest(model: Any) -> Mapping[str, Any]:
    return model.as_dict() if hasattr(model, "as_dict") else dict(model)


def rule_view(nsg_id: str, rule: Mapping[str, Any]) -> SecurityRuleView:
    """An ARM security rule (REST shape) as the operator reads it."""
    props = rule.get("properties", {})

    def many(single: str, plural: str) -> tuple[str, ...]:
        values = list(props.get(plural) or ())
        if props.get(single):
            values.append(props[single])
        return tuple(str(v) for v in values)

    return SecurityRuleView(
        nsg_id=nsg_id,
        name=str(rule.get("name", "")),
        access=str(props.get("access", "")),
        direction=str(props.get("direction", "")),
        sources=many("sourceAddressPrefix", "sourceAddressPrefixes"),
        destinations=many("destinationAddressPrefix", "destinationAddressPrefixes"),
        destination_ports=many("destinationPortRange", "destinationPortRanges"),
        description=str(props.get("description") or ""),
        priority=int(props.get("priority") or 0),
        protocol=str(props.get("protocol") or "*"),
        source_ports=many("sourcePortRange", "sourcePortRanges") or ("*",),
    )
