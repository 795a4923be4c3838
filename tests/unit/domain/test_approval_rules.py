"""Approval rules: N distinct approvers other than the requester, no denial, in time; and
decisions that are personal and permanent."""

from datetime import UTC, datetime, timedelta

import pytest

from azure_jit_operator.domain.approvals import (
    ApprovalMode,
    ApprovalPolicy,
    ApprovalRecord,
    Requester,
    approval_verdict,
    check_new_decisions,
)

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ALICE = Requester("alice", groups=("devs",))
MANUAL = ApprovalPolicy(mode=ApprovalMode.MANUAL, required=2, timeout=timedelta(minutes=30))


def approve(user: str) -> ApprovalRecord:
    return ApprovalRecord(user, "Approved", time=T0)


def verdict(
    records: list[ApprovalRecord], *, minutes: int = 1, policy: ApprovalPolicy = MANUAL
) -> tuple[str, str, str]:
    v = approval_verdict(
        policy,
        requester=ALICE,
        records=records,
        created=T0,
        now=T0 + timedelta(minutes=minutes),
        request_name="ssh",
    )
    return v.state, v.reason, v.message


def test_automatic_policies_need_nobody() -> None:
    assert verdict([], policy=ApprovalPolicy())[:2] == ("approved", "AutoApproved")


def test_two_of_two_distinct_approvers_approve() -> None:
    assert verdict([approve("bob"), approve("carol")]) == (
        "approved",
        "Approved",
        "approved by bob, carol",
    )


def test_one_approval_of_two_keeps_waiting_and_says_how_to_approve() -> None:
    state, reason, message = verdict([approve("bob")])
    assert (state, reason) == ("pending", "WaitingForApproval")
    assert "1 of 2 (approved by bob)" in message
    assert "kubectl jit approve ssh" in message


def test_the_same_approver_twice_counts_once() -> None:
    assert verdict([approve("bob"), approve("bob")])[0] == "pending"


def test_the_requesters_own_approval_never_counts() -> None:
    assert verdict([approve("alice"), approve("bob")])[0] == "pending"


def test_one_denial_denies_with_the_approvers_reason() -> None:
    denial = ApprovalRecord("carol", "Denied", reason="not during the freeze", time=T0)
    assert verdict([approve("bob"), denial]) == (
        "denied",
        "DeniedByApprover",
        "denied by carol: not during the freeze",
    )


def test_waiting_past_the_timeout_denies() -> None:
    state, reason, message = verdict([approve("bob")], minutes=30)
    assert (state, reason) == ("denied", "ApprovalTimeout")
    assert "not approved within 30m (1 of 2 approvals)" in message


def test_a_manual_policy_without_a_stamped_requester_denies() -> None:
    v = approval_verdict(MANUAL, requester=None, records=[], created=T0, now=T0, request_name="x")
    assert (v.state, v.reason) == ("denied", "RequesterUnknown")


@pytest.mark.parametrize(
    ("old", "new", "user", "problem"),
    [
        pytest.param([], [approve("bob")], "bob", None, id="an approver adds their own approval"),
        pytest.param(
            [],
            [approve("carol")],
            "bob",
            "only record your own decision",
            id="nobody records another's decision",
        ),
        pytest.param(
            [],
            [approve("alice")],
            "alice",
            "cannot approve or deny their own",
            id="the requester cannot approve",
        ),
        pytest.param([approve("bob")], [], "bob", "permanent", id="approvals cannot be withdrawn"),
        pytest.param(
            [approve("bob")],
            [ApprovalRecord("bob", "Denied", reason="changed my mind", time=T0)],
            "bob",
            "permanent",
            id="approvals cannot be rewritten",
        ),
        pytest.param(
            [approve("bob")],
            [approve("bob"), approve("bob")],
            "bob",
            "already decided",
            id="one decision per approver",
        ),
        pytest.param(
            [],
            [ApprovalRecord("bob", "Denied", time=T0)],
            "bob",
            "needs a reason",
            id="a denial needs a reason",
        ),
        pytest.param(
            [],
            [ApprovalRecord("bob", "Maybe", time=T0)],
            "bob",
            "Approved or Denied",
            id="only two decisions exist",
        ),
    ],
)
def test_decisions_are_personal_and_permanent(
    old: list[ApprovalRecord], new: list[ApprovalRecord], user: str, problem: str | None
) -> None:
    found = check_new_decisions(old, new, user=user, requester=ALICE)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found
