"""The operator's HTTP endpoint: /metrics for Prometheus, /healthz and /readyz for probes.

One small aiohttp server on AZURE_JIT_METRICS_PORT. Liveness answers while the event loop
runs; readiness once kopf has started and the Azure and Kubernetes clients exist.
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

    app = web.Application()
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
