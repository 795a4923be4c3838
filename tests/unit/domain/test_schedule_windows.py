"""When a JitAccessSchedule's windows open: cron in a time zone (DST included), windows
missed while the operator was down, the starting deadline, suspend, and spec errors."""

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from azure_jit_operator.domain.approvals import ApprovalMode, ApprovalPolicy, Requester
from azure_jit_operator.domain.schedules import (
    ScheduleSpec,
    Window,
    decide,
    parse_schedule_approvals,
    parse_schedule_spec,
    remaining_duration,
    request_name,
    schedule_approval_verdict,
)
from azure_jit_operator.domain.specs import SpecError


def spec(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schedule": "0 9 * * 1-5",
        "timeZone": "Europe/Berlin",
        "duration": "1h",
        "requestTemplate": {
            "policyName": "web-admins",
            "virtualMachine": "vm-web-01",
            "ports": [{"number": 22, "sourceAddressPrefix": "198.51.100.7/32"}],
            "justification": "weekday maintenance",
        },
    }
    body.update(changes)
    return body


def parsed(**changes: Any) -> ScheduleSpec:
    return parse_schedule_spec(spec(**changes))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_a_window_starts_at_the_cron_time_in_the_schedules_time_zone() -> None:
    # Tuesday 2026-12-01: 09:00 in Berlin (CET, UTC+1) is 08:00 UTC.
    schedule = parsed()
    decision = decide(schedule, since=utc(2026, 12, 1, 7), now=utc(2026, 12, 1, 8, 0, 5))
    assert decision.open == Window(utc(2026, 12, 1, 8), utc(2026, 12, 1, 9))
    assert decision.next_start == utc(2026, 12, 2, 8)
    assert decision.missed == 0


def test_nothing_opens_before_the_first_start_and_the_next_look_is_at_it() -> None:
    decision = decide(parsed(), since=utc(2026, 12, 1, 7), now=utc(2026, 12, 1, 7, 30))
    assert decision.open is None
    assert decision.skipped is None
    assert decision.next_start == utc(2026, 12, 1, 8)


def test_a_window_already_handled_does_not_open_again() -> None:
    decision = decide(parsed(), since=utc(2026, 12, 1, 8), now=utc(2026, 12, 1, 8, 30))
    assert decision.open is None
    assert decision.skipped is None


def test_the_weekend_has_no_window() -> None:
    # Friday 2026-12-04 after the window: next is Monday 2026-12-07 09:00 Berlin.
    decision = decide(parsed(), since=utc(2026, 12, 4, 8), now=utc(2026, 12, 4, 12))
    assert decision.next_start == utc(2026, 12, 7, 8)


@pytest.mark.parametrize(
    ("cron", "day", "expected"),
    [
        # 2026-03-29: Berlin springs forward 02:00 -> 03:00; 02:30 does not exist that day
        # and runs once, at 03:00 CEST (01:00 UTC), as Debian cron does.
        ("30 2 * * *", utc(2026, 3, 28, 12), [utc(2026, 3, 29, 1), utc(2026, 3, 30, 0, 30)]),
        # 2026-10-25: Berlin falls back 03:00 -> 02:00; 02:30 happens twice, runs once.
        ("30 2 * * *", utc(2026, 10, 24, 12), [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]),
        # 09:00 stays 09:00 local across the change: 07:00 UTC in summer, 08:00 in winter.
        ("0 9 * * *", utc(2026, 10, 24, 12), [utc(2026, 10, 25, 8), utc(2026, 10, 26, 8)]),
    ],
    ids=[
        "a start inside the spring-forward gap runs once when the gap ends",
        "a start inside the fall-back fold runs once",
        "a morning window keeps its local time across the change",
    ],
)
def test_windows_follow_the_local_clock_across_daylight_saving_changes(
    cron: str, day: datetime, expected: list[datetime]
) -> None:
    schedule = parsed(schedule=cron)
    first = schedule.next_start(day)
    assert [first, schedule.next_start(first)] == expected


def test_the_window_ends_at_start_plus_duration_across_a_daylight_saving_change() -> None:
    # 01:30 Berlin on 2026-10-25 (UTC+2) + 3h ends at 03:30 UTC, i.e. 04:30 CET: real hours.
    schedule = parsed(schedule="30 1 * * *", duration="3h")
    start = schedule.next_start(utc(2026, 10, 24, 12))
    assert schedule.window(start) == Window(utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 2, 30))


def test_a_window_reached_late_opens_for_what_is_left_of_it() -> None:
    schedule = parsed()
    now = utc(2026, 12, 1, 8, 20)
    decision = decide(schedule, since=utc(2026, 12, 1, 7), now=now)
    assert decision.open == Window(utc(2026, 12, 1, 8), utc(2026, 12, 1, 9))
    assert remaining_duration(decision.open, now) == timedelta(minutes=40)


def test_a_window_whose_end_has_passed_is_skipped_and_the_ones_before_counted_missed() -> None:
    # Down from Tuesday 07:00 UTC to Thursday 10:00 UTC: Tue, Wed and Thu windows went by.
    decision = decide(parsed(), since=utc(2026, 12, 1, 7), now=utc(2026, 12, 3, 10))
    assert decision.open is None
    assert decision.skipped == Window(utc(2026, 12, 3, 8), utc(2026, 12, 3, 9))
    assert decision.missed == 2
    assert decision.next_start == utc(2026, 12, 4, 8)


def test_a_start_missed_by_more_than_the_starting_deadline_is_skipped() -> None:
    schedule = parsed(startingDeadlineSeconds=300)
    late = decide(schedule, since=utc(2026, 12, 1, 7), now=utc(2026, 12, 1, 8, 6))
    assert late.open is None
    assert late.skipped == Window(utc(2026, 12, 1, 8), utc(2026, 12, 1, 9))
    assert "missed by 6m" in late.why
    assert "startingDeadlineSeconds (300s)" in late.why
    in_time = decide(schedule, since=utc(2026, 12, 1, 7), now=utc(2026, 12, 1, 8, 4))
    assert in_time.open == Window(utc(2026, 12, 1, 8), utc(2026, 12, 1, 9))


def test_a_window_with_less_than_a_minute_left_is_skipped() -> None:
    decision = decide(parsed(), since=utc(2026, 12, 1, 7), now=utc(2026, 12, 1, 8, 59, 30))
    assert decision.open is None
    assert decision.skipped is not None


def test_a_suspended_schedule_opens_nothing_and_reports_the_window() -> None:
    decision = decide(parsed(suspend=True), since=utc(2026, 12, 1, 7), now=utc(2026, 12, 1, 8))
    assert decision.open is None
    assert decision.skipped == Window(utc(2026, 12, 1, 8), utc(2026, 12, 1, 9))
    assert decision.why == "the schedule is suspended"


def test_macros_read_as_cronjob_reads_them() -> None:
    schedule = parsed(schedule="@daily", timeZone="UTC")
    assert schedule.next_start(utc(2026, 12, 1, 12)) == utc(2026, 12, 2)


def test_a_window_has_one_request_name() -> None:
    assert request_name("maint", utc(2026, 12, 1, 8)) == "maint-202612010800"
    berlin = datetime(2026, 12, 1, 9, tzinfo=ZoneInfo("Europe/Berlin"))
    assert request_name("maint", berlin) == "maint-202612010800"


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"schedule": "61 * * * *"}, "spec.schedule", "is not a cron expression"),
        ({"schedule": "0 9 * *"}, "spec.schedule", "five fields"),
        ({"timeZone": "Mars/Olympus"}, "spec.timeZone", "is not an IANA time zone"),
        ({"duration": "25h"}, "spec.duration", "between 1m and 24h"),
        ({"startingDeadlineSeconds": -1}, "spec.startingDeadlineSeconds", ">= 0"),
        (
            {"successfulRequestsHistoryLimit": 500},
            "spec.successfulRequestsHistoryLimit",
            "0 to 100",
        ),
        ({"requestTemplate": {"policyName": "p"}}, "spec.requestTemplate.ports", "non-empty list"),
    ],
    ids=[
        "a minute out of range",
        "four fields",
        "an unknown time zone",
        "a window longer than a day",
        "a negative starting deadline",
        "a history limit too high",
        "a template without ports",
    ],
)
def test_a_bad_spec_is_refused_with_the_field_and_how_to_fix_it(
    changes: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(SpecError) as caught:
        parse_schedule_spec(spec(**changes))
    assert caught.value.field == field
    assert words in caught.value.message


def test_approvals_count_only_for_the_generation_they_were_made_on() -> None:
    manual = ApprovalPolicy(mode=ApprovalMode.MANUAL, required=2)
    approvals = parse_schedule_approvals(
        [
            {
                "user": "bob",
                "decision": "Approved",
                "time": "2026-12-01T08:00:00Z",
                "generation": 1,
            },
            {
                "user": "carol",
                "decision": "Approved",
                "time": "2026-12-01T08:01:00Z",
                "generation": 2,
            },
            {
                "user": "alice",
                "decision": "Approved",
                "time": "2026-12-01T08:01:00Z",
                "generation": 2,
            },
            {
                "user": "bob",
                "decision": "Approved",
                "time": "2026-12-01T08:02:00Z",
                "generation": 2,
            },
        ]
    )
    alice = Requester(username="alice")
    on_two = schedule_approval_verdict(
        manual, requester=alice, approvals=approvals, generation=2, schedule_name="maint"
    )
    assert (on_two.state, on_two.message) == ("approved", "approved by carol, bob")
    on_three = schedule_approval_verdict(
        manual, requester=alice, approvals=approvals, generation=3, schedule_name="maint"
    )
    assert on_three.state == "pending"
    assert "generation 3: 0 of 2" in on_three.message
    assert "kubectl jit approve schedule/maint" in on_three.message
