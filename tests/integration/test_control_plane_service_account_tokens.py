"""A ServiceAccount kubeconfig minted through TokenRequest authenticates and obeys RBAC,
so later tests can run the operator with exactly the RBAC it is deployed with."""

from __future__ import annotations

import json
import subprocess

from kubernetes import client as k8s

from tests.support.controlplane import ControlPlane, service_account_kubeconfig, wait_for


def test_token_request_kubeconfig_authenticates_as_the_service_account(
    control_plane: ControlPlane, namespace: str
) -> None:
    kubeconfig = service_account_kubeconfig(control_plane, namespace=namespace, name="reader")

    whoami = control_plane.kubectl("auth", "whoami", "-o", "json", kubeconfig=kubeconfig)

    assert whoami.returncode == 0, whoami.stderr
    user = json.loads(whoami.stdout)["status"]["userInfo"]
    assert user["username"] == f"system:serviceaccount:{namespace}:reader"
    assert "system:serviceaccounts" in user["groups"]


def test_service_account_is_forbidden_until_a_role_grants_access(
    control_plane: ControlPlane, namespace: str
) -> None:
    kubeconfig = service_account_kubeconfig(control_plane, namespace=namespace, name="reader")

    def list_secrets() -> subprocess.CompletedProcess[str]:
        return control_plane.kubectl("get", "secrets", "-n", namespace, kubeconfig=kubeconfig)

    denied = list_secrets()
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr
    assert (
        f'User "system:serviceaccount:{namespace}:reader" cannot list resource "secrets"'
        in denied.stderr
    )

    with control_plane.api_client() as api:
        rbac = k8s.RbacAuthorizationV1Api(api)
        rbac.create_namespaced_role(
            namespace,
            k8s.V1Role(
                metadata=k8s.V1ObjectMeta(name="secret-reader"),
                rules=[k8s.V1PolicyRule(api_groups=[""], resources=["secrets"], verbs=["list"])],
            ),
        )
        rbac.create_namespaced_role_binding(
            namespace,
            k8s.V1RoleBinding(
                metadata=k8s.V1ObjectMeta(name="reader-reads-secrets"),
                role_ref=k8s.V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="Role", name="secret-reader"
                ),
                subjects=[
                    k8s.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=namespace)
                ],
            ),
        )

    # The RBAC authorizer reads roles through an informer: poll until the grant is visible.
    allowed = wait_for(
        lambda: (result := list_secrets()).returncode == 0 and result,
        timeout=10,
        what="the Role to take effect",
    )
    assert f"No resources found in {namespace} namespace" in allowed.stderr

    elsewhere = control_plane.kubectl("get", "secrets", "-n", "default", kubeconfig=kubeconfig)
    assert elsewhere.returncode != 0
    assert "Forbidden" in elsewhere.stderr


def test_python_client_from_a_service_account_kubeconfig_gets_403(
    control_plane: ControlPlane, namespace: str
) -> None:
    kubeconfig = service_account_kubeconfig(control_plane, namespace=namespace, name="nobody")

    with control_plane.api_client(kubeconfig) as api:
        review = k8s.AuthorizationV1Api(api).create_self_subject_access_review(
            k8s.V1SelfSubjectAccessReview(
                spec=k8s.V1SelfSubjectAccessReviewSpec(
                    resource_attributes=k8s.V1ResourceAttributes(
                        namespace=namespace, verb="list", resource="secrets"
                    )
                )
            )
        )
        try:
            k8s.CoreV1Api(api).list_namespaced_secret(namespace)
        except k8s.ApiException as exc:
            status = exc.status
        else:
            status = 200

    assert review.status is not None
    assert review.status.allowed is False
    assert status == 403
