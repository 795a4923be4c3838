"""Static bearer-token credentials for talking to the Azure emulator.

Real implementations of azure-core's credential protocols (``TokenCredential`` /
``SupportsTokenInfo`` and their async counterparts) that hand out a fixed token: the SDK's
``BearerTokenCredentialPolicy`` uses them exactly as it uses azure-identity credentials.
The emulator accepts any bearer token; the default world also defines scoped tokens
(``rg-web-reader-token``, ``no-access-token``) to provoke ``403 AuthorizationFailed``.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions

DEFAULT_TOKEN = "emulator-token"
LIFETIME_SECONDS = 3600


class StaticTokenCredential:
    """Synchronous credential returning ``token`` for every scope."""

    def __init__(self, token: str = DEFAULT_TOKEN) -> None:
        self.token = token
        self.requests = 0

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        self.requests += 1
        return AccessToken(self.token, int(time.time()) + LIFETIME_SECONDS)

    def get_token_info(
        self, *scopes: str, options: TokenRequestOptions | None = None
    ) -> AccessTokenInfo:
        self.requests += 1
        return AccessTokenInfo(self.token, int(time.time()) + LIFETIME_SECONDS)

    def close(self) -> None:
        """Nothing to release; present because credentials are closable."""

    def __enter__(self) -> StaticTokenCredential:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncStaticTokenCredential:
    """Asynchronous credential returning ``token`` for every scope."""

    def __init__(self, token: str = DEFAULT_TOKEN) -> None:
        self.token = token
        self.requests = 0

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        self.requests += 1
        return AccessToken(self.token, int(time.time()) + LIFETIME_SECONDS)

    async def get_token_info(
        self, *scopes: str, options: TokenRequestOptions | None = None
    ) -> AccessTokenInfo:
        self.requests += 1
        return AccessTokenInfo(self.token, int(time.time()) + LIFETIME_SECONDS)

    async def close(self) -> None:
        """Nothing to release; present because async credentials are closable."""

    async def __aenter__(self) -> AsyncStaticTokenCredential:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
