"""The adapter that POSTs a JSON message to an approvers' chat webhook (Slack incoming
webhook, Teams connector, or anything that takes a JSON POST), with a timeout.

The URL is a credential: errors say what went wrong (status, timeout, refused connection)
and never carry the URL or the server's answer, which may echo it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp

from azure_jit_operator import __version__

TIMEOUT_SECONDS = 10.0


class WebhookError(Exception):
    """The post failed; ``retryable`` when another try may succeed (5xx, 429, timeouts,
    connection failures); ``outcome`` is a short label (never the URL)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class WebhookPoster:
    def __init__(self, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._http: aiohttp.ClientSession | None = None

    async def post(self, url: str, body: Mapping[str, Any]) -> None:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                timeout=self._timeout,
                headers={"User-Agent": f"azure-jit-operator/{__version__}"},
            )
        try:
            async with self._http.post(url, json=dict(body), allow_redirects=False) as response:
                status = response.status
                await response.read()
        except TimeoutError:
            raise WebhookError("the webhook did not answer in time", retryable=True) from None
        except aiohttp.ClientConnectionError as exc:
            kind = type(exc).__name__  # not str(exc): it names the host and port
            raise WebhookError(f"cannot reach the webhook ({kind})", retryable=True) from None
        except (aiohttp.ClientError, ValueError) as exc:
            kind = type(exc).__name__
            raise WebhookError(f"the webhook call failed ({kind})", retryable=False) from None
        if 200 <= status < 300:
            return
        retryable = status >= 500 or status in (408, 429)
        raise WebhookError(f"the webhook answered HTTP {status}", retryable=retryable)

    async def close(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.close()
            await asyncio.sleep(0)  # let aiohttp close its connections
