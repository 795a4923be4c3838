"""The operator process is killed (SIGKILL, no cleanup) while a request is Active and
started again: it initiates nothing a second time and still closes the port on time.

This runs the real CLI as separate processes with Workload Identity against the emulator's
Entra endpoint, and real time (a 1-minute request), because a restart is a process matter."""

from datetime import timedelta
from pathlib import Path

from tests.support.manifests import policy_manifest, request_manifest
from tests.support.operator import JitWorld, operator_starter, ts

INITIATE = "JitNetworkAccessPolicies_Initiate"
GRACE = timedelta(seconds=10)


def test_a_killed_operator_resumes_without_a_second_initiate_and_closes_on_time(
    world: JitWorld, tmp_path: Path
) -> None:
    world.admin.update_settings(never_revoke=True)  # only the operator closes the port

    start = operator_starter(
        world, tmp_path, env={"AZURE_JIT_CLOSE_GRACE": f"{int(GRACE.total_seconds())}s"}
    )

    first = start("first")
    try:
        world.apply(policy_manifest())
        world.wait_policy_ready("web-admins")
        world.apply(request_manifest(duration="1m"))
        active = world.wait_phase("ssh-inc-4711", "Active")
        assert world.calls(INITIATE) == 1
    finally:
        first.kill()

    second = start("second")
    try:
        expired = world.wait_phase("ssh-inc-4711", "Expired", timeout=120)
    finally:
        second.stop()
    assert world.calls(INITIATE) == 1, "the restarted operator initiated again"
    assert world.allow_rules("vm-web-01") == []
    lag = ts(expired["closedAt"]) - ts(active["expiresAt"])
    assert timedelta(0) <= lag <= GRACE
    assert "SecurityRules_Delete" in world.admin.calls()
