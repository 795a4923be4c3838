"""A restarted operator knows every port an Active request holds (from the requests' status
in Kubernetes) before it acts on another request for the same VM port: a request from
another source waits instead of cutting the holder off, and one from the same source joins
the holder's grant without shortening it.

The requests arriving while the operator is down carry the operator's finalizer already, as
a request does that an earlier operator saw but had not opened yet: the new operator starts
their workers at once, before (or alongside) the holder's, rather than after adding the
finalizer, so it is the persisted status alone that tells them who holds the port."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from azure_jit_operator.clock import Clock
from tests.support.manifests import policy_manifest, port_rule, request_manifest
from tests.support.operator import (
    JitWorld,
    operator_running,
    operator_settings,
    ts,
    wait_for,
)

INITIATE = "JitNetworkAccessPolicies_Initiate"
HOLDER_SOURCE = "198.51.100.7/32"
OTHER_SOURCE = "203.0.113.9/32"
POLICY = policy_manifest(
    vms={"vm-web-01": [port_rule(22, prefixes=["198.51.100.0/24", "203.0.113.0/24"])]}
)
FINALIZER = "azurejit.dev/finalizer"


def run_operator(world: JitWorld, clock: Clock) -> Any:
    settings = operator_settings(world.control_plane, world.emulator, world.namespace)
    return operator_running(settings, clock=clock)


def holder_active(world: JitWorld, clock: Clock, *, duration: str) -> dict[str, Any]:
    """The first operator opens the holder's port, then stops."""
    with run_operator(world, clock):
        world.apply(POLICY)
        world.wait_policy_ready("web-admins")
        world.apply(request_manifest("holder", ports=[(22, HOLDER_SOURCE)], duration=duration))
        active = world.wait_phase("holder", "Active")
    assert world.calls(INITIATE) == 1
    assert world.open_sources("vm-web-01", 22) == [HOLDER_SOURCE]
    return active


def seen_before(manifest: dict[str, Any]) -> dict[str, Any]:
    manifest["metadata"]["finalizers"] = [FINALIZER]
    return manifest


def decided(world: JitWorld, name: str) -> dict[str, Any] | None:
    """The request's Ready condition once it waits for the port or went on to open it."""
    ready = world.condition("JitAccessRequest", name, "Ready")
    if ready and ready["reason"] in ("WaitingForPort", "Initiating", "Opened"):
        return ready
    return None


def initiated_port_22(world: JitWorld) -> list[dict[str, Any]]:
    """Azure's live grants for port 22 (the JIT policy's requests not yet revoked)."""
    return [
        port
        for policy in world.admin.state()["jitNetworkAccessPolicies"]
        for request in policy["properties"]["requests"]
        for vm in request["virtualMachines"]
        if vm["id"].lower().endswith("/vm-web-01")
        for port in vm["ports"]
        if port["number"] == 22 and port["status"] == "Initiated"
    ]


def test_a_request_from_another_source_waits_for_the_holder_after_a_restart(
    world: JitWorld,
) -> None:
    clock = Clock()
    holder = holder_active(world, clock, duration="1h")
    # Named to be listed (and started) before the holder.
    world.apply(
        seen_before(request_manifest("a-newcomer", ports=[(22, OTHER_SOURCE)], duration="1h"))
    )

    with run_operator(world, clock):
        # Either it waits for the port, or it went on to open it (cutting the holder off).
        ready = wait_for(
            lambda: decided(world, "a-newcomer"),
            timeout=30,
            what="the restarted operator to decide on the newcomer",
        )
        assert ready["reason"] == "WaitingForPort", ready
        assert "holder" in ready["message"]
        # The holder was not cut off, and nothing was initiated for the newcomer.
        assert world.open_sources("vm-web-01", 22) == [HOLDER_SOURCE]
        assert world.calls(INITIATE) == 1
        assert world.status("JitAccessRequest", "holder")["phase"] == "Active"
        assert ts(holder["expiresAt"]) > clock.now()


def test_a_request_from_the_same_source_joins_the_holders_grant_after_a_restart(
    world: JitWorld,
) -> None:
    clock = Clock()
    holder = holder_active(world, clock, duration="2h")
    world.apply(
        seen_before(request_manifest("a-joiner", ports=[(22, HOLDER_SOURCE)], duration="30m"))
    )

    with run_operator(world, clock):
        joiner = world.wait_phase("a-joiner", "Active")
        assert world.calls(INITIATE) == 2
        # Azure keeps one grant per port: the joiner's initiate must carry the holder's later
        # end, or Azure would close the holder's access when the joiner's 30 minutes end.
        grants = initiated_port_22(world)
        assert len(grants) == 1, grants
        # (in the second before it: the sub-second digits carry the joiner's marker)
        holder_end = ts(holder["expiresAt"])
        assert holder_end - timedelta(seconds=1) < ts(grants[0]["endTimeUtc"]) < holder_end
        assert ts(joiner["expiresAt"]) < ts(holder["expiresAt"])
        assert world.open_sources("vm-web-01", 22) == [HOLDER_SOURCE]
