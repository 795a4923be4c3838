"""Two requests for one VM port never silently cut each other off.

Azure JIT keeps one source per VM port (a newer initiate replaces the older allow rule), so:
same source -> they share the grant; another source -> the later request waits (Pending,
WaitingForPort, naming the holder) and opens when the port is free.
"""

from datetime import timedelta

from tests.support.manifests import policy_manifest, port_rule, request_manifest
from tests.support.operator import JitWorld, ts

POLICY = policy_manifest(
    vms={"vm-web-01": [port_rule(22, prefixes=["198.51.100.0/24", "203.0.113.0/24"])]}
)


def test_a_request_from_another_source_waits_until_the_port_is_free(jit: JitWorld) -> None:
    jit.apply(POLICY)
    jit.wait_policy_ready("web-admins")
    jit.apply(request_manifest("alice", ports=[(22, "198.51.100.7/32")], duration="30m"))
    jit.wait_phase("alice", "Active")

    jit.apply(request_manifest("bob", ports=[(22, "203.0.113.9/32")], duration="1h"))
    waiting = jit.wait_phase("bob", "Pending")
    ready = jit.condition("JitAccessRequest", "bob", "Ready")
    assert ready is not None
    assert ready["reason"] == "WaitingForPort"
    assert "alice" in waiting["message"]
    # Alice was not cut off: her source is still the one allowed.
    assert jit.open_sources("vm-web-01", 22) == ["198.51.100.7/32"]
    assert jit.calls("JitNetworkAccessPolicies_Initiate") == 1

    jit.jump(timedelta(minutes=30))
    expired = jit.wait_phase("alice", "Expired")
    bob = jit.wait_phase("bob", "Active")
    # The handover names the next holder and its own source, not "the same source" (Bob
    # holds the port, or is next in line, when Alice's close is confirmed).
    assert f"to 203.0.113.9/32 for {jit.namespace}/bob" in expired["message"]
    assert "same source" not in expired["message"]
    assert jit.open_sources("vm-web-01", 22) == ["203.0.113.9/32"]
    # Bob's hour starts when his port opened, not when he asked.
    assert ts(bob["expiresAt"]) - ts(bob["startTime"]) == timedelta(hours=1)


def test_requests_from_the_same_source_share_the_grant_until_the_later_expiry(
    jit: JitWorld,
) -> None:
    jit.admin.update_settings(never_revoke=True)
    jit.apply(POLICY)
    jit.wait_policy_ready("web-admins")
    jit.apply(request_manifest("first", ports=[(22, "198.51.100.7/32")], duration="30m"))
    jit.wait_phase("first", "Active")
    jit.apply(request_manifest("second", ports=[(22, "198.51.100.7/32")], duration="1h"))
    jit.wait_phase("second", "Active")

    jit.jump(timedelta(minutes=31))
    expired = jit.wait_phase("first", "Expired")
    assert (
        f"port 22 stays open to 198.51.100.7/32 for another request from the same source "
        f"({jit.namespace}/second)"
    ) in expired["message"]
    assert jit.open_sources("vm-web-01", 22) == ["198.51.100.7/32"]
    assert jit.status("JitAccessRequest", "second")["phase"] == "Active"

    jit.jump(timedelta(minutes=30))
    jit.wait_phase("second", "Expired", timeout=30)
    assert jit.allow_rules("vm-web-01") == []


def test_revoking_the_later_member_shortens_azures_grant_to_the_remaining_one(
    jit: JitWorld,
) -> None:
    jit.apply(POLICY)
    jit.wait_policy_ready("web-admins")
    jit.apply(request_manifest("short", ports=[(22, "198.51.100.7/32")], duration="30m"))
    short = jit.wait_phase("short", "Active")
    jit.apply(request_manifest("long", ports=[(22, "198.51.100.7/32")], duration="2h"))
    jit.wait_phase("long", "Active")

    jit.delete("JitAccessRequest", "long")
    jit.wait_gone("JitAccessRequest", "long")
    # Azure's own endTimeUtc is back at the remaining request's expiry: if the operator
    # stopped now, Azure alone would still close the port on time.
    jit.jump(timedelta(minutes=30, seconds=1))
    assert jit.allow_rules("vm-web-01") == []
    assert ts(short["expiresAt"]) <= jit.now()


def test_two_spellings_of_one_address_share_the_port_without_waiting(jit: JitWorld) -> None:
    jit.admin.update_settings(never_revoke=True)
    jit.apply(POLICY)
    jit.wait_policy_ready("web-admins")
    jit.apply(request_manifest("bare", ports=[(22, "198.51.100.7")], duration="30m"))
    bare = jit.wait_phase("bare", "Active")
    jit.apply(request_manifest("cidr", ports=[(22, "198.51.100.7/32")], duration="1h"))
    cidr = jit.wait_phase("cidr", "Active")
    # One source, one spelling: in both statuses and on the NSG.
    assert bare["ports"][0]["sourceAddressPrefix"] == "198.51.100.7/32"
    assert cidr["ports"][0]["sourceAddressPrefix"] == "198.51.100.7/32"
    assert jit.open_sources("vm-web-01", 22) == ["198.51.100.7/32"]

    jit.jump(timedelta(minutes=31))
    expired = jit.wait_phase("bare", "Expired")
    assert (
        f"for another request from the same source ({jit.namespace}/cidr)" in (expired["message"])
    )
    assert jit.open_sources("vm-web-01", 22) == ["198.51.100.7/32"]
