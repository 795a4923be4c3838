"""`kubectl auth can-i --as=system:serviceaccount:azure-jit-system:azure-jit-operator` on a
fresh API server with an overlay installed: the operator's ServiceAccount may do what the
lifecycle needs (tests/e2e/test_lifecycle_as_the_deployed_service_account.py proves that it is
enough) and nothing else: of Secrets only the approvers' webhook Secret azure-jit-notify, by
name (the namespace-credentials components add one more), no RBAC, no workloads."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.controlplane import ControlPlane, start_control_plane
from tests.support.deploy import OPERATOR_NAMESPACE, WATCHED_NAMESPACE, can_i, install

OTHER_NAMESPACE = "payments"

NEEDED = [
    ("get", "jitpolicies.azurejit.dev"),
    ("list", "jitpolicies.azurejit.dev"),
    ("watch", "jitpolicies.azurejit.dev"),
    ("patch", "jitpolicies.azurejit.dev"),
    ("patch", "jitpolicies.azurejit.dev/status"),
    ("list", "jitaccessrequests.azurejit.dev"),
    ("watch", "jitaccessrequests.azurejit.dev"),
    ("patch", "jitaccessrequests.azurejit.dev"),
    ("delete", "jitaccessrequests.azurejit.dev"),
    ("patch", "jitaccessrequests.azurejit.dev/status"),
    ("create", "jitaccessrequests.azurejit.dev"),  # a JitAccessSchedule's windows
    ("list", "jitaccessschedules.azurejit.dev"),
    ("watch", "jitaccessschedules.azurejit.dev"),
    ("patch", "jitaccessschedules.azurejit.dev/status"),
    ("create", "events"),
    # JitPolicy spec.approval.notify: the approvers' webhook URL, by its one fixed name.
    ("get", "secrets/azure-jit-notify"),
]
NEVER = [
    ("get", "jitaccessrequests.azurejit.dev"),  # the cache has them; nothing reads one alone
    # Not even the namespace credential: only the namespace-credentials components grant it.
    ("get", "secrets/azure-jit-credential"),
    ("get", "secrets"),
    ("list", "secrets"),
    ("watch", "secrets"),
    ("get", "secrets/some-other-secret"),
    ("list", "secrets/azure-jit-notify"),
    ("watch", "secrets/azure-jit-notify"),
    ("patch", "secrets/azure-jit-notify"),
    ("create", "secrets"),
    ("get", "configmaps"),
    ("create", "pods"),
    ("create", "pods/exec"),
    ("patch", "deployments.apps"),
    ("create", "serviceaccounts/token"),
    ("create", "jitpolicies.azurejit.dev"),
    # Schedules are the users': the operator only watches them and writes their status.
    ("create", "jitaccessschedules.azurejit.dev"),
    ("patch", "jitaccessschedules.azurejit.dev"),
    ("delete", "jitaccessschedules.azurejit.dev"),
    ("get", "jitaccessschedules.azurejit.dev"),
    ("delete", "jitpolicies.azurejit.dev"),
    ("update", "jitpolicies.azurejit.dev"),
    ("patch", "events"),
    ("delete", "events"),
    ("create", "roles.rbac.authorization.k8s.io"),
    ("create", "rolebindings.rbac.authorization.k8s.io"),
    ("bind", "roles.rbac.authorization.k8s.io"),
    ("escalate", "roles.rbac.authorization.k8s.io"),
    ("impersonate", "serviceaccounts"),
]
NEVER_CLUSTER_WIDE = [
    ("create", "clusterroles.rbac.authorization.k8s.io"),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
    ("update", "customresourcedefinitions.apiextensions.k8s.io"),
    ("delete", "namespaces"),
    ("list", "nodes"),
    ("delete", "clusterkopfpeerings.kopf.dev"),
]


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("cluster-wide", id="installed cluster-wide"),
        pytest.param("single-namespace", id="installed for one namespace"),
    ],
)
def installed(
    control_plane: ControlPlane, request: pytest.FixtureRequest
) -> Iterator[tuple[str, ControlPlane]]:
    """A fresh API server with one overlay installed: (overlay, control plane)."""
    with start_control_plane(control_plane.bin_dir, crd_dir=None) as plane:
        for namespace in (WATCHED_NAMESPACE, OTHER_NAMESPACE):
            plane.kubectl("create", "namespace", namespace, check=True)
        install(plane, request.param)
        yield request.param, plane


def test_the_service_account_may_do_what_the_lifecycle_needs_in_the_watched_namespace(
    installed: tuple[str, ControlPlane],
) -> None:
    overlay, plane = installed
    refused = [
        f"{verb} {resource}"
        for verb, resource in NEEDED
        if not can_i(plane, verb, resource, namespace=WATCHED_NAMESPACE)
    ]
    assert refused == []
    peering = "clusterkopfpeerings" if overlay == "cluster-wide" else "kopfpeerings"
    scope = None if overlay == "cluster-wide" else WATCHED_NAMESPACE
    assert can_i(plane, "patch", f"{peering}.kopf.dev/azure-jit-operator", namespace=scope)
    assert can_i(plane, "watch", f"{peering}.kopf.dev", namespace=scope)
    assert not can_i(plane, "patch", f"{peering}.kopf.dev/someone-elses", namespace=scope)


@pytest.mark.parametrize(
    "namespace",
    [
        pytest.param(WATCHED_NAMESPACE, id="in the watched namespace"),
        pytest.param(OPERATOR_NAMESPACE, id="in its own namespace"),
        pytest.param(OTHER_NAMESPACE, id="in another team's namespace"),
    ],
)
def test_the_service_account_cannot_read_secrets_change_rbac_or_run_workloads(
    installed: tuple[str, ControlPlane], namespace: str
) -> None:
    _, plane = installed
    allowed = [
        f"{verb} {resource}"
        for verb, resource in NEVER
        if can_i(plane, verb, resource, namespace=namespace)
    ]
    allowed += [
        f"{verb} {resource}"
        for verb, resource in NEVER_CLUSTER_WIDE
        if can_i(plane, verb, resource)
    ]
    assert allowed == []


def test_installed_for_one_namespace_it_cannot_touch_requests_elsewhere(
    installed: tuple[str, ControlPlane],
) -> None:
    overlay, plane = installed
    elsewhere = [
        can_i(plane, verb, resource, namespace=OTHER_NAMESPACE) for verb, resource in NEEDED
    ]
    if overlay == "single-namespace":
        assert not any(elsewhere), "only the watched namespace"
        assert not can_i(plane, "list", "jitaccessrequests.azurejit.dev")  # all namespaces
    else:
        assert all(elsewhere), "cluster-wide means every namespace"
