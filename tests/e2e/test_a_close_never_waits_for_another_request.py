"""A port past its expiry closes within the grace whatever other requests on the same VM are
doing: an initiate that hangs and fails, an NSG read that hangs and fails, an initiate that
Azure takes minutes to apply, a request waiting for the port, and an operator SIGKILL.

Request A (port 22) is Active with Azure's own revoke off, so only the operator can close it;
request B (port 3389, same VM) is in trouble; request C (port 22, another source) waits for
A's port. A's allow rule must be gone by ``expiresAt`` + grace. The faults hold B in a
real-time call (the emulator waits before answering), so a close that queued behind B's
work would be late by far more than the grace.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.manifests import policy_manifest, port_rule, request_manifest
from tests.support.operator import JitWorld, operator_starter, ts, wait_for

A_SOURCE = "198.51.100.7/32"
C_SOURCE = "203.0.113.9/32"
INITIATE = "JitNetworkAccessPolicies_Initiate"
NSG_GET = "NetworkSecurityGroups_Get"
HANG_SECONDS = 25  # far beyond the 10 s grace the in-process operator runs with
POLICY = policy_manifest(
    vms={
        "vm-web-01": [
            port_rule(22, prefixes=["198.51.100.0/24", "203.0.113.0/24"]),
            port_rule(3389),
        ]
    }
)


def _a_active_and_c_waiting(world: JitWorld, *, duration: str) -> dict[str, Any]:
    world.admin.update_settings(never_revoke=True)  # only the operator closes A's port
    world.apply(POLICY)
    world.wait_policy_ready("web-admins")
    world.apply(request_manifest("a", ports=[(22, A_SOURCE)], duration=duration))
    a = world.wait_phase("a", "Active")
    world.apply(request_manifest("c", ports=[(22, C_SOURCE)], duration="10m"))

    def c_waits() -> bool:
        ready = world.condition("JitAccessRequest", "c", "Ready")
        return ready is not None and ready["reason"] == "WaitingForPort"

    wait_for(c_waits, timeout=30, what="C to wait for A's port")
    return a


def _fault_hit(world: JitWorld, operation: str) -> bool:
    return any(f["operation"] == operation and f["fired"] > 0 for f in world.admin.faults())


def _jump_to_expiry(jit: JitWorld, a: dict[str, Any]) -> None:
    jit.jump(ts(a["expiresAt"]) - jit.now() + timedelta(milliseconds=500))


def _assert_a_closed_within_grace(world: JitWorld, a: dict[str, Any], grace: timedelta) -> None:
    expired = world.wait_phase("a", "Expired", timeout=90)
    lag = ts(expired["closedAt"]) - ts(a["expiresAt"])
    assert timedelta(0) <= lag <= grace, f"A closed {lag} past expiresAt (grace {grace})"
    assert A_SOURCE not in world.open_sources("vm-web-01", 22)
    assert world.status("JitAccessRequest", "b")["phase"] != "Expired"


def test_an_initiate_that_hangs_and_fails_on_the_vm_does_not_delay_a_close(
    jit: JitWorld,
) -> None:
    a = _a_active_and_c_waiting(jit, duration="30m")
    jit.admin.add_fault(INITIATE, kind="latency", latency_seconds=HANG_SECONDS, times=None)
    jit.admin.add_fault(INITIATE, status=503, times=None)
    jit.apply(request_manifest("b", ports=[(3389, A_SOURCE)], duration="30m"))
    wait_for(lambda: _fault_hit(jit, INITIATE), timeout=30, what="B's initiate to reach Azure")

    _jump_to_expiry(jit, a)

    _assert_a_closed_within_grace(jit, a, jit.operator.settings.close_grace)
    # C got the port once A let go; its initiate meets the same faults, so nothing is open.
    assert jit.open_sources("vm-web-01", 22) == []


def test_an_nsg_read_that_hangs_and_fails_for_another_request_does_not_delay_a_close(
    jit: JitWorld,
) -> None:
    a = _a_active_and_c_waiting(jit, duration="30m")
    # The next NSG read (B's, confirming its initiate) hangs, then fails.
    jit.admin.add_fault(NSG_GET, kind="latency", latency_seconds=HANG_SECONDS, times=1)
    jit.admin.add_fault(NSG_GET, status=503, times=1)
    jit.apply(request_manifest("b", ports=[(3389, A_SOURCE)], duration="30m"))
    wait_for(lambda: _fault_hit(jit, NSG_GET), timeout=30, what="B's NSG read to hang")

    _jump_to_expiry(jit, a)

    _assert_a_closed_within_grace(jit, a, jit.operator.settings.close_grace)


def test_an_initiate_azure_is_slow_to_apply_does_not_delay_a_close(jit: JitWorld) -> None:
    a = _a_active_and_c_waiting(jit, duration="30m")
    lead = timedelta(seconds=30)
    jit.jump(ts(a["expiresAt"]) - jit.now() - lead)
    # B's rules appear only after an hour of Azure's time: B keeps confirming its initiate
    # past A's expiry, which now comes in real time.
    jit.admin.update_settings(apply_delay_seconds=3600)
    jit.apply(request_manifest("b", ports=[(3389, A_SOURCE)], duration="30m"))

    def b_initiated() -> bool:
        status = jit.status("JitAccessRequest", "b")
        return bool(status.get("azure", {}).get("initiationId")) and jit.calls(INITIATE) == 2

    wait_for(b_initiated, timeout=30, what="B to initiate")

    _assert_a_closed_within_grace(jit, a, jit.operator.settings.close_grace)
    assert jit.allow_rules("vm-web-01", 3389) == []  # B's grant is still being applied


GRACE = timedelta(seconds=10)


def test_a_restarted_operator_closes_an_overdue_port_within_grace_however_b_fares(
    world: JitWorld, tmp_path: Path
) -> None:
    start = operator_starter(
        world, tmp_path, env={"AZURE_JIT_CLOSE_GRACE": f"{int(GRACE.total_seconds())}s"}
    )

    # Also the lifecycle's SIGKILL leg for both rule generations at once (legacy deny rules
    # beside current allow rules) and the emulator's default apply delay.
    world.admin.update_settings(jit_rule_generation="mixed", apply_delay_seconds=3)
    first = start("first")
    try:
        a = _a_active_and_c_waiting(world, duration="1m")
        world.admin.add_fault(INITIATE, kind="latency", latency_seconds=HANG_SECONDS, times=None)
        world.admin.add_fault(INITIATE, status=503, times=None)
        world.apply(request_manifest("b", ports=[(3389, A_SOURCE)], duration="30m"))
        wait_for(lambda: _fault_hit(world, INITIATE), timeout=30, what="B's initiate to hang")
    finally:
        first.kill()
    expires = ts(a["expiresAt"])
    wait_for(
        lambda: world.admin.now() > expires + GRACE,
        timeout=120,
        interval=0.5,
        what="A's expiry to pass while no operator runs",
    )
    assert A_SOURCE in world.open_sources("vm-web-01", 22)  # overdue, and nobody closed it

    second = start("second")
    ready = datetime.now(UTC)
    try:
        expired = world.wait_phase("a", "Expired", timeout=90)
        assert ts(expired["closedAt"]) - ready <= GRACE
        assert A_SOURCE not in world.open_sources("vm-web-01", 22)
        assert world.status("JitAccessRequest", "b")["phase"] == "Pending"
    finally:
        second.stop()
