"""Each overlay renders with `kubectl kustomize`, installs on a fresh API server with
server-side apply (CRDs first, as docs/install.md says), re-applies without change, and its
pod passes the restricted Pod Security Standard; the rendered objects hold together (names,
selectors, ports, peering, Workload Identity) and the pod is hardened."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from azure_arm_emulator.world import load_world
from azure_jit_operator.reconcile.controller import GRACEFUL_STOP_SECONDS
from tests.support.controlplane import ControlPlane, start_control_plane
from tests.support.deploy import (
    OPERATOR_NAMESPACE,
    OVERLAYS,
    SERVICE_ACCOUNT_USER,
    WATCHED_NAMESPACE,
    Manifest,
    apply_server_side,
    container,
    find,
    install,
    literal_env,
    render,
    rules_of,
)
from tests.support.repo import CRDS

OVERLAY_IDS = {
    "cluster-wide": "the cluster-wide overlay",
    "single-namespace": "the single-namespace overlay",
    "demo": "the demo overlay",
}
EVERY_OVERLAY = pytest.mark.parametrize(
    "overlay", [pytest.param(name, id=text) for name, text in OVERLAY_IDS.items()]
)


@pytest.fixture(scope="module")
def fresh_cluster(control_plane: ControlPlane) -> Iterator[ControlPlane]:
    with start_control_plane(control_plane.bin_dir, crd_dir=None) as plane:
        plane.kubectl("create", "namespace", WATCHED_NAMESPACE, check=True)
        yield plane


@pytest.fixture(scope="module")
def rendered(control_plane: ControlPlane) -> dict[str, list[Manifest]]:
    return {name: render(control_plane, path) for name, path in OVERLAYS.items()}


def _pod_spec(objects: list[Manifest]) -> dict[str, Any]:
    spec: dict[str, Any] = find(objects, "Deployment")["spec"]["template"]["spec"]
    return spec


def _containers(objects: list[Manifest]) -> list[Manifest]:
    spec = _pod_spec(objects)
    return [*spec.get("initContainers", []), *spec["containers"]]


@EVERY_OVERLAY
def test_every_rendered_object_is_accepted_with_server_side_apply_and_reapplies_unchanged(
    fresh_cluster: ControlPlane, overlay: str
) -> None:
    objects = install(fresh_cluster, overlay)
    for obj in objects:
        namespace = obj["metadata"].get("namespace")
        got = fresh_cluster.kubectl(
            "get",
            f"{obj['kind']}.{obj['apiVersion'].split('/')[0]}"
            if "/" in obj["apiVersion"]
            else obj["kind"],
            obj["metadata"]["name"],
            *([f"--namespace={namespace}"] if namespace else []),
        )
        assert got.returncode == 0, f"{obj['kind']} {obj['metadata']['name']}: {got.stderr}"
    again = apply_server_side(fresh_cluster, objects)
    assert again.count("serverside-applied") == len(objects)


@EVERY_OVERLAY
def test_the_operator_pod_passes_the_restricted_pod_security_standard(
    fresh_cluster: ControlPlane, rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    install(fresh_cluster, overlay)
    template = find(rendered[overlay], "Deployment")["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "pss-check", "namespace": OPERATOR_NAMESPACE, **template["metadata"]},
        "spec": template["spec"],
    }
    created = fresh_cluster.kubectl(
        "create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(pod)
    )
    assert created.returncode == 0, created.stderr
    assert "violate" not in created.stderr + created.stdout


@EVERY_OVERLAY
def test_every_container_is_hardened_and_bounded(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    pod = _pod_spec(rendered[overlay])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for spec in _containers(rendered[overlay]):
        security = spec["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, spec["name"]
        assert security["allowPrivilegeEscalation"] is False, spec["name"]
        assert security["capabilities"] == {"drop": ["ALL"]}, spec["name"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(spec["resources"][kind]), (spec["name"], kind)


@EVERY_OVERLAY
def test_probes_ask_the_operator_on_its_metrics_port(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    operator = container(find(rendered[overlay], "Deployment"))
    env = literal_env(operator)
    assert env["AZURE_JIT_BIND_ADDRESS"] == "0.0.0.0", "the kubelet probes the pod IP"
    port = next(p for p in operator["ports"] if p["name"] == "metrics")
    assert str(port["containerPort"]) == env["AZURE_JIT_METRICS_PORT"]
    assert operator["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert operator["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    service = find(rendered[overlay], "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    labels = find(rendered[overlay], "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    budget = find(rendered[overlay], "PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()


@EVERY_OVERLAY
def test_replicas_stand_by_for_each_other_and_stop_gracefully(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    deployment = find(rendered[overlay], "Deployment")
    # Active and standby (distinct random peering priorities); the demo's pod carries its own
    # emulator, so it runs alone.
    assert deployment["spec"]["replicas"] == (1 if overlay == "demo" else 2)
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0
    budget = find(rendered[overlay], "PodDisruptionBudget")
    assert budget["spec"] == {**budget["spec"], "minAvailable": 1}
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace >= GRACEFUL_STOP_SECONDS + 20, "in-flight Azure calls and status writes finish"
    env = {e["name"]: e for e in container(deployment)["env"]}
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


@EVERY_OVERLAY
def test_the_peering_object_is_the_one_the_operator_uses_and_may_patch(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    objects = rendered[overlay]
    env = literal_env(container(find(objects, "Deployment")))
    name = env["AZURE_JIT_PEERING_NAME"]
    watched = [n for n in env["AZURE_JIT_NAMESPACES"].split(",") if n]
    if watched:
        assert [find(objects, "KopfPeering", name)["metadata"]["namespace"]] == watched
        assert find(objects, "Role")["metadata"]["namespace"] == watched[0]
        peering_resource = "kopfpeerings"
    else:
        find(objects, "ClusterKopfPeering", name)
        peering_resource = "clusterkopfpeerings"
    patchable = [
        r.get("resourceNames")
        for r in rules_of(objects)
        if peering_resource in r["resources"] and "patch" in r["verbs"]
    ]
    assert patchable == [[name]]


@EVERY_OVERLAY
def test_rbac_names_every_verb_and_resource_and_no_secret_but_the_namespace_credential(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    for rule in rules_of(rendered[overlay]):
        assert "*" not in rule["verbs"]
        assert "*" not in rule["resources"]
        assert "*" not in rule.get("apiGroups", [])
        if "secrets" in rule["resources"]:
            # The namespace credential (components) or the approvers' webhook URL (JitPolicy
            # spec.approval.notify): `get` of one Secret name, never list/watch/any Secret.
            assert rule in [
                {
                    "apiGroups": [""],
                    "resources": ["secrets"],
                    "resourceNames": [name],
                    "verbs": ["get"],
                }
                for name in ("azure-jit-credential", "azure-jit-notify")
            ]
        for forbidden in ("pods", "configmaps", "roles", "clusterroles", "rolebindings"):
            assert forbidden not in rule["resources"]
    subjects = [
        f"system:serviceaccount:{s['namespace']}:{s['name']}"
        for o in rendered[overlay]
        if o["kind"] in {"RoleBinding", "ClusterRoleBinding"}
        for s in o["subjects"]
    ]
    assert set(subjects) == {SERVICE_ACCOUNT_USER}


@EVERY_OVERLAY
def test_the_crds_are_the_ones_in_crds_not_copies(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    for path in sorted(CRDS.glob("*.yaml")):
        source = yaml.safe_load(path.read_text())
        out = find(rendered[overlay], "CustomResourceDefinition", source["metadata"]["name"])
        assert out["spec"] == source["spec"]


@pytest.mark.parametrize(
    "overlay",
    [
        pytest.param("cluster-wide", id="the cluster-wide overlay"),
        pytest.param("single-namespace", id="the single-namespace overlay"),
    ],
)
def test_on_aks_workload_identity_injects_the_azure_credentials(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    objects = rendered[overlay]
    account = find(objects, "ServiceAccount")
    assert "azure.workload.identity/client-id" in account["metadata"]["annotations"]
    template = find(objects, "Deployment")["spec"]["template"]
    assert template["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert template["spec"]["serviceAccountName"] == account["metadata"]["name"]
    env = literal_env(container(find(objects, "Deployment")))
    assert "AZURE_JIT_ARM_ENDPOINT" not in env, "the public Azure Resource Manager"


def test_the_demo_pod_signs_in_to_its_emulator_as_the_default_worlds_operator(
    rendered: dict[str, list[Manifest]],
) -> None:
    objects = rendered["demo"]
    pod = _pod_spec(objects)
    emulator = next(c for c in pod["initContainers"] if c["name"] == "azure-emulator")
    assert emulator["restartPolicy"] == "Always", "a native sidecar: up before the operator"
    args = emulator["args"]
    port, cert_dir = args[args.index("--port") + 1], args[args.index("--cert-dir") + 1]
    settings = find(objects, "ConfigMap")["data"]
    assert settings["AZURE_JIT_ARM_ENDPOINT"] == f"https://127.0.0.1:{port}"
    assert settings["AZURE_AUTHORITY_HOST"] == f"https://127.0.0.1:{port}"
    assert settings["AZURE_JIT_CA_BUNDLE"] == f"{cert_dir}/ca.pem"
    operator = container(find(objects, "Deployment"))
    mounts = {m["mountPath"]: m["name"] for m in operator["volumeMounts"]}
    assert mounts[cert_dir] == "emulator-certs"
    token_dir, _, token_file = settings["AZURE_FEDERATED_TOKEN_FILE"].rpartition("/")
    volume = next(v for v in pod["volumes"] if v["name"] == mounts[token_dir])
    projected = volume["projected"]["sources"][0]["serviceAccountToken"]
    assert projected["path"] == token_file
    assert projected["audience"] == "api://AzureADTokenExchange"
    identity = next(
        i for i in load_world().identities if i.client_id == settings["AZURE_CLIENT_ID"]
    )
    assert identity.tenant_id == settings["AZURE_TENANT_ID"]
    assert SERVICE_ACCOUNT_USER in identity.federated_subjects
    account = find(objects, "ServiceAccount")
    assert (
        account["metadata"]["annotations"]["azure.workload.identity/client-id"]
        == (settings["AZURE_CLIENT_ID"])
    )
    assert emulator["command"] == ["azure-arm-emulator"]
    assert emulator["image"] == "azure-arm-emulator:dev", "the emulator's own image"
    assert operator["image"] == "azure-jit-operator:dev", "the operator's image has no emulator"
