"""The whole lifecycle against the real API server and the emulator: policy -> Azure policy
and deny rules; request -> Active with an allow rule; expiry -> Expired, rule gone."""

from datetime import timedelta

import pytest

from tests.support.manifests import policy_manifest, port_rule, request_manifest
from tests.support.operator import JitWorld, ts
from tests.support.repo import EXAMPLES

POLICY = policy_manifest(
    "web-admins",
    vms={"vm-web-01": [port_rule(22, prefixes=["198.51.100.0/24"], max_duration="3h")]},
)


def test_policy_becomes_an_azure_policy_with_deny_rules(jit: JitWorld) -> None:
    jit.apply(EXAMPLES / "jitpolicy-web-admins.yaml")
    status = jit.wait_policy_ready("web-admins")
    assert status["azurePolicyId"].endswith("/jitNetworkAccessPolicies/web-admins")
    assert status["provisioningState"] == "Succeeded"
    assert status["virtualMachineCount"] == 2
    denied_ports = {
        port
        for rule in jit.deny_rules("vm-web-02")
        for port in [
            *rule["properties"].get("destinationPortRanges", []),
            rule["properties"].get("destinationPortRange"),
        ]
        if port
    }
    assert denied_ports == {"22", "8443"}
    assert jit.wait_event("web-admins", "Applied")["type"] == "Normal"


def test_request_opens_the_port_and_it_closes_at_expiry(jit: JitWorld) -> None:
    jit.apply(POLICY)
    jit.wait_policy_ready("web-admins")
    jit.apply(request_manifest("ssh-inc-4711", duration="1h"))

    active = jit.wait_phase("ssh-inc-4711", "Active")
    assert ts(active["expiresAt"]) - ts(active["startTime"]) == timedelta(hours=1)
    assert active["ports"] == [
        {"number": 22, "sourceAddressPrefix": "198.51.100.7/32", "state": "Open"}
    ]
    assert jit.open_sources("vm-web-01", 22) == ["198.51.100.7/32"]
    assert jit.condition("JitAccessRequest", "ssh-inc-4711", "Ready")["status"] == "True"
    assert jit.calls("JitNetworkAccessPolicies_Initiate") == 1

    jit.jump(timedelta(hours=1, seconds=1))
    expired = jit.wait_phase("ssh-inc-4711", "Expired")
    assert jit.allow_rules("vm-web-01") == []
    assert ts(expired["closedAt"]) >= ts(expired["expiresAt"])
    assert expired["ports"][0]["state"] == "Closed"
    assert jit.condition("JitAccessRequest", "ssh-inc-4711", "Open")["status"] == "False"
    reasons = [e["reason"] for e in jit.events("ssh-inc-4711")]
    assert "Opened" in reasons
    assert "Expired" in reasons
    assert jit.calls("JitNetworkAccessPolicies_Initiate") == 1


@pytest.mark.parametrize(
    "operator_overrides", [{"close_grace": timedelta(seconds=20)}], ids=["20s grace"]
)
def test_operator_closes_the_port_itself_when_azure_never_revokes(jit: JitWorld) -> None:
    jit.admin.update_settings(never_revoke=True)
    jit.apply(POLICY)
    jit.wait_policy_ready("web-admins")
    jit.apply(request_manifest("ssh-inc-4711", duration="30m"))
    active = jit.wait_phase("ssh-inc-4711", "Active")

    jit.jump(timedelta(minutes=30))
    expired = jit.wait_phase("ssh-inc-4711", "Expired", timeout=40)
    assert jit.allow_rules("vm-web-01") == []
    # Azure got the first half of the grace; the operator deleted the rule within the rest.
    lag = ts(expired["closedAt"]) - ts(active["expiresAt"])
    assert timedelta(seconds=10) <= lag <= timedelta(seconds=20)
    assert jit.calls("SecurityRules_Delete", "DELETE") >= 1
