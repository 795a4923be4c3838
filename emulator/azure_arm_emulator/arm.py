"""The ARM front door: routes, api-versions, bearer authentication, scope checks, paging.

A :class:`Route` names the ARM operation (``operationId`` of the spec), the api-versions it
serves, the RBAC action it needs and the handler. The :class:`Router` matches paths the way
ARM does (literal segments case-insensitively) and, when nothing matches, produces the
error ARM would: unknown namespace, unknown resource type, or method not allowed. Handlers
get an :class:`ArmRequest` and return an :class:`ArmResponse`; they are synchronous and
run on the event loop, so a handler's changes to the store are atomic.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from azure_arm_emulator import access_tokens, errors
from azure_arm_emulator.identities import Identity
from azure_arm_emulator.store import Principal

SECURITY_API_VERSIONS = ("2020-01-01", "2015-06-01-preview")
# Versions whose NSG/NIC/VNet shapes are the ones served: the SDK's (2026-03-01), the
# vendored specs' (2024-07-01, 2025-07-01) and what azure-cli 2.91's network commands send
# (2022-01-01 NSGs, 2023-11-01 NICs, 2025-09-01 some VNet calls), plus the stable releases
# between them that the public spec index shows.
NETWORK_API_VERSIONS = (
    "2022-01-01",
    "2023-11-01",
    "2024-07-01",
    "2025-01-01",
    "2025-05-01",
    "2025-07-01",
    "2025-09-01",
    "2026-03-01",
)
# azure-mgmt-compute 39 (2026-04-01), the vendored examples (2025-11-01), azure-cli 2.91's
# VM commands (2024-11-01).
COMPUTE_API_VERSIONS = ("2024-11-01", "2025-11-01", "2026-04-01")

_API_VERSION_SHAPE = re.compile(r"^\d{4}-\d{2}-\d{2}(-[A-Za-z]+)?$")
_ANYONE = Principal(
    name="emulator-user@contoso.example",
    object_id="11111111-1111-1111-1111-111111111111",
    scopes=None,
)


@dataclass
class ArmRequest:
    method: str
    path: str
    params: dict[str, str]
    query: Mapping[str, str]
    api_version: str
    body: bytes
    base_url: str
    principal: Principal
    remote: str | None = None

    def json(self) -> Any:
        """The request body as JSON; ARM's InvalidRequestContent when it is not."""
        if not self.body.strip():
            raise errors.invalid_request_content("The request body is empty.")
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise errors.invalid_request_content(str(exc)) from None

    def json_object(self) -> dict[str, Any]:
        value = self.json()
        if not isinstance(value, dict):
            raise errors.invalid_request_content("The request body must be a JSON object.")
        return value

    def url_for(self, path: str, **query: str) -> str:
        return f"{self.base_url}{quote(path)}?{urlencode(query)}"


@dataclass
class ArmResponse:
    status: int
    body: Any | None = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[ArmRequest], ArmResponse]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    operation_id: str
    api_versions: tuple[str, ...]
    action: str
    handler: Handler
    scoped: bool = True  # False: any authenticated caller (operation status monitors)

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(s for s in self.template.split("/") if s)

    @property
    def namespace(self) -> str:
        parts = self.segments
        return parts[parts.index("providers") + 1] if "providers" in parts else ""

    @property
    def resource_type(self) -> str:
        literals = [s for s in self.segments if not s.startswith("{")]
        return literals[-1]

    def match(self, segments: list[str]) -> dict[str, str] | None:
        template = self.segments
        if len(template) != len(segments):
            return None
        params: dict[str, str] = {}
        for expected, actual in zip(template, segments, strict=True):
            if expected.startswith("{"):
                params[expected[1:-1]] = actual
            elif expected.lower() != actual.lower():
                return None
        return params


class Router:
    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes

    def resolve(
        self, method: str, path: str, *, api_version: str = ""
    ) -> tuple[Route, dict[str, str]]:
        segments = [s for s in path.split("/") if s]
        allowed = False
        for route in self.routes:
            params = route.match(segments)
            if params is None:
                continue
            if route.method == method.upper():
                return route, params
            allowed = True
        if allowed:
            raise errors.method_not_allowed(method.upper())
        raise self._unknown(segments, path, api_version)

    def _unknown(self, segments: list[str], path: str, api_version: str) -> errors.ArmError:
        lowered = [s.lower() for s in segments]
        if "providers" in lowered and lowered.index("providers") + 1 < len(lowered):
            at = lowered.index("providers")
            namespace = segments[at + 1]
            known = {r.namespace.lower() for r in self.routes}
            if namespace.lower() not in known:
                return errors.invalid_resource_namespace(namespace)
            resource_type = "/".join(segments[at + 2 :: 2]) or namespace
            return errors.invalid_resource_type(resource_type, namespace, api_version)
        return errors.invalid_request_uri(path)


def check_api_version(route: Route, query: Mapping[str, str], *, location: str) -> str:
    version = query.get("api-version")
    if version is None or version == "":
        raise errors.missing_api_version()
    if version in route.api_versions:
        return version
    if not _API_VERSION_SHAPE.match(version):
        raise errors.invalid_api_version(version, route.api_versions)
    raise errors.no_registered_provider(
        api_version=version,
        resource_type=route.resource_type,
        location=location,
        supported=route.api_versions,
    )


def authenticate(
    header: str | None,
    *,
    tokens: Mapping[str, Principal],
    accept_any: bool,
    identities: Mapping[str, Identity] | None = None,
    now: float | None = None,
) -> Principal:
    """The principal behind ``Authorization: Bearer <token>``; ARM's 401s otherwise.

    In order: a token the emulator's Entra endpoint issued (always verified: signature,
    audience, expiry on the wall clock ``now``) stands for its identity; a token of the
    world's ``tokens:`` for its principal; any other bearer for everyone (full access)
    when ``accept_any``, else 401.
    """
    if header is None:
        raise errors.authentication_missing()
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise errors.authentication_malformed()
    claims = access_tokens.verify(token, now=time.time() if now is None else now)
    if claims is not None:
        return identity_principal(claims, identities or {})
    known = tokens.get(token)
    if known is not None:
        return known
    if accept_any:
        return _ANYONE
    raise errors.invalid_token()


def identity_principal(
    claims: access_tokens.Claims, identities: Mapping[str, Identity]
) -> Principal:
    """The principal of a verified access token, with its identity's scopes *now* (role
    assignments are looked up per call, as ARM does). An identity removed since the token
    was issued still authenticates, but holds no role assignment: 403 everywhere."""
    client_id, object_id = str(claims["appid"]), str(claims["oid"])
    identity = identities.get(client_id.lower())
    if (
        identity is None
        or identity.tenant_id.lower() != str(claims["tid"]).lower()
        or identity.object_id.lower() != object_id.lower()
    ):
        name = str(claims.get("app_displayname", client_id))
        return Principal(name=name, object_id=object_id, scopes=(), client_id=client_id)
    return Principal(
        name=identity.display_name,
        object_id=identity.object_id,
        scopes=identity.scopes,
        client_id=identity.client_id,
    )


def authorize(principal: Principal, route: Route, path: str) -> None:
    """403 AuthorizationFailed unless the request path lies inside one of the scopes."""
    if principal.scopes is None or not route.scoped:
        return
    scope = path.rstrip("/").lower()
    for allowed in principal.scopes:
        prefix = allowed.rstrip("/").lower()
        if scope == prefix or scope.startswith(prefix + "/"):
            return
    raise errors.authorization_failed(
        object_id=principal.object_id,
        client_id=principal.client_id,
        action=route.action,
        scope=path.rstrip("/"),
    )


# --------------------------------------------------------------------------- paging


def page(items: list[dict[str, Any]], request: ArmRequest, *, page_size: int) -> dict[str, Any]:
    """One page of ``items`` and, when more follow, a ``nextLink`` with a ``$skiptoken``."""
    start = _decode_skiptoken(request.query.get("$skiptoken"))
    end = start + page_size
    body: dict[str, Any] = {"value": items[start:end]}
    if end < len(items):
        body["nextLink"] = request.url_for(
            request.path, **{"api-version": request.api_version, "$skiptoken": _skiptoken(end)}
        )
    return body


def _skiptoken(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _decode_skiptoken(token: str | None) -> int:
    if not token:
        return 0
    try:
        padded = token + "=" * (-len(token) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
        prefix, _, number = text.partition(":")
        if prefix != "offset" or not number.isdigit():
            raise ValueError(text)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise errors.ArmError(
            400, "InvalidSkipToken", f"The skip token '{token}' is invalid."
        ) from None
