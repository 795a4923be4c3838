"""The HTTPS server: ARM requests in, ARM responses out, plus the background ticker.

Every ARM call passes, in order: bearer authentication (401), routing (400/404/405),
api-version (400), scope check (403), injected faults and latency, then the handler; the
call is counted under its operation id. Whatever goes wrong, the client gets an ARM error
body, never a stack trace. The ticker wakes when the clock moves, when state changes, or
when the next ``endTimeUtc``/LRO deadline comes, and revokes/finishes what is due.
Admin routes (``/_emulator/...``) are served by :mod:`.admin` on the same port, the Entra ID
token endpoint and discovery documents (``/{tenant}/oauth2/v2.0/token``, ...) by :mod:`.entra`,
the unauthenticated cloud metadata (``/metadata/endpoints``) by :mod:`.resources`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from aiohttp import web

from azure_arm_emulator import errors
from azure_arm_emulator.admin import ADMIN_PREFIX, AdminApi
from azure_arm_emulator.arm import (
    ArmRequest,
    ArmResponse,
    Route,
    authenticate,
    authorize,
    check_api_version,
)
from azure_arm_emulator.certs import TlsFiles, ensure_tls_files
from azure_arm_emulator.core import Emulator
from azure_arm_emulator.entra import EntraApi
from azure_arm_emulator.resources import serve_metadata

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
_MAX_TICK = 1.0  # seconds between ticks when nothing is due (safety net)


class _DroppedError(Exception):
    """The connection was closed on purpose (injected fault)."""


def _json_response(response: ArmResponse, request: web.Request) -> web.Response:
    headers = {
        "Cache-Control": "no-cache",
        "Pragma": "no-cache",
        "Expires": "-1",
        "x-ms-request-id": str(uuid.uuid4()),
        "x-ms-correlation-request-id": request.headers.get(
            "x-ms-correlation-request-id", str(uuid.uuid4())
        ),
    }
    client_request_id = request.headers.get("x-ms-client-request-id")
    if client_request_id:
        headers["x-ms-client-request-id"] = client_request_id
    if request.method == "GET":
        headers["x-ms-ratelimit-remaining-subscription-reads"] = "11999"
    else:
        headers["x-ms-ratelimit-remaining-subscription-writes"] = "1199"
    headers.update(response.headers)
    if response.body is None:
        return web.Response(status=response.status, headers=headers)
    return web.Response(
        status=response.status,
        body=json.dumps(response.body).encode(),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


@dataclass
class _Call:
    """Per-request bookkeeping: the route once known (for counting)."""

    route: Route | None = None


class ArmFrontDoor:
    """The aiohttp handler for every non-admin path."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    async def handle(self, request: web.Request) -> web.StreamResponse:
        call = _Call()
        try:
            response = await self._dispatch(request, call)
        except _DroppedError:
            if call.route is not None:
                self.emulator.calls.record(call.route.operation_id, request.method, "dropped")
            request.protocol.force_close()
            return web.Response(status=500)
        except errors.ArmError as error:
            response = ArmResponse(error.status, error.to_body(), dict(error.headers))
        except web.HTTPException as exc:  # e.g. 413 from reading an oversized body
            refused = errors.ArmError(exc.status, exc.reason.replace(" ", ""), exc.reason)
            response = ArmResponse(refused.status, refused.to_body())
        except Exception:
            log.exception("emulator: unexpected error handling %s %s", request.method, request.path)
            failure = errors.internal_server_error()
            response = ArmResponse(failure.status, failure.to_body())
        if call.route is not None:
            self.emulator.calls.record(call.route.operation_id, request.method, response.status)
        return _json_response(response, request)

    async def _dispatch(self, request: web.Request, call: _Call) -> ArmResponse:
        emulator = self.emulator
        path = request.path
        routing_error: errors.ArmError | None = None
        try:
            route, params = emulator.router.resolve(
                request.method, path, api_version=request.query.get("api-version", "")
            )
            call.route = route
        except errors.ArmError as error:
            routing_error = error
        principal = authenticate(
            request.headers.get("Authorization"),
            tokens=emulator.store.tokens,
            accept_any=emulator.settings.accept_any_token,
            identities=emulator.store.identities,
        )
        if routing_error is not None:
            raise routing_error
        query = {key: request.query[key] for key in request.query}
        api_version = check_api_version(route, query, location=emulator.location_hint(params))
        authorize(principal, route, path)
        method = request.method
        subscription = params.get("subscriptionId", "")
        decision = emulator.faults.decide(
            route.operation_id, method, "before", subscription=subscription
        )
        delay = decision.latency + emulator.settings.arm_latency_seconds
        if delay > 0:
            await asyncio.sleep(delay)
        if decision.fault is not None:
            if decision.fault.kind == "drop":
                raise _DroppedError()
            raise decision.fault.error(params.get("subscriptionId", ""))
        body = await request.read()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        arm_request = ArmRequest(
            method=method,
            path=path,
            params=params,
            query=query,
            api_version=api_version,
            body=body,
            base_url=f"{request.scheme}://{request.host}",
            principal=principal,
            remote=str(peer[0]) if peer else None,
        )
        response = route.handler(arm_request)
        emulator.wake()
        after = emulator.faults.decide(
            route.operation_id, method, "after", subscription=subscription
        )
        if after.fault is not None:
            if after.fault.kind == "drop":
                raise _DroppedError()
            raise after.fault.error(params.get("subscriptionId", ""))
        return response


class EmulatorServer:
    """Serve an :class:`Emulator` over HTTPS on 127.0.0.1 (``port=0``: pick a free one)."""

    def __init__(
        self,
        emulator: Emulator,
        *,
        cert_dir: Path,
        port: int = 0,
        admin_token: str | None = None,
    ) -> None:
        self.emulator = emulator
        self.cert_dir = cert_dir
        self.requested_port = port
        self.admin_token = admin_token
        self.tls: TlsFiles | None = None
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._wake_event: asyncio.Event | None = None

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the emulator server is not started")
        return f"https://{HOST}:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"{self.base_url}{ADMIN_PREFIX}"

    @property
    def ca_path(self) -> Path:
        if self.tls is None:
            raise RuntimeError("the emulator server is not started")
        return self.tls.ca

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        AdminApi(self.emulator, token=self.admin_token).register(app)
        EntraApi(self.emulator).register(app)
        app.router.add_get("/metadata/endpoints", serve_metadata)
        app.router.add_route("*", "/{tail:.*}", ArmFrontDoor(self.emulator).handle)
        return app

    async def start(self) -> None:
        self.tls = await asyncio.to_thread(ensure_tls_files, self.cert_dir)
        self._wake_event = asyncio.Event()
        self.emulator.set_waker(self._wake_event.set)
        self._runner = web.AppRunner(self.build_app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, HOST, self.requested_port, ssl_context=self.tls.server_context()
        )
        await site.start()
        addresses = self._runner.addresses
        if not addresses:  # pragma: no cover - aiohttp binds or raises
            raise RuntimeError("the emulator did not bind a socket")
        self.port = int(addresses[0][1])
        self._ticker = asyncio.create_task(self._tick_forever(), name="emulator-ticker")

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.emulator.set_waker(lambda: None)

    async def __aenter__(self) -> EmulatorServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _seconds_until_due(self) -> float:
        emulator = self.emulator
        waits = [_MAX_TICK]
        expiry = emulator.effects.next_expiry()
        if expiry is not None:
            waits.append((expiry - emulator.clock.now()).total_seconds())
        deadline = emulator.operations.next_deadline()
        if deadline is not None:
            waits.append(deadline - time.monotonic())
        return max(0.0, min(waits))

    async def _tick_forever(self) -> None:
        assert self._wake_event is not None
        while True:
            try:
                self.emulator.tick()
            except Exception:  # the ticker must survive anything a handler left behind
                log.exception("emulator: background tick failed")
            self._wake_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_event.wait(), timeout=self._seconds_until_due())
