"""A real Kubernetes control plane (etcd + kube-apiserver) for integration tests.

Owns everything about that control plane: finding or building the binaries
(``KUBEBUILDER_ASSETS`` or ``hack/envtest/build.sh``), a throwaway PKI, starting etcd and
kube-apiserver on free loopback ports the way controller-runtime's envtest does, installing
``crds/``, kubeconfigs for the admin and for ServiceAccounts (TokenRequest), and teardown.

Loaded as a pytest plugin from ``tests/conftest.py``. Fixtures: ``control_plane`` (session)
and ``namespace`` (function). Policy when the binaries cannot be had: locally without a Go
toolchain the tests that need them skip; with ``CI=true`` they fail.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import datetime
import functools
import http.client
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

REPO_ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = REPO_ROOT / "crds"
BUILD_SCRIPT = REPO_ROOT / "hack" / "envtest" / "build.sh"
BINARIES = ("etcd", "kube-apiserver", "kubectl")

START_TIMEOUT = 60.0  # seconds from process start to ready, per component
STOP_TIMEOUT = 10.0  # SIGTERM grace before SIGKILL
CRD_TIMEOUT = 30.0
LOG_TAIL_LINES = 40
KUBECTL_CACHE = "kubectl-cache"  # under the work dir, so ~/.kube/cache stays untouched

_T = TypeVar("_T")


# --------------------------------------------------------------------------- polling


def wait_for(
    predicate: Callable[[], _T | Literal[False] | None],
    *,
    timeout: float,
    interval: float = 0.1,
    what: str = "condition",
) -> _T:
    """Call ``predicate`` until it returns something truthy and return that; time out loudly."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout:g}s")
        time.sleep(interval)  # noqa: sleep-ok


# --------------------------------------------------------------------------- binaries


class BinariesUnavailableError(Exception):
    """The binaries cannot be had on this machine (no Go toolchain, nothing cached)."""


class ControlPlaneError(RuntimeError):
    """Building or starting the control plane failed; the message carries the evidence."""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _check_bin_dir(bin_dir: Path) -> list[str]:
    return [name for name in BINARIES if not os.access(bin_dir / name, os.X_OK)]


def locate_binaries(*, progress: Callable[[str], None] = lambda line: None) -> Path:
    """The directory holding etcd, kube-apiserver and kubectl: ``KUBEBUILDER_ASSETS`` if set,
    else whatever ``hack/envtest/build.sh`` builds or reuses. ``progress`` gets its log lines.
    """
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        missing = _check_bin_dir(Path(assets))
        if missing:
            raise ControlPlaneError(f"KUBEBUILDER_ASSETS={assets} lacks {', '.join(missing)}")
        return Path(assets)

    log: list[str] = []
    with subprocess.Popen(
        [str(BUILD_SCRIPT)],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as build:
        assert build.stderr is not None
        assert build.stdout is not None
        for line in build.stderr:  # stdout holds one line only, so it cannot fill its pipe
            log.append(line.rstrip("\n"))
            progress(log[-1])
        stdout = build.stdout.read()
        returncode = build.wait()
    if returncode != 0:
        tail = "\n".join(log[-LOG_TAIL_LINES:])
        if shutil.which("go") is None:
            raise BinariesUnavailableError(
                "kube-apiserver, etcd and kubectl are not built and no Go toolchain is on PATH. "
                "Install Go >= 1.26 and run `make envtest` (or point KUBEBUILDER_ASSETS at a "
                f"directory holding {', '.join(BINARIES)})."
            )
        raise ControlPlaneError(f"{BUILD_SCRIPT} failed with exit code {returncode}:\n{tail}")
    lines = stdout.strip().splitlines()
    if not lines:
        raise ControlPlaneError(f"{BUILD_SCRIPT} printed no directory")
    bin_dir = Path(lines[-1])
    missing = _check_bin_dir(bin_dir)
    if missing:
        raise ControlPlaneError(f"{bin_dir} (from {BUILD_SCRIPT}) lacks {', '.join(missing)}")
    return bin_dir


# --------------------------------------------------------------------------- PKI


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _issue(
    *,
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    usages: Sequence[x509.ObjectIdentifier] = (),
    sans: Sequence[x509.GeneralName] = (),
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(hours=1))
        .not_valid_after(_now() + datetime.timedelta(days=2))
    )
    if issuer is None:  # the CA itself
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass(frozen=True)
class _Pki:
    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    sa_public_key: Path
    sa_signing_key: Path


def _make_pki(directory: Path) -> _Pki:
    """A throwaway CA, the API server's serving pair, an admin client pair in
    ``system:masters`` and the ServiceAccount token signing key. EC P-256 keeps it fast."""
    directory.mkdir(mode=0o700)
    pki = _Pki(
        ca_cert=directory / "ca.crt",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        admin_cert=directory / "admin.crt",
        admin_key=directory / "admin.key",
        sa_public_key=directory / "sa.pub",
        sa_signing_key=directory / "sa.key",
    )
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue(
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "azure-jit-envtest-ca")]),
        key=ca_key,
        issuer=None,
        issuer_key=ca_key,
    )
    _write_cert(pki.ca_cert, ca)

    serving_key = ec.generate_private_key(ec.SECP256R1())
    names = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"]
    serving = _issue(
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
        key=serving_key,
        issuer=ca,
        issuer_key=ca_key,
        usages=[ExtendedKeyUsageOID.SERVER_AUTH],
        sans=[
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("10.0.0.1")),  # the `kubernetes` Service
            *(x509.DNSName(name) for name in names),
        ],
    )
    _write_cert(pki.serving_cert, serving)
    _write_key(pki.serving_key, serving_key)

    admin_key = ec.generate_private_key(ec.SECP256R1())
    admin = _issue(
        subject=x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                x509.NameAttribute(NameOID.COMMON_NAME, "envtest-admin"),
            ]
        ),
        key=admin_key,
        issuer=ca,
        issuer_key=ca_key,
        usages=[ExtendedKeyUsageOID.CLIENT_AUTH],
    )
    _write_cert(pki.admin_cert, admin)
    _write_key(pki.admin_key, admin_key)

    sa_key = ec.generate_private_key(ec.SECP256R1())
    _write_key(pki.sa_signing_key, sa_key)
    pki.sa_public_key.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pki


# --------------------------------------------------------------------------- processes


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> Callable[[], object] | None:
    """Linux: a ``preexec_fn`` that makes the child get SIGKILL when the thread that started
    it dies (pytest killed by a CI timeout, say), so no server outlives the test run.
    Resolved here, in the parent, so the forked child only makes one libc call."""
    if sys.platform != "linux":
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1
    return functools.partial(prctl, pr_set_pdeathsig, signal.SIGKILL)


class _Server:
    """One child process whose combined output goes to a log file."""

    def __init__(self, name: str, argv: Sequence[str], *, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        with log_path.open("wb") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent(),  # noqa: PLW1509 - one async-signal-safe call
            )

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"<no log: {exc}>"
        return "\n".join(text.splitlines()[-lines:])

    def failure(self, what: str) -> ControlPlaneError:
        state = "running" if self.alive() else f"exited with {self.process.returncode}"
        return ControlPlaneError(
            f"{self.name} {what} ({state}); last lines of {self.log_path.name}:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; always reaps the child."""
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait()


def _address_in_use(server: _Server) -> bool:
    return not server.alive() and "address already in use" in server.log_tail(200)


# --------------------------------------------------------------------------- the control plane


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
        api: k8s.ApiClient = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
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


def _start_etcd(bin_dir: Path, work_dir: Path) -> tuple[_Server, str]:
    for _attempt in range(3):
        client_url = f"http://127.0.0.1:{_free_port()}"
        peer_url = f"http://127.0.0.1:{_free_port()}"
        data_dir = work_dir / "etcd-data"
        shutil.rmtree(data_dir, ignore_errors=True)
        etcd = _Server(
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

        def healthy(etcd: _Server = etcd, host: str = host, port: str = port) -> bool:
            if not etcd.alive():
                return True  # stop polling; judged below
            status, _ = _http_get(http.client.HTTPConnection(host, int(port), timeout=2), "/health")
            return status == 200

        try:
            wait_for(healthy, timeout=START_TIMEOUT, what="etcd /health")
        except TimeoutError:
            etcd.stop()
            raise etcd.failure("did not become healthy") from None
        if etcd.alive():
            return etcd, client_url
        if not _address_in_use(etcd):
            raise etcd.failure("exited during start")
        etcd.stop()
    raise ControlPlaneError("etcd: no free port pair after 3 attempts")


def _http_get(conn: http.client.HTTPConnection, path: str) -> tuple[int, str]:
    """(status, body) or (0, error) when the server is not answering yet."""
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    except (OSError, http.client.HTTPException) as exc:
        return 0, str(exc)
    finally:
        conn.close()


def _start_apiserver(
    bin_dir: Path, work_dir: Path, *, etcd_url: str, pki: _Pki
) -> tuple[_Server, str]:
    context = _admin_context(ca_cert=pki.ca_cert, cert=pki.admin_cert, key=pki.admin_key)
    for _attempt in range(3):
        port = _free_port()
        server = f"https://127.0.0.1:{port}"
        apiserver = _Server(
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

        def ready(apiserver: _Server = apiserver, port: int = port) -> bool:
            if not apiserver.alive():
                return True  # stop polling; judged below
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=5)
            status, _ = _http_get(conn, "/readyz")
            return status == 200

        try:
            wait_for(ready, timeout=START_TIMEOUT, interval=0.2, what="kube-apiserver /readyz")
        except TimeoutError:
            apiserver.stop()
            raise apiserver.failure("did not become ready") from None
        if apiserver.alive():
            return apiserver, server
        if not _address_in_use(apiserver):
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
        status, body = _http_get(conn, path)
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
def start_control_plane(bin_dir: Path, *, crd_dir: Path | None = CRD_DIR) -> Iterator[ControlPlane]:
    """Start etcd and kube-apiserver, install the CRDs; stop both and remove every file after."""
    work_dir = Path(tempfile.mkdtemp(prefix="azure-jit-envtest-"))
    servers: list[_Server] = []
    try:
        pki = _make_pki(work_dir / "pki")
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


# --------------------------------------------------------------------------- pytest plugin

_BINARIES_KEY = pytest.StashKey[Path | BaseException]()
_SUMMARY_KEY = pytest.StashKey[list[str]]()
FIXTURE = "control_plane"


def _summary(config: pytest.Config, line: str) -> None:
    config.stash.setdefault(_SUMMARY_KEY, []).append(line)


def _obtain_binaries(config: pytest.Config) -> Path | BaseException:
    """Locate/build once per session, outside any test's timeout, showing build progress."""
    if _BINARIES_KEY in config.stash:
        return config.stash[_BINARIES_KEY]
    reporter = config.pluginmanager.get_plugin("terminalreporter")

    def progress(line: str) -> None:
        if reporter is not None and not line.startswith("envtest: reusing"):
            reporter.write_line(line)

    started = time.monotonic()
    outcome: Path | BaseException
    try:
        outcome = locate_binaries(progress=progress)
    except (BinariesUnavailableError, ControlPlaneError) as exc:
        outcome = exc
    else:
        _summary(config, f"binaries in {outcome} ({time.monotonic() - started:.1f}s to locate)")
    config.stash[_BINARIES_KEY] = outcome
    return outcome


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects, so `-m "not integration"` works
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if FIXTURE in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


def pytest_collection_finish(session: pytest.Session) -> None:
    # Building may take tens of minutes the first time: do it here, before any test runs,
    # so no per-test timeout applies, and only when a selected test needs the control plane.
    if session.config.option.collectonly:
        return
    if any(FIXTURE in getattr(item, "fixturenames", ()) for item in session.items):
        _obtain_binaries(session.config)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(_SUMMARY_KEY, [])
    if lines:
        terminalreporter.write_sep("-", "control plane")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def control_plane(pytestconfig: pytest.Config) -> Iterator[ControlPlane]:
    """etcd + kube-apiserver with ``crds/`` installed, shared by the whole session."""
    outcome = _obtain_binaries(pytestconfig)
    if isinstance(outcome, BinariesUnavailableError) and not in_ci():
        pytest.skip(f"no control plane: {outcome} (run `make envtest` once to get it)")
    if isinstance(outcome, BaseException):
        hint = " [CI=true: a missing control plane is a failure]" if in_ci() else ""
        pytest.fail(f"no control plane: {outcome}{hint}", pytrace=False)
    with start_control_plane(outcome) as control_plane:
        _summary(
            pytestconfig,
            f"etcd + kube-apiserver up, CRDs Established in {control_plane.start_seconds:.1f}s "
            f"(process start -> CRDs Established) at {control_plane.server}",
        )
        yield control_plane


_NOT_DNS = re.compile(r"[^a-z0-9-]+")


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test. On teardown the delete is issued but not
    awaited: without kube-controller-manager no namespace controller empties it, so it stays
    Terminating (and its objects stay in etcd) until the session's etcd is thrown away.
    Terminating still matters: admission refuses new objects in it, so a straggler from a
    finished test cannot quietly keep writing there. Tests that look cluster-wide must scope
    themselves to their own namespace."""
    stem = _NOT_DNS.sub("-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{stem}-{secrets.token_hex(3)}"
    with control_plane.api_client() as api:
        k8s.CoreV1Api(api).create_namespace(
            k8s.V1Namespace(
                metadata=k8s.V1ObjectMeta(name=name, labels={"azurejit.dev/test": "true"})
            )
        )
    yield name
    with control_plane.api_client() as api:
        k8s.CoreV1Api(api).delete_namespace(name)
