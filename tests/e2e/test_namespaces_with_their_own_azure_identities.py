"""Credential scope, like Azure Service Operator: with AZURE_JIT_NAMESPACE_CREDENTIALS on, a
namespace's azure-jit-credential Secret picks its Azure identity. Two teams' namespaces use
two identities; each reaches only its own scope, and the refusal is readable."""

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s

from tests.support.controlplane import ControlPlane
from tests.support.emulator import SECOND_SUBSCRIPTION, EmulatorEndpoint
from tests.support.identity import TENANT_ID, WEB_TEAM
from tests.support.manifests import manifest, port_rule, request_manifest
from tests.support.operator import JitWorld, jit_world, wait_for

ANALYTICS_CLIENT = "a1a1a1a1-0000-4000-8000-0000000000aa"
ANALYTICS_SECRET = "analytics-team-secret"


def credential_secret(client_id: str, secret: str) -> k8s.V1Secret:
    data = {
        "AZURE_TENANT_ID": TENANT_ID,
        "AZURE_CLIENT_ID": client_id,
        "AZURE_CLIENT_SECRET": secret,
    }
    return k8s.V1Secret(
        metadata=k8s.V1ObjectMeta(name="azure-jit-credential"),
        data={k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    )


def policy(name: str, *, subscription: str, group: str, location: str, vm: str) -> dict[str, Any]:
    spec = {
        "azure": {"subscriptionId": subscription, "resourceGroup": group, "location": location},
        "virtualMachines": [{"name": vm, "ports": [port_rule(22)]}],
    }
    return manifest("JitPolicy", name, spec)


@pytest.fixture
def two_teams(
    control_plane: ControlPlane,
    emulator_endpoint: EmulatorEndpoint,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[JitWorld, str]]:
    # azure-identity takes the authority from the standard variable, as on AKS.
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", emulator_endpoint.base_url)
    other = f"{namespace}-b"[:63]
    with control_plane.api_client() as api:
        core = k8s.CoreV1Api(api)
        core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=other)))
        core.create_namespaced_secret(
            namespace, credential_secret(WEB_TEAM.client_id, WEB_TEAM.secret)
        )
        core.create_namespaced_secret(other, credential_secret(ANALYTICS_CLIENT, ANALYTICS_SECRET))
    try:
        with jit_world(
            control_plane,
            emulator_endpoint,
            namespace,
            namespaces=(namespace, other),
            namespace_credentials="optional",
        ) as world:
            world.admin.add_identity(
                client_id=ANALYTICS_CLIENT,
                tenant_id=TENANT_ID,
                secret=ANALYTICS_SECRET,
                scopes=[f"/subscriptions/{SECOND_SUBSCRIPTION}"],
                display_name="jit-analytics-team",
            )
            yield world, other
    finally:
        with control_plane.api_client() as api:
            k8s.CoreV1Api(api).delete_namespace(other)


def ready_condition(world: JitWorld, name: str, namespace: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        body = world.custom.get_namespaced_custom_object(
            "azurejit.dev", "v1alpha1", namespace, "jitpolicies", name
        )
        conditions = (body.get("status") or {}).get("conditions", [])
        return next((c for c in conditions if c["type"] == "Ready"), None)

    return wait_for(found, timeout=30, what=f"{namespace}/{name} Ready condition")


def reason_reached(world: JitWorld, name: str, namespace: str, reason: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        condition = ready_condition(world, name, namespace)
        return condition if condition["reason"] == reason else None

    return wait_for(reached, timeout=60, what=f"{namespace}/{name} Ready reason {reason}")


def test_each_namespace_reaches_only_what_its_identity_may(two_teams: tuple[JitWorld, str]) -> None:
    world, other = two_teams
    web, analytics = world.namespace, other
    world.custom.create_namespaced_custom_object(
        "azurejit.dev",
        "v1alpha1",
        web,
        "jitpolicies",
        policy(
            "web",
            subscription="00000000-0000-0000-0000-000000000000",
            group="rg-web",
            location="westeurope",
            vm="vm-web-01",
        ),
    )
    world.custom.create_namespaced_custom_object(
        "azurejit.dev",
        "v1alpha1",
        web,
        "jitpolicies",
        policy(
            "ops",
            subscription="00000000-0000-0000-0000-000000000000",
            group="rg-ops",
            location="northeurope",
            vm="vm-ops-01",
        ),
    )
    world.custom.create_namespaced_custom_object(
        "azurejit.dev",
        "v1alpha1",
        analytics,
        "jitpolicies",
        policy(
            "analytics",
            subscription=SECOND_SUBSCRIPTION,
            group="rg-analytics",
            location="westeurope",
            vm="vm-analytics-01",
        ),
    )
    world.custom.create_namespaced_custom_object(
        "azurejit.dev",
        "v1alpha1",
        analytics,
        "jitpolicies",
        policy(
            "web-too",
            subscription="00000000-0000-0000-0000-000000000000",
            group="rg-web",
            location="westeurope",
            vm="vm-web-02",
        ),
    )

    web_ready = ready_condition(world, "web", web)
    assert web_ready["status"] == "True", web_ready
    assert ready_condition(world, "analytics", analytics)["status"] == "True"
    refusals = (("ops", web, WEB_TEAM.client_id), ("web-too", analytics, ANALYTICS_CLIENT))
    for name, namespace, client in refusals:
        refused = reason_reached(world, name, namespace, "AzureForbidden")
        assert refused["status"] == "False"
        assert "AuthorizationFailed" in refused["message"]
        assert client in refused["message"]

    # A request in the web team's namespace opens with the web team's identity.
    world.apply(request_manifest(policy="web", duration="30m"))
    world.wait_phase("ssh-inc-4711", "Active")


def test_a_broken_credential_secret_is_reported_on_the_object(
    two_teams: tuple[JitWorld, str], control_plane: ControlPlane
) -> None:
    world, _ = two_teams
    with control_plane.api_client() as api:
        k8s.CoreV1Api(api).patch_namespaced_secret(
            "azure-jit-credential",
            world.namespace,
            {"data": {"AZURE_CLIENT_ID": base64.b64encode(b"not-a-guid").decode()}},
        )
    world.apply(
        policy(
            "web",
            subscription="00000000-0000-0000-0000-000000000000",
            group="rg-web",
            location="westeurope",
            vm="vm-web-01",
        )
    )
    condition = wait_for(
        lambda: (
            (c := world.condition("JitPolicy", "web", "Ready"))
            and c["reason"] == "CredentialInvalid"
            and c
        ),
        timeout=60,
        what="the credential problem on the policy",
    )
    assert "AZURE_CLIENT_ID must be a GUID" in condition["message"]
    assert world.calls("JitNetworkAccessPolicies_CreateOrUpdate") == 0
