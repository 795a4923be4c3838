"""Running the operator: kopf with our registry, settings, memo and HTTP endpoint."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import kopf

from azure_jit_operator.audit import configure_audit_log
from azure_jit_operator.azure.clients import default_credential
from azure_jit_operator.clock import Clock
from azure_jit_operator.config import Settings, SettingsError
from azure_jit_operator.domain.durations import DurationError, parse_kube_duration
from azure_jit_operator.handlers import build_registry
from azure_jit_operator.serving import start_server

log = logging.getLogger("azure_jit_operator")


def configure_logging(settings: Settings) -> None:
    kopf.configure(
        log_format=kopf.LogFormat.JSON if settings.log_format == "json" else kopf.LogFormat.FULL,
        log_refkey="k8s",
        verbose=settings.log_level == "DEBUG",
    )
    logging.getLogger().setLevel(settings.log_level)
    # Audit records: bare JSON lines on their own logger, whatever the format above.
    configure_audit_log()
    # azure-core logs every request (headers included, Authorization redacted) at INFO;
    # request outcomes are counted in metrics instead.
    logging.getLogger("azure").setLevel(logging.WARNING)
    # kopf reports every handler call per object at INFO: with a handler on every watch event
    # that is a log line per event (tens of thousands after a start at scale). The controller
    # logs each transition itself; kopf's warnings and errors still show.
    if settings.log_level != "DEBUG":
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)


async def run_operator(
    settings: Settings,
    *,
    clock: Clock | None = None,
    credential_factory: Callable[[Settings], Any] = default_credential,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
    on_metrics_port: Callable[[int], None] | None = None,
) -> None:
    identity = peer_identity()
    priority = peering_priority(settings)
    registry = build_registry(
        settings,
        clock=clock or Clock(),
        credential_factory=credential_factory,
        identity=identity,
        priority=priority,
    )
    started = asyncio.Event()
    runner, port = await start_server(
        host=settings.bind_address, port=settings.metrics_port, is_ready=started.is_set
    )
    if on_metrics_port is not None:
        on_metrics_port(port)
    log.info("serving /metrics, /healthz and /readyz on %s:%d", settings.bind_address, port)
    operator_ready = asyncio.Event()

    async def mark_ready() -> None:
        await operator_ready.wait()
        started.set()
        if isinstance(ready_flag, asyncio.Event | threading.Event):
            ready_flag.set()

    marker = asyncio.create_task(mark_ready())
    try:
        await kopf.operator(
            registry=registry,
            memo=kopf.Memo(),
            standalone=settings.standalone,
            peering_name=settings.peering_name,
            priority=priority,
            # Ours, so the controller can tell its own peering record from its peers'.
            identity=kopf_identity(identity),
            clusterwide=settings.clusterwide,
            namespaces=list(settings.namespaces),
            stop_flag=stop_flag,
            ready_flag=operator_ready,
        )
    finally:
        marker.cancel()
        await runner.cleanup()


def peer_identity() -> str:
    """This replica's peering id: the pod's name when the Deployment sets POD_ID (as kopf
    does), else host, time and a random part."""
    pod = os.environ.get("POD_ID")
    if pod:
        return pod
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    return f"azure-jit-operator@{socket.gethostname()}/{stamp}/{secrets.token_hex(3)}"


def kopf_identity(identity: str) -> Any:
    return identity  # kopf's Identity is a NewType of str


def peering_priority(settings: Settings) -> int:
    """Distinct per replica, so exactly one of them is active (the highest) and the others
    stand by until its peering record expires."""
    if settings.peering_priority is not None:
        return settings.peering_priority
    return 1 + secrets.randbelow(1_000_000)


def add_run_arguments(parser: Any) -> None:
    """CLI flags override the AZURE_JIT_* environment variables of the same meaning."""
    parser.add_argument("--kubeconfig", type=Path, help="kubeconfig file (default: in-cluster)")
    parser.add_argument(
        "--namespace",
        action="append",
        dest="namespaces",
        help="watch only this namespace (repeatable; default: all namespaces)",
    )
    parser.add_argument("--arm-endpoint", help="Azure Resource Manager URL (or the emulator's)")
    parser.add_argument("--ca-bundle", type=Path, help="PEM CA bundle for the ARM endpoint")
    parser.add_argument("--metrics-port", type=int, help="port of /metrics, /healthz, /readyz")
    parser.add_argument("--close-grace", help="how long past expiresAt a port may stay open")
    parser.add_argument("--drift-interval", help="how often Azure policies are re-checked")
    parser.add_argument("--standalone", action="store_true", default=None, help="no peering")
    parser.add_argument("--log-format", choices=["json", "plain"])


def run_command(args: Any) -> int:
    try:
        settings = Settings.from_env().with_overrides(
            kubeconfig=args.kubeconfig,
            namespaces=tuple(args.namespaces) if args.namespaces else None,
            arm_endpoint=args.arm_endpoint,
            ca_bundle=args.ca_bundle,
            metrics_port=args.metrics_port,
            close_grace=_duration(args.close_grace),
            drift_interval=_duration(args.drift_interval),
            standalone=args.standalone,
            log_format=args.log_format,
        )
    except (SettingsError, DurationError) as exc:
        print(f"azure-jit-operator run: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)
    asyncio.run(run_operator(settings))
    return 0


def _duration(text: str | None) -> timedelta | None:
    return parse_kube_duration(text) if text else None
