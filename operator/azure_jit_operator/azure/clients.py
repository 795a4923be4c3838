"""One async credential and one set of ARM clients per subscription, made once, closed once.

The credential is ``DefaultAzureCredential`` (Workload Identity on AKS). The endpoint and
CA bundle come from settings, so the same code talks to the emulator. The SDK's own retry
policy (exponential backoff with jitter, honouring Retry-After) is bounded so that a long
outage is handed back to kopf's backoff instead of blocking a handler.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

import aiohttp
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.pipeline.transport import AioHttpTransport
from azure.identity.aio import (
    ClientSecretCredential,
    DefaultAzureCredential,
    WorkloadIdentityCredential,
)
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.network.aio import NetworkManagementClient
from azure.mgmt.security.aio import SecurityCenter

from azure_jit_operator.azure.pipeline import (
    ArmCallObserver,
    SubscriptionThrottle,
    ThrottleState,
    WriteEpoch,
)
from azure_jit_operator.config import Settings
from azure_jit_operator.domain.credentials import NamespaceCredential

JIT_API_VERSION = "2020-01-01"
SDK_RETRIES = 3
LRO_POLL_SECONDS = 1


@dataclass(slots=True)
class SubscriptionClients:
    subscription_id: str
    security: SecurityCenter
    network: NetworkManagementClient
    compute: ComputeManagementClient
    # The JIT client is pinned to api-version 2020-01-01, which has no pricings; this one
    # uses the SDK's default per operation group (pricings: 2024-01-01).
    pricing: SecurityCenter
    throttle: ThrottleState

    async def close(self) -> None:
        await self.security.close()  # type: ignore[no-untyped-call]
        await self.pricing.close()  # type: ignore[no-untyped-call]
        await self.network.close()
        await self.compute.close()


def default_credential(settings: Settings) -> AsyncTokenCredential:
    kwargs: dict[str, Any] = {
        # Interactive and developer-tool credentials make no sense inside a pod and would
        # only add latency and confusing errors to the chain.
        "exclude_interactive_browser_credential": True,
        "exclude_visual_studio_code_credential": True,
        "exclude_shared_token_cache_credential": True,
        "exclude_powershell_credential": True,
        "exclude_developer_cli_credential": True,
    }
    if settings.ca_bundle is not None:
        kwargs["connection_verify"] = str(settings.ca_bundle)
    return DefaultAzureCredential(**kwargs)


class AzureClients:
    """One credential's clients, created lazily per subscription the operator meets."""

    def __init__(self, settings: Settings, credential: AsyncTokenCredential) -> None:
        self._settings = settings
        self._credential = credential
        self._by_subscription: dict[str, SubscriptionClients] = {}
        self.writes = WriteEpoch()  # every write of these clients, for cached reads
        # azure-core turns a CA-bundle path into a new SSLContext on every request, and
        # aiohttp pools connections per SSLContext: each ARM call would open (and keep) a
        # TLS connection of its own. One context, on the clients' own sessions, reuses them.
        self._ssl = (
            ssl.create_default_context(cafile=str(settings.ca_bundle))
            if settings.ca_bundle is not None
            else None
        )

    def for_subscription(self, subscription_id: str) -> SubscriptionClients:
        key = subscription_id.lower()
        clients = self._by_subscription.get(key)
        if clients is None:
            clients = self._create(subscription_id)
            self._by_subscription[key] = clients
        return clients

    def throttled_for(self, subscription_id: str, bucket: str | None = None) -> float:
        """Seconds this subscription is still held back after a 429 (0 when free)."""
        clients = self._by_subscription.get(subscription_id.lower())
        return clients.throttle.held_for(bucket) if clients else 0.0

    async def close(self) -> None:
        for clients in self._by_subscription.values():
            await clients.close()
        self._by_subscription.clear()
        await self._credential.close()

    def _create(self, subscription_id: str) -> SubscriptionClients:
        throttle = ThrottleState()

        def options() -> dict[str, Any]:
            # Fresh policy instances per client: pipeline policies are chained objects.
            opts: dict[str, Any] = {
                "base_url": self._settings.arm_endpoint,
                "retry_total": SDK_RETRIES,
                "retry_backoff_factor": 0.5,
                "retry_backoff_max": 20,
                "polling_interval": LRO_POLL_SECONDS,
                "per_retry_policies": [
                    SubscriptionThrottle(throttle),
                    ArmCallObserver(self.writes),
                ],
            }
            if self._ssl is not None:
                session = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(ssl=self._ssl), trust_env=True
                )
                opts["transport"] = AioHttpTransport(session=session, session_owner=True)
            return opts

        return SubscriptionClients(
            subscription_id=subscription_id,
            security=SecurityCenter(
                self._credential, subscription_id, api_version=JIT_API_VERSION, **options()
            ),
            network=NetworkManagementClient(self._credential, subscription_id, **options()),
            compute=ComputeManagementClient(self._credential, subscription_id, **options()),
            pricing=SecurityCenter(self._credential, subscription_id, **options()),
            throttle=throttle,
        )


def namespace_credential(
    settings: Settings, credential: NamespaceCredential
) -> AsyncTokenCredential:
    """The azure-identity credential for a namespace's Secret (authority from the standard
    AZURE_AUTHORITY_HOST; Workload Identity uses the operator's projected token file)."""
    kwargs: dict[str, Any] = {}
    if settings.ca_bundle is not None:
        kwargs["connection_verify"] = str(settings.ca_bundle)
    if credential.workload_identity:
        return WorkloadIdentityCredential(
            tenant_id=credential.tenant_id, client_id=credential.client_id, **kwargs
        )
    assert credential.client_secret is not None  # parse_credential_secret guarantees it
    return ClientSecretCredential(
        credential.tenant_id, credential.client_id, credential.client_secret, **kwargs
    )
