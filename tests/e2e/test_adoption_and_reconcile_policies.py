"""Adopting an existing Azure JIT policy only when asked, and the reconcile-policy
annotation (manage | skip | detach-on-delete), as documented."""

from typing import Any

from tests.support.manifests import (
    LOCATION,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    policy_manifest,
    port_rule,
)
from tests.support.operator import JitWorld, wait_for

PUTS = "JitNetworkAccessPolicies_CreateOrUpdate"
DELETES = "JitNetworkAccessPolicies_Delete"
VM1 = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
    "/providers/Microsoft.Compute/virtualMachines/vm-web-01"
)


def existing_azure_policy(jit: JitWorld, name: str = "web-admins") -> None:
    """A policy somebody made in the portal before the operator arrived."""
    jit.admin.put_policy_out_of_band(
        SUBSCRIPTION,
        RESOURCE_GROUP,
        LOCATION,
        name,
        {
            "kind": "Basic",
            "properties": {
                "virtualMachines": [
                    {
                        "id": VM1,
                        "ports": [
                            {
                                "number": 3389,
                                "protocol": "*",
                                "allowedSourceAddressPrefix": "*",
                                "maxRequestAccessDuration": "PT3H",
                            }
                        ],
                    }
                ]
            },
        },
    )


def ready(jit: JitWorld, name: str = "web-admins") -> dict[str, Any]:
    return wait_for(
        lambda: jit.condition("JitPolicy", name, "Ready"),
        timeout=20,
        what=f"{name} Ready condition",
    )


def azure_ports(jit: JitWorld) -> list[int]:
    policies = jit.admin.state()["jitNetworkAccessPolicies"]
    return [p["number"] for p in policies[0]["properties"]["virtualMachines"][0]["ports"]]


def test_an_existing_azure_policy_is_never_overwritten_without_adopt(jit: JitWorld) -> None:
    existing_azure_policy(jit)
    puts = jit.calls(PUTS)
    jit.apply(policy_manifest())
    condition = ready(jit)
    assert (condition["status"], condition["reason"]) == ("False", "AzurePolicyExists")
    assert "spec.azure.adopt: true" in condition["message"]
    assert jit.calls(PUTS) == puts
    assert azure_ports(jit) == [3389]


def test_adopt_takes_the_existing_policy_over_and_rewrites_it_to_the_spec(jit: JitWorld) -> None:
    existing_azure_policy(jit)
    manifest = policy_manifest(vms={"vm-web-01": [port_rule(22)]})
    manifest["spec"]["azure"]["adopt"] = True
    jit.apply(manifest)
    jit.wait_policy_ready("web-admins")
    assert azure_ports(jit) == [22]
    assert jit.wait_event("web-admins", "Adopted")["type"] == "Normal"


def test_skip_reports_azure_but_writes_and_deletes_nothing(jit: JitWorld) -> None:
    existing_azure_policy(jit)
    manifest = policy_manifest(vms={"vm-web-01": [port_rule(22)]})
    manifest["metadata"]["annotations"] = {"azurejit.dev/reconcile-policy": "skip"}
    puts = jit.calls(PUTS)
    jit.apply(manifest)
    condition = ready(jit)
    assert condition["reason"] == "Skipped"
    assert "differs from the spec" in condition["message"]
    jit.delete("JitPolicy", "web-admins")
    jit.wait_gone("JitPolicy", "web-admins")
    assert jit.calls(PUTS) == puts
    assert jit.calls(DELETES) == 0
    assert azure_ports(jit) == [3389]


def test_detach_on_delete_manages_but_leaves_the_azure_policy_behind(jit: JitWorld) -> None:
    manifest = policy_manifest(vms={"vm-web-01": [port_rule(22)]})
    manifest["metadata"]["annotations"] = {"azurejit.dev/reconcile-policy": "detach-on-delete"}
    jit.apply(manifest)
    jit.wait_policy_ready("web-admins")
    jit.delete("JitPolicy", "web-admins")
    jit.wait_gone("JitPolicy", "web-admins")
    assert jit.calls(DELETES) == 0
    assert azure_ports(jit) == [22]


def test_an_unknown_reconcile_policy_is_refused_with_the_allowed_values(jit: JitWorld) -> None:
    manifest = policy_manifest()
    manifest["metadata"]["annotations"] = {"azurejit.dev/reconcile-policy": "ignore"}
    jit.apply(manifest)
    condition = ready(jit)
    assert condition["reason"] == "InvalidAnnotation"
    assert "manage, skip, detach-on-delete" in condition["message"]
    assert jit.calls(PUTS) == 0
