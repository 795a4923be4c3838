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
from azure_jit_operator.domain.nsg import SecurityRuleView, VmNetwork

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
        # The last read of each NSG, and reads in flight that routine checks may share.
        # (rules, read at, (all writes, policy writes) at its start): shared while no write
        # a reader minds happened since.
        self._nsg_reads: dict[str, tuple[list[SecurityRuleView], datetime, tuple[int, int]]] = {}
        self._nsg_reading: dict[
            str, tuple[asyncio.Future[list[SecurityRuleView]], tuple[int, int]]
        ] = {}

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

    async def nsg_rules(
        self,
        nsg_id: str,
        *,
        now: datetime,
        max_age: timedelta = timedelta(0),
        deny_rules_only: bool = False,
    ) -> list[SecurityRuleView]:
        """The NSG's rules. ``max_age`` zero (closes, confirms, revokes): a read that starts
        now. Otherwise (routine checks: a VM's verification, a policy's exposure check in
        the same drift interval) a read at most that old, or one in flight, is shared, so
        each NSG is read once per interval however many checks look at it, provided no
        write of these clients overlapped or followed it; ``deny_rules_only`` (the exposure
        check, which leaves JIT's allow rules out) minds only the writes of JIT policies."""
        key = nsg_id.lower()
        epoch = self._epoch(deny_rules_only=deny_rules_only)
        if max_age > timedelta(0):
            last = self._nsg_reads.get(key)
            if last is not None and now - last[1] <= max_age and self._same(last[2], epoch):
                return last[0]
            pending = self._nsg_reading.get(key)
            if pending is not None and self._same(pending[1], epoch):
                return await asyncio.shield(pending[0])
        stamp = (self.clients.writes.value, self.clients.writes.policies)
        read = asyncio.ensure_future(self.network.rules(nsg_id))
        self._nsg_reading[key] = (read, stamp)
        read.add_done_callback(lambda done: self._nsg_read(key, done, now, stamp))
        return await asyncio.shield(read)

    def _epoch(self, *, deny_rules_only: bool) -> tuple[int | None, int]:
        writes = self.clients.writes
        return (None if deny_rules_only else writes.value, writes.policies)

    @staticmethod
    def _same(stamp: tuple[int, int], epoch: tuple[int | None, int]) -> bool:
        """Whether a read stamped ``stamp`` saw every write ``epoch`` minds."""
        return stamp[1] == epoch[1] and (epoch[0] is None or stamp[0] == epoch[0])

    def _nsg_read(
        self,
        key: str,
        done: asyncio.Future[list[SecurityRuleView]],
        at: datetime,
        stamp: tuple[int, int],
    ) -> None:
        if (pending := self._nsg_reading.get(key)) is not None and pending[0] is done:
            del self._nsg_reading[key]
        if not done.cancelled() and done.exception() is None:
            last = self._nsg_reads.get(key)
            if last is None or last[1] <= at:
                self._nsg_reads[key] = (done.result(), at, stamp)

    async def close(self) -> None:
        for resolving in self._resolving.values():
            resolving.cancel()
        for reading, _ in self._nsg_reading.values():
            reading.cancel()
        await self.clients.close()
