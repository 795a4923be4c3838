"""A window's request opens under a Manual policy on its schedule's approval only when
nothing about it can be forged: created by the operator, controlled by that very schedule,
the schedule's template, and an approval the operator confirmed for the current spec."""

from datetime import UTC, datetime
from typing import Any

import pytest

from azure_jit_operator.domain.approvals import ApprovalMode, ApprovalPolicy
from azure_jit_operator.domain.schedules import approval_digest
from azure_jit_operator.domain.specs import JitAccessRequestSpec, parse_request_spec
from azure_jit_operator.reconcile.objects import ObjectView
from azure_jit_operator.reconcile.schedule_approval import approval_from_schedule

OPERATOR = "system:serviceaccount:azure-jit-system:azure-jit-operator"
MANUAL = ApprovalPolicy(mode=ApprovalMode.MANUAL, required=1)
CREATED = datetime(2026, 12, 1, 8, tzinfo=UTC)
TEMPLATE = {
    "policyName": "web-admins",
    "virtualMachine": "vm-web-01",
    "ports": [{"number": 22, "sourceAddressPrefix": "198.51.100.7/32"}],
    "justification": "CHG-1234",
}
SCHEDULE_SPEC: dict[str, Any] = {
    "schedule": "0 9 * * 1-5",
    "duration": "1h",
    "requestTemplate": TEMPLATE,
    "requester": {"username": "alice"},
}


def schedule(**status: Any) -> ObjectView:
    body = {
        "approvals": [
            {"user": "bob", "decision": "Approved", "time": "2026-12-01T07:00:00Z", "generation": 2}
        ],
        "approvedGeneration": 2,
        "approvedSpecHash": approval_digest(SCHEDULE_SPEC),
    }
    body.update(status)
    return ObjectView(
        kind="JitAccessSchedule",
        namespace="team-web",
        name="maint",
        uid="uid-maint",
        generation=2,
        created=CREATED,
        spec=SCHEDULE_SPEC,
        status=body,
    )


def request(
    *,
    owner: tuple[str, str, str] | None = ("JitAccessSchedule", "maint", "uid-maint"),
    requester: str = OPERATOR,
    **spec: Any,
) -> tuple[ObjectView, JitAccessRequestSpec]:
    body = {**TEMPLATE, "duration": "1h", "requester": {"username": requester}, **spec}
    obj = ObjectView(
        kind="JitAccessRequest",
        namespace="team-web",
        name="maint-202612010800",
        uid="uid-request",
        generation=1,
        created=CREATED,
        spec=body,
        status={},
        controller=owner,
    )
    return obj, parse_request_spec(body)


def verdict(obj: ObjectView, spec: JitAccessRequestSpec, found: ObjectView | None) -> Any:
    return approval_from_schedule(
        obj,
        spec,
        MANUAL,
        schedules=lambda namespace, name: (
            found if (namespace, name) == ("team-web", "maint") else None
        ),
        operator_user=OPERATOR,
    )


def test_the_operators_own_window_request_carries_the_approval() -> None:
    approved = verdict(*request(duration="40m"), schedule())
    assert approved is not None
    assert (approved.type, approved.status, approved.reason) == (
        "Approved",
        "True",
        "ApprovedWithSchedule",
    )
    assert approved.message == (
        "approved with JitAccessSchedule maint (generation 2), approved by bob"
    )


@pytest.mark.parametrize(
    ("made", "found"),
    [
        (request(requester="alice"), schedule()),
        (request(owner=None), schedule()),
        (request(owner=("JitAccessSchedule", "maint", "uid-of-an-older-maint")), schedule()),
        (request(owner=("JitAccessSchedule", "other", "uid-maint")), schedule()),
        (request(duration="2h"), schedule()),
        (request(justification="something else"), schedule()),
        (request(ports=[{"number": 22, "sourceAddressPrefix": "198.51.100.0/24"}]), schedule()),
        (request(), schedule(approvedGeneration=1)),
        (request(), schedule(approvedSpecHash="0" * 64)),
        (
            request(),
            schedule(
                approvals=[
                    {
                        "user": "bob",
                        "decision": "Approved",
                        "time": "2026-12-01T07:00:00Z",
                        "generation": 2,
                    },
                    {
                        "user": "carol",
                        "decision": "Denied",
                        "reason": "no",
                        "time": "2026-12-01T07:01:00Z",
                        "generation": 2,
                    },
                ]
            ),
        ),
    ],
    ids=[
        "a request a user created, claiming the schedule as its owner",
        "a request without a controlling owner",
        "a request of an older schedule of the same name",
        "a request controlled by another schedule",
        "a request longer than a window",
        "a request with another justification",
        "a request from a wider source than the template",
        "a schedule approved for an earlier spec",
        "a schedule whose approved digest is not its spec's",
        "a schedule an approver denied",
    ],
)
def test_nothing_else_carries_it(
    made: tuple[ObjectView, JitAccessRequestSpec], found: ObjectView
) -> None:
    assert verdict(*made, found) is None


def test_a_request_whose_schedule_is_gone_carries_nothing() -> None:
    assert verdict(*request(), None) is None


def test_without_knowing_its_own_user_the_operator_honours_no_schedule() -> None:
    obj, spec = request()
    assert (
        approval_from_schedule(obj, spec, MANUAL, schedules=lambda *_: schedule(), operator_user="")
        is None
    )
