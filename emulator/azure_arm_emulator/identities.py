"""Entra ID identities of the emulated tenants: who may get an ARM access token, and where
that token lets them act.

An identity is what Azure splits over an app registration (or user-assigned managed
identity), its federated identity credentials and its role assignments. In a world file::

    identities:
      - clientId: 5a0f4c3e-1111-4d2b-9c55-000000000001     # appId, a GUID
        tenantId: 72f988bf-0000-4000-8000-00000000c0de     # the directory it lives in
        displayName: azure-jit-operator                   # optional
        objectId: ...                                     # optional (derived from clientId)
        secret: s3cr3t                                    # optional client secret
        federatedSubjects:                                # optional workload identity
          - system:serviceaccount:azure-jit-system:azure-jit-operator
        federatedIssuer: https://oidc.example/            # optional: also check `iss`
        scopes:                                           # role assignments (ARM scopes)
          - /subscriptions/00000000-0000-0000-0000-000000000000
          - /subscriptions/1111.../resourceGroups/rg-web

``scopes`` work like the static ``tokens:`` of :mod:`.world`: an ARM call outside them gets
``403 AuthorizationFailed``; ``[]`` (the default) is an identity without any role
assignment; ``["/"]`` is everywhere. The ARM side looks an identity up when a call comes in,
so scope changes apply to tokens already issued, as role assignments do.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FEDERATION_AUDIENCE = "api://AzureADTokenExchange"

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_TENANT = re.compile(r"^[A-Za-z0-9.-]+$")  # what azure-identity accepts as a tenant id
_FIELDS = {
    "clientId",
    "tenantId",
    "displayName",
    "objectId",
    "secret",
    "federatedSubjects",
    "federatedIssuer",
    "scopes",
}


class IdentityError(ValueError):
    """An identity definition that cannot be used; the message says which field."""


@dataclass(frozen=True, slots=True)
class Identity:
    client_id: str
    tenant_id: str
    object_id: str
    display_name: str
    secret: str | None = None
    federated_subjects: tuple[str, ...] = ()
    federated_issuer: str | None = None
    scopes: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return self.client_id.lower()

    def to_dict(self, *, include_secret: bool = True) -> dict[str, Any]:
        """The world-file shape (the admin API leaves the secret out)."""
        out: dict[str, Any] = {
            "clientId": self.client_id,
            "tenantId": self.tenant_id,
            "objectId": self.object_id,
            "displayName": self.display_name,
            "federatedSubjects": list(self.federated_subjects),
            "scopes": list(self.scopes),
        }
        if self.federated_issuer is not None:
            out["federatedIssuer"] = self.federated_issuer
        if self.secret is not None:
            out["secret"] = self.secret if include_secret else "***"
        return out


def default_object_id(tenant_id: str, client_id: str) -> str:
    """A stable object id for an identity that names none (its service principal's id)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"emulator:{tenant_id.lower()}/{client_id.lower()}"))


def parse_identity(data: object, *, where: str = "identity") -> Identity:
    """One ``identities`` entry (also the body of the admin API's add-identity call)."""
    if not isinstance(data, Mapping):
        raise IdentityError(f"{where}: expected a mapping")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise IdentityError(f"{where}: unknown fields {unknown}; known: {sorted(_FIELDS)}")
    client_id = _guid(data, "clientId", where)
    tenant_id = _text(data, "tenantId", where)
    if not _TENANT.match(tenant_id):
        raise IdentityError(f"{where}: 'tenantId' may contain only letters, digits, '-' and '.'")
    object_id = (
        _guid(data, "objectId", where)
        if data.get("objectId") is not None
        else default_object_id(tenant_id, client_id)
    )
    secret = data.get("secret")
    if secret is not None and (not isinstance(secret, str) or not secret):
        raise IdentityError(f"{where}: 'secret' must be a non-empty string")
    issuer = data.get("federatedIssuer")
    if issuer is not None and (not isinstance(issuer, str) or not issuer):
        raise IdentityError(f"{where}: 'federatedIssuer' must be a non-empty string")
    scopes = _strings(data, "scopes", where)
    for scope in scopes:
        if not scope.startswith("/"):
            raise IdentityError(
                f"{where}: scope {scope!r} must be an ARM scope such as /subscriptions/<id>"
            )
    display_name = data.get("displayName") or f"app-{client_id[:8]}"
    return Identity(
        client_id=client_id,
        tenant_id=tenant_id,
        object_id=object_id,
        display_name=str(display_name),
        secret=secret,
        federated_subjects=_strings(data, "federatedSubjects", where),
        federated_issuer=issuer,
        scopes=scopes,
    )


def _text(data: Mapping[str, Any], name: str, where: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise IdentityError(f"{where}: '{name}' must be a non-empty string")
    return value


def _guid(data: Mapping[str, Any], name: str, where: str) -> str:
    value = _text(data, name, where)
    if not _GUID.match(value):
        raise IdentityError(f"{where}: '{name}' must be a GUID, got {value!r}")
    return value


def _strings(data: Mapping[str, Any], name: str, where: str) -> tuple[str, ...]:
    value = data.get(name)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise IdentityError(f"{where}: '{name}' must be a list of non-empty strings")
    return tuple(value)
