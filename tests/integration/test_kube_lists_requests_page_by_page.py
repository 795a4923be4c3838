"""The kube adapter lists JitAccessRequests a page at a time (limit/continue) against the
real API server: namespace by namespace when the operator watches named namespaces (its
namespaced Role allows no cluster-wide LIST), cluster-wide otherwise."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s

from azure_jit_operator.kube.api import REQUESTS, KubeApi
from tests.support.controlplane import ControlPlane
from tests.support.manifests import API_VERSION, request_manifest

GROUP, VERSION = API_VERSION.split("/")


@pytest.fixture
def other_namespace(control_plane: ControlPlane) -> Iterator[str]:
    name = f"t-pages-other-{secrets.token_hex(3)}"
    with control_plane.api_client() as api:
        core = k8s.CoreV1Api(api)
        core.create_namespace(
            k8s.V1Namespace(
                metadata=k8s.V1ObjectMeta(name=name, labels={"azurejit.dev/test": "true"})
            )
        )
        yield name
        core.delete_namespace(name)


def _create(control_plane: ControlPlane, namespace: str, names: list[str]) -> None:
    with control_plane.api_client() as api:
        custom = k8s.CustomObjectsApi(api)
        for name in names:
            custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, REQUESTS, request_manifest(name)
            )


def _pages(
    control_plane: ControlPlane, namespaces: tuple[str, ...], page_size: int
) -> list[list[dict[str, Any]]]:
    async def listing() -> list[list[dict[str, Any]]]:
        kube = KubeApi.connect(control_plane.kubeconfig)
        try:
            return [
                page
                async for page in kube.list_pages(
                    REQUESTS, namespaces=namespaces, page_size=page_size
                )
            ]
        finally:
            await kube.close()

    return asyncio.run(listing())


def _names(pages: list[list[dict[str, Any]]], *namespaces: str) -> list[tuple[str, str]]:
    return sorted(
        (item["metadata"]["namespace"], item["metadata"]["name"])
        for page in pages
        for item in page
        if item["metadata"]["namespace"] in namespaces
    )


def test_named_namespaces_are_listed_one_by_one_in_pages(
    control_plane: ControlPlane, namespace: str, other_namespace: str
) -> None:
    _create(control_plane, namespace, [f"req-{i}" for i in range(5)])
    _create(control_plane, other_namespace, ["other-0", "other-1"])

    pages = _pages(control_plane, (namespace,), page_size=2)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert _names(pages, namespace, other_namespace) == [(namespace, f"req-{i}") for i in range(5)]

    # A namespace named twice is listed once.
    both = _pages(control_plane, (other_namespace, namespace, other_namespace), page_size=2)
    assert [len(p) for p in both] == [2, 2, 2, 1]
    assert _names(both, namespace, other_namespace) == sorted(
        [(namespace, f"req-{i}") for i in range(5)]
        + [(other_namespace, "other-0"), (other_namespace, "other-1")]
    )


def test_without_named_namespaces_the_whole_cluster_is_listed_in_pages(
    control_plane: ControlPlane, namespace: str, other_namespace: str
) -> None:
    _create(control_plane, namespace, [f"req-{i}" for i in range(3)])
    _create(control_plane, other_namespace, ["other-0"])

    pages = _pages(control_plane, (), page_size=2)
    # Other tests' requests are there too: only the page size and ours are known here.
    assert all(len(p) <= 2 for p in pages)
    assert len(pages) >= 2
    assert _names(pages, namespace, other_namespace) == sorted(
        [(namespace, f"req-{i}") for i in range(3)] + [(other_namespace, "other-0")]
    )
