"""Who asked, who approved. The real API server calls the operator's admission webhooks
(served on 127.0.0.1 with the operator's own certificate, configurations managed by the
operator). Users are impersonated with ``kubectl --as``; RBAC decides who may approve."""

import json
from datetime import timedelta
from typing import Any

from tests.support import admission, approvals
from tests.support.approvals import manual_policy
from tests.support.manifests import policy_manifest, request_manifest
from tests.support.operator import JitWorld, wait_for

webhooks = approvals.webhooks  # the fixture: operator with admission webhooks, users' RBAC


def kubectl_as(world: JitWorld, user: str, *args: str, stdin: str | None = None) -> tuple[int, str]:
    return admission.kubectl_as(world.control_plane, world.namespace, user, *args, stdin=stdin)


def create_as(world: JitWorld, user: str, manifest: dict[str, Any]) -> tuple[int, str]:
    return admission.create_as(world.control_plane, world.namespace, user, manifest)


def decide(
    world: JitWorld, user: str, name: str, decision: str, reason: str = ""
) -> tuple[int, str]:
    """What `kubectl jit approve|deny` does: append one's own decision (status subresource)."""
    return admission.decide_as(
        world.control_plane,
        world.namespace,
        user,
        name,
        decision=decision,
        now=world.now(),
        current=world.status("JitAccessRequest", name).get("approvals"),
        reason=reason,
    )


def test_the_requester_is_stamped_from_the_authenticated_user(webhooks: JitWorld) -> None:
    webhooks.apply(policy_manifest())
    webhooks.wait_policy_ready("web-admins")
    code, out = create_as(webhooks, "alice", request_manifest("ssh"))
    assert code == 0, out
    requester = webhooks.get("JitAccessRequest", "ssh")["spec"]["requester"]  # type: ignore[index]
    assert requester["username"] == "alice"
    assert "system:authenticated" in requester["groups"]
    webhooks.wait_phase("ssh", "Active")


def test_a_forged_requester_is_refused(webhooks: JitWorld) -> None:
    webhooks.apply(policy_manifest())
    webhooks.wait_policy_ready("web-admins")
    forged = request_manifest("forged")
    forged["spec"]["requester"] = {"username": "bob", "groups": ["admins"]}
    code, out = create_as(webhooks, "alice", forged)
    assert code != 0
    assert "spec.requester is set by the cluster from the authenticated user" in out
    assert webhooks.get("JitAccessRequest", "forged") is None


def test_kubectl_apply_of_a_request_the_policy_forbids_fails_with_the_operators_message(
    webhooks: JitWorld,
) -> None:
    webhooks.apply(policy_manifest())
    webhooks.wait_policy_ready("web-admins")
    code, out = create_as(
        webhooks, "alice", request_manifest("rdp", ports=[(3389, "198.51.100.7")])
    )
    assert code != 0
    assert (
        "port 3389 is not JIT-enabled on vm-web-01 by JitPolicy 'web-admins'; allowed ports: 22"
        in out
    )
    code, out = create_as(webhooks, "alice", request_manifest("typo", policy="web-admin"))
    assert code != 0
    assert "JitPolicy 'web-admin' does not exist in namespace" in out


def test_two_of_two_approvers_open_the_port_and_nobody_else_counts(webhooks: JitWorld) -> None:
    webhooks.apply(manual_policy(required=2))
    webhooks.wait_policy_ready("web-admins")
    assert create_as(webhooks, "alice", request_manifest("ssh"))[0] == 0
    pending = webhooks.wait_phase("ssh", "Pending")
    assert "waiting for approval: 0 of 2" in pending["message"]

    code, out = decide(webhooks, "alice", "ssh", "Approved")
    assert code != 0
    assert "the requester cannot approve or deny their own request" in out
    code, out = decide(webhooks, "dave", "ssh", "Approved")
    assert code != 0
    assert "dave may not approve requests under JitPolicy 'web-admins'" in out

    assert decide(webhooks, "bob", "ssh", "Approved")[0] == 0
    wait_for(
        lambda: (
            "1 of 2 (approved by bob)"
            in webhooks.status("JitAccessRequest", "ssh").get("message", "")
        ),
        timeout=15,
        what="one of two approvals recorded",
    )
    code, out = decide(webhooks, "bob", "ssh", "Approved")
    assert code != 0
    assert "'bob' has already decided" in out
    assert webhooks.calls("JitNetworkAccessPolicies_Initiate") == 0

    assert decide(webhooks, "carol", "ssh", "Approved")[0] == 0
    active = webhooks.wait_phase("ssh", "Active")
    assert [a["user"] for a in active["approvals"]] == ["bob", "carol"]
    approved = webhooks.condition("JitAccessRequest", "ssh", "Approved")
    assert approved is not None
    assert (approved["status"], approved["message"]) == ("True", "approved by bob, carol")


def test_a_denial_with_a_reason_denies(webhooks: JitWorld) -> None:
    webhooks.apply(manual_policy(required=1))
    webhooks.wait_policy_ready("web-admins")
    assert create_as(webhooks, "alice", request_manifest("ssh"))[0] == 0
    webhooks.wait_phase("ssh", "Pending")
    code, out = decide(webhooks, "carol", "ssh", "Denied")
    assert code != 0
    assert "a denial needs a reason" in out
    assert decide(webhooks, "carol", "ssh", "Denied", reason="change freeze")[0] == 0
    denied = webhooks.wait_phase("ssh", "Denied")
    assert denied["message"] == "denied by carol: change freeze"
    assert webhooks.calls("JitNetworkAccessPolicies_Initiate") == 0


def test_an_unapproved_request_is_denied_at_the_approval_timeout(webhooks: JitWorld) -> None:
    webhooks.apply(manual_policy(required=1, timeout="30m"))
    webhooks.wait_policy_ready("web-admins")
    assert create_as(webhooks, "alice", request_manifest("ssh"))[0] == 0
    webhooks.wait_phase("ssh", "Pending")
    webhooks.jump(timedelta(minutes=30))
    denied = webhooks.wait_phase("ssh", "Denied")
    assert webhooks.condition("JitAccessRequest", "ssh", "Denied")["reason"] == "ApprovalTimeout"  # type: ignore[index]
    assert "not approved within 30m" in denied["message"]


def test_nobody_but_the_operator_may_write_other_status_fields(webhooks: JitWorld) -> None:
    webhooks.apply(manual_policy(required=1))
    webhooks.wait_policy_ready("web-admins")
    assert create_as(webhooks, "alice", request_manifest("ssh"))[0] == 0
    webhooks.wait_phase("ssh", "Pending")
    code, out = kubectl_as(
        webhooks,
        "bob",
        "patch",
        "jitaccessrequest",
        "ssh",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"phase": "Active"}}),
    )
    assert code != 0
    assert "only the operator writes a request's status" in out


def test_without_webhooks_a_policy_that_needs_approval_denies_rather_than_trust_the_client(
    jit: JitWorld,
) -> None:
    """Nothing vouches for spec.requester or an approver's identity without the webhooks, so
    a forged requester and forged approvals cannot open a port."""
    jit.apply(manual_policy(required=1))
    jit.wait_policy_ready("web-admins")
    forged = request_manifest("forged")
    forged["spec"]["requester"] = {"username": "somebody-else", "groups": []}
    jit.apply(forged)
    denied = jit.wait_phase("forged", "Denied")
    assert (
        jit.condition("JitAccessRequest", "forged", "Denied")["reason"] == "ApprovalNeedsWebhooks"
    )  # type: ignore[index]
    assert "needs the operator's admission webhooks" in denied["message"]
    assert jit.calls("JitNetworkAccessPolicies_Initiate") == 0
