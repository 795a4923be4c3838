"""The admission webhooks as deploy/components installs them, with the operator authenticated as
the deployed ServiceAccount on a fresh API server (docs/install.md's steps):

- webhooks-managed (+ namespace-credentials): the operator keeps the webhook configurations
  itself with exactly the component's RBAC, approvals work end to end, the API server refuses
  the operator nothing (it reads the Secret azure-jit-notify to notify approvers), and the
  ServiceAccount still cannot read any Secret but azure-jit-credential and azure-jit-notify.
  After a graceful stop kopf leaves the configurations behind, empty; docs/install.md's
  cleanup command removes them.
- webhooks-cert-manager: the static configurations, with the caBundle as cert-manager's
  cainjector would set it (and the Service reference replaced by the operator's loopback URL,
  same paths: no Service routing without kube-proxy), reach the right handlers; while the
  operator is down, creating requests and recording decisions is refused.
"""

from __future__ import annotations

import dataclasses
import json
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s

from azure_jit_devtools.localcluster.processes import free_port
from azure_jit_operator.config import Settings
from tests.support import approvals
from tests.support.admission import RefusalLog, create_as, decide_as
from tests.support.approvals import manual_policy
from tests.support.components import (
    WEBHOOK_CONFIGURATION_KINDS,
    delete_webhook_configurations,
    install_composed,
    issue_webhook_certificate,
    kinds,
    live_webhook_configurations,
    reachable_from_here,
    render_composed,
    semantics,
)
from tests.support.controlplane import (
    ControlPlane,
    service_account_kubeconfig,
    start_control_plane,
)
from tests.support.deploy import (
    OPERATOR_NAMESPACE,
    SERVICE_ACCOUNT,
    WATCHED_NAMESPACE,
    Manifest,
    apply_server_side,
    can_i,
    find,
    operator_settings_from,
)
from tests.support.emulator import EmulatorEndpoint
from tests.support.manifests import request_manifest
from tests.support.operator import JitWorld, RunningOperator, operator_running, wait_for
from tests.support.webhook_receiver import WebhookReceiver, webhook_receiver

OTHER_NAMESPACE = "payments"
NS = WATCHED_NAMESPACE


@pytest.fixture
def fresh_cluster(control_plane: ControlPlane) -> Iterator[ControlPlane]:
    """An API server of its own, without CRDs; the users' RBAC of tests/support/approvals.py."""
    with start_control_plane(control_plane.bin_dir, crd_dir=None) as plane:
        for namespace in (NS, OTHER_NAMESPACE):
            plane.kubectl("create", "namespace", namespace, check=True)
        plane.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(approvals.rbac(NS)), check=True)
        yield plane


def _installed(
    plane: ControlPlane,
    emulator: EmulatorEndpoint,
    work_dir: Path,
    components: list[str],
    **overrides: object,
) -> tuple[list[Manifest], Settings]:
    """The cluster-wide overlay with ``components`` installed; the operator's settings as the
    rendered Deployment has them, authenticated as the deployed ServiceAccount."""
    objects = render_composed(plane, work_dir / "kustomization", "cluster-wide", components)
    install_composed(plane, "cluster-wide", objects)
    kubeconfig = service_account_kubeconfig(
        plane, namespace=OPERATOR_NAMESPACE, name=SERVICE_ACCOUNT, create=False
    )
    settings = operator_settings_from(
        find(objects, "Deployment"),
        arm_endpoint=emulator.base_url,
        ca_bundle=emulator.ca_path,
        kubeconfig=kubeconfig,
        close_grace=timedelta(seconds=10),
        **overrides,
    )
    emulator.sync_admin().reset()
    return objects, settings


def _world(
    plane: ControlPlane, emulator: EmulatorEndpoint, running: RunningOperator, api: object
) -> JitWorld:
    return JitWorld(
        control_plane=plane,
        emulator=emulator,
        admin=emulator.sync_admin(),
        namespace=NS,
        operator=running,
        api=api,
    )


def _decide(jit: JitWorld, user: str, name: str, decision: str = "Approved") -> tuple[int, str]:
    current = jit.status("JitAccessRequest", name).get("approvals")
    return decide_as(
        jit.control_plane, NS, user, name, decision=decision, now=jit.now(), current=current
    )


def _approval_flow(jit: JitWorld) -> None:
    """Who asked is stamped and cannot be forged, a request its policy forbids is refused at
    apply time, approvers are notified (the operator reads the Secret azure-jit-notify as the
    ServiceAccount), and an approver's decision (checked with a SubjectAccessReview) opens it."""
    with webhook_receiver() as receiver:
        _notify_approvers_through(jit, receiver.url)
        _approval_flow_notified(jit, receiver)


def _notify_approvers_through(jit: JitWorld, url: str) -> None:
    k8s.CoreV1Api(jit.api).create_namespaced_secret(
        NS,
        k8s.V1Secret(metadata=k8s.V1ObjectMeta(name="azure-jit-notify"), string_data={"u": url}),
    )
    policy = manual_policy(required=1)
    policy["spec"]["approval"]["notify"] = {
        "webhook": {"secretKeyRef": {"name": "azure-jit-notify", "key": "u"}}
    }
    jit.apply(policy)


def _approval_flow_notified(jit: JitWorld, receiver: WebhookReceiver) -> None:
    plane = jit.control_plane
    jit.wait_policy_ready("web-admins")

    forged = request_manifest("forged")
    forged["spec"]["requester"] = {"username": "bob", "groups": ["admins"]}
    code, out = create_as(plane, NS, "alice", forged)
    assert code != 0
    assert "spec.requester is set by the cluster from the authenticated user" in out
    code, out = create_as(plane, NS, "alice", request_manifest("typo", policy="web-admin"))
    assert code != 0
    assert "JitPolicy 'web-admin' does not exist in namespace" in out

    code, out = create_as(plane, NS, "alice", request_manifest("ssh"))
    assert code == 0, out
    requester = (jit.get("JitAccessRequest", "ssh") or {})["spec"]["requester"]
    assert requester["username"] == "alice"
    assert "waiting for approval" in jit.wait_phase("ssh", "Pending")["message"]
    wait_for(lambda: len(receiver.accepted) == 1 or None, timeout=30, what="approvers notified")

    code, out = _decide(jit, "dave", "ssh")
    assert code != 0
    assert "dave may not approve requests under JitPolicy 'web-admins'" in out
    code, out = _decide(jit, "bob", "ssh")
    assert code == 0, out
    active = jit.wait_phase("ssh", "Active")
    assert [a["user"] for a in active["approvals"]] == ["bob"]


def test_approvals_work_as_the_deployed_service_account_with_managed_webhooks(
    fresh_cluster: ControlPlane, emulator_endpoint: EmulatorEndpoint, tmp_path: Path
) -> None:
    plane = fresh_cluster
    _, settings = _installed(
        plane,
        emulator_endpoint,
        tmp_path,
        ["webhooks-managed", "namespace-credentials"],
        # The API server here reaches the operator on loopback; in a cluster the rendered
        # host is the webhook Service's DNS name.
        webhook_host="127.0.0.1",
        webhook_port=free_port(),
    )
    assert (settings.webhooks, settings.namespace_credentials) == ("managed", "optional")
    static = render_composed(plane, tmp_path / "static", "cluster-wide", ["webhooks-cert-manager"])

    with RefusalLog() as refusals:
        with plane.api_client() as api, operator_running(settings) as running:
            jit = _world(plane, emulator_endpoint, running, api)
            live = wait_for(
                lambda: (
                    found
                    if all(
                        (found := live_webhook_configurations(plane)).get(k, {}).get("webhooks")
                        for k in WEBHOOK_CONFIGURATION_KINDS
                    )
                    else None
                ),
                timeout=30,
                what="the operator to configure its webhooks",
            )
            # What kopf configures is what the cert-manager component configures statically.
            for configuration in kinds(static, *WEBHOOK_CONFIGURATION_KINDS):
                assert [semantics(w) for w in live[configuration["kind"]]["webhooks"]] == [
                    semantics(w) for w in configuration["webhooks"]
                ]
            _approval_flow(jit)
        assert refusals.refusals == [], "the API server refused the operator:\n" + "\n".join(
            refusals.refusals
        )

    # kopf empties its configurations on a graceful stop and leaves them behind.
    left = live_webhook_configurations(plane)
    assert set(left) == set(WEBHOOK_CONFIGURATION_KINDS)
    # The webhooks that guard identity and approvals stay registered while no operator runs
    # (kopf's persistent handlers): requests and decisions are refused, not taken unchecked.
    assert {w["name"] for c in left.values() for w in c.get("webhooks") or []} == {
        "stamp-requester.azurejit.dev",
        "verify-requester.azurejit.dev",
        "guard-approvals.azurejit.dev",
        "stamp-schedule-requester.azurejit.dev",
        "verify-schedule-requester.azurejit.dev",
        "guard-schedule-approvals.azurejit.dev",
    }
    delete_webhook_configurations(plane)
    assert live_webhook_configurations(plane) == {}

    # Namespace credentials: that one Secret name anywhere, no other Secret, no listing.
    for namespace in (NS, OTHER_NAMESPACE):
        assert can_i(plane, "get", "secrets/azure-jit-credential", namespace=namespace)
        assert can_i(plane, "get", "secrets/azure-jit-notify", namespace=namespace)
        for verb, resource in [
            ("get", "secrets"),
            ("list", "secrets"),
            ("watch", "secrets"),
            ("get", "secrets/some-other-secret"),
        ]:
            assert not can_i(plane, verb, resource, namespace=namespace), (verb, resource)
    # Managed webhooks: create any configuration, patch its own, nothing else.
    for kind in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
        resource = f"{kind}.admissionregistration.k8s.io"
        assert can_i(plane, "create", resource)
        assert can_i(plane, "patch", f"{resource}/azurejit.dev")
        assert not can_i(plane, "patch", f"{resource}/someone-elses")
        for verb in ("get", "list", "watch", "update", "delete"):
            assert not can_i(plane, verb, resource), (verb, kind)
    assert can_i(plane, "create", "subjectaccessreviews.authorization.k8s.io")
    # Who the operator is (SelfSubjectReview): every authenticated user's by default.
    assert can_i(plane, "create", "selfsubjectreviews.authentication.k8s.io")


def test_the_cert_manager_configurations_guard_requests_and_refuse_them_while_the_operator_is_down(
    fresh_cluster: ControlPlane, emulator_endpoint: EmulatorEndpoint, tmp_path: Path
) -> None:
    plane = fresh_cluster
    certificates = issue_webhook_certificate(tmp_path / "tls", hosts=("127.0.0.1",))
    port = free_port()
    objects, settings = _installed(
        plane,
        emulator_endpoint,
        tmp_path,
        ["webhooks-cert-manager"],
        webhook_cert_dir=certificates,  # the Secret volume, as cert-manager fills it
        webhook_port=port,
    )
    assert settings.webhooks == "external"
    apply_server_side(
        plane,
        [
            reachable_from_here(
                c, base_url=f"https://127.0.0.1:{port}", ca_file=certificates / "ca.crt"
            )
            for c in kinds(objects, *WEBHOOK_CONFIGURATION_KINDS)
        ],
    )

    with RefusalLog() as refusals:
        with plane.api_client() as api, operator_running(settings) as running:
            jit = _world(plane, emulator_endpoint, running, api)
            _approval_flow(jit)
            code, out = create_as(plane, NS, "alice", request_manifest("later", duration="2h"))
            assert code == 0, out
            jit.wait_phase("later", "Pending")
            now = jit.now()
            approvals_before = jit.status("JitAccessRequest", "later").get("approvals")
        assert refusals.refusals == [], "the API server refused the operator:\n" + "\n".join(
            refusals.refusals
        )

    # The operator is down: nothing is let through unchecked (failurePolicy Fail).
    code, out = create_as(plane, NS, "alice", request_manifest("while-down"))
    assert code != 0
    assert 'failed calling webhook "stamp-requester.azurejit.dev"' in out
    code, out = decide_as(
        plane, NS, "bob", "later", decision="Approved", now=now, current=approvals_before
    )
    assert code != 0
    assert 'failed calling webhook "guard-approvals.azurejit.dev"' in out


def _peers(plane: ControlPlane) -> dict[str, object]:
    got = plane.kubectl("get", "clusterkopfpeering.kopf.dev", "azure-jit-operator", "--output=json")
    assert got.returncode == 0, got.stderr
    return dict(json.loads(got.stdout).get("status") or {})


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_a_standby_replica_admits_a_request_its_policy_allows(
    fresh_cluster: ControlPlane, emulator_endpoint: EmulatorEndpoint, tmp_path: Path
) -> None:
    """Two replicas behind the webhook Service both answer admission; here the API server calls
    the standby only, while the active replica (higher peering priority) does the work."""
    plane = fresh_cluster
    certificates = issue_webhook_certificate(tmp_path / "tls", hosts=("127.0.0.1",))
    port = free_port()
    objects, settings = _installed(
        plane,
        emulator_endpoint,
        tmp_path,
        ["webhooks-cert-manager"],
        webhook_cert_dir=certificates,
        webhook_port=port,
    )
    apply_server_side(
        plane,
        [
            reachable_from_here(
                c, base_url=f"https://127.0.0.1:{port}", ca_file=certificates / "ca.crt"
            )
            for c in kinds(objects, *WEBHOOK_CONFIGURATION_KINDS)
        ],
    )
    active = dataclasses.replace(settings, peering_priority=200, webhooks="off")
    standby = dataclasses.replace(settings, peering_priority=100)
    with plane.api_client() as api, operator_running(active) as running:
        jit = _world(plane, emulator_endpoint, running, api)
        jit.apply(manual_policy(required=1))
        jit.wait_policy_ready("web-admins")
        # Started after a peer of higher priority, the standby is paused from the start (kopf's
        # mandatory peering): it never lists JitPolicies, yet serves admission.
        with operator_running(standby):
            wait_for(lambda: len(_peers(plane)) == 2, timeout=30, what="two peers")
            wait_for(lambda: _listening(port), timeout=30, what="the standby's webhooks")
            code, out = create_as(plane, NS, "alice", request_manifest("ssh"))
            assert code == 0, out
