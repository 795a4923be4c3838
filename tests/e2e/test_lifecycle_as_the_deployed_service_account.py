"""The operator authenticated as the ServiceAccount that deploy/ installs, with exactly the RBAC
an overlay renders, on a fresh API server set up the way docs/install.md says: the whole
lifecycle works (policy Ready, request Active, expiry, early revoke, TTL cleanup, policy
deletion, kopf peering) and the API server refuses it nothing along the way. On the way, the
live objects are judged as Argo CD (health Lua) and Flux (kstatus) would judge them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from tests.support.admission import RefusalLog
from tests.support.controlplane import (
    ControlPlane,
    service_account_kubeconfig,
    start_control_plane,
)
from tests.support.deploy import (
    OPERATOR_NAMESPACE,
    SERVICE_ACCOUNT,
    WATCHED_NAMESPACE,
    find,
    install,
    operator_settings_from,
)
from tests.support.emulator import EmulatorEndpoint
from tests.support.health import (
    KstatusUnavailableError,
    argo_health,
    in_ci,
    kstatus,
    kstatus_binary,
)
from tests.support.logs import LogWatch
from tests.support.manifests import policy_manifest, port_rule, request_manifest
from tests.support.operator import JitWorld, operator_running, wait_for


@pytest.fixture
def fresh_cluster(control_plane: ControlPlane) -> Iterator[ControlPlane]:
    """An API server of its own, without CRDs: the overlay installs everything itself, and no
    other test's objects or bindings are there to help or hinder."""
    with start_control_plane(control_plane.bin_dir, crd_dir=None) as plane:
        plane.kubectl("create", "namespace", WATCHED_NAMESPACE, check=True)
        yield plane


@pytest.fixture(scope="module")
def kstatus_tool() -> Path | None:
    """hack/kstatus, to judge the live objects as Flux would; None locally without Go."""
    try:
        return kstatus_binary()
    except KstatusUnavailableError:
        if in_ci():
            raise
        return None


class Judge:
    """How Argo CD (health Lua) and Flux (kstatus) see the operator's live objects."""

    def __init__(self, jit: JitWorld, tool: Path | None) -> None:
        self._jit = jit
        self._tool = tool

    def __call__(self, kind: str, name: str) -> tuple[str, str | None]:
        body = self._jit.get(kind, name)
        assert body is not None
        flux = kstatus(self._tool, [body])[0]["status"] if self._tool else None
        return argo_health(body)["status"], flux

    def expect(self, kind: str, name: str, argo: str, flux: str) -> None:
        got_argo, got_flux = self(kind, name)
        assert got_argo == argo, f"Argo CD sees {kind} {name} {got_argo}"
        assert got_flux in (flux, None), f"kstatus sees {kind} {name} {got_flux}"


@pytest.fixture
def refusals() -> Iterator[RefusalLog]:
    with RefusalLog() as handler:
        yield handler


def _peers(plane: ControlPlane, overlay: str) -> dict[str, Any]:
    with plane.api_client() as api:
        custom = k8s.CustomObjectsApi(api)
        body: Any = (
            custom.get_cluster_custom_object(
                "kopf.dev", "v1", "clusterkopfpeerings", "azure-jit-operator"
            )
            if overlay == "cluster-wide"
            else custom.get_namespaced_custom_object(
                "kopf.dev", "v1", WATCHED_NAMESPACE, "kopfpeerings", "azure-jit-operator"
            )
        )
    return dict(body.get("status") or {})


@pytest.mark.parametrize(
    ("overlay", "watched"),
    [
        pytest.param("cluster-wide", (), id="installed to watch every namespace"),
        pytest.param(
            "single-namespace", (WATCHED_NAMESPACE,), id="installed to watch one namespace"
        ),
    ],
)
def test_the_whole_lifecycle_runs_as_the_deployed_service_account(
    fresh_cluster: ControlPlane,
    emulator_endpoint: EmulatorEndpoint,
    *,
    refusals: RefusalLog,
    kstatus_tool: Path | None,
    overlay: str,
    watched: tuple[str, ...],
) -> None:
    plane = fresh_cluster
    objects = install(plane, overlay)
    kubeconfig = service_account_kubeconfig(
        plane, namespace=OPERATOR_NAMESPACE, name=SERVICE_ACCOUNT, create=False
    )
    settings = operator_settings_from(
        find(objects, "Deployment"),
        arm_endpoint=emulator_endpoint.base_url,
        ca_bundle=emulator_endpoint.ca_path,
        kubeconfig=kubeconfig,
        close_grace=timedelta(seconds=10),
        terminal_ttl=timedelta(hours=2),
    )
    assert settings.namespaces == watched
    assert not settings.standalone, "peering is mandatory, as deployed"
    admin = emulator_endpoint.sync_admin()
    admin.reset()
    admin.update_settings(never_revoke=True)  # only the operator closes ports here

    with plane.api_client() as api, operator_running(settings) as running:
        jit = JitWorld(
            control_plane=plane,
            emulator=emulator_endpoint,
            admin=admin,
            namespace=WATCHED_NAMESPACE,
            operator=running,
            api=api,
        )
        judge = Judge(jit, kstatus_tool)
        wait_for(
            lambda: _peers(plane, overlay), timeout=15, what="the operator's peering keep-alive"
        )

        jit.apply(request_manifest("waits", policy="web-admins", duration="30m"))
        jit.wait_phase("waits", "Pending")
        judge.expect("JitAccessRequest", "waits", "Progressing", "InProgress")

        jit.apply(policy_manifest(vms={"vm-web-01": [port_rule(22), port_rule(443)]}))
        jit.wait_policy_ready("web-admins")
        assert jit.wait_event("web-admins", "Applied")["type"] == "Normal"
        judge.expect("JitPolicy", "web-admins", "Healthy", "Current")
        jit.wait_phase("waits", "Active")
        jit.delete("JitAccessRequest", "waits")
        jit.wait_gone("JitAccessRequest", "waits")

        jit.apply(request_manifest("too-long", duration="4h"))
        jit.wait_phase("too-long", "Denied")
        judge.expect("JitAccessRequest", "too-long", "Degraded", "Failed")

        jit.apply(request_manifest("ssh-inc-4711", duration="1h"))
        jit.wait_phase("ssh-inc-4711", "Active")
        judge.expect("JitAccessRequest", "ssh-inc-4711", "Healthy", "Current")
        assert jit.open_sources("vm-web-01", 22) == ["198.51.100.7/32"]
        jit.jump(timedelta(hours=1))
        jit.wait_phase("ssh-inc-4711", "Expired", timeout=40)
        judge.expect("JitAccessRequest", "ssh-inc-4711", "Healthy", "Current")
        assert jit.allow_rules("vm-web-01", 22) == []
        assert {"Opened", "Expired"} <= {e["reason"] for e in jit.events("ssh-inc-4711")}

        jit.apply(request_manifest("https-early", ports=[(443, "198.51.100.9/32")]))
        jit.wait_phase("https-early", "Active")
        jit.delete("JitAccessRequest", "https-early")
        jit.wait_gone("JitAccessRequest", "https-early")
        assert jit.allow_rules("vm-web-01", 443) == [], "closed before the object went"
        assert "closed before expiry" in jit.wait_event("https-early", "Revoked")["message"]

        jit.jump(timedelta(hours=2))  # the expired and the denied request are past their TTL
        jit.wait_gone("JitAccessRequest", "ssh-inc-4711")
        jit.wait_gone("JitAccessRequest", "too-long")

        jit.delete("JitPolicy", "web-admins")
        jit.wait_gone("JitPolicy", "web-admins")
        assert jit.calls("JitNetworkAccessPolicies_Delete", "DELETE") == 1

    assert refusals.refusals == [], "the API server refused the operator:\n" + "\n".join(
        refusals.refusals
    )


def test_two_replicas_run_as_active_and_standby_and_the_standby_takes_over(
    fresh_cluster: ControlPlane, emulator_endpoint: EmulatorEndpoint
) -> None:
    """kopf peering pauses every operator that sees a peer of higher priority, and each
    process picks its own (random, or AZURE_JIT_PEERING_PRIORITY): of two replicas the higher
    works and the lower stands by, and resumes as soon as the active one leaves."""
    plane = fresh_cluster
    objects = install(plane, "single-namespace")
    kubeconfig = service_account_kubeconfig(
        plane, namespace=OPERATOR_NAMESPACE, name=SERVICE_ACCOUNT, create=False
    )
    settings = operator_settings_from(
        find(objects, "Deployment"),
        arm_endpoint=emulator_endpoint.base_url,
        ca_bundle=emulator_endpoint.ca_path,
        kubeconfig=kubeconfig,
    )
    admin = emulator_endpoint.sync_admin()
    admin.reset()
    log = LogWatch().attach()
    try:
        with (
            plane.api_client() as api,
            operator_running(dataclasses.replace(settings, peering_priority=100)) as standby,
        ):
            jit = JitWorld(
                control_plane=plane,
                emulator=emulator_endpoint,
                admin=admin,
                namespace=WATCHED_NAMESPACE,
                operator=standby,
                api=api,
            )
            jit.apply(policy_manifest("web-admins"))
            jit.wait_policy_ready("web-admins")

            with operator_running(dataclasses.replace(settings, peering_priority=200)):
                wait_for(
                    lambda: log.seen("Pausing operations in favour of") >= 1,
                    timeout=30,
                    what="the lower-priority replica to pause",
                )
                resumed = log.seen("Resuming operations")
                # The active replica serves new objects while the other stands by.
                jit.apply(policy_manifest("db-admins", vms={"vm-db-01": [port_rule(5432)]}))
                jit.wait_policy_ready("db-admins", timeout=30)

            # The active replica left (and removed itself from the peering): the standby
            # resumes and serves what comes next.
            wait_for(
                lambda: log.seen("Resuming operations") > resumed,
                timeout=30,
                what="the standby to resume",
            )
            jit.apply(policy_manifest("app-admins", vms={"vm-app-01": [port_rule(22)]}))
            jit.wait_policy_ready("app-admins", timeout=30)
    finally:
        log.detach()
