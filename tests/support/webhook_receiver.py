"""A chat webhook for tests: a real aiohttp server on 127.0.0.1, in a thread with its own event
loop, that records every JSON POST and answers the first ``fail_first`` of them with 500 (or,
with ``hang``, never answers until it is stopped)."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web


class WebhookReceiver:
    def __init__(self, *, fail_first: int = 0, hang: bool = False) -> None:
        self.fail_first = fail_first
        self.hang = hang
        self._released: asyncio.Event | None = None
        # A Slack-like secret path: whoever knows the URL may post, so it must never leak.
        self.token = f"T0000/B0000/{secrets.token_hex(12)}"
        self.port = 0
        self._lock = threading.Lock()
        self._attempts: list[dict[str, Any]] = []
        self._accepted: list[dict[str, Any]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="webhook-receiver")
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/services/{self.token}"

    @property
    def attempts(self) -> int:
        with self._lock:
            return len(self._attempts)

    @property
    def accepted(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._accepted)

    async def _handle(self, request: web.Request) -> web.Response:
        if request.path != f"/services/{self.token}":
            return web.Response(status=404)
        body = await request.json()
        with self._lock:
            self._attempts.append(body)
        if self.hang and self._released is not None:
            await self._released.wait()
            return web.Response(status=503)
        with self._lock:
            failing = len(self._attempts) <= self.fail_first
            if not failing:
                self._accepted.append(body)
        return web.Response(status=500 if failing else 200, text="error" if failing else "ok")

    async def _start(self) -> None:
        self._released = asyncio.Event()
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]

    async def _stop(self) -> None:
        if self._released is not None:
            self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@contextmanager
def webhook_receiver(*, fail_first: int = 0, hang: bool = False) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(fail_first=fail_first, hang=hang)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
