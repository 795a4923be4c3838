"""Everything a reconcile needs, created once at startup and kept in kopf's memo."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from azure_jit_operator.azure.access import AzureAccess
from azure_jit_operator.clock import Clock
from azure_jit_operator.config import Settings
from azure_jit_operator.kube.api import Authorizer, KubeApi
from azure_jit_operator.kube.events import ObjectIdentity
from azure_jit_operator.reconcile.identities import Identities
from azure_jit_operator.reconcile.port_book import PortBook

EventSink = Callable[[ObjectIdentity, str, str, str], None]


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
    # uids of requests whose deletion (early revoke) has begun: their workers stop writing.
    revoked: set[str] = field(default_factory=set)

    async def azure_for(self, namespace: str) -> AzureAccess:
        """Azure access under the namespace's identity (raises CredentialError)."""
        return await self.identities.for_namespace(namespace)

    async def close(self) -> None:
        await self.identities.close()
        await self.kube.close()
