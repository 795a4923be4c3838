"""The operator's HTTP endpoint: /metrics for Prometheus, /healthz and /readyz for probes.

One small aiohttp server on AZURE_JIT_METRICS_PORT, on the operator's own event loop.

- ``/healthz`` (liveness) answers while the event loop runs: a blocked loop fails it.
- ``/readyz`` (readiness) answers 200 once kopf's startup handlers have run (the Azure and
  Kubernetes clients exist) and 503 before. A replica paused by kopf peering stays ready: it
  is healthy and serves /metrics, and rollouts must not wait on it.

Every answer closes its connection. A scraper's idle keep-alive connection would otherwise
be a task kopf did not start, and kopf waits 5 seconds for such tasks at every shutdown.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from azure_jit_operator.metrics import REGISTRY


async def start_server(
    *, host: str, port: int, is_ready: Callable[[], bool]
) -> tuple[web.AppRunner, int]:
    """Start serving; returns the runner (for cleanup) and the bound port."""

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        return (
            web.Response(text="ready") if is_ready() else web.Response(status=503, text="starting")
        )

    async def no_keep_alive(_: web.Request, response: web.StreamResponse) -> None:
        response.force_close()

    app = web.Application()
    app.on_response_prepare.append(no_keep_alive)
    app.router.add_get("/metrics", make_aiohttp_handler(REGISTRY))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host=host, port=port)
    await site.start()
    server = site._server  # aiohttp exposes the bound port only here
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, int(bound)
