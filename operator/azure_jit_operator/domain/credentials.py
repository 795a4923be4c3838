"""Which Azure identity a namespace uses: the operator's own, or one named by the
namespace in its ``azure-jit-credential`` Secret (the model of Azure Service Operator).

Resolution is most-specific first: the namespace's Secret, else the operator's global
identity (unless the operator is configured to require namespace credentials).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

SECRET_NAME = "azure-jit-credential"  # noqa: S105 - the Secret's name, not a password
_GUID_LENGTH = 36


class CredentialError(ValueError):
    """A namespace credential Secret that cannot be used; the message says how to fix it."""


@dataclass(frozen=True, slots=True)
class NamespaceCredential:
    """A service principal secret, or a Workload Identity client federated with the
    operator's own ServiceAccount token."""

    tenant_id: str
    client_id: str
    client_secret: str | None
    workload_identity: bool
    version: str  # the Secret's resourceVersion: a rotated Secret gets fresh clients

    @property
    def key(self) -> str:
        return f"{self.tenant_id}/{self.client_id}@{self.version}"


def parse_credential_secret(data: Mapping[str, str], *, version: str) -> NamespaceCredential:
    """Parse the (already base64-decoded) data of an ``azure-jit-credential`` Secret."""
    tenant = data.get("AZURE_TENANT_ID", "").strip()
    client = data.get("AZURE_CLIENT_ID", "").strip()
    secret = data.get("AZURE_CLIENT_SECRET", "").strip() or None
    workload = data.get("USE_WORKLOAD_IDENTITY_AUTH", "").strip().lower() == "true"
    missing = [k for k, v in (("AZURE_TENANT_ID", tenant), ("AZURE_CLIENT_ID", client)) if not v]
    if missing:
        raise CredentialError(
            f"Secret {SECRET_NAME} lacks {', '.join(missing)}; it needs AZURE_TENANT_ID, "
            "AZURE_CLIENT_ID and either AZURE_CLIENT_SECRET or USE_WORKLOAD_IDENTITY_AUTH=true"
        )
    if bool(secret) == workload:
        raise CredentialError(
            f"Secret {SECRET_NAME} must set exactly one of AZURE_CLIENT_SECRET (a service "
            "principal) or USE_WORKLOAD_IDENTITY_AUTH=true (an identity federated with the "
            "operator's ServiceAccount)"
        )
    for name, value in (("AZURE_TENANT_ID", tenant), ("AZURE_CLIENT_ID", client)):
        if len(value) != _GUID_LENGTH or value.count("-") != 4:
            raise CredentialError(f"Secret {SECRET_NAME}: {name} must be a GUID, not {value!r}")
    return NamespaceCredential(
        tenant_id=tenant,
        client_id=client,
        client_secret=secret,
        workload_identity=workload,
        version=version,
    )
