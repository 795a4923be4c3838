"""Builders of NSG rule views and VM networks for the exposure tests."""

from __future__ import annotations

from azure_jit_operator.azure.network import rule_view as adapter_rule_view
from azure_jit_operator.domain.nsg import NicGuards, SecurityRuleView, VmNetwork

SUBNET_NSG = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/nsg-snet"
)
NIC_NSG = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/nsg-nic"
)
VM_IP = "10.10.2.4"
VNET = ("10.10.0.0/16",)
GUID = "9EF6B1C2D3E4F5061728394A5B6C7D8E"
JIT_DENY_NAME = f"MicrosoftDefenderForCloud-JITRule_-1105480617_{GUID}"
JIT_ALLOW_NAME = f"MicrosoftDefenderForCloud-JITRule-1105480617-{GUID}"


def rule(
    nsg_id: str,
    name: str,
    priority: int,
    *,
    access: str = "Allow",
    sources: tuple[str, ...] = ("*",),
    destinations: tuple[str, ...] = ("*",),
    ports: tuple[str, ...] = ("22",),
    protocol: str = "*",
    source_ports: tuple[str, ...] = ("*",),
    direction: str = "Inbound",
) -> SecurityRuleView:
    return SecurityRuleView(
        nsg_id=nsg_id,
        name=name,
        access=access,
        direction=direction,
        sources=sources,
        destinations=destinations,
        destination_ports=ports,
        priority=priority,
        protocol=protocol,
        source_ports=source_ports,
    )


def jit_deny(nsg_id: str, *, ports: tuple[str, ...] = ("22",), ip: str = VM_IP) -> SecurityRuleView:
    """JIT's deny rule as E4 shows it: source *, the VM's address, priority 4096."""
    return rule(nsg_id, JIT_DENY_NAME, 4096, access="Deny", destinations=(ip,), ports=ports)


def jit_allow(nsg_id: str, source: str, *, port: str = "22", ip: str = VM_IP) -> SecurityRuleView:
    """JIT's allow rule as E3 shows it."""
    return rule(nsg_id, JIT_ALLOW_NAME, 100, sources=(source,), destinations=(ip,), ports=(port,))


def network(
    *,
    subnet_nsg: str | None = SUBNET_NSG,
    nic_nsg: str | None = NIC_NSG,
    ip: str = VM_IP,
    vnet: tuple[str, ...] = VNET,
) -> VmNetwork:
    nsgs = tuple(n for n in (nic_nsg, subnet_nsg) if n)
    return VmNetwork(
        vm_id="/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm",
        nsg_ids=nsgs,
        private_ips=(ip,),
        paths=(
            NicGuards(private_ip=ip, nic_nsg=nic_nsg, subnet_nsg=subnet_nsg, vnet_prefixes=vnet),
        ),
    )


# An ARM security rule (REST shape) as the operator's network adapter reads it.
rule_view = adapter_rule_view
