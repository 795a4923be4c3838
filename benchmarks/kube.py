"""A lean Kubernetes client for the benchmarks: raw HTTPS with the admin certificate.

The benchmark shares two cores with etcd, kube-apiserver, the emulator and the operator, so
its own CPU use must stay small: bodies are pre-built JSON, connections are kept alive, and
the watcher parses one JSON line per event and nothing more.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from azure_jit_devtools.localcluster.cluster import ControlPlane

GROUP = "azurejit.dev"
VERSION = "v1alpha1"
POLICIES = "jitpolicies"
REQUESTS = "jitaccessrequests"


class KubeError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"kube-apiserver answered {status}: {body[:500]}")
        self.status = status


class Kube:
    """Admin access to the control plane; one connection per thread."""

    def __init__(self, control_plane: ControlPlane) -> None:
        host, port = control_plane.server.removeprefix("https://").split(":")
        self.host = host
        self.port = int(port)
        self._context = ssl.create_default_context(cafile=str(control_plane.ca_cert))
        self._context.load_cert_chain(str(control_plane.admin_cert), str(control_plane.admin_key))
        self._local = threading.local()

    def _connection(self, *, timeout: float = 60.0) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            self.host, self.port, context=self._context, timeout=timeout
        )

    def request(self, method: str, path: str, body: Any = None, *, patch: bool = False) -> Any:
        conn: http.client.HTTPSConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connection()
        payload = body if isinstance(body, bytes) else json.dumps(body).encode() if body else None
        headers = {"Accept": "application/json"}
        if payload is not None:
            headers["Content-Type"] = (
                "application/merge-patch+json" if patch else "application/json"
            )
        for attempt in range(30):
            try:
                conn.request(method, path, body=payload, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                conn = self._local.conn = self._connection()
                if attempt >= 2:
                    raise
                continue
            if response.status != 429:  # e.g. "storage is (re)initializing" right after start
                break
            time.sleep(float(response.getheader("Retry-After") or 1))
        if response.status >= 400:
            raise KubeError(response.status, data.decode(errors="replace"))
        return json.loads(data) if data else None

    # -- paths -----------------------------------------------------------------------

    @staticmethod
    def custom_path(namespace: str, plural: str, name: str | None = None) -> str:
        base = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{plural}"
        return f"{base}/{name}" if name else base

    def create_namespace(self, name: str) -> None:
        self.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})

    def list(self, namespace: str, plural: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", self.custom_path(namespace, plural))
        return result

    def get(self, namespace: str, plural: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", self.custom_path(namespace, plural, name))
        return result

    def delete(self, namespace: str, plural: str, name: str) -> None:
        self.request("DELETE", self.custom_path(namespace, plural, name))

    def create_many(
        self,
        namespace: str,
        plural: str,
        bodies: Sequence[dict[str, Any]],
        *,
        threads: int = 8,
        on_created: Callable[[str, float], None] | None = None,
    ) -> float:
        """Create every body (pre-serialised, ``threads`` connections); the seconds it took."""
        path = self.custom_path(namespace, plural)
        payloads = [(b["metadata"]["name"], json.dumps(b).encode()) for b in bodies]

        def create(item: tuple[str, bytes]) -> None:
            self.request("POST", path, item[1])
            if on_created is not None:
                on_created(item[0], time.time())

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="create") as pool:
            list(pool.map(create, payloads))
        return time.monotonic() - started

    def delete_many(self, namespace: str, plural: str, names: Iterable[str]) -> None:
        def delete(name: str) -> None:
            try:
                self.delete(namespace, plural, name)
            except KubeError as exc:
                if exc.status != 404:
                    raise

        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="delete") as pool:
            list(pool.map(delete, names))


@dataclass
class Seen:
    """What the watcher saw of one object: when it appeared and when each phase began."""

    added: float
    phases: dict[str, float] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    gone: float | None = None


class Watcher:
    """Watches one plural in one namespace from a thread, timestamping every transition.

    Times are ``time.time()`` when the event arrived here, i.e. when any watcher (the
    operator included) could first have known.
    """

    def __init__(self, kube: Kube, namespace: str, plural: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.plural = plural
        self.objects: dict[str, Seen] = {}
        self.events = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{plural}", daemon=True)
        self._conn: http.client.HTTPSConnection | None = None
        self._started = threading.Event()

    def __enter__(self) -> Watcher:
        self._thread.start()
        self._started.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._conn is not None and self._conn.sock is not None:
            with contextlib.suppress(OSError):
                self._conn.sock.shutdown(2)
        self._thread.join(10)

    def snapshot(self) -> dict[str, Seen]:
        with self._lock:
            return dict(self.objects)

    def count(self, predicate: Callable[[Seen], bool]) -> int:
        with self._lock:
            return sum(1 for seen in self.objects.values() if predicate(seen))

    def in_phase(self, phase: str) -> int:
        return self.count(lambda s: s.status.get("phase") == phase)

    def reached(self, phase: str) -> int:
        return self.count(lambda s: phase in s.phases)

    def _run(self) -> None:
        listing = self.kube.list(self.namespace, self.plural)
        now = time.time()
        with self._lock:
            for item in listing.get("items", []):
                self._record(item, now, added=True)
        version = listing["metadata"]["resourceVersion"]
        self._started.set()
        while not self._stop.is_set():
            query = urlencode(
                {
                    "watch": "1",
                    "resourceVersion": version,
                    "allowWatchBookmarks": "true",
                    "timeoutSeconds": "3600",
                }
            )
            self._conn = self.kube._connection(timeout=3700)
            try:
                self._conn.request(
                    "GET", f"{Kube.custom_path(self.namespace, self.plural)}?{query}"
                )
                response = self._conn.getresponse()
                for line in response:
                    if self._stop.is_set():
                        return
                    event = json.loads(line)
                    arrived = time.time()
                    obj = event["object"]
                    version = obj.get("metadata", {}).get("resourceVersion", version)
                    kind = event["type"]
                    if kind == "BOOKMARK":
                        continue
                    if kind == "ERROR":
                        raise RuntimeError(f"watch error: {obj}")
                    with self._lock:
                        self.events += 1
                        if kind == "DELETED":
                            seen = self.objects.get(obj["metadata"]["name"])
                            if seen is not None:
                                seen.gone = arrived
                        else:
                            self._record(obj, arrived, added=kind == "ADDED")
            except (OSError, http.client.HTTPException, ValueError):
                if self._stop.is_set():
                    return
                time.sleep(0.2)  # reconnect from the last version seen
            finally:
                self._conn.close()

    def _record(self, obj: dict[str, Any], at: float, *, added: bool) -> None:
        name = obj["metadata"]["name"]
        seen = self.objects.get(name)
        if seen is None:
            seen = self.objects[name] = Seen(added=at)
        status = obj.get("status") or {}
        seen.status = status
        phase = status.get("phase")
        if phase and phase not in seen.phases:
            seen.phases[phase] = at
        ready = next((c for c in status.get("conditions") or () if c.get("type") == "Ready"), None)
        if (
            ready is not None
            and ready.get("status") == "True"
            and "Ready" not in seen.phases
            and status.get("observedGeneration") == obj["metadata"].get("generation")
        ):
            seen.phases["Ready"] = at


def wait_until(
    predicate: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.25
) -> float:
    """Poll until ``predicate`` holds; the seconds it took. Raises TimeoutError at the deadline."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what}: not reached within {timeout:g}s")
        time.sleep(interval)
    return time.monotonic() - started
