"""``kubectl jit`` says no clearly: the cluster's refusals word for word with exit code 1,
usage mistakes with exit code 2, a denial reaching the requester who waits for it, and two
approvers deciding at the same moment both counted."""

from __future__ import annotations

from tests.support import kubectl_jit
from tests.support.approvals import manual_policy
from tests.support.kubectl_jit import CliWorld, request_args
from tests.support.manifests import policy_manifest
from tests.support.operator import wait_for

cli = kubectl_jit.cli  # the fixture: people, RBAC, operator with admission webhooks


def _pending(cli: CliWorld, name: str) -> None:
    wait_for(
        lambda: (
            "waiting for approval" in cli.world.status("JitAccessRequest", name).get("message", "")
        ),
        timeout=15,
        what=f"{name} waiting for approval",
    )


def test_a_denial_with_a_reason_denies_and_the_waiting_requester_hears_why(cli: CliWorld) -> None:
    world = cli.world
    world.apply(manual_policy(required=1))
    world.wait_policy_ready("web-admins")
    carol = cli.user("carol")
    waiting = cli.start("alice", *request_args("--name", "ssh", "--wait", "--timeout", "1m"))
    _pending(cli, "ssh")

    no_reason = cli.run("carol", "deny", "ssh")
    assert no_reason.code == 2
    assert "the following arguments are required: --reason" in no_reason.err

    denied = cli.run("carol", "deny", "ssh", "--reason", "change freeze")
    assert denied.code == 0, denied
    assert f"jitaccessrequest/ssh denied by {carol.username}: change freeze" in denied.out

    heard = cli.finish(waiting)
    assert heard.code == 1, heard
    assert f"jitaccessrequest/ssh is Denied: denied by {carol.username}: change freeze" in (
        heard.err
    )
    assert world.status("JitAccessRequest", "ssh")["phase"] == "Denied"
    assert world.calls("JitNetworkAccessPolicies_Initiate") == 0

    shown = cli.run("alice", "status", "ssh")
    assert shown.code == 0, shown
    assert f"Approvals:  0 of 1 required; denied by {carol.username}" in shown.out
    assert any(
        line.split()[:2] == [carol.username, "Denied"] and line.endswith("change freeze")
        for line in shown.out.splitlines()
    ), shown.out
    listed = cli.run("alice", "list")
    assert listed.out.splitlines()[1].split()[-1] == "denied"

    late = cli.run("bob", "approve", "ssh")
    assert late.code == 1
    assert "jitaccessrequest/ssh is Denied" in late.err
    assert "decisions are only recorded while a request is Pending" in late.err


def test_an_approver_without_the_approve_verb_is_refused_with_the_webhooks_message(
    cli: CliWorld,
) -> None:
    cli.world.apply(manual_policy(required=1))
    cli.world.wait_policy_ready("web-admins")
    name = cli.run("alice", *request_args()).created
    _pending(cli, name)
    dave = cli.user("dave")

    refused = cli.run("dave", "approve", name)
    assert refused.code == 1
    assert refused.err.startswith("Error from server (Forbidden): admission webhook")
    assert (
        f"{dave.username} may not approve requests under JitPolicy 'web-admins': that takes "
        "the 'approve' verb on jitpolicies/web-admins" in refused.err
    )
    assert cli.world.status("JitAccessRequest", name).get("approvals") is None


def test_two_approvers_deciding_at_the_same_moment_are_both_recorded(cli: CliWorld) -> None:
    cli.world.apply(manual_policy(required=2))
    cli.world.wait_policy_ready("web-admins")
    name = cli.run("alice", *request_args()).created
    _pending(cli, name)

    together = [cli.start(user, "approve", name) for user in ("bob", "carol")]
    results = [cli.finish(process) for process in together]
    assert [r.code for r in results] == [0, 0], results
    active = cli.world.wait_phase(name, "Active")
    assert sorted(a["user"] for a in active["approvals"]) == sorted(
        cli.user(u).username for u in ("bob", "carol")
    )


def test_a_request_the_policy_forbids_is_refused_with_the_operators_message(
    cli: CliWorld,
) -> None:
    cli.world.apply(policy_manifest())
    cli.world.wait_policy_ready("web-admins")
    refused = cli.run("alice", *request_args(port=3389))
    assert refused.code == 1
    assert (
        "port 3389 is not JIT-enabled on vm-web-01 by JitPolicy 'web-admins'; allowed ports: 22"
        in refused.err
    )
    assert cli.run("alice", "list").out.startswith("No JitAccessRequests found in namespace")

    outside = cli.run("alice", *request_args(source="203.0.113.9/32"))
    assert outside.code == 1
    assert "203.0.113.9/32" in outside.err


def test_my_ip_comes_from_the_environment_and_nothing_is_guessed(cli: CliWorld) -> None:
    cli.world.apply(policy_manifest())
    cli.world.wait_policy_ready("web-admins")
    args = ["request", *kubectl_jit.POLICY_ARGS, "--port", "22", "--for", "30m"]
    args += ["--reason", "INC-4712", "--my-ip"]

    unknown = cli.run("alice", *args)
    assert unknown.code == 2
    assert "--my-ip cannot tell your public IP address by itself: pass --from" in unknown.err

    known = cli.run("alice", *args, env={"KUBECTL_JIT_MY_IP": "198.51.100.9"})
    assert known.code == 0, known
    name = known.created
    spec = cli.world.get("JitAccessRequest", name)["spec"]  # type: ignore[index]
    assert spec["ports"] == [{"number": 22, "sourceAddressPrefix": "198.51.100.9/32"}]
    assert spec["duration"] == "30m"
    active = cli.world.wait_phase(name, "Active")
    assert active["ports"][0]["state"] == "Open"

    pointless = cli.run("bob", "approve", name)
    assert pointless.code == 1
    assert f"jitaccessrequest/{name} is Active" in pointless.err
