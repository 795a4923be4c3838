"""``kubectl jit`` for break-glass and extensions, each step a separate process run by a
person with their own identity: alice opens an emergency request without approval, cannot
review it herself, bob reviews it; alice extends it, bob approves the extension (a routine
request under the Manual policy), and ``status`` shows the chain."""

from __future__ import annotations

from tests.support import kubectl_jit
from tests.support.approvals import manual_policy
from tests.support.kubectl_jit import CliWorld, request_args
from tests.support.operator import wait_for

cli = kubectl_jit.cli  # the fixture: people, RBAC, operator with admission webhooks


def test_an_emergency_request_is_reviewed_and_extended_from_the_command_line(
    cli: CliWorld,
) -> None:
    world = cli.world
    policy = manual_policy(required=1)
    policy["spec"]["breakGlass"] = {"maxDuration": "1h"}
    world.apply(policy)
    world.wait_policy_ready("web-admins")
    bob = cli.user("bob")

    args = request_args("--emergency", "--wait")
    args[args.index("INC-4711 disk full")] = "INC-4712 outage: database down"
    asked = cli.run("alice", *args)
    assert asked.code == 0, asked
    name = asked.created
    assert world.status("JitAccessRequest", name)["phase"] == "Active"
    assert world.get("JitAccessRequest", name)["spec"]["emergency"] is True  # type: ignore[index]

    own = cli.run("alice", "review", name)
    assert own.code == 1, own
    assert "the requester cannot review their own emergency request" in own.err
    reviewed = cli.run("bob", "review", name, "--comment", "justified")
    assert reviewed.code == 0, reviewed
    assert f"jitaccessrequest/{name} reviewed by {bob.username}" in reviewed.out
    wait_for(
        lambda: (
            (world.condition("JitAccessRequest", name, "ReviewRequired") or {}).get("status")
            == "False"
        ),
        timeout=15,
        what="ReviewRequired=False",
    )

    extended = cli.run("alice", "extend", name, "--for", "15m")
    assert extended.code == 0, extended
    found = [line for line in extended.out.split() if line.startswith("jitaccessrequest/")]
    extension = found[0].removeprefix("jitaccessrequest/")
    assert extension.startswith(f"{name}-ext-")
    wait_for(
        lambda: (
            "waiting for approval" in world.status("JitAccessRequest", extension).get("message", "")
        ),
        timeout=15,
        what="the extension waiting for approval",
    )
    assert cli.run("bob", "approve", extension).code == 0
    world.wait_phase(extension, "Active")
    shown = cli.run("bob", "status", name)
    assert shown.code == 0, shown
    assert f"Extension:  {extension}" in shown.out
    assert f"reviewed: {bob.username} at " in shown.out
    again = cli.run("alice", "extend", name, "--for", "5m")
    assert again.code == 1, again
    assert f"already extended by {extension}" in again.err
