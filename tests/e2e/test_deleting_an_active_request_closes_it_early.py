"""Deleting an Active request closes its port right away (Azure JIT has no revoke API, so
the operator deletes the allow rule) and only then lets the object go."""

from tests.support.manifests import policy_manifest, port_rule, request_manifest
from tests.support.operator import JitWorld


def test_deleting_an_active_request_removes_the_allow_rule_before_the_object_goes(
    jit: JitWorld,
) -> None:
    jit.admin.update_settings(never_revoke=True)  # nothing but the operator may close it
    jit.apply(policy_manifest(vms={"vm-web-01": [port_rule(22), port_rule(443)]}))
    jit.wait_policy_ready("web-admins")
    jit.apply(request_manifest(ports=[(22, "198.51.100.7"), (443, "198.51.100.7")]))
    jit.wait_phase("ssh-inc-4711", "Active")
    assert len(jit.allow_rules("vm-web-01")) >= 2

    jit.delete("JitAccessRequest", "ssh-inc-4711")
    jit.wait_gone("JitAccessRequest", "ssh-inc-4711")

    assert jit.allow_rules("vm-web-01") == []
    revoked = jit.wait_event("ssh-inc-4711", "Revoked")
    assert "closed before expiry" in revoked["message"]


def test_deleting_a_pending_request_opens_nothing(jit: JitWorld) -> None:
    jit.apply(request_manifest(policy="not-there-yet"))
    jit.wait_phase("ssh-inc-4711", "Pending")
    jit.delete("JitAccessRequest", "ssh-inc-4711")
    jit.wait_gone("JitAccessRequest", "ssh-inc-4711")
    assert jit.calls("JitNetworkAccessPolicies_Initiate") == 0
