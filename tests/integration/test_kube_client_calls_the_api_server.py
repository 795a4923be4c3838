"""The operator's async Kubernetes client against the real API server: merge patches of the
status subresource, the errors callers rely on (Gone, PermissionError, a status and the
API's message, never the token), reviews, and credentials that change under it: a rotated
in-cluster token file and a kubeconfig whose token stopped working."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from azure_jit_operator.kube.api import (
    POLICIES,
    Authorizer,
    Gone,
    KubeApi,
    KubeError,
    ObjectRef,
)
from azure_jit_operator.kube.login import in_cluster_access
from tests.support.controlplane import ControlPlane, service_account_kubeconfig, wait_for
from tests.support.manifests import API_VERSION, policy_manifest

GROUP, VERSION = API_VERSION.split("/")


def _token(kubeconfig: Path) -> str:
    return str(yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["token"])


def _service_account_dir(control_plane: ControlPlane, directory: Path, token: str) -> Path:
    """What the kubelet mounts: the token (swapped by rename when it rotates) and the CA."""
    directory.mkdir()
    shutil.copy(control_plane.ca_cert, directory / "ca.crt")
    _rotate(directory, token)
    return directory


def _rotate(directory: Path, token: str) -> None:
    staged = directory / ".token.new"
    staged.write_text(token)
    os.replace(staged, directory / "token")


def _in_cluster_env(control_plane: ControlPlane) -> dict[str, str]:
    host, port = control_plane.server.removeprefix("https://").rsplit(":", 1)
    return {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}


async def test_status_is_merge_patched_and_a_missing_object_is_gone(
    control_plane: ControlPlane, namespace: str
) -> None:
    with control_plane.api_client() as api:
        k8s.CustomObjectsApi(api).create_namespaced_custom_object(
            GROUP, VERSION, namespace, POLICIES, policy_manifest("merged")
        )
    kube = KubeApi.connect(control_plane.kubeconfig)
    try:
        ref = ObjectRef(POLICIES, namespace, "merged")
        await kube.patch_status(ref, {"azurePolicyId": "/subscriptions/x/policy"})
        patched = await kube.patch_status(ref, {"provisioningState": "Succeeded"})
        assert patched["status"] == {
            "azurePolicyId": "/subscriptions/x/policy",
            "provisioningState": "Succeeded",
        }
        assert (await kube.get(ref))["status"] == patched["status"]

        with pytest.raises(KubeError) as invalid:
            await kube.patch_status(ref, {"observedGeneration": "not a number"})
        assert invalid.value.status == 422
        assert "observedGeneration" in invalid.value.message

        missing = ObjectRef(POLICIES, namespace, "missing")
        with pytest.raises(Gone):
            await kube.get(missing)
        with pytest.raises(Gone):
            await kube.patch_status(missing, {"azurePolicyId": "x"})
        await kube.delete(missing)  # nothing to delete is no error

        await kube.delete(ref)
        with pytest.raises(Gone):
            await kube.get(ref)
    finally:
        await kube.close()


async def test_secrets_are_decoded_missing_is_none_and_forbidden_is_permission_error(
    control_plane: ControlPlane, namespace: str
) -> None:
    with control_plane.api_client() as api:
        k8s.CoreV1Api(api).create_namespaced_secret(
            namespace,
            k8s.V1Secret(metadata=k8s.V1ObjectMeta(name="creds"), string_data={"a": "b"}),
        )
    admin = KubeApi.connect(control_plane.kubeconfig)
    nobody_config = service_account_kubeconfig(control_plane, namespace=namespace, name="nobody")
    nobody = KubeApi.connect(nobody_config)
    try:
        found = await admin.read_secret(namespace, "creds")
        assert found is not None
        data, version = found
        assert data == {"a": "b"}
        assert version.isdigit()
        assert await admin.read_secret(namespace, "absent") is None

        with pytest.raises(PermissionError):
            await nobody.read_secret(namespace, "creds")
        # Other errors carry the status and the API's message, and never the token.
        with pytest.raises(KubeError) as forbidden:
            async for _ in nobody.list_pages(POLICIES, namespaces=(namespace,)):
                pass
        assert forbidden.value.status == 403
        assert "cannot list resource" in str(forbidden.value)
        assert _token(nobody_config) not in str(forbidden.value)
    finally:
        await admin.close()
        await nobody.close()


async def test_reviews_say_who_may_approve_and_who_the_operator_is(
    control_plane: ControlPlane, namespace: str
) -> None:
    kube = KubeApi.connect(control_plane.kubeconfig)
    authorizer = Authorizer(kube)
    try:
        assert await authorizer.whoami() == "envtest-admin"

        async def may_approve(userinfo: dict[str, Any]) -> bool:
            return await authorizer.allowed(
                userinfo, verb="approve", resource="jitpolicies", name="p", namespace=namespace
            )

        admin = {"username": "someone", "groups": ["system:masters"], "extra": {"x": ["y"]}}
        assert await may_approve(admin) is True
        assert await may_approve({"username": "stranger", "groups": []}) is False
    finally:
        await kube.close()


async def test_a_rotated_in_cluster_token_is_used_by_the_next_call(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    first = service_account_kubeconfig(control_plane, namespace=namespace, name="first")
    second = service_account_kubeconfig(control_plane, namespace=namespace, name="second")
    mounted = _service_account_dir(control_plane, tmp_path / "serviceaccount", _token(first))
    access = in_cluster_access(_in_cluster_env(control_plane), mounted)
    assert access is not None
    kube = KubeApi(access)
    authorizer = Authorizer(kube)
    try:
        assert await authorizer.whoami() == f"system:serviceaccount:{namespace}:first"
        _rotate(mounted, _token(second))
        assert await authorizer.whoami() == f"system:serviceaccount:{namespace}:second"
    finally:
        await kube.close()
    assert in_cluster_access({}, mounted) is None  # outside a pod


async def test_a_kubeconfig_whose_token_stopped_working_is_loaded_again(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    path = service_account_kubeconfig(
        control_plane, namespace=namespace, name="old", path=tmp_path / "op.kubeconfig"
    )
    kube = KubeApi.connect(path)
    authorizer = Authorizer(kube)
    try:
        assert await authorizer.whoami() == f"system:serviceaccount:{namespace}:old"
        old = shutil.copy(path, tmp_path / "old.kubeconfig")
        new = service_account_kubeconfig(control_plane, namespace=namespace, name="new")
        shutil.copy(new, path)
        # Deleting the ServiceAccount makes the API server reject its tokens (401).
        with control_plane.api_client() as api:
            k8s.CoreV1Api(api).delete_namespaced_service_account("old", namespace)
        wait_for(
            lambda: (
                "Unauthorized" in control_plane.kubectl("auth", "whoami", kubeconfig=old).stderr
            ),
            timeout=10,
            what="the deleted ServiceAccount's token to be rejected",
        )
        assert await authorizer.whoami() == f"system:serviceaccount:{namespace}:new"
    finally:
        await kube.close()
