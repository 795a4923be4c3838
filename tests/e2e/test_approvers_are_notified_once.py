"""Approvers are told: a JitPolicy with spec.approval.notify posts exactly one message per
request waiting for approval to its chat webhook (a real aiohttp server here), through a
webhook that first answers 500, and not again after an operator restart; the webhook URL,
a credential, is never logged, put in an Event or in status."""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client as k8s

from azure_jit_operator.metrics import REGISTRY
from tests.support import admission
from tests.support.approvals import manual_policy, rbac, webhooks_world
from tests.support.audit import AuditLog
from tests.support.controlplane import ControlPlane
from tests.support.emulator import EmulatorEndpoint
from tests.support.logs import LogWatch
from tests.support.manifests import request_manifest
from tests.support.operator import JitWorld, wait_for
from tests.support.webhook_receiver import WebhookReceiver, webhook_receiver


def notifying_policy() -> dict[str, Any]:
    policy = manual_policy(required=1)
    policy["spec"]["approval"]["notify"] = {
        "webhook": {"secretKeyRef": {"name": "azure-jit-notify", "key": "slack"}}
    }
    return policy


def ask(world: JitWorld, name: str) -> None:
    code, out = admission.create_as(
        world.control_plane, world.namespace, "alice", request_manifest(name)
    )
    assert code == 0, out


def wait_messages(receiver: WebhookReceiver, count: int) -> list[dict[str, Any]]:
    return wait_for(
        lambda: receiver.accepted if len(receiver.accepted) >= count else None,
        timeout=45,
        what=f"{count} message(s) at the webhook (have {len(receiver.accepted)})",
    )


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def store_webhook_url(control_plane: ControlPlane, namespace: str, url: str) -> None:
    with control_plane.api_client() as api:
        k8s.CoreV1Api(api).create_namespaced_secret(
            namespace,
            k8s.V1Secret(
                metadata=k8s.V1ObjectMeta(name="azure-jit-notify"), string_data={"slack": url}
            ),
        )


def test_each_waiting_request_is_announced_once_through_failures_and_a_restart(
    control_plane: ControlPlane, emulator_endpoint: EmulatorEndpoint, namespace: str
) -> None:
    ns = {"namespace": namespace, "policy": "web-admins"}
    with (
        webhook_receiver(fail_first=2) as receiver,
        LogWatch() as logs,
        AuditLog() as audit,
    ):
        store_webhook_url(control_plane, namespace, receiver.url)
        with webhooks_world(
            control_plane, emulator_endpoint, namespace, manifests=rbac(namespace)
        ) as world:
            world.apply(notifying_policy())
            world.wait_policy_ready("web-admins")
            ask(world, "ssh-1")
            (first,) = wait_messages(receiver, 1)
            assert receiver.attempts == 3, "two 500s, then accepted"
            wait_for(
                lambda: (
                    world.status("JitAccessRequest", "ssh-1").get("approval", {}).get("notifiedAt")
                ),
                timeout=15,
                what="notifiedAt recorded",
            )
            world.wait_event("ssh-1", "NotifyFailed")
            world.wait_event("ssh-1", "ApproversNotified")
            events = world.events("ssh-1")
            assert [e["reason"] for e in events].count("NotifyFailed") == 1, events
            ask(world, "ssh-2")
            wait_messages(receiver, 2)
            wait_for(
                lambda: sample("azure_jit_requests_awaiting_approval", **ns) == 2 or None,
                timeout=15,
                what="two requests counted as awaiting approval",
            )
        # A new operator: the two still wait, and neither is announced again.
        with webhooks_world(
            control_plane, emulator_endpoint, namespace, manifests=rbac(namespace)
        ) as world:
            ask(world, "ssh-3")
            messages = wait_messages(receiver, 3)
            code, out = admission.decide_as(
                world.control_plane,
                namespace,
                "bob",
                "ssh-1",
                decision="Approved",
                now=world.now(),
                current=None,
            )
            assert code == 0, out
            world.wait_phase("ssh-1", "Active")
            statuses = {n: world.status("JitAccessRequest", n) for n in ("ssh-1", "ssh-2")}
            events = world.events("ssh-1") + world.events("ssh-2") + world.events("ssh-3")
            requested = [r["object"]["name"] for r in audit.records() if r["action"] == "requested"]

    assert receiver.attempts == 5
    assert len(receiver.accepted) == 3, "one message per waiting request, none repeated"
    assert sorted(m["text"].split("/", 1)[1].split(" ", 1)[0] for m in messages) == [
        "ssh-1",
        "ssh-2",
        "ssh-3",
    ]
    text = first["text"]
    for fragment in (
        f"{namespace}/ssh-1 waits for approval",
        "*Requester:* alice",
        "*VM:* vm-web-01",
        "*Ports:* 22 from 198.51.100.7/32",
        "*Duration:* 1h",
        "*Justification:* INC-4711 debugging",
        f"`kubectl jit approve ssh-1 -n {namespace}`",
    ):
        assert fragment in text
    assert first["blocks"][0]["type"] == "header"
    assert sorted(requested) == ["ssh-1", "ssh-2", "ssh-3"], "audit: nothing repeated either"

    # The URL is a credential: nowhere but in the Secret.
    for where, content in (
        ("logs", "\n".join(logs.messages)),
        ("events", json.dumps(events)),
        ("status", json.dumps(statuses)),
    ):
        assert receiver.token not in content, f"the webhook URL leaked into {where}"
        assert f"127.0.0.1:{receiver.port}" not in content, f"the webhook address is in {where}"
    failed = next(e for e in events if e["reason"] == "NotifyFailed")
    assert "HTTP 500" in failed["message"]


def test_a_webhook_that_never_answers_holds_no_request_back(
    control_plane: ControlPlane, emulator_endpoint: EmulatorEndpoint, namespace: str
) -> None:
    with webhook_receiver(hang=True) as receiver:
        store_webhook_url(control_plane, namespace, receiver.url)
        with webhooks_world(
            control_plane, emulator_endpoint, namespace, manifests=rbac(namespace)
        ) as world:
            world.apply(notifying_policy())
            world.wait_policy_ready("web-admins")
            ask(world, "ssh")
            wait_for(lambda: receiver.attempts == 1 or None, timeout=15, what="a post to hang")
            code, out = admission.decide_as(
                world.control_plane,
                namespace,
                "bob",
                "ssh",
                decision="Approved",
                now=world.now(),
                current=world.status("JitAccessRequest", "ssh").get("approvals"),
            )
            assert code == 0, out
            # The post still hangs (its timeout is 10 s); the request opens meanwhile.
            world.wait_phase("ssh", "Active", timeout=8)
            assert receiver.accepted == []
            assert not world.status("JitAccessRequest", "ssh").get("approval", {}).get("notifiedAt")
