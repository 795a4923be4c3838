from datetime import UTC, datetime, timedelta

from azure_jit_operator.domain.conditions import Condition, find, parse_conditions, set_condition

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_a_new_condition_is_stamped_and_counts_as_a_transition() -> None:
    conditions, flipped = set_condition(
        (), Condition("Ready", "False", "Pending", "waiting"), now=T0
    )
    assert flipped
    assert conditions[0].last_transition_time == "2026-11-23T10:00:00Z"


def test_a_new_reason_without_a_status_flip_keeps_the_transition_time() -> None:
    first, _ = set_condition((), Condition("Ready", "False", "Pending", "a"), now=T0)
    second, flipped = set_condition(
        first, Condition("Ready", "False", "AzureThrottled", "b"), now=T0 + timedelta(minutes=5)
    )
    assert not flipped
    ready = find(second, "Ready")
    assert ready is not None
    assert (ready.reason, ready.last_transition_time) == ("AzureThrottled", "2026-11-23T10:00:00Z")


def test_a_status_flip_restamps_only_that_condition() -> None:
    start, _ = set_condition((), Condition("Open", "False", "Pending", ""), now=T0)
    start, _ = set_condition(start, Condition("Ready", "False", "Pending", ""), now=T0)
    later, flipped = set_condition(
        start, Condition("Ready", "True", "Active", ""), now=T0 + timedelta(minutes=1)
    )
    assert flipped
    assert [c.last_transition_time for c in later] == [
        "2026-11-23T10:00:00Z",
        "2026-11-23T10:01:00Z",
    ]


def test_conditions_round_trip_through_their_kubernetes_form() -> None:
    raw = [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Synced",
            "message": "ok",
            "lastTransitionTime": "2026-11-23T10:00:00Z",
            "observedGeneration": 3,
        }
    ]
    assert [c.to_dict() for c in parse_conditions(raw)] == raw
