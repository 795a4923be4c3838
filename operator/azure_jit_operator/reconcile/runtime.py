"""Everything a reconcile needs, created once at startup and kept in kopf's memo."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from azure_jit_operator.azure.access import AzureAccess
from azure_jit_operator.clock import Clock
from azure_jit_operator.config import Settings
from azure_jit_operator.domain.close_timing import CloseTimings
from azure_jit_operator.domain.grants import Claim
from azure_jit_operator.domain.request_status import claims_by_vm
from azure_jit_operator.kube.api import REQUESTS, Authorizer, KubeApi
from azure_jit_operator.kube.events import ObjectIdentity
from azure_jit_operator.reconcile.identities import Identities
from azure_jit_operator.reconcile.port_book import PortBook

log = logging.getLogger("azure_jit_operator.ports")

EventSink = Callable[[ObjectIdentity, str, str, str], None]
# Enough to keep the NSG reads of a normal day flowing, few enough to leave the CPU free.
ROUTINE_CHECKS_AT_ONCE = 8


@dataclass(slots=True)
class Runtime:
    settings: Settings
    clock: Clock
    identities: Identities
    kube: KubeApi
    post_event: EventSink
    authorizer: Authorizer
    username: str  # the operator's own Kubernetes user, to tell its writes from others'
    ports: PortBook = field(default_factory=PortBook)
    # How long forced closes took, per subscription: when the next one must start.
    close_timings: CloseTimings = field(default_factory=CloseTimings)
    # uids of requests whose deletion (early revoke) has begun: their workers stop writing.
    revoked: set[str] = field(default_factory=set)
    # Routine NSG checks of ports that are meant to be open run a few at a time, so that after
    # a restart with thousands of Active requests the closes that are due are not queued
    # behind thousands of reads (closing never takes a slot).
    routine_checks: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(ROUTINE_CHECKS_AT_ONCE)
    )

    async def seed_ports(self) -> None:
        """Before the PortBook is read: seed it, once, from every Active request's status in
        the watched namespaces (one LIST shared by all first callers; raises when it fails)."""
        await self.ports.seed(self._persisted_claims)

    async def _persisted_claims(self) -> dict[str, list[Claim]]:
        started = time.monotonic()
        found: dict[str, list[Claim]] = {}
        listed = 0
        async for page in self.kube.list_pages(REQUESTS, namespaces=self.settings.namespaces):
            listed += len(page)
            for vm_id, claims in claims_by_vm(page).items():
                found.setdefault(vm_id, []).extend(claims)
        log.info(
            "port book seeded from %d JitAccessRequest(s): %d claim(s) on %d VM(s) in %.1fs",
            listed,
            sum(len(c) for c in found.values()),
            len(found),
            time.monotonic() - started,
        )
        return found

    async def azure_for(self, namespace: str) -> AzureAccess:
        """Azure access under the namespace's identity (raises CredentialError)."""
        return await self.identities.for_namespace(namespace)

    async def close(self) -> None:
        await self.identities.close()
        await self.kube.close()
