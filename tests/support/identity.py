"""Entra ID against the emulator: the default world's identities, fake projected service
account tokens, and the environment ``DefaultAzureCredential`` reads on AKS.

The operator's production credential is ``azure.identity.aio.DefaultAzureCredential``
(Workload Identity). Against an emulator it needs only environment variables plus the CA::

    token_file = write_service_account_token(tmp_path / "sa-token", OPERATOR.subject)
    for name, value in workload_identity_env(endpoint, token_file=token_file).items():
        monkeypatch.setenv(name, value)
    for name in AMBIENT_CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    async with DefaultAzureCredential(connection_verify=str(endpoint.ca_path)) as credential:
        ...

The operator itself passes ``connection_verify`` from ``AZURE_JIT_CA_BUNDLE``
(``azure_jit_operator.azure.clients.default_credential``), so for the operator the env is
``workload_identity_env(...)`` plus ``AZURE_JIT_ARM_ENDPOINT`` / ``AZURE_JIT_CA_BUNDLE``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from azure_arm_emulator.access_tokens import encode_jwt
from azure_arm_emulator.identities import FEDERATION_AUDIENCE
from tests.support.emulator import EmulatorEndpoint

ARM_SCOPE = "https://management.azure.com/.default"
TENANT_ID = "cccccccc-cccc-cccc-cccc-cccccccccccc"
CLUSTER_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_ACCOUNT_TOKEN_LIFETIME = 24 * 3600  # seconds; long enough for any test run

# Variables that would make DefaultAzureCredential pick another credential (or none).
AMBIENT_CREDENTIAL_VARIABLES = (
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "AZURE_TOKEN_CREDENTIALS",
    "AZURE_REGIONAL_AUTHORITY_NAME",
    "AZURE_KUBERNETES_TOKEN_PROXY",
    "AZURE_KUBERNETES_SNI_NAME",
    "AZURE_KUBERNETES_CA_FILE",
    "AZURE_KUBERNETES_CA_DATA",
)


@dataclass(frozen=True)
class WorldIdentity:
    """An identity of the default world (``worlds/default.yaml``)."""

    client_id: str
    object_id: str
    secret: str
    subject: str  # its federated service account
    tenant_id: str = TENANT_ID


OPERATOR = WorldIdentity(
    client_id="a1a1a1a1-0000-4000-8000-000000000001",
    object_id="0b0b0b0b-0000-4000-8000-000000000001",
    secret="emulator-operator-secret",
    subject="system:serviceaccount:azure-jit-system:azure-jit-operator",
)
"""Full access to both subscriptions of the default world."""

WEB_TEAM = WorldIdentity(
    client_id="a1a1a1a1-0000-4000-8000-000000000002",
    object_id="0b0b0b0b-0000-4000-8000-000000000002",
    secret="emulator-web-team-secret",
    subject="system:serviceaccount:team-web:jit-web",
)
"""Scoped to resource group ``rg-web`` of the first subscription only."""


def service_account_token(
    subject: str,
    *,
    audience: str | list[str] = FEDERATION_AUDIENCE,
    issuer: str = CLUSTER_ISSUER,
    lifetime: int = SERVICE_ACCOUNT_TOKEN_LIFETIME,
    issued_at: float | None = None,
) -> str:
    """A JWT shaped like the token kubelet projects for AKS Workload Identity
    (``sub`` = ``system:serviceaccount:<namespace>:<name>``, ``aud`` = the exchange audience).
    Its signature is a placeholder: the emulator reads the claims only."""
    now = int(time.time() if issued_at is None else issued_at)
    namespace, _, name = subject.removeprefix("system:serviceaccount:").partition(":")
    payload = {
        "aud": [audience] if isinstance(audience, str) else audience,
        "exp": now + lifetime,
        "iat": now,
        "nbf": now,
        "iss": issuer,
        "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name}},
        "sub": subject,
    }
    return encode_jwt({"alg": "RS256", "kid": "emulated-cluster-key"}, payload, key=None)


def write_service_account_token(
    path: Path,
    subject: str,
    *,
    audience: str | list[str] = FEDERATION_AUDIENCE,
    issuer: str = CLUSTER_ISSUER,
    lifetime: int = SERVICE_ACCOUNT_TOKEN_LIFETIME,
    issued_at: float | None = None,
) -> Path:
    """Write :func:`service_account_token` to ``path`` (what ``AZURE_FEDERATED_TOKEN_FILE``
    names)."""
    token = service_account_token(
        subject, audience=audience, issuer=issuer, lifetime=lifetime, issued_at=issued_at
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(token, encoding="utf-8")
    return path


def workload_identity_env(
    endpoint: EmulatorEndpoint,
    *,
    token_file: Path,
    client_id: str = OPERATOR.client_id,
    tenant_id: str = TENANT_ID,
) -> dict[str, str]:
    """The variables the AKS Workload Identity webhook injects, pointed at the emulator."""
    return {
        "AZURE_AUTHORITY_HOST": endpoint.base_url,
        "AZURE_TENANT_ID": tenant_id,
        "AZURE_CLIENT_ID": client_id,
        "AZURE_FEDERATED_TOKEN_FILE": str(token_file),
    }


def credential_kwargs(endpoint: EmulatorEndpoint) -> dict[str, str]:
    """Keyword arguments every azure-identity credential needs to trust the emulator's CA
    (for sync MSAL-based credentials also pass ``disable_instance_discovery=True``)."""
    return {"connection_verify": str(endpoint.ca_path)}
