"""The few Kubernetes API calls the operator makes itself (kopf does the watching).

Status writes that must land *before* an Azure call (the initiate intent) cannot wait for
kopf's end-of-handler patch, so they go through the official client here. The client is
synchronous; calls run in a small dedicated thread pool so they never block the loop.
"""

from __future__ import annotations

import asyncio
import base64
import functools
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

GROUP = "azurejit.dev"
VERSION = "v1alpha1"
POLICIES = "jitpolicies"
REQUESTS = "jitaccessrequests"
LIST_PAGE_SIZE = 500


@dataclass(frozen=True, slots=True)
class ObjectRef:
    plural: str
    namespace: str
    name: str


class Gone(Exception):  # noqa: N818 - reads as "the object is gone"
    """The object no longer exists."""


def make_api_client(kubeconfig: Path | None) -> Any:
    """In-cluster config inside a pod, else the given (or default) kubeconfig."""
    if kubeconfig is not None:
        return kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
    try:
        kubernetes.config.load_incluster_config()
        return kubernetes.client.ApiClient()
    except kubernetes.config.ConfigException:
        return kubernetes.config.new_client_from_config()


class KubeApi:
    def __init__(self, api_client: Any, *, workers: int = 8) -> None:
        self._client = api_client
        self._custom = kubernetes.client.CustomObjectsApi(api_client)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kube-api")

    async def patch_status(self, ref: ObjectRef, status: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch ``status``; raises Gone when the object was deleted meanwhile."""
        return await self._call(
            self._custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            ref.namespace,
            ref.plural,
            ref.name,
            {"status": status},
        )

    async def get(self, ref: ObjectRef) -> dict[str, Any]:
        return await self._call(
            self._custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            ref.namespace,
            ref.plural,
            ref.name,
        )

    async def delete(self, ref: ObjectRef) -> None:
        try:
            await self._call(
                self._custom.delete_namespaced_custom_object,
                GROUP,
                VERSION,
                ref.namespace,
                ref.plural,
                ref.name,
            )
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
            token = ""
            while True:
                options: dict[str, Any] = {"limit": page_size}
                if token:
                    options["_continue"] = token
                if namespace is None:
                    call = functools.partial(
                        self._custom.list_cluster_custom_object, GROUP, VERSION, plural, **options
                    )
                else:
                    call = functools.partial(
                        self._custom.list_namespaced_custom_object,
                        GROUP,
                        VERSION,
                        namespace,
                        plural,
                        **options,
                    )
                page: dict[str, Any] = await self.run(call)
                yield list(page.get("items") or ())
                token = str((page.get("metadata") or {}).get("continue") or "")
                if not token:
                    break

    async def peering_records(
        self, name: str, *, namespaces: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """The peers kopf recorded (``status`` of the ClusterKopfPeering, or of the KopfPeering
        in each namespace). A LIST by name, which kopf's own RBAC already allows."""
        selector = f"metadata.name={name}"
        calls: list[Any] = []
        if not namespaces:
            calls.append(
                functools.partial(
                    self._custom.list_cluster_custom_object,
                    "kopf.dev",
                    "v1",
                    "clusterkopfpeerings",
                    field_selector=selector,
                )
            )
        for namespace in dict.fromkeys(namespaces):
            calls.append(
                functools.partial(
                    self._custom.list_namespaced_custom_object,
                    "kopf.dev",
                    "v1",
                    namespace,
                    "kopfpeerings",
                    field_selector=selector,
                )
            )
        records: list[dict[str, Any]] = []
        for call in calls:
            listed: dict[str, Any] = await self.run(call)
            records.extend(dict(item.get("status") or {}) for item in listed.get("items") or ())
        return records

    async def read_secret(self, namespace: str, name: str) -> tuple[dict[str, str], str] | None:
        """A Secret's decoded data and resourceVersion, or None when it does not exist."""
        core = kubernetes.client.CoreV1Api(self._client)
        loop = asyncio.get_running_loop()
        try:
            secret = await loop.run_in_executor(
                self._pool, lambda: core.read_namespaced_secret(name, namespace)
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            if exc.status == 403:
                raise PermissionError(f"forbidden to read Secret {namespace}/{name}") from None
            raise
        data = {
            key: base64.b64decode(value).decode("utf-8", errors="replace")
            for key, value in (secret.data or {}).items()
        }
        version = secret.metadata.resource_version if secret.metadata else ""
        return data, str(version or "")

    @property
    def client(self) -> Any:
        return self._client

    async def run(self, call: Any) -> Any:
        """Run a blocking client call in the adapter's thread pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, call)

    async def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()

    async def _call(self, fn: Any, *args: Any) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        try:
            result: dict[str, Any] = await loop.run_in_executor(self._pool, lambda: fn(*args))
        except ApiException as exc:
            if exc.status == 404:
                raise Gone(f"{args[-2] if len(args) > 1 else ''}/{args[-1]}") from None
            raise
        return result


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
        review = kubernetes.client.V1SubjectAccessReview(
            spec=kubernetes.client.V1SubjectAccessReviewSpec(
                user=userinfo.get("username"),
                uid=userinfo.get("uid"),
                groups=list(userinfo.get("groups") or []),
                extra={k: list(v) for k, v in (userinfo.get("extra") or {}).items()},
                resource_attributes=kubernetes.client.V1ResourceAttributes(
                    group=GROUP, resource=resource, verb=verb, name=name, namespace=namespace
                ),
            )
        )
        api = kubernetes.client.AuthorizationV1Api(self._kube.client)
        result = await self._kube.run(lambda: api.create_subject_access_review(review))
        return bool(result.status and result.status.allowed)

    async def whoami(self) -> str:
        """The operator's own user name (SelfSubjectReview), to recognise its own writes."""
        api = kubernetes.client.AuthenticationV1Api(self._kube.client)
        review = await self._kube.run(
            lambda: api.create_self_subject_review(kubernetes.client.V1SelfSubjectReview())
        )
        return str(review.status.user_info.username)
