"""Raw HTTPS calls to the emulator, for what an SDK would never send (bad bodies, no auth)."""

from __future__ import annotations

import io
import json
import ssl
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.support.emulator import EmulatorEndpoint

UNSET: Any = object()


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


async def arm_call(
    endpoint: EmulatorEndpoint,
    method: str,
    path: str,
    *,
    api_version: str | None = "2020-01-01",
    token: str | None = "emulator-token",
    authorization: str | None = None,
    body: Any = UNSET,
    raw_body: bytes | None = None,
) -> RawResponse:
    headers: dict[str, str] = {}
    if authorization is not None:
        headers["Authorization"] = authorization
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    params = {"api-version": api_version} if api_version is not None else {}
    data: bytes | None = raw_body
    if body is not UNSET:
        data = json.dumps(body).encode()
    if data is not None:
        headers["Content-Type"] = "application/json"
    context = ssl.create_default_context(cafile=str(endpoint.ca_path))
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            f"{endpoint.base_url}{path}",
            params=params,
            data=io.BytesIO(data) if data is not None else None,
            headers=headers,
            ssl=context,
        ) as response,
    ):
        return RawResponse(response.status, dict(response.headers), await response.text())
