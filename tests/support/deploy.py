"""deploy/ for tests: render an overlay with the project's kubectl (kustomize built in), pick
objects out of it, apply it the way docs/install.md says, and ask what its ServiceAccount may do.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from azure_jit_operator.config import Settings
from tests.support.controlplane import KUBECTL_CACHE, ControlPlane, wait_for
from tests.support.repo import ROOT

DEPLOY = ROOT / "deploy"
OVERLAYS = {
    "cluster-wide": DEPLOY / "overlays" / "cluster-wide",
    "single-namespace": DEPLOY / "overlays" / "single-namespace",
    "demo": DEPLOY / "overlays" / "demo",
}
CRDS = DEPLOY / "crds"
OPERATOR_NAMESPACE = "azure-jit-system"
SERVICE_ACCOUNT = "azure-jit-operator"
SERVICE_ACCOUNT_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{SERVICE_ACCOUNT}"
WATCHED_NAMESPACE = "team-web"  # what the single-namespace overlay watches
FIELD_MANAGER = "azure-jit-operator-install"
Manifest = dict[str, Any]


def render(control_plane: ControlPlane, directory: Path) -> list[Manifest]:
    """``kubectl kustomize <directory>`` as a list of objects; fails with kustomize's message."""
    built = control_plane.kubectl("kustomize", str(directory))
    assert built.returncode == 0, f"kubectl kustomize {directory} failed:\n{built.stderr}"
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


def find(objects: Iterable[Manifest], kind: str, name: str | None = None) -> Manifest:
    matches = [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def container(deployment: Manifest, name: str = "operator") -> Manifest:
    containers: list[Manifest] = deployment["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == name)


def literal_env(container_spec: Manifest) -> dict[str, str]:
    """The container's env given as plain values (valueFrom entries left out)."""
    return {e["name"]: e["value"] for e in container_spec.get("env", []) if "value" in e}


def apply_server_side(control_plane: ControlPlane, objects: list[Manifest]) -> str:
    """``kubectl apply --server-side`` of the objects; returns kubectl's report."""
    applied = control_plane.kubectl(
        "apply",
        "--server-side",
        f"--field-manager={FIELD_MANAGER}",
        "-f",
        "-",
        input=yaml.safe_dump_all(objects),
    )
    assert applied.returncode == 0, f"the API server refused the objects:\n{applied.stderr}"
    return applied.stdout


def install(control_plane: ControlPlane, overlay: str) -> list[Manifest]:
    """docs/install.md's steps: the CRDs first (until Established), then the overlay."""
    apply_server_side(control_plane, render(control_plane, CRDS))
    established = control_plane.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=30s",
        "customresourcedefinitions",
        "--selector=app.kubernetes.io/part-of=azure-jit-operator",
    )
    assert established.returncode == 0, established.stderr
    for group_version in ("kopf.dev/v1", "azurejit.dev/v1alpha1"):

        def discovered(path: str = f"/apis/{group_version}") -> bool:
            return control_plane.kubectl("get", "--raw", path).returncode == 0

        wait_for(discovered, timeout=30, what=f"{group_version} in discovery")
    # kubectl cached discovery from before the CRDs existed.
    shutil.rmtree(control_plane.work_dir / KUBECTL_CACHE, ignore_errors=True)
    objects = render(control_plane, OVERLAYS[overlay])
    apply_server_side(control_plane, objects)
    return objects


def operator_settings_from(
    deployment: Manifest,
    *,
    arm_endpoint: str,
    ca_bundle: Path,
    kubeconfig: Path,
    **overrides: Any,
) -> Settings:
    """The operator's settings as the rendered Deployment configures them (namespaces, peering,
    log format...), with what only a test changes: where Azure and Kubernetes are, and serving
    on 127.0.0.1 on a free port instead of 0.0.0.0:9090."""
    env = literal_env(container(deployment))
    settings = Settings.from_env(env)
    return replace(
        settings,
        arm_endpoint=arm_endpoint,
        ca_bundle=ca_bundle,
        kubeconfig=kubeconfig,
        bind_address="127.0.0.1",
        metrics_port=0,
        log_format="plain",
        **overrides,
    ).validated()


def can_i(
    control_plane: ControlPlane,
    verb: str,
    resource: str,
    *,
    namespace: str | None = None,
    user: str = SERVICE_ACCOUNT_USER,
) -> bool:
    """``kubectl auth can-i <verb> <resource> --as=<user>`` (admin impersonating the user).
    ``kind/status`` asks about the status subresource (kubectl would read ``status`` as an
    object's name); any other ``kind/name`` about that object."""
    scope = [f"--namespace={namespace}"] if namespace else ["--all-namespaces"]
    kind, _, name = resource.partition("/")
    if name == "status":
        scope.append("--subresource=status")
        resource = kind
    answer = control_plane.kubectl("auth", "can-i", verb, resource, f"--as={user}", *scope)
    reply = answer.stdout.strip()
    assert reply in {"yes", "no"}, f"kubectl auth can-i answered {reply!r}: {answer.stderr}"
    return reply == "yes"


def rules_of(objects: Iterable[Manifest]) -> list[Mapping[str, Any]]:
    """Every RBAC rule the overlay grants (Roles and ClusterRoles)."""
    return [r for o in objects if o["kind"] in {"Role", "ClusterRole"} for r in o["rules"]]


def dump(objects: list[Manifest]) -> str:
    return json.dumps(objects, indent=1)
