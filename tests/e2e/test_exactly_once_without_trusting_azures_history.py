"""Exactly-once initiate, with the operator SIGKILLed between recording its intent and going
Active, when Azure's history is not what we assume: it drops the justification (U1), or it
keeps only the last entry and another initiate has pushed ours out (U7).

The initiate is held in the emulator (it answers after a delay, then takes effect, as a
request whose client died still does), the operator is killed meanwhile, and a new one must
find the initiate by the marker in endTimeUtc (U1) or by the NSG (U7), never initiate again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.security import SecurityCenter

from tests.integration.emulator.builders import initiate_request
from tests.support.manifests import (
    LOCATION,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    policy_manifest,
    port_rule,
    request_manifest,
)
from tests.support.operator import JitWorld, operator_starter, wait_for

INITIATE = "JitNetworkAccessPolicies_Initiate"
HOLD_SECONDS = 6


def _history(world: JitWorld) -> list[dict[str, Any]]:
    policy = next(
        p for p in world.admin.state()["jitNetworkAccessPolicies"] if p["name"] == "web-admins"
    )
    return list(policy["properties"].get("requests") or [])


@pytest.mark.parametrize(
    "history",
    [
        pytest.param({"history_justifications": False}, id="U1 history without justifications"),
        pytest.param({"history_limit": 1}, id="U7 history of one entry, ours pushed out"),
    ],
)
def test_a_killed_operator_never_initiates_twice_whatever_the_history_keeps(
    world: JitWorld, tmp_path: Path, history: dict[str, Any]
) -> None:
    world.admin.update_settings(**history)

    start = operator_starter(world, tmp_path)

    first = start("first")
    try:
        world.apply(
            policy_manifest(vms={"vm-web-01": [port_rule(22)], "vm-web-02": [port_rule(22)]})
        )
        world.wait_policy_ready("web-admins")
        world.admin.add_fault(INITIATE, kind="latency", latency_seconds=HOLD_SECONDS, times=1)
        world.apply(request_manifest(duration="30m"))

        def intent_recorded() -> bool:
            status = world.status("JitAccessRequest", "ssh-inc-4711")
            return bool(status.get("azure", {}).get("initiationId")) and world.calls(INITIATE) == 1

        wait_for(intent_recorded, timeout=30, what="the intent, and the initiate in flight")
    finally:
        first.kill()
    wait_for(
        lambda: world.open_sources("vm-web-01", 22) == ["198.51.100.7/32"],
        timeout=30,
        what="the held initiate to take effect although its client died",
    )
    if history.get("history_limit"):
        # Someone else's initiate (the portal, a script) pushes ours out of the history.
        security = SecurityCenter(
            world.emulator.credential(), SUBSCRIPTION, **world.emulator.sdk_kwargs()
        )
        security.jit_network_access_policies.initiate(
            RESOURCE_GROUP,
            LOCATION,
            "web-admins",
            initiate_request(
                "vm-web-02", (22, "198.51.100.9"), end=datetime.now(UTC) + timedelta(hours=1)
            ),
        )
        assert len(_history(world)) == 1
    initiates_before_restart = world.calls(INITIATE)

    second = start("second")
    try:
        active = world.wait_phase("ssh-inc-4711", "Active", timeout=60)
    finally:
        second.stop()
    assert world.calls(INITIATE) == initiates_before_restart, "the new operator initiated again"
    assert active["ports"][0]["state"] == "Open"
    assert world.open_sources("vm-web-01", 22) == ["198.51.100.7/32"]
