"""`kubectl jit extend` (a follow-on request, ``spec.extends``) keeps access going: the
extension opens while its predecessor is Active, sharing the port (same source), and the
predecessor's expiry then leaves the allow rule in place for the extension: no gap, never a
second source. The chain stays within the port's maximum; finished requests, a second
extension and an extension asking for something else are refused with a reason."""

from datetime import timedelta
from typing import Any

from tests.support import admission, approvals
from tests.support.approvals import manual_policy
from tests.support.manifests import policy_manifest, port_rule, request_manifest
from tests.support.operator import JitWorld, ts, wait_for

SOURCE = "198.51.100.7/32"
POLICY = policy_manifest(vms={"vm-web-01": [port_rule(22, max_duration="2h")]})


def extension(name: str, of: str, *, duration: str = "30m", source: str = SOURCE) -> dict[str, Any]:
    manifest = request_manifest(name, ports=[(22, source)], duration=duration)
    manifest["spec"]["extends"] = of
    return manifest


def test_the_extension_takes_over_the_port_at_the_predecessors_expiry_without_a_gap(
    jit: JitWorld,
) -> None:
    jit.admin.update_settings(never_revoke=True)  # only the operator's own closes count
    jit.apply(POLICY)
    jit.wait_policy_ready("web-admins")
    jit.apply(request_manifest("ssh", ports=[(22, SOURCE)], duration="1h"))
    first = jit.wait_phase("ssh", "Active")

    jit.jump(timedelta(minutes=50))
    jit.apply(extension("ssh-more", "ssh", duration="30m"))
    more = jit.wait_phase("ssh-more", "Active")
    # It ends 30m after its predecessor, and says which chain it belongs to.
    assert ts(more["expiresAt"]) == ts(first["expiresAt"]) + timedelta(minutes=30)
    assert more["extends"] == "ssh"
    assert ts(more["chainStartTime"]) == ts(first["startTime"])
    wait_for(
        lambda: jit.status("JitAccessRequest", "ssh").get("extendedBy") == "ssh-more",
        timeout=15,
        what="the predecessor naming its extension",
    )
    assert jit.open_sources("vm-web-01", 22) == [SOURCE]

    # Past the predecessor's expiry (and its close grace): it expires, the rule stays.
    seen: list[list[str]] = []

    def predecessor_expired() -> dict[str, Any] | None:
        seen.append(jit.open_sources("vm-web-01", 22))
        status = jit.status("JitAccessRequest", "ssh")
        return status if status.get("phase") == "Expired" else None

    jit.jump(timedelta(minutes=10, seconds=15))
    expired = wait_for(predecessor_expired, timeout=30, what="ssh Expired")
    seen.append(jit.open_sources("vm-web-01", 22))
    assert len(seen) >= 2
    assert all(sources == [SOURCE] for sources in seen), seen
    assert "access continues under its extension ssh-more" in expired["message"]
    assert jit.status("JitAccessRequest", "ssh-more")["phase"] == "Active"
    assert jit.calls("SecurityRules_Delete", method="DELETE") == 0

    # The extension's own expiry closes the port.
    jit.jump(timedelta(minutes=30))
    jit.wait_phase("ssh-more", "Expired", timeout=30)
    assert jit.allow_rules("vm-web-01", 22) == []


def test_revoking_the_predecessor_leaves_the_port_to_its_extension_until_that_is_revoked(
    jit: JitWorld,
) -> None:
    jit.apply(POLICY)
    jit.wait_policy_ready("web-admins")
    jit.apply(request_manifest("ssh", ports=[(22, SOURCE)], duration="1h"))
    jit.wait_phase("ssh", "Active")
    jit.apply(extension("ssh-more", "ssh"))
    jit.wait_phase("ssh-more", "Active")

    jit.delete("JitAccessRequest", "ssh")
    jit.wait_gone("JitAccessRequest", "ssh")
    # The extension is a request of its own: its access stays, from the one source.
    assert jit.open_sources("vm-web-01", 22) == [SOURCE]
    assert jit.status("JitAccessRequest", "ssh-more")["phase"] == "Active"
    assert jit.calls("SecurityRules_Delete", method="DELETE") == 0

    jit.delete("JitAccessRequest", "ssh-more")
    jit.wait_gone("JitAccessRequest", "ssh-more")
    assert jit.allow_rules("vm-web-01", 22) == []


def test_extensions_that_would_bypass_the_policy_or_the_chain_are_denied(jit: JitWorld) -> None:
    jit.apply(POLICY)
    jit.wait_policy_ready("web-admins")
    jit.apply(request_manifest("ssh", ports=[(22, SOURCE)], duration="90m"))
    jit.wait_phase("ssh", "Active")

    # 90m + 45m is more than the port's 2h: the chain's span counts, not each request's.
    jit.apply(extension("too-long", "ssh", duration="45m"))
    too_long = jit.wait_phase("too-long", "Denied")
    assert jit.condition("JitAccessRequest", "too-long", "Ready")["reason"] == "ChainExceedsMaximum"  # type: ignore[index]
    assert "over its maximum 2h; at most 30m more is possible" in too_long["message"]

    # Another source would be a second source on the port: an extension asks for the same.
    jit.apply(extension("elsewhere", "ssh", source="198.51.100.8/32"))
    elsewhere = jit.wait_phase("elsewhere", "Denied")
    assert "ports are 22 from 198.51.100.8/32, not 22 from 198.51.100.7/32" in elsewhere["message"]

    jit.apply(extension("more", "ssh", duration="30m"))
    jit.wait_phase("more", "Active")
    jit.apply(extension("more-again", "ssh", duration="10m"))
    again = jit.wait_phase("more-again", "Denied")
    assert "ssh is already extended by more; extend more instead" in again["message"]
    assert jit.open_sources("vm-web-01", 22) == [SOURCE]

    # The chain is full (90m + 30m = 2h): extending the extension is refused too.
    jit.apply(extension("one-more", "more", duration="5m"))
    full = jit.wait_phase("one-more", "Denied")
    assert "no extension is possible" in full["message"]

    jit.jump(timedelta(hours=2, seconds=15))
    jit.wait_phase("more", "Expired", timeout=30)
    jit.apply(extension("too-late", "more", duration="10m"))
    late = jit.wait_phase("too-late", "Denied")
    assert jit.condition("JitAccessRequest", "too-late", "Ready")["reason"] == "PredecessorFinished"  # type: ignore[index]
    assert "more is Expired" in late["message"]
    assert jit.allow_rules("vm-web-01", 22) == []


webhooks = approvals.webhooks  # the fixture: operator with admission webhooks, users' RBAC


def approve(world: JitWorld, user: str, name: str) -> None:
    code, out = admission.decide_as(
        world.control_plane,
        world.namespace,
        user,
        name,
        decision="Approved",
        now=world.now(),
        current=world.status("JitAccessRequest", name).get("approvals"),
    )
    assert code == 0, out


def test_under_a_manual_policy_an_extension_waits_for_approval_while_its_predecessor_runs(
    webhooks: JitWorld,
) -> None:
    policy = manual_policy(required=1)
    policy["spec"]["virtualMachines"][0]["ports"][0]["maxRequestAccessDuration"] = "2h"
    webhooks.apply(policy)
    webhooks.wait_policy_ready("web-admins")
    plane, namespace = webhooks.control_plane, webhooks.namespace
    assert admission.create_as(plane, namespace, "alice", request_manifest("ssh"))[0] == 0
    approve(webhooks, "bob", "ssh")
    webhooks.wait_phase("ssh", "Active")

    assert admission.create_as(plane, namespace, "alice", extension("ssh-more", "ssh"))[0] == 0
    waiting = webhooks.wait_phase("ssh-more", "Pending")
    assert "waiting for approval" in waiting["message"]
    assert webhooks.status("JitAccessRequest", "ssh")["phase"] == "Active"
    approve(webhooks, "carol", "ssh-more")
    webhooks.wait_phase("ssh-more", "Active")

    # Not approved before its predecessor expires: the port closes, and both say so.
    assert admission.create_as(plane, namespace, "alice", extension("late", "ssh-more"))[0] == 0
    webhooks.wait_phase("late", "Pending")
    webhooks.jump(timedelta(minutes=90, seconds=15))
    expired = webhooks.wait_phase("ssh-more", "Expired", timeout=30)
    assert "its extension late was not open yet" in expired["message"]
    assert "so the port closed" in expired["message"]
    late = webhooks.wait_phase("late", "Denied")
    assert "ssh-more is Expired" in late["message"]
    assert webhooks.allow_rules("vm-web-01", 22) == []
