"""The Microsoft identity platform (Entra ID) endpoints azure-identity and MSAL call.

Served on the emulator's own port and CA, so ``AZURE_AUTHORITY_HOST=https://127.0.0.1:<port>``
(or ``authority=``) makes the real credentials fetch ARM tokens here:

=========================================================  ============================
``GET  /common/discovery/instance``                         MSAL instance discovery
``GET  /{tenant}/v2.0/.well-known/openid-configuration``    MSAL tenant discovery
``GET  /{tenant}/discovery/v2.0/keys``                      JWKS (empty, see below)
``POST /{tenant}/oauth2/v2.0/token``                        client credentials grant
=========================================================  ============================

The token endpoint serves ``grant_type=client_credentials`` for the identities of
:mod:`.identities`, authenticated by ``client_secret`` or by a federated ``client_assertion``
(Workload Identity: the Kubernetes service account token). It answers as Entra does, success
``{"token_type", "expires_in", "ext_expires_in", "access_token"}`` and failures
``{"error", "error_description": "AADSTS…", "error_codes", "timestamp", "trace_id",
"correlation_id", "error_uri"}``. Access tokens are :mod:`.access_tokens` (HMAC-signed, so
the JWKS has no keys to publish). Calls are counted and faults injected under the operation
ids ``Entra_InstanceDiscovery``, ``Entra_OpenIdConfiguration``, ``Entra_Keys`` and
``Entra_Token``; ``*`` faults (ARM outages) leave these endpoints alone.
"""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from aiohttp import web

from azure_arm_emulator import access_tokens
from azure_arm_emulator.core import Emulator
from azure_arm_emulator.faults import Fault
from azure_arm_emulator.identities import FEDERATION_AUDIENCE, Identity

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ERROR_URI = "https://login.microsoftonline.com/error?code={code}"
WORKLOAD_IDENTITY_DOCS = (
    "https://learn.microsoft.com/entra/workload-id/workload-identity-federation"
)
_WILDCARD_TENANTS = frozenset({"common", "organizations", "consumers"})
_OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
_CHECK_FIC = (
    "Please note that the matching is done using a case-sensitive comparison. Check your "
    "federated identity credential Subject, Audience and Issuer against the presented assertion."
)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class EntraError(Exception):
    """An OAuth error answer: HTTP status, OAuth ``error`` and the AADSTS code and text."""

    status: int
    error: str
    code: int
    text: str
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(f"{self.status} {self.error}: AADSTS{self.code}: {self.text}")

    def to_body(self, *, trace_id: str, correlation_id: str, moment: datetime) -> dict[str, Any]:
        stamp = moment.strftime("%Y-%m-%d %H:%M:%SZ")
        description = (
            f"AADSTS{self.code}: {self.text}\r\nTrace ID: {trace_id}\r\n"
            f"Correlation ID: {correlation_id}\r\nTimestamp: {stamp}"
        )
        return {
            "error": self.error,
            "error_description": description,
            "error_codes": [self.code],
            "timestamp": stamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": ERROR_URI.format(code=self.code),
        }


def _missing(name: str) -> EntraError:
    return EntraError(
        400,
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: '{name}'.",
    )


def _tenant_not_found(tenant: str, *, error: str = "invalid_request") -> EntraError:
    return EntraError(
        400,
        error,
        90002,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
        "signing into the correct cloud. Check with your subscription administrator, this may "
        "happen if there are no active subscriptions for the tenant.",
    )


def _malformed() -> EntraError:
    return EntraError(400, "invalid_request", 50027, "JWT token is invalid or malformed.")


def _moment(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%m/%d/%Y %H:%M:%S")


# --------------------------------------------------------------------------- the grant


def known_tenant(tenant: str, identities: Mapping[str, Identity]) -> bool:
    """A tenant exists when at least one identity lives in it."""
    return any(i.tenant_id.lower() == tenant.lower() for i in identities.values())


def token_response(
    form: Mapping[str, str],
    *,
    tenant: str,
    identities: Mapping[str, Identity],
    issuer_base: str,
    now: float,
    lifetime: int,
) -> dict[str, Any]:
    """Entra's answer to a client credentials token request (raises :class:`EntraError`)."""
    if tenant.lower() in _WILDCARD_TENANTS:
        raise EntraError(
            400,
            "invalid_request",
            50059,
            "No tenant-identifying information found in either the request or implied by any "
            "provided credentials.",
        )
    if not known_tenant(tenant, identities):
        raise _tenant_not_found(tenant)
    grant_type = form.get("grant_type") or ""
    if not grant_type:
        raise _missing("grant_type")
    if grant_type != "client_credentials":
        raise EntraError(
            400,
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant_type}'. "
            "(The emulator serves client_credentials only.)",
        )
    client_id = form.get("client_id") or ""
    if not client_id:
        raise _missing("client_id")
    resource = _resource(form.get("scope") or "", tenant)
    identity = identities.get(client_id.lower())
    if identity is None or identity.tenant_id.lower() != tenant.lower():
        raise EntraError(
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory "
            f"'{tenant}'. This can happen if the application has not been installed by the "
            "administrator of the tenant or consented to by any user in the tenant. You may have "
            "sent your authentication request to the wrong tenant.",
        )
    assertion, secret = form.get("client_assertion"), form.get("client_secret")
    if assertion:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise EntraError(
                400,
                "invalid_request",
                50027,
                f"JWT token is invalid or malformed. client_assertion_type must be "
                f"'{ASSERTION_TYPE}'.",
            )
        check_federated_assertion(identity, assertion, now=now)
        method = access_tokens.AUTH_ASSERTION
    elif secret:
        if identity.secret is None or not hmac.compare_digest(
            secret.encode(), identity.secret.encode()
        ):
            raise EntraError(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                "the client secret value, not the client secret ID, for a secret added to app "
                f"'{identity.client_id}'.",
            )
        method = access_tokens.AUTH_SECRET
    else:
        raise EntraError(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or "
            "'client_secret'.",
        )
    token = access_tokens.mint(
        identity,
        resource=resource,
        issuer_base=issuer_base,
        now=now,
        lifetime=lifetime,
        auth_method=method,
    )
    return {
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": token,
    }


def _resource(scope: str, tenant: str) -> str:
    """The resource of a client credentials scope (``https://management.azure.com/.default``)."""
    if not scope:
        raise _missing("scope")
    requested = [s for s in scope.split() if s.lower() not in _OIDC_SCOPES]
    if len(requested) != 1 or not requested[0].endswith("/.default"):
        raise EntraError(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {scope} is not valid. Client credential flows must "
            "have a scope value with /.default suffixed to the resource identifier "
            "(application ID URI).",
        )
    # https://management.azure.com/.default -> https://management.azure.com, but
    # https://management.core.windows.net//.default -> https://management.core.windows.net/
    resource = requested[0].removesuffix(".default").removesuffix("/")
    if not access_tokens.is_arm_resource(resource):
        raise EntraError(
            400,
            "invalid_resource",
            500011,
            f"The resource principal named {resource} was not found in the tenant named "
            f"{tenant}. This can happen if the application has not been installed by the "
            "administrator of the tenant or consented to by any user in the tenant. You might "
            "have sent your authentication request to the wrong tenant. (The emulator issues "
            "tokens for Azure Resource Manager only.)",
        )
    return resource


def check_federated_assertion(identity: Identity, assertion: str, *, now: float) -> None:
    """Accept ``assertion`` (a Kubernetes service account token) for ``identity`` or raise.

    Only the claims are read: the emulator cannot know the cluster's signing key. Real Entra
    also verifies the signature, against the keys it finds through the OIDC discovery
    document of the assertion's issuer (the cluster's service account issuer URL).
    """
    try:
        _, claims = access_tokens.decode_unverified(assertion)
    except access_tokens.TokenFormatError:
        raise _malformed() from None
    issuer, subject = str(claims.get("iss", "")), str(claims.get("sub", ""))
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list):
        audiences = []
    expires, not_before = claims.get("exp"), claims.get("nbf", claims.get("iat", 0))
    if not isinstance(expires, int | float) or not isinstance(not_before, int | float):
        raise _malformed()
    if not not_before - 300 <= now < expires:  # Entra allows five minutes of clock skew
        raise EntraError(
            401,
            "invalid_client",
            700024,
            f"Client assertion is not within its valid time range. Current time: {_moment(now)}, "
            f"assertion valid from {_moment(not_before)}, expiry time of assertion "
            f"{_moment(expires)}.",
        )
    if FEDERATION_AUDIENCE not in audiences:
        shown = ",".join(str(a) for a in audiences)
        raise EntraError(
            401,
            "invalid_client",
            700212,
            "No matching federated identity record found for presented assertion audience "
            f"'{shown}'. {_CHECK_FIC} {WORKLOAD_IDENTITY_DOCS}",
        )
    if identity.federated_issuer is not None and issuer != identity.federated_issuer:
        raise EntraError(
            401,
            "invalid_client",
            700211,
            "No matching federated identity record found for presented assertion issuer "
            f"'{issuer}'. {_CHECK_FIC} {WORKLOAD_IDENTITY_DOCS}",
        )
    if subject not in identity.federated_subjects:
        raise EntraError(
            401,
            "invalid_client",
            70021,
            "No matching federated identity record found for presented assertion. Assertion "
            f"Issuer: '{issuer}'. Assertion Subject: '{subject}'. Assertion Audience: "
            f"'{FEDERATION_AUDIENCE}'. {WORKLOAD_IDENTITY_DOCS}",
        )


# --------------------------------------------------------------------------- discovery


def openid_configuration(base_url: str, tenant: str) -> dict[str, Any]:
    """The v2.0 OpenID Connect metadata of ``tenant`` on this emulator."""
    authority = f"{base_url}/{tenant}"
    issuer_tenant = "{tenantid}" if tenant.lower() in _WILDCARD_TENANTS else tenant
    return {
        "token_endpoint": f"{authority}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{authority}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "grant_types_supported": ["client_credentials"],
        "issuer": f"{base_url}/{issuer_tenant}/v2.0",
        "request_uri_parameter_supported": False,
        "authorization_endpoint": f"{authority}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{authority}/oauth2/v2.0/devicecode",
        "end_session_endpoint": f"{authority}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid", "oid", "appid"],
        "tenant_region_scope": "EU",
        "cloud_instance_name": urlparse(base_url).netloc,
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
    }


def instance_discovery(base_url: str, authorization_endpoint: str | None) -> dict[str, Any]:
    """MSAL's instance discovery answer: this emulator is the instance, whatever was asked."""
    path = urlparse(authorization_endpoint or "").path.strip("/")
    tenant = path.split("/", 1)[0] or "common"
    host = urlparse(base_url).netloc
    return {
        "tenant_discovery_endpoint": f"{base_url}/{tenant}/v2.0/.well-known/openid-configuration",
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
    }


# --------------------------------------------------------------------------- HTTP


class _DroppedError(Exception):
    """An injected ``drop`` fault: close the connection without an answer."""


def _fault_error(fault: Fault) -> EntraError:
    retry_after = fault.retry_after
    if fault.status == 429 and retry_after is None:
        retry_after = 1
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    transient = fault.status == 429 or fault.status >= 500
    return EntraError(
        fault.status,
        fault.code or ("temporarily_unavailable" if transient else "invalid_request"),
        90033,
        fault.message or "A transient error has occurred. Please try again.",
        headers=headers,
    )


class EntraApi:
    """aiohttp handlers for the endpoints above, reading identities from the emulator's store
    (so identities added through the admin API count at once) and time from ``now``."""

    def __init__(self, emulator: Emulator, *, now: Callable[[], float] = time.time) -> None:
        self.emulator = emulator
        self.now = now

    def register(self, app: web.Application) -> None:
        routes: list[tuple[str, str, str, _Handler]] = [
            ("GET", "/common/discovery/instance", "Entra_InstanceDiscovery", self._instance),
            (
                "GET",
                "/{tenant}/v2.0/.well-known/openid-configuration",
                "Entra_OpenIdConfiguration",
                self._openid,
            ),
            ("GET", "/{tenant}/discovery/v2.0/keys", "Entra_Keys", self._keys),
            ("*", "/{tenant}/oauth2/v2.0/token", "Entra_Token", self._token),
        ]
        for method, path, operation, handler in routes:
            app.router.add_route(method, path, self._serve(operation, handler))

    def _serve(self, operation: str, handler: _Handler) -> _Handler:
        async def serve(request: web.Request) -> web.StreamResponse:
            emulator = self.emulator
            trace_id = str(uuid.uuid4())
            correlation_id = request.headers.get(
                "client-request-id", request.headers.get("x-ms-client-request-id", trace_id)
            )
            try:
                response = await self._run(operation, handler, request)
            except _DroppedError:
                emulator.calls.record(operation, request.method, "dropped")
                request.protocol.force_close()
                return web.Response(status=500)
            except EntraError as error:
                moment = datetime.fromtimestamp(self.now(), UTC)
                body = error.to_body(
                    trace_id=trace_id, correlation_id=correlation_id, moment=moment
                )
                response = web.json_response(body, status=error.status, headers=error.headers)
            emulator.calls.record(operation, request.method, response.status)
            response.headers.update(
                {
                    "Cache-Control": "no-store, no-cache",
                    "Pragma": "no-cache",
                    "x-ms-request-id": trace_id,
                    "client-request-id": correlation_id,
                    "x-ms-ests-server": "azure-arm-emulator",
                }
            )
            return response

        return serve

    async def _run(
        self, operation: str, handler: _Handler, request: web.Request
    ) -> web.StreamResponse:
        faults = self.emulator.faults
        before = faults.decide(operation, request.method, "before", wildcard=False)
        if before.latency > 0:
            await asyncio.sleep(before.latency)
        self._raise_fault(before.fault)
        response = await handler(request)
        self._raise_fault(faults.decide(operation, request.method, "after", wildcard=False).fault)
        return response

    @staticmethod
    def _raise_fault(fault: Fault | None) -> None:
        if fault is None:
            return
        if fault.kind == "drop":
            raise _DroppedError()
        raise _fault_error(fault)

    @staticmethod
    def _base_url(request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    async def _instance(self, request: web.Request) -> web.StreamResponse:
        endpoint = request.query.get("authorization_endpoint")
        return web.json_response(instance_discovery(self._base_url(request), endpoint))

    async def _openid(self, request: web.Request) -> web.StreamResponse:
        tenant = request.match_info["tenant"]
        if tenant.lower() not in _WILDCARD_TENANTS and not known_tenant(
            tenant, self.emulator.store.identities
        ):
            raise _tenant_not_found(tenant, error="invalid_tenant")
        return web.json_response(openid_configuration(self._base_url(request), tenant))

    async def _keys(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"keys": []})

    async def _token(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            raise EntraError(
                400,
                "invalid_request",
                900561,
                f"The endpoint only accepts POST, OPTIONS requests. Received a {request.method} "
                "request.",
            )
        form = await request.post()
        fields = {key: str(form[key]) for key in form if isinstance(form[key], str)}
        body = token_response(
            fields,
            tenant=request.match_info["tenant"],
            identities=self.emulator.store.identities,
            issuer_base=self._base_url(request),
            now=self.now(),
            lifetime=self.emulator.settings.token_lifetime_seconds,
        )
        return web.json_response(body)
