"""Choosing the Azure identity for a namespace, most specific first: the namespace's
``azure-jit-credential`` Secret, else the operator's global credential.

Secrets are read by name only (RBAC can restrict ``get`` to that one name), cached briefly,
and a rotated Secret (new resourceVersion) gets fresh clients; the old ones are closed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure_jit_operator.azure.access import AzureAccess
from azure_jit_operator.azure.clients import AzureClients, namespace_credential
from azure_jit_operator.config import Settings
from azure_jit_operator.domain.credentials import (
    SECRET_NAME,
    CredentialError,
    NamespaceCredential,
    parse_credential_secret,
)
from azure_jit_operator.kube.api import KubeApi

SECRET_CACHE_SECONDS = 30.0
GLOBAL = "global"


@dataclass(slots=True)
class _Cached:
    credential: NamespaceCredential | None
    error: str | None
    read_at: float


class Identities:
    def __init__(
        self,
        settings: Settings,
        kube: KubeApi,
        *,
        global_credential: Callable[[Settings], Any],
        namespace_credential_factory: Callable[[Settings, NamespaceCredential], Any] = (
            namespace_credential
        ),
    ) -> None:
        self._settings = settings
        self._kube = kube
        self._global = AzureAccess(AzureClients(settings, global_credential(settings)), key=GLOBAL)
        self._factory = namespace_credential_factory
        self._secrets: dict[str, _Cached] = {}
        self._by_namespace: dict[str, AzureAccess] = {}
        self._retired: list[AzureAccess] = []

    async def for_namespace(self, namespace: str) -> AzureAccess:
        """The identity's Azure access; raises CredentialError when it cannot be used."""
        if self._settings.namespace_credentials == "off":
            return self._global
        cached = await self._secret(namespace)
        if cached.error is not None:
            raise CredentialError(cached.error)
        if cached.credential is None:
            if self._settings.namespace_credentials == "required":
                raise CredentialError(
                    f"namespace {namespace!r} has no Secret {SECRET_NAME} and the operator "
                    "requires one per namespace (AZURE_JIT_NAMESPACE_CREDENTIALS=required)"
                )
            return self._global
        key = cached.credential.key
        current = self._by_namespace.get(namespace)
        if current is not None and current.key == key:
            return current
        access = AzureAccess(
            AzureClients(self._settings, self._factory(self._settings, cached.credential)),
            key=key,
        )
        self._by_namespace[namespace] = access
        if current is not None:
            # The Secret was rotated; calls still running on the old clients finish first.
            self._retired.append(current)
        return access

    async def close(self) -> None:
        for access in [*self._by_namespace.values(), *self._retired]:
            await access.close()
        self._by_namespace.clear()
        await self._global.close()

    async def _secret(self, namespace: str) -> _Cached:
        cached = self._secrets.get(namespace)
        now = time.monotonic()
        if cached is not None and now - cached.read_at < SECRET_CACHE_SECONDS:
            return cached
        try:
            secret = await self._kube.read_secret(namespace, SECRET_NAME)
        except PermissionError:
            cached = _Cached(
                None,
                f"the operator may not read Secret {SECRET_NAME} in namespace {namespace!r}; "
                "grant it get on that one Secret name (deploy/: the namespace-credentials "
                "component), or set AZURE_JIT_NAMESPACE_CREDENTIALS=off",
                now,
            )
            self._secrets[namespace] = cached
            return cached
        if secret is None:
            cached = _Cached(None, None, now)
        else:
            data, version = secret
            try:
                cached = _Cached(parse_credential_secret(data, version=version), None, now)
            except CredentialError as exc:
                cached = _Cached(None, f"namespace {namespace!r}: {exc}", now)
        self._secrets[namespace] = cached
        return cached
