"""Break-glass: under a Manual policy with ``spec.breakGlass``, an emergency request opens at
once, without approval, but never silently: a Warning Event (EmergencyAccess), the
unreviewed-emergency gauge the alert watches, and ReviewRequired=True until an approver other
than the requester reviews it, also after it expired. The TTL clean-up keeps it until then.
Users are impersonated with ``kubectl --as``; RBAC decides who may review (verb approve)."""

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from azure_jit_operator.domain.timestamps import format_timestamp
from azure_jit_operator.metrics import REGISTRY
from tests.support import admission, approvals
from tests.support.approvals import manual_policy
from tests.support.controlplane import ControlPlane
from tests.support.emulator import EmulatorEndpoint
from tests.support.manifests import policy_manifest, request_manifest
from tests.support.operator import JitWorld, wait_for

TTL = timedelta(hours=1)


@pytest.fixture
def webhooks(
    control_plane: ControlPlane, emulator_endpoint: EmulatorEndpoint, namespace: str
) -> Iterator[JitWorld]:
    with approvals.webhooks_world(
        control_plane,
        emulator_endpoint,
        namespace,
        manifests=approvals.rbac(namespace),
        terminal_ttl=TTL,
    ) as world:
        yield world


def emergency(name: str, *, duration: str = "30m") -> dict[str, Any]:
    manifest = request_manifest(
        name, duration=duration, justification="INC-4712 outage: database down"
    )
    manifest["spec"]["emergency"] = True
    return manifest


def create_as(world: JitWorld, user: str, manifest: dict[str, Any]) -> tuple[int, str]:
    return admission.create_as(world.control_plane, world.namespace, user, manifest)


def review(world: JitWorld, user: str, name: str) -> tuple[int, str]:
    """What `kubectl jit review` does: append one's own review (status subresource)."""
    current = world.status("JitAccessRequest", name).get("reviews")
    entry = {"user": user, "time": format_timestamp(world.now())}
    ops = (
        [{"op": "add", "path": "/status/reviews/-", "value": entry}]
        if current is not None
        else [{"op": "add", "path": "/status/reviews", "value": [entry]}]
    )
    return admission.kubectl_as(
        world.control_plane,
        world.namespace,
        user,
        "patch",
        "jitaccessrequest",
        name,
        "--subresource=status",
        "--type=json",
        "-p",
        json.dumps(ops),
    )


def unreviewed(world: JitWorld) -> float | None:
    return REGISTRY.get_sample_value(
        "azure_jit_emergency_requests_unreviewed",
        {"namespace": world.namespace, "policy": "web-admins"},
    )


def test_an_emergency_request_opens_without_approval_and_stays_review_required_until_reviewed(
    webhooks: JitWorld,
) -> None:
    policy = manual_policy(required=2)
    policy["spec"]["breakGlass"] = {"maxDuration": "1h"}
    webhooks.apply(policy)
    webhooks.wait_policy_ready("web-admins")

    assert create_as(webhooks, "alice", emergency("glass"))[0] == 0
    active = webhooks.wait_phase("glass", "Active")
    assert active.get("approvals") is None  # nobody approved: break-glass
    assert webhooks.open_sources("vm-web-01", 22) == ["198.51.100.7/32"]
    event = webhooks.wait_event("glass", "EmergencyAccess")
    assert event["type"] == "Warning"
    assert "opened without approval for alice" in event["message"]
    required = webhooks.condition("JitAccessRequest", "glass", "ReviewRequired")
    assert required is not None
    assert required["status"] == "True"
    assert "kubectl jit review glass" in required["message"]
    assert unreviewed(webhooks) == 1

    # A routine request under the same policy still waits for its two approvals.
    assert create_as(webhooks, "alice", request_manifest("routine"))[0] == 0
    assert "waiting for approval" in webhooks.wait_phase("routine", "Pending")["message"]

    code, out = review(webhooks, "alice", "glass")
    assert code != 0
    assert "the requester cannot review their own emergency request" in out
    code, out = review(webhooks, "dave", "glass")
    assert code != 0
    assert "dave may not review requests under JitPolicy 'web-admins'" in out
    code, out = review(webhooks, "bob", "routine")
    assert code != 0
    assert "only emergency (break-glass) requests are reviewed" in out

    # It expires unreviewed: ReviewRequired survives, and so does the object past its TTL,
    # while a finished routine request of the same age is cleaned up.
    approvals_done = [
        admission.decide_as(
            webhooks.control_plane,
            webhooks.namespace,
            user,
            "routine",
            decision="Approved",
            now=webhooks.now(),
            current=webhooks.status("JitAccessRequest", "routine").get("approvals"),
        )[0]
        for user in ("bob", "carol")
    ]
    assert approvals_done == [0, 0]
    webhooks.wait_phase("routine", "Active")
    webhooks.jump(timedelta(hours=1, seconds=15))
    webhooks.wait_phase("glass", "Expired", timeout=30)
    webhooks.wait_phase("routine", "Expired", timeout=30)
    required = webhooks.condition("JitAccessRequest", "glass", "ReviewRequired")
    assert required is not None
    assert required["status"] == "True"
    webhooks.jump(TTL + timedelta(minutes=1))
    webhooks.wait_gone("JitAccessRequest", "routine")
    assert webhooks.get("JitAccessRequest", "glass") is not None
    assert unreviewed(webhooks) == 1

    assert review(webhooks, "bob", "glass")[0] == 0
    wait_for(
        lambda: (
            (webhooks.condition("JitAccessRequest", "glass", "ReviewRequired") or {}).get("status")
            == "False"
        ),
        timeout=15,
        what="ReviewRequired=False after bob's review",
    )
    reviewed = webhooks.condition("JitAccessRequest", "glass", "ReviewRequired")
    assert reviewed is not None
    assert reviewed["message"].startswith("reviewed by bob at ")
    assert [r["user"] for r in webhooks.status("JitAccessRequest", "glass")["reviews"]] == ["bob"]
    assert unreviewed(webhooks) == 0
    assert webhooks.wait_event("glass", "Reviewed")["message"].startswith("reviewed by bob at ")
    code, out = review(webhooks, "carol", "glass")
    assert code == 0, out  # a second reviewer may add theirs; it changes nothing
    # The TTL runs from the review: still there now, gone a TTL later.
    assert webhooks.get("JitAccessRequest", "glass") is not None
    webhooks.jump(TTL + timedelta(minutes=1))
    webhooks.wait_gone("JitAccessRequest", "glass")


def test_an_emergency_request_is_refused_where_the_policy_has_no_break_glass(
    webhooks: JitWorld,
) -> None:
    webhooks.apply(policy_manifest())
    webhooks.wait_policy_ready("web-admins")
    code, out = create_as(webhooks, "alice", emergency("glass"))
    assert code != 0
    assert "JitPolicy 'web-admins' does not allow emergency (break-glass) requests" in out
    webhooks.patch_spec("JitPolicy", "web-admins", {"breakGlass": {"maxDuration": "15m"}})
    webhooks.wait_policy_ready("web-admins")
    code, out = create_as(webhooks, "alice", emergency("long-glass", duration="1h"))
    assert code != 0
    assert "an emergency request may last at most 15m under JitPolicy 'web-admins'" in out
    assert webhooks.calls("JitNetworkAccessPolicies_Initiate") == 0
    assert create_as(webhooks, "alice", emergency("short-glass", duration="15m"))[0] == 0
    webhooks.wait_phase("short-glass", "Active")
