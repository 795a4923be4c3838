"""Access tokens: minted by the emulator's Entra token endpoint, checked by its ARM front door.

Tokens are JWTs (``base64url(header).base64url(payload).base64url(signature)``) carrying the
claims of an Entra v1 app-only token for ARM (``aud``, ``iss``, ``iat``, ``nbf``, ``exp``,
``appid``, ``appidacr``, ``idtyp``, ``oid``, ``sub``, ``tid``, ``uti``, ``ver``), so tools
that peek at a token see what they expect. They are signed HS256 with :data:`SIGNING_KEY`,
one key every emulator shares: a token stays valid across emulator restarts (an operator's
cached token keeps working when a test restarts the emulator), and tests can mint tokens
of their own. Nothing here is secret; it is an emulator.

Time: ``iat``/``nbf``/``exp`` are on the real wall clock (``time.time()``), never on the
emulator clock. azure-identity decides when to refresh a token by the wall clock; a test
that jumps the emulator clock by hours (to reach a JIT ``endTimeUtc``) would otherwise make
ARM refuse every token the client still holds as fresh. The emulator clock drives JIT only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from azure_arm_emulator import errors
from azure_arm_emulator.identities import Identity

SIGNING_KEY = b"azure-jit-operator emulator access token signing key (not a secret)"
KEY_ID = "azure-jit-emulator-hs256"
ALGORITHM = "HS256"
ARM_RESOURCES = ("https://management.azure.com", "https://management.core.windows.net")
AUTH_SECRET = "1"  # noqa: S105 - appidacr value of a client secret login, not a secret
AUTH_ASSERTION = "2"  # appidacr: certificate or client assertion (federated credential)

Claims = dict[str, Any]


class TokenFormatError(ValueError):
    """Not a JWT: wrong number of segments, bad base64url or a payload that is not JSON."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64url_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenFormatError(f"not base64url: {exc}") from None


def encode_jwt(header: dict[str, Any], payload: dict[str, Any], *, key: bytes | None) -> str:
    """A compact JWT; HMAC-SHA256 signed with ``key`` (``None``: a placeholder signature)."""
    signing_input = ".".join(
        b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, payload)
    )
    signature = (
        hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
        if key is not None
        else b"unsigned"
    )
    return f"{signing_input}.{b64url(signature)}"


def decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and payload of a JWT, without looking at its signature."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise TokenFormatError("a JWT has three dot-separated segments")
    try:
        header = json.loads(b64url_decode(parts[0]))
        payload = json.loads(b64url_decode(parts[1]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise TokenFormatError(f"segment is not JSON: {exc}") from None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise TokenFormatError("header and payload must be JSON objects")
    return header, payload


def is_arm_resource(resource: str) -> bool:
    return resource.rstrip("/").lower() in ARM_RESOURCES


def mint(
    identity: Identity,
    *,
    resource: str,
    issuer_base: str,
    now: float,
    lifetime: int,
    auth_method: str,
) -> str:
    """An access token for ``identity`` to call ``resource`` (e.g. ``https://management.azure.com``)."""
    issued = int(now)
    payload: Claims = {
        "aud": resource,
        "iss": f"{issuer_base.rstrip('/')}/{identity.tenant_id}/",
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime,
        "aio": "emulator",
        "app_displayname": identity.display_name,
        "appid": identity.client_id,
        "appidacr": auth_method,
        "idp": f"{issuer_base.rstrip('/')}/{identity.tenant_id}/",
        "idtyp": "app",
        "oid": identity.object_id,
        "rh": "emulator",
        "sub": identity.object_id,
        "tid": identity.tenant_id,
        "uti": b64url(uuid.uuid4().bytes),
        "ver": "1.0",
    }
    header = {"typ": "JWT", "alg": ALGORITHM, "kid": KEY_ID}
    return encode_jwt(header, payload, key=SIGNING_KEY)


def verify(token: str, *, now: float) -> Claims | None:
    """The claims of an emulator-issued token, ``None`` for any other bearer string.

    A token whose header names the emulator's key is always checked, whatever the
    ``accept_any_token`` setting: a bad signature, a wrong audience or expiry (wall clock)
    is ARM's 401, as for a real token.
    """
    try:
        header, payload = decode_unverified(token)
    except TokenFormatError:
        return None
    if header.get("kid") != KEY_ID:
        return None
    signing_input, _, signature = token.rpartition(".")
    expected = hmac.new(SIGNING_KEY, signing_input.encode("ascii"), hashlib.sha256).digest()
    try:
        valid = hmac.compare_digest(b64url_decode(signature), expected)
    except TokenFormatError:
        valid = False
    if header.get("alg") != ALGORITHM or not valid:
        raise errors.invalid_token_signature()
    audience = payload.get("aud")
    if not isinstance(audience, str) or not is_arm_resource(audience):
        raise errors.invalid_token_audience(str(audience))
    expires = payload.get("exp")
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        raise errors.invalid_token()
    if expires <= now:
        raise errors.expired_token(
            expired=datetime.fromtimestamp(expires, UTC), now=datetime.fromtimestamp(now, UTC)
        )
    for claim in ("tid", "oid", "appid"):
        if not isinstance(payload.get(claim), str):
            raise errors.invalid_token()
    return payload
