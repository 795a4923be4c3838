"""A SIEM can follow a request through the audit log: one JSON record per decision (asked,
each approval, opened, closed; or revoked), each by the right actor, carrying the Kubernetes
object and the Azure ids, every one valid against docs/audit/audit-record-v1.schema.json."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.support import admission, approvals
from tests.support.approvals import manual_policy
from tests.support.audit import AuditLog, schema_errors
from tests.support.manifests import policy_manifest, request_manifest
from tests.support.operator import JitWorld, wait_for

webhooks = approvals.webhooks  # the operator with admission webhooks; users' RBAC


def decide(world: JitWorld, user: str, name: str, decision: str) -> None:
    code, out = admission.decide_as(
        world.control_plane,
        world.namespace,
        user,
        name,
        decision=decision,
        now=world.now(),
        current=world.status("JitAccessRequest", name).get("approvals"),
    )
    assert code == 0, out


def wait_actions(log: AuditLog, name: str, expected: list[str]) -> list[dict[str, Any]]:
    wait_for(
        lambda: log.actions(name) == expected or None,
        timeout=30,
        what=f"audit records {expected} for {name} (have {log.actions(name)})",
    )
    return log.about(name)


def test_a_request_is_recorded_once_per_decision_from_ask_to_close(webhooks: JitWorld) -> None:
    with AuditLog() as log:
        webhooks.apply(manual_policy(required=2))
        webhooks.wait_policy_ready("web-admins")
        code, out = admission.create_as(
            webhooks.control_plane, webhooks.namespace, "alice", request_manifest("ssh")
        )
        assert code == 0, out
        webhooks.wait_phase("ssh", "Pending")
        wait_actions(log, "ssh", ["requested"])
        decide(webhooks, "bob", "ssh", "Approved")
        wait_actions(log, "ssh", ["requested", "approved"])
        decide(webhooks, "carol", "ssh", "Approved")
        active = webhooks.wait_phase("ssh", "Active")
        webhooks.jump(timedelta(hours=1, seconds=1))
        webhooks.wait_phase("ssh", "Expired")
        records = wait_actions(
            log, "ssh", ["requested", "approved", "approved", "opened", "closed"]
        )

    for record in records:
        assert schema_errors(record) == [], record
    assert [(r["actor"]["type"], r["actor"]["username"], r["outcome"]) for r in records] == [
        ("user", "alice", "success"),
        ("user", "bob", "success"),
        ("user", "carol", "success"),
        ("operator", records[3]["actor"]["username"], "success"),
        ("operator", records[3]["actor"]["username"], "success"),
    ]
    assert records[2]["message"] == "carol approved (2 of 2 approvals)"
    obj = webhooks.get("JitAccessRequest", "ssh")
    assert obj is not None
    assert {r["object"]["uid"] for r in records} == {obj["metadata"]["uid"]}
    assert records[0]["requester"]["username"] == "alice"
    assert records[0]["justification"] == "INC-4711 debugging"
    assert records[0]["target"] == {
        "virtualMachine": "vm-web-01",
        "ports": [{"number": 22, "sourceAddressPrefix": "198.51.100.7/32"}],
        "duration": "1h",
    }
    opened, closed = records[3], records[4]
    assert opened["azure"] == {
        "policyId": active["azure"]["policyId"],
        "virtualMachineId": active["azure"]["virtualMachineId"],
        "initiationId": active["azure"]["initiationId"],
    }
    assert opened["target"]["expiresAt"] == active["expiresAt"]
    assert (opened["reason"], closed["reason"]) == ("Opened", "Expired")
    assert len({r["id"] for r in records}) == len(records)
    assert obj["status"]["approval"]["decisionsAudited"] == 2


def test_a_request_deleted_while_open_is_recorded_as_revoked_once(webhooks: JitWorld) -> None:
    with AuditLog() as log:
        webhooks.apply(policy_manifest())
        webhooks.wait_policy_ready("web-admins")
        code, out = admission.create_as(
            webhooks.control_plane, webhooks.namespace, "alice", request_manifest("ssh")
        )
        assert code == 0, out
        webhooks.wait_phase("ssh", "Active")
        webhooks.delete("JitAccessRequest", "ssh")
        webhooks.wait_gone("JitAccessRequest", "ssh")
        records = wait_actions(log, "ssh", ["requested", "opened", "revoked"])
        # a denied one for contrast: recorded as asked, then refused, by the operator
        code, out = admission.create_as(
            webhooks.control_plane,
            webhooks.namespace,
            "alice",
            request_manifest("too-long", duration="4h"),
        )
    assert code != 0, "the admission webhook refuses what the policy forbids"
    assert "too-long" not in {r["object"]["name"] for r in log.records()}
    for record in records:
        assert schema_errors(record) == [], record
    revoked = records[2]
    assert revoked["actor"]["type"] == "operator"
    assert revoked["reason"] == "Revoked"
    assert revoked["azure"]["initiationId"]


def test_break_glass_its_review_and_an_extension_are_recorded_by_whoever_decided(
    webhooks: JitWorld,
) -> None:
    policy = manual_policy(required=1)
    policy["spec"]["breakGlass"] = {"maxDuration": "1h"}
    emergency = request_manifest(
        "glass", duration="30m", justification="INC-4712 outage: database down"
    )
    emergency["spec"]["emergency"] = True
    with AuditLog() as log:
        webhooks.apply(policy)
        webhooks.wait_policy_ready("web-admins")
        code, out = admission.create_as(
            webhooks.control_plane, webhooks.namespace, "alice", emergency
        )
        assert code == 0, out
        webhooks.wait_phase("glass", "Active")
        wait_actions(log, "glass", ["requested", "opened", "emergency"])
        code, out = admission.kubectl_as(
            webhooks.control_plane,
            webhooks.namespace,
            "bob",
            "patch",
            "jitaccessrequest",
            "glass",
            "--subresource=status",
            "--type=merge",
            "-p",
            '{{"status": {{"reviews": [{{"user": "bob", "time": "{}"}}]}}}}'.format(
                webhooks.now().strftime("%Y-%m-%dT%H:%M:%SZ")
            ),
        )
        assert code == 0, out
        glass = wait_actions(log, "glass", ["requested", "opened", "emergency", "reviewed"])

        more = request_manifest("glass-more", duration="15m", justification="INC-4712 still")
        more["spec"]["extends"] = "glass"
        code, out = admission.create_as(webhooks.control_plane, webhooks.namespace, "alice", more)
        assert code == 0, out
        decide(webhooks, "bob", "glass-more", "Approved")
        webhooks.wait_phase("glass-more", "Active")
        extension = wait_actions(log, "glass-more", ["requested", "approved", "opened", "extended"])
    for record in (*glass, *extension):
        assert schema_errors(record) == [], record
    assert [(r["action"], r["actor"]["username"]) for r in glass[2:]] == [
        ("emergency", "alice"),
        ("reviewed", "bob"),
    ]
    extended = extension[3]
    assert (extended["actor"]["username"], extended["details"]["follows"]) == ("alice", "glass")
