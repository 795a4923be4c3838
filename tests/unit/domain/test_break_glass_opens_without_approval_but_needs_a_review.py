"""Break-glass: an emergency request skips approval only where the policy allows it, within
its maximum; it needs a review by someone other than the requester, recorded permanently."""

from datetime import UTC, datetime, timedelta

import pytest

from azure_jit_operator.domain.approvals import Requester
from azure_jit_operator.domain.break_glass import (
    ReviewRecord,
    check_emergency,
    check_new_reviews,
    needs_review,
    review_condition,
)
from azure_jit_operator.domain.conditions import Condition
from azure_jit_operator.domain.specs import (
    BreakGlassPolicy,
    SpecError,
    parse_policy_spec,
    parse_request_spec,
)
from tests.support.manifests import policy_spec, request_spec

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ALICE = Requester("alice")
GLASS = BreakGlassPolicy(max_duration=timedelta(hours=1))


def test_without_break_glass_an_emergency_request_is_denied_with_what_to_do() -> None:
    denial = check_emergency(timedelta(minutes=30), None, policy_name="web", webhooks="managed")
    assert denial is not None
    assert denial.reason == "BreakGlassNotAllowed"
    assert "remove spec.emergency and ask for approval" in denial.message


def test_an_emergency_request_longer_than_the_break_glass_maximum_is_denied() -> None:
    denial = check_emergency(timedelta(minutes=61), GLASS, policy_name="web", webhooks="managed")
    assert denial is not None
    assert denial.reason == "EmergencyDurationExceedsMaximum"
    assert "at most 1h" in denial.message
    assert check_emergency(timedelta(hours=1), GLASS, policy_name="web", webhooks="managed") is None


def test_without_the_webhooks_nothing_could_vouch_for_the_review_so_it_is_denied() -> None:
    denial = check_emergency(timedelta(minutes=5), GLASS, policy_name="web", webhooks="off")
    assert denial is not None
    assert denial.reason == "BreakGlassNeedsWebhooks"


def test_review_required_until_someone_other_than_the_requester_reviews() -> None:
    def cond(reviews: list[ReviewRecord], *, opened: bool = True) -> Condition | None:
        return review_condition(
            emergency=True, opened=opened, reviews=reviews, requester=ALICE, request_name="glass"
        )

    assert cond([], opened=False) is None  # denied or never opened: nothing to review
    waiting = cond([])
    assert waiting is not None
    assert (waiting.status, waiting.reason) == ("True", "EmergencyAccess")
    assert "kubectl jit review glass" in waiting.message
    own = cond([ReviewRecord("alice", T0)])
    assert own is not None
    assert own.status == "True"
    done = cond([ReviewRecord("alice", T0), ReviewRecord("bob", T0)])
    assert done is not None
    assert (done.status, done.message) == ("False", "reviewed by bob at 2026-11-23T10:00:00Z")
    assert not needs_review(
        emergency=True, opened=True, reviews=[ReviewRecord("bob", T0)], requester=ALICE
    )
    assert (
        review_condition(
            emergency=False, opened=True, reviews=[], requester=ALICE, request_name="x"
        )
        is None
    )


@pytest.mark.parametrize(
    ("old", "new", "user", "emergency", "words"),
    [
        ([], [ReviewRecord("alice", T0)], "alice", True, "requester cannot review their own"),
        ([], [ReviewRecord("carol", T0)], "bob", True, "only record your own review"),
        ([ReviewRecord("bob", T0)], [], "carol", True, "recorded reviews are permanent"),
        (
            [ReviewRecord("bob", T0)],
            [ReviewRecord("bob", T0), ReviewRecord("bob", T0 + timedelta(minutes=1))],
            "bob",
            True,
            "'bob' has already reviewed",
        ),
        ([], [ReviewRecord("bob", T0)], "bob", False, "only emergency (break-glass) requests"),
    ],
    ids=[
        "the requester's own review",
        "someone else's name",
        "removing a review",
        "reviewing twice",
        "a review of a routine request",
    ],
)
def test_reviews_are_personal_permanent_and_only_for_emergencies(
    old: list[ReviewRecord], new: list[ReviewRecord], user: str, emergency: bool, words: str
) -> None:
    problem = check_new_reviews(old, new, user=user, requester=ALICE, emergency=emergency)
    assert problem is not None
    assert words in problem


def test_an_approvers_first_review_is_accepted() -> None:
    assert (
        check_new_reviews(
            [], [ReviewRecord("bob", T0)], user="bob", requester=ALICE, emergency=True
        )
        is None
    )


def test_specs_parse_the_break_glass_rule_and_emergency_requests() -> None:
    raw = policy_spec()
    raw["breakGlass"] = {"maxDuration": "45m"}
    assert parse_policy_spec(raw, name="web").break_glass == BreakGlassPolicy(timedelta(minutes=45))
    assert parse_policy_spec(policy_spec(), name="web").break_glass is None
    request = request_spec(justification="INC-4712 database down")
    request["emergency"] = True
    assert parse_request_spec(request).emergency is True
    request["justification"] = "help"
    with pytest.raises(SpecError, match="justification of at least 10 characters"):
        parse_request_spec(request)
