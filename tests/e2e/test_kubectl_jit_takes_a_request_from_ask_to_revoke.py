"""``kubectl jit`` drives a request through its whole life, each step a separate process run
by a different person with their own identity: alice asks, bob approves, the port opens,
everyone sees it in ``list`` and ``status``, alice revokes and the port is closed."""

from __future__ import annotations

from tests.support import kubectl_jit
from tests.support.approvals import manual_policy
from tests.support.kubectl_jit import CliWorld, kubectl_plugin, request_args
from tests.support.operator import wait_for

cli = kubectl_jit.cli  # the fixture: people, RBAC, operator with admission webhooks


def _waiting_for_approval(cli: CliWorld, name: str) -> None:
    wait_for(
        lambda: (
            "waiting for approval" in cli.world.status("JitAccessRequest", name).get("message", "")
        ),
        timeout=15,
        what=f"{name} waiting for approval",
    )


def test_a_request_is_asked_for_approved_opened_listed_and_revoked_from_the_command_line(
    cli: CliWorld,
) -> None:
    world = cli.world
    world.apply(manual_policy(required=1))
    world.wait_policy_ready("web-admins")
    alice, bob = cli.user("alice"), cli.user("bob")

    asked = cli.run("alice", *request_args())
    assert asked.code == 0, asked
    name = asked.created
    assert name.startswith("vm-web-01-22-")
    assert f"kubectl jit status {name}" in asked.out
    created = world.get("JitAccessRequest", name)
    assert created is not None
    assert created["spec"]["requester"]["username"] == alice.username
    assert created["spec"]["ports"] == [{"number": 22, "sourceAddressPrefix": "198.51.100.7/32"}]
    assert (created["spec"]["duration"], created["spec"]["justification"]) == (
        "1h",
        "INC-4711 disk full",
    )
    _waiting_for_approval(cli, name)

    own = cli.run("alice", "approve", name)
    assert own.code == 1, own
    assert "the requester cannot approve or deny their own request" in own.err
    assert own.err.startswith("Error from server (Forbidden): admission webhook")

    approved = cli.run("bob", "approve", name)
    assert approved.code == 0, approved
    assert f"jitaccessrequest/{name} approved by {bob.username}" in approved.out
    active = world.wait_phase(name, "Active")
    assert [(a["user"], a["decision"]) for a in active["approvals"]] == [(bob.username, "Approved")]
    assert world.allow_rules("vm-web-01", 22)

    # `kubectl jit list` through kubectl's plugin mechanism, as alice.
    listed = kubectl_plugin(world.control_plane, alice.kubeconfig, "list")
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == [
        "NAME",
        "POLICY",
        "VM",
        "PORTS",
        "PHASE",
        "EXPIRES",
        "REQUESTER",
        "APPROVALS",
    ]
    cells = row.split()
    assert cells[:5] == [name, "web-admins", "vm-web-01", "22", "Active"]
    assert cells[5:7] in (["in", "59m"], ["in", "60m"])  # EXPIRES
    assert cells[7:] == [alice.username, "1/1"]

    shown = cli.run("bob", "status", name)
    assert shown.code == 0, shown
    lines = shown.out.splitlines()
    assert "Phase:      Active" in lines
    assert f"Requester:  {alice.username}" in lines
    assert "Approvals:  1 of 1 required" in lines
    assert any(line.split()[:2] == [bob.username, "Approved"] for line in lines), shown.out
    assert any(line.split() == ["22", "198.51.100.7/32", "Open"] for line in lines), shown.out
    assert any(line.split()[:3] == ["Ready", "True", "Opened"] for line in lines), shown.out
    events = lines[lines.index("Events:") + 1 :]
    assert any("Opened" in line for line in events), shown.out

    revoked = cli.run("alice", "revoke", name, "--wait")
    assert revoked.code == 0, revoked
    assert f"port 22 on vm-web-01 closed; jitaccessrequest/{name} is gone" in revoked.out
    assert world.get("JitAccessRequest", name) is None
    assert world.allow_rules("vm-web-01", 22) == []


def test_request_wait_prints_how_to_connect_once_an_approver_approves(cli: CliWorld) -> None:
    world = cli.world
    world.apply(manual_policy(required=1))
    world.wait_policy_ready("web-admins")

    waiting = cli.start("alice", *request_args("--name", "ssh-now", "--wait", "--timeout", "1m"))
    _waiting_for_approval(cli, "ssh-now")
    assert cli.run("carol", "approve", "ssh-now").code == 0

    done = cli.finish(waiting)
    assert done.code == 0, done
    assert "waiting for approval: 0 of 1" in done.err
    assert done.out.startswith("jitaccessrequest/ssh-now created")
    assert "vm-web-01 is open for you until " in done.out
    assert "ssh <user>@vm-web-01   # port 22 open from 198.51.100.7/32" in done.out
    assert "close it early: kubectl jit revoke ssh-now" in done.out
    expires = world.status("JitAccessRequest", "ssh-now")["expiresAt"]
    assert f"until {expires} (in " in done.out
