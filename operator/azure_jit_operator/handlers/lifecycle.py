"""Operator start and stop: kopf settings set explicitly, clients created once and closed."""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kopf

from azure_jit_operator.azure.clients import default_credential
from azure_jit_operator.clock import Clock
from azure_jit_operator.config import Settings
from azure_jit_operator.kube.api import Authorizer, KubeApi
from azure_jit_operator.kube.events import ObjectIdentity, post_event
from azure_jit_operator.kube.login import connection_from_kubeconfig
from azure_jit_operator.reconcile.controller import Controller
from azure_jit_operator.reconcile.identities import Identities
from azure_jit_operator.reconcile.open_ports import OpenPorts
from azure_jit_operator.reconcile.runtime import Runtime
from azure_jit_operator.tls import LOOPBACK_HOSTS, ensure_tls_files

GROUP = "azurejit.dev"
FINALIZER = f"{GROUP}/finalizer"  # kopf's deletion guard on every object it handles


def register(
    registry: kopf.OperatorRegistry,
    config: Settings,
    *,
    clock: Clock,
    credential_factory: Callable[[Settings], Any] = default_credential,
    identity: str,
    priority: int,
) -> None:
    @kopf.on.startup(registry=registry, id="configure")
    async def configure(*, settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        settings.persistence.finalizer = FINALIZER
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=GROUP, key="last-handled-configuration"
        )
        # Without explicit timeouts a silently dropped watch leaves the operator deaf.
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        settings.watching.connect_timeout = 30
        settings.posting.level = logging.WARNING
        settings.peering.name = config.peering_name
        settings.peering.mandatory = not config.standalone
        settings.peering.clusterwide = config.clusterwide
        # Watching named namespaces needs no cluster-wide scan of namespaces and CRDs (and
        # so no cluster-wide RBAC for it).
        settings.scanning.disabled = not config.clusterwide
        settings.queueing.error_delays = [1, 2, 5, 10, 30, 60]
        memo.open_ports = OpenPorts()
        kube = KubeApi.connect(config.kubeconfig)
        authorizer = Authorizer(kube)
        memo.runtime = Runtime(
            settings=config,
            clock=clock,
            identities=Identities(config, kube, global_credential=credential_factory),
            kube=kube,
            post_event=_post,
            authorizer=authorizer,
            username=await authorizer.whoami(),
        )
        memo.controller = Controller(memo.runtime, memo.open_ports)
        if config.standalone:
            # Ready only once the cache is filled and the overdue closes are queued first.
            await memo.controller.start()
        else:
            memo.peering_follower = asyncio.create_task(
                memo.controller.follow_peering(identity, priority)
            )
        if config.webhooks != "off":
            settings.admission.server = webhook_server(config, memo)
            if config.webhooks == "managed":
                # kopf creates and updates the webhook configurations, caBundle included.
                settings.admission.managed = GROUP

    @kopf.on.cleanup(registry=registry, id="close")
    async def close(*, memo: kopf.Memo, **_: Any) -> None:
        follower: asyncio.Task[None] | None = getattr(memo, "peering_follower", None)
        if follower is not None:
            follower.cancel()
        controller: Controller | None = getattr(memo, "controller", None)
        if controller is not None:
            await controller.stop()
        runtime: Runtime | None = getattr(memo, "runtime", None)
        if runtime is not None:
            await runtime.close()
        tls_dir: str | None = getattr(memo, "webhook_tls_dir", None)
        if tls_dir is not None:
            shutil.rmtree(tls_dir, ignore_errors=True)

    @kopf.on.login(registry=registry, id="login")
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # An explicit kubeconfig (tests, local runs); else in-cluster or the default one.
        if config.kubeconfig is not None:
            return connection_from_kubeconfig(config.kubeconfig)
        return kopf.login_via_client(**kwargs)


def webhook_server(config: Settings, memo: kopf.Memo) -> kopf.WebhookServer:
    """kopf's webhook server with our certificate: cert-manager's files (external), or a CA
    and certificate made here (managed: kopf's own generator needs oscrypto, which fails on
    current OpenSSL)."""
    if config.webhook_cert_dir is not None:
        cert_dir = config.webhook_cert_dir
        certfile, keyfile, cafile = (cert_dir / n for n in ("tls.crt", "tls.key", "ca.crt"))
    else:
        memo.webhook_tls_dir = tempfile.mkdtemp(prefix="azure-jit-webhook-")
        files = ensure_tls_files(
            Path(memo.webhook_tls_dir),
            hosts=(config.webhook_host, *LOOPBACK_HOSTS),
            name="azure-jit-operator webhooks",
        )
        certfile, keyfile, cafile = files.server, files.server_key, files.ca
    return kopf.WebhookServer(
        addr=config.bind_address,
        port=config.webhook_port,
        host=config.webhook_host,
        certfile=str(certfile),
        pkeyfile=str(keyfile),
        cafile=str(cafile),
    )


def _post(obj: ObjectIdentity, type_: str, reason: str, message: str) -> None:
    post_event(obj, type_=type_, reason=reason, message=message)
