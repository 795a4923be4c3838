"""JitPolicy <-> Azure: writes only on change, drift corrected, both deletion policies,
conflicts refused, Azure errors readable."""

from datetime import timedelta

import pytest

from tests.support.manifests import (
    LOCATION,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    policy_manifest,
    port_rule,
)
from tests.support.operator import JitWorld, wait_for

PUTS = "JitNetworkAccessPolicies_CreateOrUpdate"


def test_a_spec_change_is_written_once_and_a_no_op_resync_writes_nothing(jit: JitWorld) -> None:
    jit.apply(policy_manifest(vms={"vm-web-01": [port_rule(22)]}))
    jit.wait_policy_ready("web-admins")
    assert jit.calls(PUTS) == 1

    jit.patch_spec(
        "JitPolicy",
        "web-admins",
        {"virtualMachines": [{"name": "vm-web-01", "ports": [port_rule(22), port_rule(443)]}]},
    )
    wait_for(
        lambda: jit.status("JitPolicy", "web-admins").get("observedGeneration") == 2,
        timeout=20,
        what="the spec change to be synced",
    )
    jit.wait_policy_ready("web-admins")
    assert jit.calls(PUTS) == 2
    assert {"22", "443"} <= {
        p
        for r in jit.deny_rules("vm-web-01")
        for p in [
            *r["properties"].get("destinationPortRanges", []),
            r["properties"].get("destinationPortRange"),
        ]
        if p
    }


@pytest.mark.parametrize(
    "operator_overrides", [{"drift_interval": timedelta(seconds=5)}], ids=["5s drift checks"]
)
def test_drift_in_azure_is_corrected_and_reported(jit: JitWorld) -> None:
    jit.apply(policy_manifest(vms={"vm-web-01": [port_rule(22, max_duration="3h")]}))
    jit.wait_policy_ready("web-admins")

    # Someone edits the policy in the portal: a wider prefix and a longer maximum.
    jit.admin.put_policy_out_of_band(
        SUBSCRIPTION,
        RESOURCE_GROUP,
        LOCATION,
        "web-admins",
        {
            "kind": "Basic",
            "properties": {
                "virtualMachines": [
                    {
                        "id": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
                        "/providers/Microsoft.Compute/virtualMachines/vm-web-01",
                        "ports": [
                            {
                                "number": 22,
                                "protocol": "*",
                                "allowedSourceAddressPrefix": "*",
                                "maxRequestAccessDuration": "PT24H",
                            }
                        ],
                    }
                ]
            },
        },
    )
    jit.wait_event("web-admins", "DriftCorrected", timeout=20)
    writes_after_fix = jit.calls(PUTS)

    jit.admin.delete_policy_out_of_band(SUBSCRIPTION, RESOURCE_GROUP, LOCATION, "web-admins")
    wait_for(
        lambda: jit.calls(PUTS) > writes_after_fix, timeout=20, what="a deleted policy re-created"
    )
    jit.wait_policy_ready("web-admins")
    assert jit.deny_rules("vm-web-01")


@pytest.mark.parametrize(
    ("deletion_policy", "azure_policy_remains"),
    [("Delete", False), ("Orphan", True)],
    ids=["Delete removes the Azure policy and its rules", "Orphan leaves the Azure policy"],
)
def test_deleting_a_jitpolicy_honours_its_deletion_policy(
    jit: JitWorld, deletion_policy: str, azure_policy_remains: bool
) -> None:
    jit.apply(policy_manifest(deletion_policy=deletion_policy))
    jit.wait_policy_ready("web-admins")
    jit.delete("JitPolicy", "web-admins")
    jit.wait_gone("JitPolicy", "web-admins")
    policies = jit.admin.state()["jitNetworkAccessPolicies"]
    assert bool(policies) == azure_policy_remains
    assert bool(jit.deny_rules("vm-web-01")) == azure_policy_remains


def test_a_second_policy_for_a_governed_vm_is_a_conflict_and_writes_nothing(jit: JitWorld) -> None:
    jit.apply(policy_manifest("web-admins"))
    jit.wait_policy_ready("web-admins")
    puts = jit.calls(PUTS)

    jit.apply(policy_manifest("rogue", vms={"vm-web-01": [port_rule(22, prefixes=["*"])]}))
    conflict = wait_for(
        lambda: jit.condition("JitPolicy", "rogue", "Ready"),
        timeout=20,
        what="the conflicting policy's Ready condition",
    )
    assert (conflict["status"], conflict["reason"]) == ("False", "Conflict")
    assert "already governed by JitPolicy" in conflict["message"]
    assert jit.calls(PUTS) == puts


def test_a_vm_that_does_not_exist_in_azure_is_reported_readably(jit: JitWorld) -> None:
    jit.apply(policy_manifest(vms={"vm-ghost": [port_rule(22)]}))
    ready = wait_for(
        lambda: jit.condition("JitPolicy", "web-admins", "Ready"),
        timeout=20,
        what="the policy's Ready condition",
    )
    assert ready["status"] == "False"
    assert ready["reason"] in ("AzureRejected", "AzureResourceNotFound")
    assert "vm-ghost" in ready["message"]
    assert jit.wait_event("web-admins", ready["reason"])["type"] == "Warning"


def test_a_listed_vm_without_any_nsg_is_refused_before_anything_is_written(jit: JitWorld) -> None:
    jit.apply(policy_manifest(vms={"vm-legacy-01": [port_rule(3389)]}))
    ready = wait_for(
        lambda: jit.condition("JitPolicy", "web-admins", "Ready"),
        timeout=30,
        what="the policy's Ready condition",
    )
    assert (ready["status"], ready["reason"]) == ("False", "NoNetworkSecurityGroup")
    assert "vm-legacy-01" in ready["message"]
    assert "attach an NSG to the VM's NIC or subnet" in ready["message"]
    assert jit.calls("JitNetworkAccessPolicies_CreateOrUpdate") == 0
    assert jit.wait_event("web-admins", "NoNetworkSecurityGroup")["type"] == "Warning"


def test_a_selected_vm_without_any_nsg_is_left_out_and_reported(jit: JitWorld) -> None:
    spec = policy_manifest(vms={"vm-web-01": [port_rule(22)]})
    spec["spec"]["vmSelector"] = {
        "matchTags": {"env": "dev"},
        "ports": [port_rule(3389)],
    }
    jit.apply(spec)
    status = jit.wait_policy_ready("web-admins")
    assert "vm-legacy-01" not in status["virtualMachines"]
    assert status["virtualMachinesWithoutNsg"] == ["vm-legacy-01"]
    ready = jit.condition("JitPolicy", "web-admins", "Ready")
    assert ready is not None
    assert "vm-legacy-01" in ready["message"]
    assert jit.wait_event("web-admins", "NoNetworkSecurityGroup")["type"] == "Warning"
