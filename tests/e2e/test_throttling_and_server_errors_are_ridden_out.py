"""A burst of 429s (with Retry-After) and 503s from Azure: requests still reach Active and
close on time, without a busy loop (call counts stay bounded), and nothing opens twice."""

from datetime import timedelta

from tests.support.manifests import policy_manifest, port_rule, request_manifest
from tests.support.operator import JitWorld

INITIATE = "JitNetworkAccessPolicies_Initiate"
NSG_READ = "NetworkSecurityGroups_Get"


def test_requests_open_and_close_through_a_burst_of_throttling_and_outages(jit: JitWorld) -> None:
    jit.apply(policy_manifest(vms={"vm-web-01": [port_rule(22)], "vm-web-02": [port_rule(22)]}))
    jit.wait_policy_ready("web-admins")
    jit.admin.reset_calls()

    # The next initiate is throttled three times, then Azure has an outage twice; reading
    # the NSGs is throttled too.
    jit.admin.add_fault(INITIATE, status=429, retry_after=1, times=3)
    jit.admin.add_fault(INITIATE, status=503, times=2)
    jit.admin.add_fault(NSG_READ, status=429, retry_after=1, times=4)

    jit.apply(request_manifest("one", vm="vm-web-01", duration="30m"))
    jit.apply(request_manifest("two", vm="vm-web-02", duration="30m"))
    jit.wait_phase("one", "Active", timeout=60)
    jit.wait_phase("two", "Active", timeout=60)

    # One accepted initiate per request; the rejected attempts are the injected faults only.
    calls = jit.admin.calls()
    initiate = calls.get(INITIATE, {}).get("total", 0)
    assert initiate <= 2 + 3 + 2
    history = jit.admin.state()["jitNetworkAccessPolicies"][0]["properties"]["requests"]
    assert len(history) == 2
    assert calls[NSG_READ]["by_status"].get("429") == 4, "the NSG reads were throttled"

    jit.admin.add_fault(NSG_READ, status=503, times=3)
    jit.jump(timedelta(minutes=30))
    jit.wait_phase("one", "Expired", timeout=60)
    jit.wait_phase("two", "Expired", timeout=60)
    assert jit.allow_rules("vm-web-01") == []
    assert jit.allow_rules("vm-web-02") == []
    assert jit.admin.calls()[NSG_READ]["by_status"].get("503") == 3, "the NSG reads failed"
    # No busy loop: a few reads per request and retry, not hundreds.
    total = sum(entry["total"] for entry in jit.admin.calls().values())
    assert total < 80, jit.admin.calls()


def test_a_lost_initiate_response_is_not_initiated_twice(jit: JitWorld) -> None:
    jit.apply(policy_manifest(vms={"vm-web-01": [port_rule(22)]}))
    jit.wait_policy_ready("web-admins")
    # Azure performs the initiate but the response never arrives (connection dropped).
    jit.admin.add_fault(INITIATE, kind="drop", phase="after", times=1)
    jit.apply(request_manifest("ssh", duration="30m"))
    jit.wait_phase("ssh", "Active", timeout=60)
    history = jit.admin.state()["jitNetworkAccessPolicies"][0]["properties"]["requests"]
    assert len(history) == 1, history
    assert jit.calls(INITIATE) == 1
