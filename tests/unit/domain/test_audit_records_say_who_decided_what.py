"""Audit records: which decisions a status write makes into records (each exactly once), what
they say, and that every one of them follows the published, versioned JSON Schema."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest

from azure_jit_operator import audit
from azure_jit_operator.domain.approvals import ApprovalRecord, Requester
from azure_jit_operator.domain.audit import (
    SCHEMA_VERSION,
    Action,
    Actor,
    AuditRecord,
    Outcome,
    RequestFacts,
    decision_records,
    transition_records,
)
from azure_jit_operator.domain.conditions import Condition
from azure_jit_operator.domain.lifecycle import Phase
from azure_jit_operator.domain.request_status import AzureRecord, RequestStatus
from tests.support.audit import schema_errors

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
OPERATOR = "system:serviceaccount:azure-jit-system:azure-jit-operator"
FACTS = RequestFacts(
    namespace="team-web",
    name="ssh-inc-4711",
    uid="0b6c5a1e-4d7e-4f5e-9a51-2d8a3c1f0e11",
    policy="web-admins",
    virtual_machine="vm-web-01",
    ports=((22, "198.51.100.7/32"),),
    duration="1h",
    justification="INC-4711 <!channel> debugging",
    requester=Requester("alice", groups=("devs", "system:authenticated")),
)
NEW = RequestStatus()
PENDING = RequestStatus(
    phase=Phase.PENDING,
    reason="WaitingForApproval",
    conditions=(Condition("Ready", "False", "WaitingForApproval", "waiting"),),
)


def written(phase: Phase, reason: str, message: str = "m") -> RequestStatus:
    return RequestStatus(
        phase=phase,
        reason=reason,
        message=message,
        conditions=(Condition("Ready", "True", reason, message),),
        expires_at=T0 + timedelta(hours=1),
        azure=AzureRecord(
            policy_id="/subscriptions/0/resourceGroups/rg-web/providers/Microsoft.Security/"
            "locations/westeurope/jitNetworkAccessPolicies/web-admins",
            vm_id="/subscriptions/0/resourceGroups/rg-web/providers/Microsoft.Compute/"
            "virtualMachines/vm-web-01",
            initiation_id="azjit-5f0c",
        ),
    )


def actions(records: list[AuditRecord]) -> list[tuple[str, str, str]]:
    return [(r.action.value, r.outcome.value, r.actor.username) for r in records]


def test_the_first_write_records_the_request_by_its_requester() -> None:
    records = transition_records(NEW, PENDING, facts=FACTS, operator=OPERATOR, now=T0)
    assert actions(records) == [("requested", "success", "alice")]
    body = records[0].to_dict()
    assert body["requester"] == {
        "type": "user",
        "username": "alice",
        "groups": ["devs", "system:authenticated"],
    }
    assert body["object"] == {
        "apiVersion": "azurejit.dev/v1alpha1",
        "kind": "JitAccessRequest",
        "namespace": "team-web",
        "name": "ssh-inc-4711",
        "uid": FACTS.uid,
    }


def test_a_later_write_of_the_same_phase_records_nothing() -> None:
    again = replace(PENDING, message="still waiting: 1 of 2")
    assert transition_records(PENDING, again, facts=FACTS, operator=OPERATOR, now=T0) == []


@pytest.mark.parametrize(
    ("phase", "reason", "expected"),
    [
        pytest.param(Phase.ACTIVE, "Opened", ("opened", "success"), id="opening is recorded"),
        pytest.param(Phase.EXPIRED, "Expired", ("closed", "success"), id="expiry is a close"),
        pytest.param(Phase.REVOKED, "Revoked", ("revoked", "success"), id="deletion is a revoke"),
        pytest.param(Phase.DENIED, "PortNotAllowed", ("denied", "failure"), id="a denial fails"),
        pytest.param(Phase.FAILED, "AzureRefused", ("opened", "failure"), id="a failed open"),
    ],
)
def test_each_phase_entered_is_one_record_by_the_operator(
    phase: Phase, reason: str, expected: tuple[str, str]
) -> None:
    before = written(Phase.ACTIVE, "Opened") if phase in (Phase.EXPIRED, Phase.REVOKED) else PENDING
    records = transition_records(
        before, written(phase, reason), facts=FACTS, operator=OPERATOR, now=T0
    )
    assert actions(records) == [(*expected, OPERATOR)]
    assert records[0].actor == Actor("operator", OPERATOR)
    assert records[0].reason == reason


def test_an_approvers_denial_is_recorded_once_as_theirs_not_again_by_the_operator() -> None:
    decisions = [ApprovalRecord("bob", "Denied", "not during the freeze", T0)]
    records = decision_records(decisions, start=0, required=1, facts=FACTS, now=T0)
    records += transition_records(
        PENDING, written(Phase.DENIED, "DeniedByApprover"), facts=FACTS, operator=OPERATOR, now=T0
    )
    assert actions(records) == [("denied", "failure", "bob")]
    assert records[0].message == "bob denied the request: not during the freeze"


def test_decisions_are_recorded_from_the_cursor_on_with_their_own_time_and_count() -> None:
    decisions = [
        ApprovalRecord("bob", "Approved", time=T0),
        ApprovalRecord("carol", "Approved", time=T0 + timedelta(minutes=3)),
    ]
    first = decision_records(decisions[:1], start=0, required=2, facts=FACTS, now=T0)
    second = decision_records(decisions, start=1, required=2, facts=FACTS, now=T0)
    assert [r.message for r in first + second] == [
        "bob approved (1 of 2 approvals)",
        "carol approved (2 of 2 approvals)",
    ]
    assert second[0].time == T0 + timedelta(minutes=3)
    assert decision_records(decisions, start=2, required=2, facts=FACTS, now=T0) == []
    assert first[0].id != second[0].id, "each decision has an id of its own"


def test_the_requesters_own_approval_is_recorded_as_a_failure() -> None:
    decisions = [ApprovalRecord("alice", "Approved", time=T0)]
    (record,) = decision_records(decisions, start=0, required=1, facts=FACTS, now=T0)
    assert (record.action, record.outcome) == (Action.APPROVED, Outcome.FAILURE)


def test_ids_are_deterministic_so_a_duplicate_line_can_be_dropped() -> None:
    one = transition_records(NEW, PENDING, facts=FACTS, operator=OPERATOR, now=T0)
    two = transition_records(NEW, PENDING, facts=FACTS, operator=OPERATOR, now=T0 + timedelta(1))
    assert one[0].id == two[0].id
    other = replace(FACTS, uid="another")
    assert (
        transition_records(NEW, PENDING, facts=other, operator=OPERATOR, now=T0)[0].id != one[0].id
    )


def every_kind_of_record() -> list[AuditRecord]:
    opened = written(Phase.ACTIVE, "Opened")
    facts = replace(
        FACTS,
        virtual_machine_id=opened.azure.vm_id,
        policy_id=opened.azure.policy_id,
        initiation_id=opened.azure.initiation_id,
        expires_at=opened.expires_at,
    )
    records = transition_records(NEW, PENDING, facts=facts, operator=OPERATOR, now=T0)
    records += decision_records(
        [ApprovalRecord("bob", "Approved", time=T0), ApprovalRecord("carol", "Denied", "no", T0)],
        start=0,
        required=2,
        facts=facts,
        now=T0,
    )
    for before, after in (
        (PENDING, opened),
        (opened, written(Phase.EXPIRED, "Expired")),
        (opened, written(Phase.REVOKED, "Revoked")),
        (PENDING, written(Phase.DENIED, "ApprovalTimeout")),
        (PENDING, written(Phase.FAILED, "AzureRefused")),
    ):
        records += transition_records(before, after, facts=facts, operator=OPERATOR, now=T0)
    # The actions other parts decide, built the way they will build them.
    for action, details in (
        (
            Action.EXTENDED,
            {"previousExpiresAt": "2026-11-23T11:00:00Z", "expiresAt": "2026-11-23T11:30:00Z"},
        ),
        (Action.EMERGENCY, {"maxDuration": "1h"}),
        (Action.REVIEWED, {}),
    ):
        records.append(
            AuditRecord(
                action, Outcome.SUCCESS, Actor.user("bob"), facts, T0, "R", "m", details=details
            )
        )
    return records


def test_every_kind_of_record_follows_the_published_schema() -> None:
    records = every_kind_of_record()
    assert {r.action for r in records} == set(Action), "every action of the schema is built"
    for record in records:
        body = record.to_dict()
        assert body["schemaVersion"] == SCHEMA_VERSION
        assert schema_errors(body) == [], body


def test_the_schema_refuses_what_is_not_a_v1_record() -> None:
    body = every_kind_of_record()[0].to_dict()
    assert schema_errors({**body, "action": "escalated"})
    assert schema_errors({**body, "schemaVersion": "azurejit.dev/audit/v2"})
    assert schema_errors({k: v for k, v in body.items() if k != "actor"})
    assert schema_errors({**body, "time": "yesterday"})


def test_each_record_is_one_json_line_on_the_audit_logger_whatever_else_is_configured() -> None:
    stream, elsewhere = StringIO(), StringIO()
    root = logging.StreamHandler(elsewhere)  # the operator's other logs, in their own format
    root.setFormatter(logging.Formatter("PLAIN %(levelname)s %(message)s"))
    logging.getLogger().addHandler(root)
    audit.configure_audit_log(stream)
    audit.configure_audit_log(stream)  # configuring twice adds no second handler
    try:
        audit.emit(every_kind_of_record()[:2])
    finally:
        logging.getLogger().removeHandler(root)
        logger = logging.getLogger(audit.LOGGER_NAME)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert [json.loads(line)["action"] for line in lines] == ["requested", "approved"]
    assert json.loads(lines[0])["justification"] == "INC-4711 <!channel> debugging"
    assert elsewhere.getvalue() == "", "audit lines are not repeated in the other format"


def test_a_schedule_window_carrying_its_schedules_approval_is_recorded_approved_once() -> None:
    approved = Condition(
        "Approved",
        "True",
        "ApprovedWithSchedule",
        "approved with JitAccessSchedule nightly (generation 2), approved by bob",
    )
    pending = replace(PENDING, conditions=(*PENDING.conditions, approved))
    records = transition_records(NEW, pending, facts=FACTS, operator=OPERATOR, now=T0)
    assert [(r.action, r.reason) for r in records] == [
        (Action.REQUESTED, "Requested"),
        (Action.APPROVED, "ApprovedWithSchedule"),
    ]
    assert records[1].message.endswith("approved by bob")
    assert schema_errors(records[1].to_dict()) == []
    again = transition_records(pending, pending, facts=FACTS, operator=OPERATOR, now=T0)
    assert again == []
