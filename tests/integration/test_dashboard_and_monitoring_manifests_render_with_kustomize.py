"""deploy/monitoring as users apply it (`kubectl apply -k deploy/monitoring`): kustomize
renders the ServiceMonitor, the PrometheusRule and the dashboard ConfigMap for Grafana's
sidecar, and the ServiceMonitor finds the operator's metrics Service of the install, whose
pods serve the probes the Deployment uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.support.controlplane import ControlPlane
from tests.support.prometheus import JOB, MONITORING, OPERATOR_NAMESPACE
from tests.support.repo import ROOT

DASHBOARD = MONITORING / "dashboards" / "azure-jit-operator.json"
INSTALL = ROOT / "deploy" / "overlays" / "cluster-wide"
Manifest = dict[str, Any]


def _render(control_plane: ControlPlane, directory: Path) -> list[Manifest]:
    built = control_plane.kubectl("kustomize", str(directory))
    assert built.returncode == 0, f"kubectl kustomize {directory} failed:\n{built.stderr}"
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


def _one(objects: list[Manifest], kind: str) -> Manifest:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def test_monitoring_renders_a_service_monitor_the_alerts_and_the_dashboard(
    control_plane: ControlPlane,
) -> None:
    objects = _render(control_plane, MONITORING)
    assert sorted((o["kind"], o["metadata"]["name"]) for o in objects) == [
        ("ConfigMap", "azure-jit-operator-dashboard"),
        ("PrometheusRule", "azure-jit-operator"),
        ("ServiceMonitor", "azure-jit-operator"),
    ]
    assert {o["metadata"]["namespace"] for o in objects} == {OPERATOR_NAMESPACE}
    dashboard = _one(objects, "ConfigMap")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["azure-jit-operator.json"]) == json.loads(
        DASHBOARD.read_text(encoding="utf-8")
    )
    rule = _one(objects, "PrometheusRule")
    committed = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text(encoding="utf-8"))
    assert rule["spec"] == committed["spec"]


def test_the_service_monitor_scrapes_the_operators_metrics_service_as_the_alerts_expect(
    control_plane: ControlPlane,
) -> None:
    monitor = _one(_render(control_plane, MONITORING), "ServiceMonitor")
    install = _render(control_plane, INSTALL)
    selector = monitor["spec"]["selector"]["matchLabels"]
    services = [
        o
        for o in install
        if o["kind"] == "Service"
        and o["metadata"]["namespace"] == monitor["metadata"]["namespace"]
        and selector.items() <= o["metadata"].get("labels", {}).items()
    ]
    assert [s["metadata"]["name"] for s in services] == ["azure-jit-operator-metrics"]
    service = services[0]
    [endpoint] = monitor["spec"]["endpoints"]
    [port] = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
    # The job label comes from the Service label jobLabel names: the alerts select on it.
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == JOB
    # Our series carry their own `namespace` label; it must win over the target's.
    assert endpoint["honorLabels"] is True
    assert endpoint["path"] == "/metrics"

    deployment = _one(install, "Deployment")
    pod = deployment["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    [container] = [
        c
        for c in pod["spec"]["containers"]
        if any(p.get("name") == port["targetPort"] for p in c.get("ports", []))
    ]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] == port["targetPort"]
