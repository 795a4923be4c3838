"""The operator with the emulator set the other way for two unknowns of azure-evidence.md:

- U3, what a second initiate on one VM port does: Azure may *add* a rule beside the older
  one instead of replacing it. Sharing and handing over a port must still leave nothing open
  past any request's expiry.
- U5, which status and code Azure gives a refusal: a 4xx with a code the operator has never
  seen fails the request with Azure's words; a 5xx that never ends keeps it Pending, backing
  off. Either way nothing opens.
- U6, whether a single IP inside an allowed CIDR is accepted: if Azure only takes the exact
  block, the narrower request fails with Azure's message and nothing opens.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.manifests import policy_manifest, port_rule, request_manifest
from tests.support.operator import JitWorld, wait_for

X = "198.51.100.7/32"
Y = "203.0.113.9/32"
POLICY = policy_manifest(
    vms={"vm-web-01": [port_rule(22, prefixes=["198.51.100.0/24", "203.0.113.0/24"])]}
)


@pytest.mark.parametrize("second_initiate", ["replace", "add"])
def test_sharing_and_handing_over_a_port_leaves_nothing_open_whatever_a_second_initiate_does(
    jit: JitWorld, second_initiate: str
) -> None:
    jit.admin.update_settings(second_initiate=second_initiate, never_revoke=True)
    jit.apply(POLICY)
    jit.wait_policy_ready("web-admins")
    jit.apply(request_manifest("first", ports=[(22, X)], duration="30m"))
    jit.wait_phase("first", "Active")
    jit.apply(request_manifest("second", ports=[(22, X)], duration="1h"))
    jit.wait_phase("second", "Active")
    jit.apply(request_manifest("other", ports=[(22, Y)], duration="30m"))
    assert jit.wait_phase("other", "Pending")["phase"] == "Pending"

    jit.jump(timedelta(minutes=31))
    jit.wait_phase("first", "Expired")
    assert set(jit.open_sources("vm-web-01", 22)) == {X}  # second's grant, one source

    jit.jump(timedelta(minutes=30))
    jit.wait_phase("second", "Expired", timeout=60)
    jit.wait_phase("other", "Active", timeout=60)
    # Whatever Azure kept of X's rules, the close deleted them: only Y is admitted now.
    assert set(jit.open_sources("vm-web-01", 22)) == {Y}

    jit.jump(timedelta(minutes=31))
    jit.wait_phase("other", "Expired", timeout=60)
    assert jit.allow_rules("vm-web-01", 22) == []


def test_a_narrower_source_azure_refuses_fails_and_opens_nothing(jit: JitWorld) -> None:
    jit.admin.update_settings(exact_source_prefix_only=True)
    jit.apply(POLICY)
    jit.wait_policy_ready("web-admins")
    jit.apply(request_manifest("narrow", ports=[(22, X)], duration="30m"))
    failed = jit.wait_phase("narrow", "Failed")
    assert "Azure refused to open the port(s)" in failed["message"]
    assert "is not a subset of policy" in failed["message"]
    assert jit.allow_rules("vm-web-01", 22) == []

    jit.apply(request_manifest("block", ports=[(22, "203.0.113.0/24")], duration="30m"))
    jit.wait_phase("block", "Active")
    assert jit.open_sources("vm-web-01", 22) == ["203.0.113.0/24"]


def test_a_refusal_with_an_unknown_code_fails_the_request_and_opens_nothing(
    jit: JitWorld,
) -> None:
    jit.apply(POLICY)
    jit.wait_policy_ready("web-admins")
    jit.admin.add_fault(
        "JitNetworkAccessPolicies_Initiate",
        status=403,
        code="SomeFutureRefusal",
        message="The request is not allowed for a reason not seen before.",
        times=None,
    )
    jit.apply(request_manifest("refused", ports=[(22, X)], duration="30m"))
    failed = jit.wait_phase("refused", "Failed")
    assert "SomeFutureRefusal" in failed["message"]
    assert "not allowed for a reason not seen before" in failed["message"]
    assert jit.allow_rules("vm-web-01", 22) == []


def test_an_initiate_that_keeps_failing_with_5xx_stays_pending_and_opens_nothing(
    jit: JitWorld,
) -> None:
    jit.apply(POLICY)
    jit.wait_policy_ready("web-admins")
    jit.admin.add_fault("JitNetworkAccessPolicies_Initiate", status=500, times=None)
    jit.apply(request_manifest("unavailable", ports=[(22, X)], duration="30m"))

    def retried_and_reported() -> bool:
        ready = jit.condition("JitAccessRequest", "unavailable", "Ready")
        return (
            jit.calls("JitNetworkAccessPolicies_Initiate") >= 2
            and ready is not None
            and ready["reason"] == "AzureUnavailable"
        )

    wait_for(retried_and_reported, timeout=60, what="the initiate retried and reported")
    assert jit.status("JitAccessRequest", "unavailable")["phase"] == "Pending"
    assert jit.allow_rules("vm-web-01", 22) == []
