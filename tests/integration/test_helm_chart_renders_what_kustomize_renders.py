"""The Helm chart renders, for each of its variant values files (deploy/helm/azure-jit-operator/
ci/) and for its defaults, exactly the objects `kubectl kustomize` renders for the matching
overlay with the matching components: RBAC, ServiceAccount, Deployment, Services,
PodDisruptionBudget, peering, cert-manager objects, webhook configurations and monitoring,
field by field. Changing one side and not the other fails here. The chart's CRDs and monitoring
files are byte-equal copies of the repository's; what the rendered Deployment configures is
what the operator accepts; a customised render is accepted by the API server."""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from azure_jit_operator.config import Settings
from tests.support.controlplane import ControlPlane
from tests.support.deploy import (
    DEPLOY,
    OVERLAYS,
    Manifest,
    container,
    find,
    literal_env,
    render,
)
from tests.support.helm import AS_THE_KUSTOMIZE_BASE, CHART, CI_VALUES, helm_or_skip, template
from tests.support.repo import CRDS

# A cold build of helm (hack/helm/build.sh) takes a few minutes on 2 cores; `make test` has it
# built by `make lint` before pytest starts.
pytestmark = pytest.mark.timeout(900)

COMPONENTS = DEPLOY / "components"
MONITORING = DEPLOY / "monitoring"
DEFAULTS = "the default values"
# Each values file of the chart (or its defaults) and what kustomize renders for the same
# settings: (overlay, components, more resources).
KUSTOMIZED: dict[str, tuple[str, list[str], list[Path]]] = {
    DEFAULTS: ("cluster-wide", [], []),
    "single-namespace-values.yaml": ("single-namespace", [], []),
    "webhooks-cert-manager-values.yaml": ("cluster-wide", ["webhooks-cert-manager"], []),
    "webhooks-managed-values.yaml": ("cluster-wide", ["webhooks-managed"], []),
    "namespace-credentials-values.yaml": ("cluster-wide", ["namespace-credentials"], []),
    "single-namespace-webhooks-cert-manager-values.yaml": (
        "single-namespace",
        ["webhooks-cert-manager"],
        [],
    ),
    "single-namespace-webhooks-managed-values.yaml": (
        "single-namespace",
        ["webhooks-managed"],
        [],
    ),
    "single-namespace-namespace-credentials-values.yaml": (
        "single-namespace",
        ["namespace-credentials-single-namespace"],
        [],
    ),
    "webhooks-cert-manager-namespace-credentials-values.yaml": (
        "cluster-wide",
        ["webhooks-cert-manager", "namespace-credentials"],
        [],
    ),
    "monitoring-values.yaml": ("cluster-wide", [], [MONITORING]),
}
# Values files with no kustomize counterpart (every knob the overlays do not have).
HELM_ONLY = {"customised-values.yaml"}
CUSTOMISED = CI_VALUES / "customised-values.yaml"
VARIANTS = pytest.mark.parametrize("variant", list(KUSTOMIZED))
# Lists whose entries are keyed by name and whose order means nothing (no $(VAR) references):
# kustomize's strategic merge puts a component's entries first, the chart writes them in place.
NAMED_LISTS = ("env", "ports", "volumeMounts", "volumes", "containers", "initContainers")
CHART_CRDS = {
    "jitaccessrequests.azurejit.dev.yaml": CRDS / "jitaccessrequests.azurejit.dev.yaml",
    "jitpolicies.azurejit.dev.yaml": CRDS / "jitpolicies.azurejit.dev.yaml",
    "jitaccessschedules.azurejit.dev.yaml": CRDS / "jitaccessschedules.azurejit.dev.yaml",
    "kopf-peering-crds.yaml": DEPLOY / "crds" / "kopf-peering-crds.yaml",
}
CHART_FILES = {
    "files/azure-jit-operator.rules.yml": MONITORING / "rules" / "azure-jit-operator.rules.yml",
    "files/dashboards/azure-jit-operator.json": MONITORING
    / "dashboards"
    / "azure-jit-operator.json",
}


@pytest.fixture(scope="module")
def helm() -> Path:
    return helm_or_skip()


def _values_files(variant: str) -> list[Path]:
    return [] if variant == DEFAULTS else [CI_VALUES / variant]


def _kustomization(
    work_dir: Path, overlay: str, components: Sequence[str], resources: Sequence[Path]
) -> Path:
    """A user's own kustomization: the overlay, more resources, components (relative paths, as
    kustomize wants them)."""
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(p, work_dir) for p in [OVERLAYS[overlay], *resources]],
        "components": [os.path.relpath(COMPONENTS / c, work_dir) for c in components],
    }
    (work_dir / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return work_dir


def _normalised(obj: Any) -> Any:
    """The object with named lists in name order; nothing else changes."""
    if isinstance(obj, dict):
        out = {k: _normalised(v) for k, v in obj.items()}
        for key in NAMED_LISTS:
            value = out.get(key)
            if isinstance(value, list) and all(isinstance(e, dict) and "name" in e for e in value):
                out[key] = sorted(value, key=lambda e: str(e["name"]))
        return out
    if isinstance(obj, list):
        return [_normalised(v) for v in obj]
    return obj


def _by_identity(objects: Iterable[Manifest]) -> dict[tuple[str, str, str, str], Manifest]:
    """Every object but the CRDs (compared as files below), by apiVersion, kind, namespace and
    name; each identity once."""
    out: dict[tuple[str, str, str, str], Manifest] = {}
    for obj in objects:
        if obj["kind"] == "CustomResourceDefinition":
            continue
        meta = obj["metadata"]
        key = (obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])
        assert key not in out, f"{key} rendered twice"
        out[key] = _normalised(obj)
    return out


@pytest.fixture(scope="module")
def kustomized(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[Manifest]]:
    out: dict[str, list[Manifest]] = {}
    for variant, (overlay, components, resources) in KUSTOMIZED.items():
        work = tmp_path_factory.mktemp("kustomization")
        out[variant] = render(control_plane, _kustomization(work, overlay, components, resources))
    return out


@pytest.fixture(scope="module")
def charted(helm: Path) -> dict[str, list[Manifest]]:
    return {
        variant: template(helm, values_files=_values_files(variant), values=AS_THE_KUSTOMIZE_BASE)
        for variant in KUSTOMIZED
    }


def test_every_values_file_of_the_chart_has_a_kustomize_counterpart_or_is_helm_only() -> None:
    shipped = {p.name for p in CI_VALUES.glob("*.yaml")}
    assert shipped == (set(KUSTOMIZED) - {DEFAULTS}) | HELM_ONLY


@VARIANTS
def test_the_chart_renders_the_objects_kustomize_renders_for_the_same_settings(
    kustomized: dict[str, list[Manifest]], charted: dict[str, list[Manifest]], variant: str
) -> None:
    want = _by_identity(kustomized[variant])
    got = _by_identity(charted[variant])
    assert sorted(got) == sorted(want), "the chart and kustomize render different objects"
    for key, expected in want.items():
        assert got[key] == expected, f"{key} differs:\n" + _diff(expected, got[key])


@VARIANTS
def test_the_operator_accepts_the_settings_each_variant_gives_it(
    charted: dict[str, list[Manifest]], variant: str
) -> None:
    env = literal_env(container(find(charted[variant], "Deployment")))
    settings = Settings.from_env(env)
    _, components, _ = KUSTOMIZED[variant]
    watched = yaml.safe_load((_values_files(variant) or [CHART / "values.yaml"])[0].read_text())
    assert settings.namespaces == tuple(filter(None, [watched.get("watchNamespace", "")]))
    assert settings.webhooks == (
        "external"
        if "webhooks-cert-manager" in components
        else "managed"
        if "webhooks-managed" in components
        else "off"
    )


def test_the_chart_crds_are_byte_equal_copies_of_the_repositorys_crds() -> None:
    shipped = {p.name for p in (CHART / "crds").iterdir()}
    assert shipped == set(CHART_CRDS), "every CRD the operator needs, and nothing else"
    for name, source in CHART_CRDS.items():
        assert (CHART / "crds" / name).read_bytes() == source.read_bytes(), (
            f"deploy/helm/azure-jit-operator/crds/{name} differs from "
            f"{source.relative_to(DEPLOY.parent)}: copy it again"
        )


def test_the_chart_monitoring_files_are_byte_equal_copies_of_deploy_monitoring() -> None:
    for name, source in CHART_FILES.items():
        assert (CHART / name).read_bytes() == source.read_bytes(), (
            f"deploy/helm/azure-jit-operator/{name} differs from "
            f"{source.relative_to(DEPLOY.parent)}: copy it again"
        )


def test_helm_installs_the_same_crds_kustomize_renders(
    helm: Path, kustomized: dict[str, list[Manifest]]
) -> None:
    """What --include-crds adds is the CRDs kustomize applies (kustomize only adds its labels)."""
    crds = [
        o
        for o in template(helm, values=AS_THE_KUSTOMIZE_BASE, include_crds=True)
        if o["kind"] == "CustomResourceDefinition"
    ]
    want = {
        o["metadata"]["name"]: o["spec"]
        for o in kustomized[DEFAULTS]
        if o["kind"] == "CustomResourceDefinition"
    }
    assert {o["metadata"]["name"]: o["spec"] for o in crds} == want


def test_a_customised_release_sets_every_knob_and_the_api_server_accepts_it(
    helm: Path, control_plane: ControlPlane, namespace: str
) -> None:
    objects = template(helm, values_files=[CUSTOMISED], namespace=namespace)
    values = yaml.safe_load(CUSTOMISED.read_text())
    deployment = find(objects, "Deployment")
    operator = container(deployment)
    image = values["image"]
    assert operator["image"] == f"{image['repository']}:{image['tag']}@{image['digest']}"
    assert operator["imagePullPolicy"] == "Always"
    assert operator["resources"] == values["resources"]
    assert deployment["spec"]["replicas"] == 3
    assert find(objects, "PodDisruptionBudget")["spec"]["minAvailable"] == 2
    env = literal_env(operator)
    assert env.pop("AZURE_JIT_CA_BUNDLE") == "/etc/azure-ca/ca.pem"  # a file in the pod only
    settings = Settings.from_env(env)
    assert (settings.close_grace.seconds, settings.drift_interval.seconds) == (45, 120)
    assert settings.terminal_ttl.seconds == 3600
    assert (settings.log_format, settings.log_level) == ("plain", "DEBUG")
    assert settings.arm_endpoint == "https://management.usgovcloudapi.net"
    assert settings.namespace_credentials == "required"
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["labels"]["example.com/team"] == "platform"
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
    account = find(objects, "ServiceAccount")
    assert account["metadata"]["annotations"] == {
        "azure.workload.identity/client-id": values["azure"]["clientId"],
        "example.com/owner": "platform",
    }
    for obj in objects:
        assert obj["metadata"]["labels"]["example.com/cost-centre"] == "4711", obj["kind"]
    assert find(objects, "ConfigMap")["metadata"]["namespace"] == "grafana"
    for kind in ("ServiceMonitor", "PrometheusRule"):
        assert find(objects, kind)["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    # Every built-in kind as the API server judges it (the Prometheus Operator's and kopf's
    # peering kinds have no CRDs here, the dashboard's namespace does not exist).
    builtin = [
        o
        for o in objects
        if o["apiVersion"].split("/")[0] in {"v1", "apps", "policy", "rbac.authorization.k8s.io"}
        and o["kind"] != "ConfigMap"
    ]
    checked = control_plane.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(builtin)
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.count("(server dry run)") == len(builtin)


def _diff(want: Manifest, got: Manifest) -> str:
    return "\n".join(
        difflib.unified_diff(
            yaml.safe_dump(copy.deepcopy(want)).splitlines(),
            yaml.safe_dump(copy.deepcopy(got)).splitlines(),
            "kustomize",
            "helm",
            lineterm="",
        )
    )
