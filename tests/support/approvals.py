"""Approvals in e2e tests: the RBAC of requesters and approvers, the operator with its
admission webhooks on (``webhooks`` fixture), and a policy that wants manual approval.

Shared by the kubectl-based approval tests (users impersonated with ``kubectl --as``) and
the ``kubectl jit`` tests (real identities: ServiceAccount tokens), which differ only in
what kind of subject the RoleBindings name.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from azure_jit_devtools.localcluster.processes import free_port
from tests.support.controlplane import ControlPlane
from tests.support.emulator import EmulatorEndpoint
from tests.support.manifests import policy_manifest
from tests.support.operator import JitWorld, jit_world, wait_for

USERS = ("alice", "bob", "carol", "dave")
APPROVERS = ("bob", "carol")  # dave may create requests but not approve

Subject = Callable[[str], dict[str, str]]


def user_subject(name: str) -> dict[str, str]:
    return {"kind": "User", "name": name, "apiGroup": "rbac.authorization.k8s.io"}


def rbac(namespace: str, *, subject: Subject = user_subject) -> list[dict[str, Any]]:
    """USERS may create, read and delete requests; APPROVERS may also approve under
    JitPolicy web-admins; dave and alice may patch status but hold no ``approve`` verb."""

    def subjects(names: Sequence[str]) -> list[dict[str, str]]:
        return [subject(n) for n in names]

    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "jit-requester", "namespace": namespace},
            "rules": [
                {
                    "apiGroups": ["azurejit.dev"],
                    "resources": ["jitaccessrequests"],
                    "verbs": ["create", "get", "list", "delete"],
                },
                {
                    "apiGroups": ["azurejit.dev"],
                    "resources": ["jitpolicies"],
                    "verbs": ["get", "list"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "jit-requesters", "namespace": namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "jit-requester",
            },
            "subjects": subjects(USERS),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "jit-approver", "namespace": namespace},
            "rules": [
                {
                    "apiGroups": ["azurejit.dev"],
                    "resources": ["jitaccessrequests/status"],
                    "verbs": ["get", "patch"],
                },
                {
                    "apiGroups": ["azurejit.dev"],
                    "resources": ["jitpolicies"],
                    "verbs": ["approve"],
                    "resourceNames": ["web-admins"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "jit-approvers", "namespace": namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "jit-approver",
            },
            "subjects": subjects(APPROVERS),
        },
        # dave may patch status (to prove the webhook, not RBAC, stops him) but not approve.
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "jit-status-writers", "namespace": namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "jit-approver-no-approve",
            },
            "subjects": subjects(("dave", "alice")),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "jit-approver-no-approve", "namespace": namespace},
            "rules": [
                {
                    "apiGroups": ["azurejit.dev"],
                    "resources": ["jitaccessrequests/status"],
                    "verbs": ["get", "patch"],
                },
            ],
        },
    ]


@contextlib.contextmanager
def webhooks_world(
    control_plane: ControlPlane,
    emulator_endpoint: EmulatorEndpoint,
    namespace: str,
    *,
    manifests: Sequence[dict[str, Any]],
    **overrides: Any,
) -> Iterator[JitWorld]:
    """``manifests`` (RBAC) applied, then the operator with managed admission webhooks (and
    any other settings ``overrides``); the webhook configurations are removed afterwards."""
    control_plane.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(manifests), check=True)
    try:
        with jit_world(
            control_plane,
            emulator_endpoint,
            namespace,
            webhooks="managed",
            webhook_port=free_port(),
            **overrides,
        ) as world:
            wait_for(lambda: _configured(control_plane), timeout=30, what="webhook configurations")
            yield world
    finally:
        # The configurations outlive the operator; later tests must not hit a dead webhook.
        with control_plane.api_client() as api:
            admission = k8s.AdmissionregistrationV1Api(api)
            for delete in (
                admission.delete_mutating_webhook_configuration,
                admission.delete_validating_webhook_configuration,
            ):
                try:
                    delete("azurejit.dev")
                except k8s.ApiException as exc:
                    if exc.status != 404:
                        raise


@pytest.fixture
def webhooks(
    control_plane: ControlPlane, emulator_endpoint: EmulatorEndpoint, namespace: str
) -> Iterator[JitWorld]:
    with webhooks_world(
        control_plane, emulator_endpoint, namespace, manifests=rbac(namespace)
    ) as world:
        yield world


def _configured(control_plane: ControlPlane) -> bool:
    found = control_plane.kubectl(
        "get", "mutatingwebhookconfigurations,validatingwebhookconfigurations", "-o", "name"
    ).stdout
    return found.count("azurejit.dev") == 2


def manual_policy(required: int = 2, timeout: str = "1h") -> dict[str, Any]:
    policy = policy_manifest()
    policy["spec"]["approval"] = {
        "mode": "Manual",
        "requiredApprovals": required,
        "timeout": timeout,
    }
    return policy
