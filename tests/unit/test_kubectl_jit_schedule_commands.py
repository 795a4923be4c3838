"""``kubectl jit schedule create|list|suspend|resume`` and ``approve schedule/NAME``: the
command line becomes typed options, create builds a manifest the CRD accepts, and list
prints one row per schedule."""

from datetime import UTC, datetime, timedelta

import jsonschema
import pytest

from azure_jit_operator.kubectl_jit.arguments import DecisionOptions, parse_args
from azure_jit_operator.kubectl_jit.schedule_arguments import (
    ScheduleCreateOptions,
    ScheduleListOptions,
    ScheduleSuspendOptions,
)
from azure_jit_operator.kubectl_jit.schedules import list_schedules, schedule_manifest
from tests.support.repo import crd_schema

CREATE = ["schedule", "create", "weekday-maintenance", "--cron", "0 9 * * 1-5"]
CREATE += ["--time-zone", "Europe/Berlin", "--for", "1h", "--policy", "web-admins"]
CREATE += ["--vm", "vm-web-01", "--port", "22", "--from", "198.51.100.7/32"]
CREATE += ["--reason", "CHG-1234"]


def test_schedule_create_becomes_typed_options_and_a_manifest_the_crd_accepts() -> None:
    options = parse_args([*CREATE, "--starting-deadline", "10m", "--suspended"]).options
    assert options == ScheduleCreateOptions(
        name="weekday-maintenance",
        cron="0 9 * * 1-5",
        time_zone="Europe/Berlin",
        policy="web-admins",
        vm="vm-web-01",
        ports=(22,),
        source="198.51.100.7/32",
        duration=timedelta(hours=1),
        reason="CHG-1234",
        starting_deadline=timedelta(minutes=10),
        suspend=True,
    )
    manifest = schedule_manifest(options)
    assert manifest["spec"]["startingDeadlineSeconds"] == 600
    assert manifest["spec"]["suspend"] is True
    jsonschema.validate(manifest, crd_schema("jitaccessschedules"))


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["schedule", "list", "-A"], ScheduleListOptions(all_namespaces=True)),
        (["schedule", "suspend", "maint"], ScheduleSuspendOptions("maint", suspend=True)),
        (["schedule", "resume", "maint"], ScheduleSuspendOptions("maint", suspend=False)),
        (
            ["approve", "schedule/maint"],
            DecisionOptions("maint", "Approved", "", schedule=True),
        ),
        (
            ["deny", "jitsched/maint", "--reason", "no standing access"],
            DecisionOptions("maint", "Denied", "no standing access", schedule=True),
        ),
        (["approve", "ssh-4711"], DecisionOptions("ssh-4711", "Approved", "", schedule=False)),
    ],
    ids=[
        "list in every namespace",
        "suspend",
        "resume",
        "approve schedule/NAME decides on a schedule",
        "deny takes the short name too",
        "a plain NAME is still a request",
    ],
)
def test_schedule_commands_parse(argv: list[str], expected: object) -> None:
    assert parse_args(argv).options == expected


def test_a_bad_schedule_name_to_approve_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(["approve", "schedule/Not_A_Name"])
    assert exited.value.code == 2
    assert "invalid name 'Not_A_Name'" in capsys.readouterr().err


def test_schedule_list_shows_when_the_next_window_opens_and_why_one_is_not_ready() -> None:
    now = datetime(2026, 12, 1, 7, 30, tzinfo=UTC)
    rows = list_schedules(
        [
            {
                "metadata": {"name": "maint", "namespace": "team-web"},
                "spec": {"schedule": "0 9 * * 1-5", "timeZone": "Europe/Berlin", "duration": "1h"},
                "status": {
                    "nextScheduleTime": "2026-12-01T08:00:00Z",
                    "active": [],
                    "conditions": [
                        {"type": "Ready", "status": "False", "reason": "WaitingForApproval"}
                    ],
                },
            }
        ],
        now=now,
        all_namespaces=False,
    )
    header, row = rows.splitlines()
    assert header.split() == [
        "NAME",
        "SCHEDULE",
        "TIMEZONE",
        "DURATION",
        "SUSPEND",
        "READY",
        "NEXT",
        "ACTIVE",
    ]
    assert "maint" in row
    assert "False (WaitingForApproval)" in row
    assert "2026-12-01T08:00:00Z (in 30m)" in row
