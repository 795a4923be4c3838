"""Every class of invalid request ends Denied with the precise reason, as a condition and a
Warning Event, and nothing is initiated in Azure."""

from datetime import timedelta
from typing import Any

import pytest

from tests.support.manifests import policy_manifest, port_rule, request_manifest
from tests.support.operator import JitWorld


@pytest.mark.parametrize(
    ("request_fields", "reason", "fragment"),
    [
        pytest.param(
            {"vm": "vm-db-01"},
            "VirtualMachineNotInPolicy",
            "virtual machine 'vm-db-01' is not governed by JitPolicy 'web-admins'",
            id="a VM the policy does not govern",
        ),
        pytest.param(
            {"ports": [(3389, "198.51.100.7")]},
            "PortNotInPolicy",
            "port 3389 is not JIT-enabled on vm-web-01",
            id="a port the policy does not protect",
        ),
        pytest.param(
            {"ports": [(22, "192.0.2.10")]},
            "SourcePrefixNotAllowed",
            "source 192.0.2.10/32 is not inside the prefixes allowed for port 22",
            id="a source outside the allowed prefixes",
        ),
        pytest.param(
            {"duration": "4h"},
            "DurationExceedsMaximum",
            "duration 4h exceeds the maximum 3h",
            id="a duration over the port's maximum",
        ),
    ],
)
def test_requests_the_policy_forbids_are_denied_with_the_reason(
    jit: JitWorld, request_fields: dict[str, Any], reason: str, fragment: str
) -> None:
    jit.apply(policy_manifest())
    jit.wait_policy_ready("web-admins")
    jit.apply(request_manifest("bad", **request_fields))

    status = jit.wait_phase("bad", "Denied")
    assert fragment in status["message"]
    denied = jit.condition("JitAccessRequest", "bad", "Denied")
    assert denied is not None
    assert (denied["status"], denied["reason"]) == ("True", reason)
    assert jit.condition("JitAccessRequest", "bad", "Stalled")["status"] == "True"
    event = jit.wait_event("bad", reason)
    assert event["type"] == "Warning"
    assert jit.calls("JitNetworkAccessPolicies_Initiate") == 0


def test_a_request_naming_a_missing_policy_is_denied_after_a_grace_period(jit: JitWorld) -> None:
    jit.apply(request_manifest("orphan", policy="no-such-policy"))
    pending = jit.wait_phase("orphan", "Pending")
    assert jit.condition("JitAccessRequest", "orphan", "Ready")["reason"] == "WaitingForPolicy"
    assert "not found yet" in pending["message"]

    jit.jump(timedelta(seconds=31))
    denied = jit.wait_phase("orphan", "Denied")
    assert "JitPolicy 'no-such-policy' does not exist in namespace" in denied["message"]
    assert jit.calls("JitNetworkAccessPolicies_Initiate") == 0


def test_a_request_arriving_before_its_policy_opens_once_the_policy_is_ready(
    jit: JitWorld,
) -> None:
    jit.apply(request_manifest())
    jit.wait_phase("ssh-inc-4711", "Pending")
    jit.apply(policy_manifest(vms={"vm-web-01": [port_rule(22)]}))
    jit.wait_phase("ssh-inc-4711", "Active", timeout=30)
