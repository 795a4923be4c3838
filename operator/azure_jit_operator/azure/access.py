"""Everything the operator does in Azure under one identity: JIT policies, network and
compute, over one set of per-subscription clients."""

from __future__ import annotations

from datetime import datetime, timedelta

from azure_jit_operator.azure.clients import AzureClients
from azure_jit_operator.azure.compute import ComputeAccess
from azure_jit_operator.azure.jit import JitPolicies
from azure_jit_operator.azure.network import NetworkAccess
from azure_jit_operator.domain.nsg import VmNetwork

# VM -> NSG topology changes rarely; re-resolving it on every check would double ARM reads.
VM_NETWORK_TTL = timedelta(minutes=10)


class AzureAccess:
    def __init__(self, clients: AzureClients, *, key: str) -> None:
        self.key = key
        self.clients = clients
        self.jit = JitPolicies(clients)
        self.network = NetworkAccess(clients)
        self.compute = ComputeAccess(clients)
        self._vm_networks: dict[str, tuple[VmNetwork, datetime]] = {}

    async def vm_network(self, vm_id: str, *, now: datetime) -> VmNetwork:
        key = vm_id.lower()
        cached = self._vm_networks.get(key)
        if cached and now - cached[1] < VM_NETWORK_TTL:
            return cached[0]
        network = await self.network.vm_network(vm_id)
        self._vm_networks[key] = (network, now)
        return network

    async def close(self) -> None:
        await self.clients.close()
