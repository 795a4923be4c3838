"""Everything the operator does in Azure under one identity: JIT policies, network and
compute, over one set of per-subscription clients."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from azure_jit_operator.azure.clients import AzureClients
from azure_jit_operator.azure.compute import ComputeAccess
from azure_jit_operator.azure.defender import DefenderAccess
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
        self.defender = DefenderAccess(clients)
        self._vm_networks: dict[str, tuple[VmNetwork, datetime]] = {}
        self._resolving: dict[str, asyncio.Future[VmNetwork]] = {}

    async def vm_network(self, vm_id: str, *, now: datetime) -> VmNetwork:
        """The VM's NSGs and addresses, cached; concurrent callers for one VM (requests for
        its ports opening at once) share one resolution instead of three GETs each."""
        key = vm_id.lower()
        cached = self._vm_networks.get(key)
        if cached and now - cached[1] < VM_NETWORK_TTL:
            return cached[0]
        pending = self._resolving.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self.network.vm_network(vm_id))
            self._resolving[key] = pending
            pending.add_done_callback(lambda done: self._resolved(key, done, now))
        # A caller cancelled (its worker stopping) leaves the resolution to the others.
        return await asyncio.shield(pending)

    def _resolved(self, key: str, done: asyncio.Future[VmNetwork], at: datetime) -> None:
        if self._resolving.get(key) is done:
            del self._resolving[key]
        if not done.cancelled() and done.exception() is None:
            self._vm_networks[key] = (done.result(), at)

    async def close(self) -> None:
        for pending in self._resolving.values():
            pending.cancel()
        await self.clients.close()
