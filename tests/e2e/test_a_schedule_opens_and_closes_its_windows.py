"""A JitAccessSchedule opens its windows on time and closes them at their end, one request per
window: across an operator restart (the window due while it was down opens late, for what is
left of it, and no window opens twice), and under a JitPolicy that requires approval,
approved once for all its windows. Time moves by shifting the operator's and the emulator's
clocks together; nothing waits in real time."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from azure_jit_operator.clock import Clock
from azure_jit_operator.domain.timestamps import format_timestamp
from tests.support import admission
from tests.support.approvals import USERS, manual_policy, rbac, user_subject, webhooks_world
from tests.support.audit import AuditLog, schema_errors
from tests.support.controlplane import ControlPlane
from tests.support.emulator import EmulatorEndpoint
from tests.support.kube_users import kube_user, subject_for
from tests.support.kubectl_jit import CliWorld
from tests.support.manifests import manifest, policy_manifest, request_manifest
from tests.support.operator import (
    JitWorld,
    operator_running,
    operator_settings,
    ts,
    wait_for,
)

SCHEDULE = "maint"
# Asia/Kolkata is UTC+05:30: an hourly schedule there starts at half past each UTC hour.
TIME_ZONE = "Asia/Kolkata"
WINDOW = timedelta(minutes=20)
# Azure records a start a moment after the request is created; expiresAt is start + duration.
SLACK = timedelta(seconds=30)


def schedule_manifest(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "schedule": "0 * * * *",
        "timeZone": TIME_ZONE,
        "duration": "20m",
        "successfulRequestsHistoryLimit": 1,
        "requestTemplate": {
            "policyName": "web-admins",
            "virtualMachine": "vm-web-01",
            "ports": [{"number": 22, "sourceAddressPrefix": "198.51.100.7/32"}],
            "justification": "CHG-1234 hourly maintenance",
        },
    }
    spec.update(changes)
    return manifest("JitAccessSchedule", SCHEDULE, spec)


def window_request(start: datetime) -> str:
    return f"{SCHEDULE}-{start:%Y%m%d%H%M}"


def owned_requests(world: JitWorld) -> list[str]:
    listed = world.custom.list_namespaced_custom_object(
        "azurejit.dev",
        "v1alpha1",
        world.namespace,
        "jitaccessrequests",
        label_selector=f"azurejit.dev/schedule={SCHEDULE}",
    )
    return sorted(item["metadata"]["name"] for item in listed["items"])


def next_window(world: JitWorld, *, after: datetime | None = None) -> datetime:
    """The schedule's nextScheduleTime, once the operator has written one past ``after``."""

    def written() -> datetime | None:
        raw = world.status("JitAccessSchedule", SCHEDULE).get("nextScheduleTime")
        found = ts(raw) if raw else None
        return found if found is not None and (after is None or found > after) else None

    return wait_for(written, timeout=30, what="the schedule's next window")


def jump_to(world: JitWorld, moment: datetime) -> None:
    world.jump(moment - world.now())


def window_events(world: JitWorld) -> list[str]:
    return [e["message"] for e in world.events(SCHEDULE) if e["reason"] == "WindowOpened"]


def open_and_check(world: JitWorld, start: datetime) -> dict[str, Any]:
    name = window_request(start)
    active = world.wait_phase(name, "Active", timeout=45)
    expires = ts(active["expiresAt"])
    assert abs(expires - (start + WINDOW)) <= SLACK, "the window ends at its start + 20m"
    assert world.open_sources("vm-web-01", 22) == ["198.51.100.7/32"]
    body = world.get("JitAccessRequest", name)
    assert body is not None
    owner = body["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == (
        "JitAccessSchedule",
        SCHEDULE,
        True,
    )
    return active


@pytest.fixture
def restartable(
    control_plane: ControlPlane, emulator_endpoint: EmulatorEndpoint, namespace: str
) -> Iterator[tuple[JitWorld, Clock]]:
    """A world without an operator, and the clock every operator the test starts shares."""
    admin = emulator_endpoint.sync_admin()
    admin.reset()
    with control_plane.api_client() as api:
        yield (
            JitWorld(
                control_plane=control_plane,
                emulator=emulator_endpoint,
                admin=admin,
                namespace=namespace,
                operator=None,
                api=api,
            ),
            Clock(),
        )


def test_two_windows_open_and_close_across_a_restart_without_a_missed_or_doubled_window(
    restartable: tuple[JitWorld, Clock],
) -> None:
    world, clock = restartable
    settings = operator_settings(world.control_plane, world.emulator, world.namespace)
    with operator_running(settings, clock=clock) as first:
        world.operator = first
        world.apply(policy_manifest())
        world.wait_policy_ready("web-admins")
        world.apply(schedule_manifest())
        start_1 = next_window(world)
        assert start_1.minute == 30, "09:00 in Kolkata is half past the UTC hour"
        assert owned_requests(world) == []
        # What the CRD cannot check (a minute of 61) the operator refuses, in its words.
        broken = schedule_manifest(schedule="61 * * * *")
        broken["metadata"]["name"] = "broken"
        world.apply(broken)
        invalid = world.wait_event("broken", "InvalidSpec", timeout=30)
        assert invalid["type"] == "Warning"
        assert "spec.schedule: '61 * * * *' is not a cron expression" in invalid["message"]
        stalled = world.condition("JitAccessSchedule", "broken", "Stalled")
        assert stalled is not None
        assert stalled["status"] == "True"

        jump_to(world, start_1 + timedelta(seconds=5))
        open_and_check(world, start_1)
        assert world.status("JitAccessSchedule", SCHEDULE)["lastScheduleTime"] == (
            format_timestamp(start_1)
        )
        start_2 = next_window(world, after=start_1)
        assert start_2 == start_1 + timedelta(hours=1)

        jump_to(world, start_1 + WINDOW + timedelta(seconds=15))
        world.wait_phase(window_request(start_1), "Expired", timeout=45)
        assert world.allow_rules("vm-web-01", 22) == []

    # Down over the second window's start; it comes back two minutes into the window.
    world.operator = None
    delta = start_2 + timedelta(minutes=2) - clock.now()
    world.admin.advance_clock(delta)
    clock.shift(delta)
    with operator_running(settings, clock=clock) as second:
        world.operator = second
        # Opened two minutes late, it still ends at the window's end (open_and_check).
        open_and_check(world, start_2)
        wait_for(
            lambda: any("(opened late: 1" in m for m in window_events(world)),
            timeout=15,
            what="the late window's Event",
        )
        wait_for(
            lambda: (
                world.status("JitAccessSchedule", SCHEDULE).get("active")
                == [window_request(start_2)]
            ),
            timeout=15,
            what="the schedule to list its active request",
        )

    # As if the status write of that window had been lost: a restart inside the window
    # decides it again, and finds its request there instead of opening it twice.
    world.operator = None
    world.custom.patch_namespaced_custom_object_status(
        "azurejit.dev",
        "v1alpha1",
        world.namespace,
        "jitaccessschedules",
        SCHEDULE,
        {"status": {"lastScheduleTime": format_timestamp(start_1)}},
    )
    with operator_running(settings, clock=clock) as third:
        world.operator = third
        wait_for(
            lambda: (
                world.status("JitAccessSchedule", SCHEDULE).get("lastScheduleTime")
                == format_timestamp(start_2)
            ),
            timeout=30,
            what="the restarted operator to handle the second window again",
        )
        assert owned_requests(world) == [window_request(start_1), window_request(start_2)]
        assert len(window_events(world)) == 2, window_events(world)
        assert world.calls("JitNetworkAccessPolicies_Initiate") == 2

        jump_to(world, start_2 + WINDOW + timedelta(seconds=15))
        world.wait_phase(window_request(start_2), "Expired", timeout=45)
        assert world.allow_rules("vm-web-01", 22) == []
        # Two finished requests, a history limit of one: the older one goes.
        world.wait_gone("JitAccessRequest", window_request(start_1), timeout=30)
        assert owned_requests(world) == [window_request(start_2)]


# --------------------------------------------------------------- approved once, under Manual


def schedule_rbac(
    namespace: str, *, subject: Callable[[str], dict[str, str]] = user_subject
) -> list[dict[str, Any]]:
    """The approval tests' users and roles, plus: every user may create and read schedules,
    the approvers (and alice and dave, to prove the webhook stops them) may patch their
    status."""
    extra = []
    for name, resources, verbs, users in (
        ("jit-scheduler", ["jitaccessschedules"], ["create", "get", "list", "patch"], ["alice"]),
        (
            "jit-schedule-approver",
            ["jitaccessschedules/status"],
            ["get", "patch"],
            ["alice", "bob", "carol", "dave"],
        ),
    ):
        extra += [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": name, "namespace": namespace},
                "rules": [{"apiGroups": ["azurejit.dev"], "resources": resources, "verbs": verbs}],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": name, "namespace": namespace},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": name,
                },
                "subjects": [subject(u) for u in users],
            },
        ]
    return rbac(namespace, subject=subject) + extra


@pytest.fixture
def approvals_world(
    control_plane: ControlPlane, emulator_endpoint: EmulatorEndpoint, namespace: str
) -> Iterator[JitWorld]:
    with webhooks_world(
        control_plane, emulator_endpoint, namespace, manifests=schedule_rbac(namespace)
    ) as world:
        yield world


def approve_schedule(world: JitWorld, user: str) -> tuple[int, str]:
    """What `kubectl jit approve schedule/NAME` does: append one's own decision on the
    generation read."""
    body = world.get("JitAccessSchedule", SCHEDULE)
    assert body is not None
    entry = {
        "user": user,
        "decision": "Approved",
        "time": format_timestamp(world.now()),
        "generation": body["metadata"]["generation"],
    }
    current = (body.get("status") or {}).get("approvals")
    ops = (
        [{"op": "add", "path": "/status/approvals/-", "value": entry}]
        if current is not None
        else [{"op": "add", "path": "/status/approvals", "value": [entry]}]
    )
    return admission.kubectl_as(
        world.control_plane,
        world.namespace,
        user,
        "patch",
        "jitaccessschedule",
        SCHEDULE,
        "--subresource=status",
        "--type=json",
        "-p",
        json.dumps(ops),
    )


def ready(world: JitWorld) -> dict[str, Any] | None:
    return world.condition("JitAccessSchedule", SCHEDULE, "Ready")


def test_a_schedule_under_a_manual_policy_is_approved_once_for_all_its_windows(
    approvals_world: JitWorld,
) -> None:
    world = approvals_world
    world.apply(manual_policy(required=1))
    world.wait_policy_ready("web-admins")
    code, out = admission.create_as(
        world.control_plane, world.namespace, "alice", schedule_manifest()
    )
    assert code == 0, out
    requester = world.get("JitAccessSchedule", SCHEDULE)["spec"]["requester"]  # type: ignore[index]
    assert requester["username"] == "alice"
    waiting = wait_for(
        lambda: (c := ready(world)) and c["reason"] == "WaitingForApproval" and c,
        timeout=30,
        what="the schedule to wait for approval",
    )
    assert "kubectl jit approve schedule/maint" in waiting["message"]

    code, out = approve_schedule(world, "alice")
    assert code != 0
    assert "the requester cannot approve or deny their own schedule" in out
    code, out = approve_schedule(world, "dave")
    assert code != 0
    assert "dave may not approve schedules under JitPolicy 'web-admins'" in out
    with AuditLog() as log:
        assert approve_schedule(world, "bob")[0] == 0
        wait_for(
            lambda: (c := ready(world)) and c["status"] == "True",
            timeout=30,
            what="the approved schedule to be Ready",
        )
        [approved] = wait_for(
            lambda: log.about(SCHEDULE) or None, timeout=30, what="the schedule's audit record"
        )
    assert schema_errors(approved) == []
    assert (approved["action"], approved["object"]["kind"]) == ("approved", "JitAccessSchedule")
    assert approved["details"]["approvers"] == ["bob"]
    start_1 = next_window(world)

    # A request of alice's own that claims to belong to the schedule gains nothing by it.
    schedule = world.get("JitAccessSchedule", SCHEDULE)
    assert schedule is not None
    forged = request_manifest("forged")
    forged["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "azurejit.dev/v1alpha1",
            "kind": "JitAccessSchedule",
            "name": SCHEDULE,
            "uid": schedule["metadata"]["uid"],
            "controller": True,
        }
    ]
    forged["spec"].update(schedule_manifest()["spec"]["requestTemplate"], duration="20m")
    assert admission.create_as(world.control_plane, world.namespace, "alice", forged)[0] == 0
    pending = world.wait_phase("forged", "Pending")
    assert "waiting for approval: 0 of 1" in pending["message"]

    for start in (start_1, start_1 + timedelta(hours=1)):
        jump_to(world, start + timedelta(seconds=5))
        open_and_check(world, start)
        approved = world.condition("JitAccessRequest", window_request(start), "Approved")
        assert approved is not None
        assert approved["reason"] == "ApprovedWithSchedule"
        assert "approved by bob" in approved["message"]
        assert "approvals" not in world.status("JitAccessRequest", window_request(start))
        jump_to(world, start + WINDOW + timedelta(seconds=15))
        world.wait_phase(window_request(start), "Expired", timeout=45)
    assert world.status("JitAccessRequest", "forged")["phase"] != "Active"

    # Suspended, the schedule keeps its approval but opens nothing; it skips the window.
    world.patch_spec("JitAccessSchedule", SCHEDULE, {"suspend": True})
    wait_for(
        lambda: (c := ready(world)) and c["reason"] == "Suspended" and c,
        timeout=30,
        what="the schedule to be suspended",
    )
    start_3 = start_1 + timedelta(hours=2)
    jump_to(world, start_3 + timedelta(seconds=5))
    skipped = world.wait_event(SCHEDULE, "WindowSkipped", timeout=30)
    assert "the schedule is suspended" in skipped["message"]
    assert world.get("JitAccessRequest", window_request(start_3)) is None

    # Any other change of the spec needs approval again: no window opens meanwhile.
    world.patch_spec("JitAccessSchedule", SCHEDULE, {"suspend": False, "duration": "15m"})
    wait_for(
        lambda: (c := ready(world)) and c["reason"] == "WaitingForApproval" and c,
        timeout=30,
        what="the changed schedule to wait for approval again",
    )
    assert "generation 3: 0 of 1" in ready(world)["message"]  # type: ignore[index]
    jump_to(world, start_1 + timedelta(hours=3, seconds=5))
    next_window(world, after=start_1 + timedelta(hours=3))
    assert world.get("JitAccessRequest", window_request(start_1 + timedelta(hours=3))) is None


# --------------------------------------------------------------- kubectl jit schedule ...


@pytest.fixture
def schedule_cli(
    control_plane: ControlPlane,
    emulator_endpoint: EmulatorEndpoint,
    namespace: str,
    tmp_path: Path,
) -> Iterator[CliWorld]:
    """The people as ServiceAccounts (real identities for separate kubectl jit processes)
    with the schedule RBAC above, and the operator with its webhooks."""
    users = {
        name: kube_user(control_plane, namespace=namespace, name=name, directory=tmp_path)
        for name in USERS
    }
    manifests = schedule_rbac(namespace, subject=subject_for(namespace))
    with webhooks_world(control_plane, emulator_endpoint, namespace, manifests=manifests) as world:
        cli_world = CliWorld(world=world, users=users)
        try:
            yield cli_world
        finally:
            cli_world.stop_all()


def test_kubectl_jit_creates_lists_approves_and_suspends_a_schedule(
    schedule_cli: CliWorld,
) -> None:
    cli, world = schedule_cli, schedule_cli.world
    world.apply(manual_policy(required=1))
    world.wait_policy_ready("web-admins")
    created = cli.run(
        "alice",
        "schedule",
        "create",
        SCHEDULE,
        "--cron",
        "0 * * * *",
        "--time-zone",
        TIME_ZONE,
        "--for",
        "20m",
        "--policy",
        "web-admins",
        "--vm",
        "vm-web-01",
        "--port",
        "22",
        "--from",
        "198.51.100.7/32",
        "--reason",
        "CHG-1234 hourly maintenance",
    )
    assert created.code == 0, created
    assert f"jitaccessschedule/{SCHEDULE} created" in created.out
    wait_for(
        lambda: (c := ready(world)) and c["reason"] == "WaitingForApproval" and c,
        timeout=30,
        what="the schedule to wait for approval",
    )
    listed = cli.run("alice", "schedule", "list")
    assert listed.code == 0, listed
    assert "False (WaitingForApproval)" in listed.out

    refused = cli.run("alice", "approve", f"schedule/{SCHEDULE}")
    assert refused.code == 1
    assert "the requester cannot approve or deny their own schedule" in refused.err
    approved = cli.run("bob", "approve", f"schedule/{SCHEDULE}")
    assert approved.code == 0, approved
    assert "(generation 1) approved by system:serviceaccount:" in approved.out
    start = next_window(world)
    wait_for(
        lambda: (c := ready(world)) and c["status"] == "True",
        timeout=30,
        what="the approved schedule to be Ready",
    )
    jump_to(world, start + timedelta(seconds=5))
    open_and_check(world, start)

    suspended = cli.run("alice", "schedule", "suspend", SCHEDULE)
    assert suspended.code == 0, suspended
    assert world.get("JitAccessSchedule", SCHEDULE)["spec"]["suspend"] is True  # type: ignore[index]
    wait_for(
        lambda: (c := ready(world)) and c["reason"] == "Suspended" and c,
        timeout=30,
        what="the schedule to be suspended, still approved",
    )
    listed = cli.run("alice", "schedule", "list")
    assert SCHEDULE in listed.out
    assert " yes " in listed.out
    resumed = cli.run("alice", "schedule", "resume", SCHEDULE)
    assert resumed.code == 0, resumed
    assert world.get("JitAccessSchedule", SCHEDULE)["spec"]["suspend"] is False  # type: ignore[index]
