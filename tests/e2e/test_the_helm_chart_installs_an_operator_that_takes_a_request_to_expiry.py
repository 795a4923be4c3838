"""What `helm template` of the chart renders, applied to a fresh API server (the chart's CRDs
first, until Established, then the rest, as `helm install` orders them), is enough for the
operator to run as the chart's ServiceAccount with the chart's settings: a JitAccessRequest goes
Pending (no policy yet), Active (port open in Azure) and Expired (port closed), and the API
server refuses the operator nothing on the way.

There is no registry, so the Deployment's pod cannot run from an image here; the operator runs
as a local process with the ServiceAccount's token and the Deployment's environment, as
tests/e2e/test_lifecycle_as_the_deployed_service_account.py does for the kustomize overlays."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from tests.support.admission import RefusalLog
from tests.support.controlplane import (
    KUBECTL_CACHE,
    ControlPlane,
    service_account_kubeconfig,
    start_control_plane,
)
from tests.support.deploy import (
    OPERATOR_NAMESPACE,
    SERVICE_ACCOUNT,
    Manifest,
    apply_server_side,
    find,
    operator_settings_from,
)
from tests.support.emulator import EmulatorEndpoint
from tests.support.helm import helm_or_skip, template
from tests.support.manifests import policy_manifest, port_rule, request_manifest
from tests.support.operator import JitWorld, operator_running, wait_for

# A cold build of helm (hack/helm/build.sh) takes a few minutes on 2 cores; `make test` has it
# built by `make lint` before pytest starts.
pytestmark = pytest.mark.timeout(900)

TEAM = "team-web"
# The chart's defaults (every namespace watched), with the Namespace rendered by the chart.
VALUES = {"namespace": {"create": True}}


@pytest.fixture
def fresh_cluster(control_plane: ControlPlane) -> Iterator[ControlPlane]:
    """An API server of its own, without CRDs: the chart brings them."""
    with start_control_plane(control_plane.bin_dir, crd_dir=None) as plane:
        plane.kubectl("create", "namespace", TEAM, check=True)
        yield plane


@pytest.fixture
def refusals() -> Iterator[RefusalLog]:
    with RefusalLog() as handler:
        yield handler


def install_chart(plane: ControlPlane, helm: Path) -> list[Manifest]:
    """`helm install`'s order with `helm template`'s output: the CRDs (crds/) first, until
    Established and discoverable, then every other object. Returns those others."""
    rendered = template(helm, values=VALUES, include_crds=True)
    crds = [o for o in rendered if o["kind"] == "CustomResourceDefinition"]
    others = [o for o in rendered if o["kind"] != "CustomResourceDefinition"]
    assert sorted(o["metadata"]["name"] for o in crds) == [
        "clusterkopfpeerings.kopf.dev",
        "jitaccessrequests.azurejit.dev",
        "jitaccessschedules.azurejit.dev",
        "jitpolicies.azurejit.dev",
        "kopfpeerings.kopf.dev",
    ]
    apply_server_side(plane, crds)
    for crd in crds:
        established = plane.kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=30s",
            f"customresourcedefinitions/{crd['metadata']['name']}",
        )
        assert established.returncode == 0, established.stderr
    for group_version in ("kopf.dev/v1", "azurejit.dev/v1alpha1"):

        def discovered(path: str = f"/apis/{group_version}") -> bool:
            return plane.kubectl("get", "--raw", path).returncode == 0

        wait_for(discovered, timeout=30, what=f"{group_version} in discovery")
    # kubectl cached discovery from before the CRDs existed.
    shutil.rmtree(plane.work_dir / KUBECTL_CACHE, ignore_errors=True)
    apply_server_side(plane, others)
    return others


def test_a_request_goes_pending_active_expired_as_the_charts_service_account(
    fresh_cluster: ControlPlane, emulator_endpoint: EmulatorEndpoint, refusals: RefusalLog
) -> None:
    plane = fresh_cluster
    objects = install_chart(plane, helm_or_skip())
    assert find(objects, "Namespace")["metadata"]["name"] == OPERATOR_NAMESPACE
    find(objects, "ClusterKopfPeering", "azure-jit-operator")
    kubeconfig = service_account_kubeconfig(
        plane, namespace=OPERATOR_NAMESPACE, name=SERVICE_ACCOUNT, create=False
    )
    settings = operator_settings_from(
        find(objects, "Deployment"),
        arm_endpoint=emulator_endpoint.base_url,
        ca_bundle=emulator_endpoint.ca_path,
        kubeconfig=kubeconfig,
        close_grace=timedelta(seconds=10),
    )
    assert settings.namespaces == (), "the chart's default watches every namespace"
    assert not settings.standalone, "peering is mandatory, as deployed"
    admin = emulator_endpoint.sync_admin()
    admin.reset()
    admin.update_settings(never_revoke=True)  # only the operator closes ports here

    with plane.api_client() as api, operator_running(settings) as running:
        jit = JitWorld(
            control_plane=plane,
            emulator=emulator_endpoint,
            admin=admin,
            namespace=TEAM,
            operator=running,
            api=api,
        )
        peering: Any = k8s.CustomObjectsApi(api).get_cluster_custom_object(
            "kopf.dev", "v1", "clusterkopfpeerings", "azure-jit-operator"
        )
        assert peering["metadata"]["name"] == settings.peering_name

        jit.apply(request_manifest("ssh-inc-4711", duration="1h"))
        jit.wait_phase("ssh-inc-4711", "Pending")
        assert jit.allow_rules("vm-web-01") == [], "nothing opens without a policy"

        jit.apply(policy_manifest(vms={"vm-web-01": [port_rule(22)]}))
        jit.wait_policy_ready("web-admins")
        jit.wait_phase("ssh-inc-4711", "Active")
        assert jit.open_sources("vm-web-01", 22) == ["198.51.100.7/32"]

        jit.jump(timedelta(hours=1))
        jit.wait_phase("ssh-inc-4711", "Expired", timeout=40)
        assert jit.allow_rules("vm-web-01", 22) == []
        reasons = {e["reason"] for e in jit.events("ssh-inc-4711")}
        assert {"Opened", "Expired"} <= reasons, reasons

    assert refusals.refusals == [], "the API server refused the operator:\n" + "\n".join(
        refusals.refusals
    )
