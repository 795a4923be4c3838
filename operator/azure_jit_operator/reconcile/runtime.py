"""Everything a reconcile needs, created once at startup and kept in kopf's memo."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from azure_jit_operator.azure.access import AzureAccess
from azure_jit_operator.clock import Clock
from azure_jit_operator.config import Settings
from azure_jit_operator.domain.close_timing import CloseTimings
from azure_jit_operator.kube.api import Authorizer, KubeApi
from azure_jit_operator.kube.events import ObjectIdentity
from azure_jit_operator.reconcile.identities import Identities

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
    # How long forced closes took, per subscription: when the next one must start.
    close_timings: CloseTimings = field(default_factory=CloseTimings)

    async def azure_for(self, namespace: str) -> AzureAccess:
        """Azure access under the namespace's identity (raises CredentialError)."""
        return await self.identities.for_namespace(namespace)

    async def close(self) -> None:
        await self.identities.close()
        await self.kube.close()
