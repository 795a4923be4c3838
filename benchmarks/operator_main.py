"""The operator as the benchmarks run it: ``azure-jit-operator run`` (settings from the same
environment, the real DefaultAzureCredential), plus a probe that attributes every ARM call to
the JitAccessRequest or JitPolicy whose handler made it.

The probe wraps two methods and changes nothing else: ``ArmCallObserver.send`` (the per-attempt
pipeline policy that already times ARM calls for the metrics) records ``(start, end,
operation)`` under the object named by a context variable, which the controller's
reconciles set: ``vm/<vm name>`` for a VM's, ``request/<name>`` for a request not on a VM
yet, ``policy/<name>`` for a JitPolicy's. Child tasks (``asyncio.gather``) inherit it. The
records are served as JSON on ``http://127.0.0.1:$BENCH_PROBE_PORT/calls`` (DELETE clears them).

``BENCH_TRACEMALLOC=<frames>`` starts tracemalloc; ``/memory`` then answers the top
allocation sites (grouped by traceback) of a fresh snapshot, as text.

``BENCH_CLOSE_GRACE_SECONDS`` overrides the close grace *without* the >= 2s validation, to
measure what a proposed ``AZURE_JIT_CLOSE_GRACE=0s`` would do. Run as
``python -m benchmarks.operator_main``.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import json
import os
import threading
import time
import tracemalloc
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from azure_jit_operator.azure import pipeline
from azure_jit_operator.config import Settings
from azure_jit_operator.reconcile import controller as request_controller
from azure_jit_operator.run import configure_logging, run_operator

CURRENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("bench_object", default=None)
CALLS: dict[str, list[tuple[float, float, str]]] = {}


def install_probe() -> None:
    send = pipeline.ArmCallObserver.send

    async def timed_send(self: Any, request: Any) -> Any:
        owner = CURRENT.get()
        started = time.time()
        try:
            return await send(self, request)
        finally:
            if owner is not None:
                http = request.http_request
                CALLS.setdefault(owner, []).append(
                    (started, time.time(), pipeline.operation_of(http.method, http.url))
                )

    pipeline.ArmCallObserver.send = timed_send  # type: ignore[method-assign]

    reconcile = request_controller.Controller._reconcile

    async def labelled_reconcile(self: Any, key: tuple[str, str, str]) -> Any:
        kind, _, name = key
        # vm/<vm name>; request/<name> for a request's own reconcile and its close; policy/<name>
        label = {"vm": f"vm/{name.rsplit('/', 1)[-1]}", "close": f"request/{name}"}.get(
            kind, f"{kind}/{name}"
        )
        token = CURRENT.set(label)
        try:
            return await reconcile(self, key)
        finally:
            CURRENT.reset(token)

    request_controller.Controller._reconcile = labelled_reconcile  # type: ignore[method-assign]


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/memory"):
            body, kind = _memory_report().encode(), "text/plain"
        else:
            body = json.dumps({k: list(v) for k, v in list(CALLS.items())}).encode()
            kind = "application/json"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_DELETE(self) -> None:
        CALLS.clear()
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


def _memory_report(top: int = 40) -> str:
    if not tracemalloc.is_tracing():
        return "tracemalloc is off (set BENCH_TRACEMALLOC)\n"
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    total = sum(s.size for s in snapshot.statistics("filename"))
    lines = [f"traced: {total / 2**20:.1f} MiB", "", "by line:"]
    for stat in snapshot.statistics("lineno")[:top]:
        frame = stat.traceback[0]
        lines.append(
            f"{stat.size / 2**20:8.2f} MiB {stat.count:8d}  {frame.filename}:{frame.lineno}"
        )
    lines += ["", "by traceback (5 innermost frames):"]
    for stat in snapshot.statistics("traceback")[:15]:
        lines.append(f"{stat.size / 2**20:8.2f} MiB {stat.count:8d}")
        lines += [f"      {f.filename}:{f.lineno}" for f in list(stat.traceback)[-5:]]
    return "\n".join(lines) + "\n"


def main() -> int:
    frames = int(os.environ.get("BENCH_TRACEMALLOC", "0"))
    if frames:
        tracemalloc.start(frames)
    probe_port = int(os.environ.get("BENCH_PROBE_PORT", "0"))
    if probe_port:
        install_probe()
        server = ThreadingHTTPServer(("127.0.0.1", probe_port), _Handler)
        threading.Thread(target=server.serve_forever, name="bench-probe", daemon=True).start()
    settings = Settings.from_env()
    grace = os.environ.get("BENCH_CLOSE_GRACE_SECONDS")
    if grace is not None:
        settings = dataclasses.replace(settings, close_grace=timedelta(seconds=float(grace)))
    configure_logging(settings)
    asyncio.run(run_operator(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
