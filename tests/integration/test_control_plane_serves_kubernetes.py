"""The test control plane is a real, current Kubernetes API server that clients can use."""

from __future__ import annotations

import json
import re
from pathlib import Path

from kubernetes import client as k8s

from tests.support.controlplane import REPO_ROOT, ControlPlane


def _pinned_kubernetes_version() -> str:
    go_mod = (REPO_ROOT / "hack" / "envtest" / "kube" / "go.mod").read_text()
    match = re.search(r"^\s*k8s\.io/kubernetes (v\S+)", go_mod, re.MULTILINE)
    assert match, "hack/envtest/kube/go.mod pins no k8s.io/kubernetes"
    return match.group(1)


def test_api_server_and_kubectl_are_the_pinned_kubernetes_release(
    control_plane: ControlPlane,
) -> None:
    result = control_plane.kubectl("version", "-o", "json", check=True)
    versions = json.loads(result.stdout)
    pinned = _pinned_kubernetes_version()
    assert versions["serverVersion"]["gitVersion"] == pinned
    assert versions["clientVersion"]["gitVersion"] == pinned


def test_api_server_listens_on_loopback_only(control_plane: ControlPlane) -> None:
    assert control_plane.server.startswith("https://127.0.0.1:")
    assert control_plane.etcd_url.startswith("http://127.0.0.1:")


def test_admin_kubeconfig_is_a_cluster_admin(control_plane: ControlPlane) -> None:
    whoami = control_plane.kubectl("auth", "whoami", "-o", "json", check=True)
    user = json.loads(whoami.stdout)["status"]["userInfo"]
    assert user["username"] == "envtest-admin"
    assert "system:masters" in user["groups"]
    allowed = control_plane.kubectl("auth", "can-i", "*", "*", "--all-namespaces")
    assert allowed.stdout.strip() == "yes"


def test_python_client_talks_to_the_api_server(control_plane: ControlPlane) -> None:
    with control_plane.api_client() as api:
        names = {
            ns.metadata.name for ns in k8s.CoreV1Api(api).list_namespace().items if ns.metadata
        }
    assert {"default", "kube-system"} <= names


def test_namespace_fixture_gives_each_test_a_fresh_labelled_namespace(
    control_plane: ControlPlane, namespace: str
) -> None:
    with control_plane.api_client() as api:
        created = k8s.CoreV1Api(api).read_namespace(namespace)
    assert created.metadata is not None
    assert (created.metadata.labels or {}).get("azurejit.dev/test") == "true"
    assert created.status is not None
    assert created.status.phase == "Active"
    assert namespace.startswith("t-test-namespace-fixture-gives-each-tes")


def test_control_plane_files_live_outside_the_checkout(control_plane: ControlPlane) -> None:
    for path in (control_plane.kubeconfig, control_plane.ca_cert, control_plane.admin_key):
        assert path.is_file()
        assert not path.resolve().is_relative_to(REPO_ROOT)
    assert Path(control_plane.admin_key).stat().st_mode & 0o077 == 0
