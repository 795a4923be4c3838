"""Starting etcd + kube-apiserver, installing CRDs, and kubeconfigs for the admin and for
ServiceAccounts (TokenRequest)."""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from azure_jit_devtools.localcluster.pki import Pki, make_pki
from azure_jit_devtools.localcluster.processes import (
    ControlPlaneError,
    Server,
    address_in_use,
    free_port,
    http_get,
    wait_for,
)

START_TIMEOUT = 60.0  # seconds from process start to ready, per component
CRD_TIMEOUT = 30.0
KUBECTL_CACHE = "kubectl-cache"  # under the work dir, so ~/.kube/cache stays untouched


@dataclass(frozen=True)
class ControlPlane:
    """A running etcd + kube-apiserver and what a test needs to talk to it."""

    bin_dir: Path
    server: str  # https://127.0.0.1:<port>
    kubeconfig: Path  # admin (system:masters) kubeconfig
    ca_cert: Path
    admin_cert: Path
    admin_key: Path
    work_dir: Path  # temporary; removed on teardown
    etcd_url: str
    start_seconds: float  # process start -> every CRD Established

    def kubectl(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        input: str | None = None,
        timeout: float = 60.0,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run our kubectl against this control plane (admin unless ``kubeconfig`` is given)."""
        env = {
            **os.environ,
            "KUBECACHEDIR": str(self.work_dir / KUBECTL_CACHE),  # keep ~/.kube untouched
            "KUBERC": "off",  # no user preferences/aliases from ~/.kube/kuberc
        }
        return subprocess.run(
            [str(self.bin_dir / "kubectl"), f"--kubeconfig={kubeconfig or self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=check,
        )

    def api_client(self, kubeconfig: Path | None = None) -> k8s.ApiClient:
        """A kubernetes ``ApiClient`` from a kubeconfig (admin by default). Use it with
        ``with`` (or call ``close()``) so its connection pool is released."""
        api: k8s.ApiClient = k8s_config.new_client_from_config(
            config_file=str(kubeconfig or self.kubeconfig), persist_config=False
        )
        return api


def _kubeconfig(*, server: str, ca_cert: Path, user: dict[str, str], name: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "envtest",
                    "cluster": {"server": server, "certificate-authority": str(ca_cert)},
                }
            ],
            "users": [{"name": name, "user": user}],
            "contexts": [{"name": name, "context": {"cluster": "envtest", "user": name}}],
            "current-context": name,
            "preferences": {},
        },
        sort_keys=False,
    )


def _start_etcd(bin_dir: Path, work_dir: Path) -> tuple[Server, str]:
    for _attempt in range(3):
        client_url = f"http://127.0.0.1:{free_port()}"
        peer_url = f"http://127.0.0.1:{free_port()}"
        data_dir = work_dir / "etcd-data"
        shutil.rmtree(data_dir, ignore_errors=True)
        etcd = Server(
            "etcd",
            [
                str(bin_dir / "etcd"),
                "--name=envtest",
                f"--data-dir={data_dir}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=envtest={peer_url}",
                "--unsafe-no-fsync=true",  # throwaway data: durability buys nothing here
                "--log-level=warn",
            ],
            log_path=work_dir / "etcd.log",
        )
        host, port = client_url.removeprefix("http://").split(":")

        def healthy(etcd: Server = etcd, host: str = host, port: str = port) -> bool:
            if not etcd.alive():
                return True  # stop polling; judged below
            status, _ = http_get(http.client.HTTPConnection(host, int(port), timeout=2), "/health")
            return status == 200

        try:
            wait_for(healthy, timeout=START_TIMEOUT, what="etcd /health")
        except TimeoutError:
            etcd.stop()
            raise etcd.failure("did not become healthy") from None
        if etcd.alive():
            return etcd, client_url
        if not address_in_use(etcd):
            raise etcd.failure("exited during start")
        etcd.stop()
    raise ControlPlaneError("etcd: no free port pair after 3 attempts")


def _start_apiserver(
    bin_dir: Path, work_dir: Path, *, etcd_url: str, pki: Pki
) -> tuple[Server, str]:
    context = _admin_context(ca_cert=pki.ca_cert, cert=pki.admin_cert, key=pki.admin_key)
    for _attempt in range(3):
        port = free_port()
        server = f"https://127.0.0.1:{port}"
        apiserver = Server(
            "kube-apiserver",
            [
                str(bin_dir / "kube-apiserver"),
                "--advertise-address=127.0.0.1",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                f"--etcd-servers={etcd_url}",
                f"--cert-dir={work_dir / 'apiserver-certs'}",
                f"--tls-cert-file={pki.serving_cert}",
                f"--tls-private-key-file={pki.serving_key}",
                f"--client-ca-file={pki.ca_cert}",
                "--authorization-mode=RBAC",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                # No kube-controller-manager runs, so nothing creates the `default`
                # ServiceAccount that this admission plugin would demand of every Pod
                # (controller-runtime's envtest disables it for the same reason).
                "--disable-admission-plugins=ServiceAccount",
                # Tokens for TokenRequest are signed by the API server itself.
                f"--service-account-issuer={server}",
                f"--service-account-key-file={pki.sa_public_key}",
                f"--service-account-signing-key-file={pki.sa_signing_key}",
                "--profiling=false",
            ],
            log_path=work_dir / "kube-apiserver.log",
        )

        def ready(apiserver: Server = apiserver, port: int = port) -> bool:
            if not apiserver.alive():
                return True  # stop polling; judged below
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=5)
            status, _ = http_get(conn, "/readyz")
            return status == 200

        try:
            wait_for(ready, timeout=START_TIMEOUT, interval=0.2, what="kube-apiserver /readyz")
        except TimeoutError:
            apiserver.stop()
            raise apiserver.failure("did not become ready") from None
        if apiserver.alive():
            return apiserver, server
        if not address_in_use(apiserver):
            raise apiserver.failure("exited during start")
        apiserver.stop()
    raise ControlPlaneError("kube-apiserver: no free port after 3 attempts")


def _crd_documents(crd_dir: Path) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in sorted([*crd_dir.glob("*.yaml"), *crd_dir.glob("*.yml")]):
        with path.open() as stream:
            documents.extend(doc for doc in yaml.safe_load_all(stream) if doc)
    return documents


def _admin_context(*, ca_cert: Path, cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_cert))
    context.load_cert_chain(str(cert), str(key))
    return context


def install_crds(control_plane: ControlPlane, crd_dir: Path) -> list[str]:
    """Create every CRD in ``crd_dir`` (with kubectl, as a user would) and wait until each is
    Established and its resource is listed by discovery. Returns the CRD names."""
    documents = _crd_documents(crd_dir)
    if not documents:
        return []
    created = control_plane.kubectl("create", "-f", str(crd_dir))
    if created.returncode != 0:
        raise ControlPlaneError(f"the API server rejected the CRDs in {crd_dir}:\n{created.stderr}")

    context = _admin_context(
        ca_cert=control_plane.ca_cert, cert=control_plane.admin_cert, key=control_plane.admin_key
    )
    port = int(control_plane.server.rsplit(":", 1)[1])

    def get(path: str) -> dict[str, Any]:
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
        status, body = http_get(conn, path)
        if status != 200:
            return {}
        result: dict[str, Any] = json.loads(body)
        return result

    names = []
    for document in documents:
        name: str = document["metadata"]["name"]
        names.append(name)

        def established(name: str = name) -> bool:
            crd = get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            conditions = crd.get("status", {}).get("conditions", [])
            return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

        wait_for(established, timeout=CRD_TIMEOUT, what=f"CRD {name} Established")

        group = document["spec"]["group"]
        plural = document["spec"]["names"]["plural"]
        for version in document["spec"]["versions"]:
            if not version.get("served", True):
                continue

            def discoverable(
                path: str = f"/apis/{group}/{version['name']}", plural: str = plural
            ) -> bool:
                return plural in {r["name"] for r in get(path).get("resources", [])}

            wait_for(discoverable, timeout=CRD_TIMEOUT, what=f"{plural} in discovery")

            # The OpenAPI v3 document (what `kubectl explain` and server-side apply read)
            # is published asynchronously, after Established.
            def published(path: str = f"apis/{group}/{version['name']}") -> bool:
                return path in get("/openapi/v3").get("paths", {})

            wait_for(published, timeout=CRD_TIMEOUT, what=f"{group} in /openapi/v3")

    # kubectl cached discovery and OpenAPI from before the CRDs existed; `kubectl explain`
    # would keep answering "couldn't find resource" from that cache.
    shutil.rmtree(control_plane.work_dir / KUBECTL_CACHE, ignore_errors=True)
    return names


@contextlib.contextmanager
def start_control_plane(bin_dir: Path, *, crd_dir: Path | None) -> Iterator[ControlPlane]:
    """Start etcd and kube-apiserver, install the CRDs; stop both and remove every file after."""
    work_dir = Path(tempfile.mkdtemp(prefix="azure-jit-envtest-"))
    servers: list[Server] = []
    try:
        pki = make_pki(work_dir / "pki")
        started = time.monotonic()
        etcd, etcd_url = _start_etcd(bin_dir, work_dir)
        servers.append(etcd)
        apiserver, server = _start_apiserver(bin_dir, work_dir, etcd_url=etcd_url, pki=pki)
        servers.append(apiserver)

        kubeconfig = work_dir / "admin.kubeconfig"
        kubeconfig.write_text(
            _kubeconfig(
                server=server,
                ca_cert=pki.ca_cert,
                user={
                    "client-certificate": str(pki.admin_cert),
                    "client-key": str(pki.admin_key),
                },
                name="envtest-admin",
            )
        )
        kubeconfig.chmod(0o600)
        control_plane = ControlPlane(
            bin_dir=bin_dir,
            server=server,
            kubeconfig=kubeconfig,
            ca_cert=pki.ca_cert,
            admin_cert=pki.admin_cert,
            admin_key=pki.admin_key,
            work_dir=work_dir,
            etcd_url=etcd_url,
            start_seconds=0.0,
        )
        if crd_dir is not None and crd_dir.is_dir():
            try:
                install_crds(control_plane, crd_dir)
            except TimeoutError as exc:
                raise apiserver.failure(f"CRDs not ready: {exc}") from exc
        control_plane = dataclasses.replace(control_plane, start_seconds=time.monotonic() - started)
        yield control_plane
    finally:
        for server_process in reversed(servers):  # API server first, etcd last
            server_process.stop()
        shutil.rmtree(work_dir, ignore_errors=True)


# --------------------------------------------------------------------------- ServiceAccounts


def service_account_kubeconfig(
    control_plane: ControlPlane,
    *,
    namespace: str,
    name: str,
    expiration_seconds: int = 3600,
    create: bool = True,
    path: Path | None = None,
) -> Path:
    """A kubeconfig authenticating as ServiceAccount ``namespace/name`` with a token from the
    TokenRequest API (signed by the API server itself: no token controller needed).
    ``create`` makes the ServiceAccount when it does not exist yet."""
    with control_plane.api_client() as api:
        core = k8s.CoreV1Api(api)
        if create:
            try:
                core.create_namespaced_service_account(
                    namespace, k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name=name))
                )
            except ApiException as exc:
                if exc.status != 409:
                    raise
        token_request = core.create_namespaced_service_account_token(
            name,
            namespace,
            k8s.AuthenticationV1TokenRequest(
                spec=k8s.V1TokenRequestSpec(audiences=[], expiration_seconds=expiration_seconds)
            ),
        )
    token = token_request.status.token if token_request.status else None
    if not token:
        raise ControlPlaneError(f"TokenRequest for {namespace}/{name} returned no token")
    user = f"system:serviceaccount:{namespace}:{name}"
    target = path or control_plane.work_dir / f"sa-{namespace}-{name}.kubeconfig"
    target.write_text(
        _kubeconfig(
            server=control_plane.server,
            ca_cert=control_plane.ca_cert,
            user={"token": token},
            name=user,
        )
    )
    target.chmod(0o600)
    return target
