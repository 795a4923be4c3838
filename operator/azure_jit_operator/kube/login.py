"""Where the Kubernetes API is and how to authenticate to it: for kopf (a ConnectionInfo from
an explicit kubeconfig) and for the operator's own async client (:class:`ClusterAccess`).

A kubeconfig is loaded by the official client into a ``Configuration``, so every form it
understands (certificates, tokens, exec plugins) works; that Configuration is only *read*
(server, CA, client certificate, the Authorization header), never used for an API call.
In a pod the ServiceAccount's projected token and CA are read directly.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import kopf
import kubernetes

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
# Projected ServiceAccount tokens rotate (the kubelet rewrites the file well before expiry);
# the file is read again whenever it changes, and at least this often.
TOKEN_REREAD_SECONDS = 60.0
# How often an exec-plugin / expiring kubeconfig credential is asked whether it needs renewal.
KUBECONFIG_REFRESH_SECONDS = 60.0


class Tokens(Protocol):
    """The value of the Authorization header, kept current."""

    async def authorization(self) -> str | None: ...

    def expire(self) -> None:
        """The API server answered 401: get the credential anew before the next request."""


@dataclass(frozen=True, slots=True)
class ClusterAccess:
    server: str  # https://host:port, possibly with a path prefix
    tokens: Tokens
    ca_path: str | None = None
    insecure: bool = False
    tls_server_name: str | None = None
    cert_path: str | None = None
    key_path: str | None = None

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_path)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.cert_path:
            context.load_cert_chain(self.cert_path, self.key_path or None)
        return context


def connection_from_kubeconfig(path: Path) -> kopf.ConnectionInfo:
    config = _load_kubeconfig(path)
    scheme, _, token = (_authorization(config) or "").partition(" ")
    return kopf.ConnectionInfo(
        server=config.host,
        ca_path=config.ssl_ca_cert,
        insecure=not config.verify_ssl,
        scheme=scheme or None,
        token=token or None,
        certificate_path=config.cert_file,
        private_key_path=config.key_file,
    )


def cluster_access(kubeconfig: Path | None) -> ClusterAccess:
    """The given kubeconfig; else in-cluster (in a pod); else the default kubeconfig
    (``$KUBECONFIG`` or ``~/.kube/config``)."""
    if kubeconfig is None:
        in_cluster = in_cluster_access()
        if in_cluster is not None:
            return in_cluster
    return kubeconfig_access(kubeconfig)


def kubeconfig_access(path: Path | None) -> ClusterAccess:
    config = _load_kubeconfig(path)
    return ClusterAccess(
        server=str(config.host),
        tokens=_KubeconfigTokens(path, config),
        ca_path=config.ssl_ca_cert or None,
        insecure=not config.verify_ssl,
        tls_server_name=getattr(config, "tls_server_name", None) or None,
        cert_path=config.cert_file or None,
        key_path=config.key_file or None,
    )


def in_cluster_access(
    environ: Mapping[str, str] = os.environ, directory: Path = SERVICE_ACCOUNT_DIR
) -> ClusterAccess | None:
    """The pod's ServiceAccount, or None outside a pod (no KUBERNETES_SERVICE_HOST/PORT)."""
    host = environ.get("KUBERNETES_SERVICE_HOST", "")
    port = environ.get("KUBERNETES_SERVICE_PORT", "")
    token, ca = directory / "token", directory / "ca.crt"
    if not host or not port or not token.is_file():
        return None
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6
    return ClusterAccess(server=f"https://{host}:{port}", tokens=TokenFile(token), ca_path=str(ca))


class TokenFile:
    """A bearer token read from a file (the projected ServiceAccount token), read again when
    the file changes (the kubelet swaps it by symlink), every minute, and after a 401."""

    def __init__(self, path: Path, *, reread_seconds: float = TOKEN_REREAD_SECONDS) -> None:
        self._path = path
        self._reread_seconds = reread_seconds
        self._token = ""
        self._seen: tuple[int, int, int] | None = None
        self._read_at = 0.0

    async def authorization(self) -> str | None:
        stat = self._path.stat()  # a local tmpfs file: cheap enough for every request
        seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        now = time.monotonic()
        if seen != self._seen or now - self._read_at >= self._reread_seconds:
            token = self._path.read_text().strip()
            if token:
                self._token, self._seen, self._read_at = token, seen, now
            elif not self._token:  # mid-write: keep the previous token, read again next time
                raise RuntimeError(f"the ServiceAccount token file {self._path} is empty")
        return f"Bearer {self._token}"

    def expire(self) -> None:
        self._seen = None


class _KubeconfigTokens:
    """The kubeconfig's credential. The official client's refresh hook (which renews expiring
    exec-plugin and OIDC tokens) runs in a worker thread every minute, since it may start a
    process; after a 401 the whole kubeconfig is loaded again."""

    def __init__(self, path: Path | None, config: Any) -> None:
        self._path = path
        self._config = config
        self._checked_at = time.monotonic()
        self._expired = False
        self._lock = asyncio.Lock()

    async def authorization(self) -> str | None:
        if self._expired or (
            self._config.refresh_api_key_hook is not None
            and time.monotonic() - self._checked_at >= KUBECONFIG_REFRESH_SECONDS
        ):
            async with self._lock:
                await self._refresh()
        return _stored_authorization(self._config)

    def expire(self) -> None:
        self._expired = True

    async def _refresh(self) -> None:
        if self._expired:
            self._config = await asyncio.to_thread(_load_kubeconfig, self._path)
            self._expired = False
        elif time.monotonic() - self._checked_at >= KUBECONFIG_REFRESH_SECONDS:
            hook = self._config.refresh_api_key_hook
            if hook is not None:
                await asyncio.to_thread(hook, self._config)
        self._checked_at = time.monotonic()


def _load_kubeconfig(path: Path | None) -> Any:
    config = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(
        config_file=str(path) if path is not None else None,
        client_configuration=config,
    )
    return config


def _authorization(config: Any) -> str | None:
    """The Authorization header, after the client's refresh hook (may run an exec plugin)."""
    header = config.get_api_key_with_prefix("authorization") or config.get_api_key_with_prefix(
        "BearerToken"
    )
    return str(header) if header else None


def _stored_authorization(config: Any) -> str | None:
    """The Authorization header as loaded, without running the refresh hook."""
    for key in ("authorization", "BearerToken"):
        value = config.api_key.get(key)
        if value:
            prefix = config.api_key_prefix.get(key)
            return f"{prefix} {value}" if prefix else str(value)
    return None
