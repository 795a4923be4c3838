"""The few Kubernetes API calls the operator makes itself (kopf does the watching).

Status writes that must land *before* an Azure call (the initiate intent) cannot wait for
kopf's end-of-handler patch, so they go through this small async client: one aiohttp
session (TLS from the cluster's CA and client certificate, a bearer token kept current),
JSON bodies, a timeout on every request.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from azure_jit_operator import __version__
from azure_jit_operator.kube.login import ClusterAccess, cluster_access

GROUP = "azurejit.dev"
VERSION = "v1alpha1"
POLICIES = "jitpolicies"
REQUESTS = "jitaccessrequests"
SCHEDULES = "jitaccessschedules"
LIST_PAGE_SIZE = 500
REQUEST_TIMEOUT_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 10.0
MAX_CONNECTIONS = 16
MERGE_PATCH = "application/merge-patch+json"
_MESSAGE_LIMIT = 500


@dataclass(frozen=True, slots=True)
class ObjectRef:
    plural: str
    namespace: str
    name: str


class KubeError(Exception):
    """The API server answered with an error: its HTTP status, reason and message (the
    request's headers, and so its token, are never part of it)."""

    def __init__(self, status: int, reason: str, message: str, *, what: str) -> None:
        head = f"{what}: {status} {reason}".rstrip()
        super().__init__(f"{head}: {message}" if message else head)
        self.status = status
        self.reason = reason
        self.message = message


class Gone(KubeError):  # noqa: N818 - reads as "the object is gone"
    """The object no longer exists (404)."""


class AlreadyExists(KubeError):  # noqa: N818 - reads as "the name is taken"
    """An object of that name exists already (409 on create)."""


class KubeApi:
    def __init__(
        self,
        access: ClusterAccess,
        *,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
        connections: int = MAX_CONNECTIONS,
    ) -> None:
        self._access = access
        self._base = access.server.rstrip("/")
        self._ssl = access.ssl_context()
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=CONNECT_TIMEOUT_SECONDS)
        self._connections = connections
        self._http: aiohttp.ClientSession | None = None

    @classmethod
    def connect(cls, kubeconfig: Path | None, **options: Any) -> KubeApi:
        """The given kubeconfig; else in-cluster (the pod's ServiceAccount); else the
        default kubeconfig. The session opens with the first call."""
        return cls(cluster_access(kubeconfig), **options)

    async def patch_status(self, ref: ObjectRef, status: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch ``status``; raises Gone when the object was deleted meanwhile."""
        return await self._request(
            "PATCH",
            _object_path(ref) + "/status",
            body={"status": status},
            content_type=MERGE_PATCH,
            not_found=Gone,
        )

    async def get(self, ref: ObjectRef) -> dict[str, Any]:
        return await self._request("GET", _object_path(ref), not_found=Gone)

    async def delete(self, ref: ObjectRef) -> None:
        try:
            await self._request("DELETE", _object_path(ref), not_found=Gone)
        except Gone:
            return

    async def list_pages(
        self, plural: str, *, namespaces: Sequence[str] = (), page_size: int = LIST_PAGE_SIZE
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Every object of a kind, a page (``limit``/``continue``) at a time: cluster-wide, or
        namespace by namespace when ``namespaces`` are given (namespaced RBAC allows no
        cluster-wide LIST). Raises what the API raises; a caller lists again from the start."""
        scopes: list[str | None] = list(dict.fromkeys(namespaces)) or [None]
        for namespace in scopes:
            path = _collection_path(GROUP, VERSION, plural, namespace)
            token = ""
            while True:
                params = {"limit": str(page_size)}
                if token:
                    params["continue"] = token
                page = await self._request("GET", path, params=params)
                yield list(page.get("items") or ())
                token = str((page.get("metadata") or {}).get("continue") or "")
                if not token:
                    break

    async def peering_records(
        self, name: str, *, namespaces: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """The peers kopf recorded (``status`` of the ClusterKopfPeering, or of the KopfPeering
        in each namespace). A LIST by name, which kopf's own RBAC already allows."""
        params = {"fieldSelector": f"metadata.name={name}"}
        paths = [] if namespaces else [_collection_path("kopf.dev", "v1", "clusterkopfpeerings")]
        paths += [
            _collection_path("kopf.dev", "v1", "kopfpeerings", namespace)
            for namespace in dict.fromkeys(namespaces)
        ]
        records: list[dict[str, Any]] = []
        for path in paths:
            listed = await self._request("GET", path, params=params)
            records.extend(dict(item.get("status") or {}) for item in listed.get("items") or ())
        return records

    async def read_secret(self, namespace: str, name: str) -> tuple[dict[str, str], str] | None:
        """A Secret's decoded data and resourceVersion, or None when it does not exist."""
        path = f"/api/v1/namespaces/{_segment(namespace)}/secrets/{_segment(name)}"
        try:
            secret = await self._request("GET", path)
        except KubeError as exc:
            if exc.status == 404:
                return None
            if exc.status == 403:
                raise PermissionError(f"forbidden to read Secret {namespace}/{name}") from None
            raise
        data = {
            key: base64.b64decode(value).decode("utf-8", errors="replace")
            for key, value in (secret.get("data") or {}).items()
        }
        version = (secret.get("metadata") or {}).get("resourceVersion")
        return data, str(version or "")

    async def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``path`` (reviews: SubjectAccessReview, SelfSubjectReview)."""
        return await self._request("POST", path, body=body)

    async def create_object(self, plural: str, namespace: str, body: Mapping[str, Any]) -> None:
        """Create one of our objects; raises AlreadyExists when the name is taken (a create
        that must happen once per name, e.g. a schedule's window, relies on it)."""
        path = _collection_path(GROUP, VERSION, plural, namespace)
        try:
            await self._request("POST", path, body=body)
        except KubeError as exc:
            if exc.status == 409 and "already exists" in exc.message:
                raise AlreadyExists(exc.status, exc.reason, exc.message, what="POST") from None
            raise

    async def close(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.close()

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=self._connections),
                timeout=self._timeout,
                headers={
                    "Accept": "application/json",
                    "User-Agent": f"azure-jit-operator/{__version__}",
                },
            )
        return self._http

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
        not_found: type[KubeError] = KubeError,
    ) -> dict[str, Any]:
        """One call; a 401 gets the credential anew and tries once more."""
        headers = {"Content-Type": content_type} if body is not None else {}
        data = json.dumps(body).encode() if body is not None else None
        tokens = self._access.tokens
        for attempt in range(2):
            authorization = await tokens.authorization()
            if authorization:
                headers["Authorization"] = authorization
            async with self._session().request(
                method,
                self._base + path,
                params=params,
                data=data,
                headers=headers,
                server_hostname=self._access.tls_server_name,
            ) as response:
                status, reason = response.status, response.reason or ""
                payload = await response.read()
            if status == 401 and attempt == 0:
                tokens.expire()
                continue
            if 200 <= status < 300:
                result: Any = json.loads(payload) if payload else {}
                return result if isinstance(result, dict) else {}
            error = not_found if status == 404 else KubeError
            raise error(status, reason, _api_message(payload), what=f"{method} {path}")
        raise AssertionError("unreachable")  # pragma: no cover


class Authorizer:
    """SubjectAccessReviews for admission decisions, and who the operator itself is."""

    def __init__(self, kube: KubeApi) -> None:
        self._kube = kube

    async def allowed(
        self,
        userinfo: dict[str, Any],
        *,
        verb: str,
        resource: str,
        name: str,
        namespace: str,
    ) -> bool:
        spec: dict[str, Any] = {
            "groups": list(userinfo.get("groups") or []),
            "extra": {k: list(v) for k, v in (userinfo.get("extra") or {}).items()},
            "resourceAttributes": {
                "group": GROUP,
                "resource": resource,
                "verb": verb,
                "name": name,
                "namespace": namespace,
            },
        }
        for key in ("username", "uid"):
            if userinfo.get(key) is not None:
                spec["user" if key == "username" else key] = userinfo[key]
        review = await self._kube.create(
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec},
        )
        return bool((review.get("status") or {}).get("allowed"))

    async def whoami(self) -> str:
        """The operator's own user name (SelfSubjectReview), to recognise its own writes."""
        review = await self._kube.create(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
        return str(review["status"]["userInfo"]["username"])


def _segment(value: str) -> str:
    return quote(value, safe="")


def _object_path(ref: ObjectRef) -> str:
    return f"{_collection_path(GROUP, VERSION, ref.plural, ref.namespace)}/{_segment(ref.name)}"


def _collection_path(group: str, version: str, plural: str, namespace: str | None = None) -> str:
    scope = f"/namespaces/{_segment(namespace)}" if namespace is not None else ""
    return f"/apis/{group}/{version}{scope}/{plural}"


def _api_message(payload: bytes) -> str:
    """The message of the API's Status object, or the start of whatever else it sent."""
    text = payload.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("message"):
        text = str(parsed["message"])
    return " ".join(text.split())[:_MESSAGE_LIMIT]
