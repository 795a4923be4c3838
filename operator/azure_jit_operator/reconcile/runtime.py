"""Everything a reconcile needs, created once at startup and kept in kopf's memo."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from azure_jit_operator.azure.clients import AzureClients
from azure_jit_operator.azure.compute import ComputeAccess
from azure_jit_operator.azure.jit import JitPolicies
from azure_jit_operator.azure.network import NetworkAccess
from azure_jit_operator.clock import Clock
from azure_jit_operator.config import Settings
from azure_jit_operator.domain.nsg import VmNetwork
from azure_jit_operator.kube.api import KubeApi
from azure_jit_operator.kube.events import ObjectIdentity
from azure_jit_operator.reconcile.port_book import PortBook

EventSink = Callable[[ObjectIdentity, str, str, str], None]

# VM -> NSG topology changes rarely; re-resolving it on every check would double ARM reads.
VM_NETWORK_TTL = timedelta(minutes=10)


@dataclass(slots=True)
class Runtime:
    settings: Settings
    clock: Clock
    azure: AzureClients
    kube: KubeApi
    post_event: EventSink
    jit: JitPolicies = field(init=False)
    network: NetworkAccess = field(init=False)
    compute: ComputeAccess = field(init=False)
    ports: PortBook = field(default_factory=PortBook)
    # uids of requests whose deletion (early revoke) has begun: their workers stop writing.
    revoked: set[str] = field(default_factory=set)
    _vm_networks: dict[str, tuple[VmNetwork, datetime]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.jit = JitPolicies(self.azure)
        self.network = NetworkAccess(self.azure)
        self.compute = ComputeAccess(self.azure)

    async def vm_network(self, vm_id: str, *, fresh: bool = False) -> VmNetwork:
        key = vm_id.lower()
        cached = self._vm_networks.get(key)
        now = self.clock.now()
        if cached and not fresh and now - cached[1] < VM_NETWORK_TTL:
            return cached[0]
        network = await self.network.vm_network(vm_id)
        self._vm_networks[key] = (network, now)
        return network

    async def close(self) -> None:
        await self.azure.close()
        await self.kube.close()
