"""The emulator clock and Azure's timestamp spelling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from azure_arm_emulator.clock import (
    EmulatorClock,
    format_sent_timestamp,
    format_timestamp,
    parse_timestamp,
)


def test_timestamps_render_with_seven_fractional_digits_in_utc() -> None:
    instant = datetime(2018, 5, 17, 11, 6, 45, 569161, tzinfo=timezone(timedelta(hours=2)))

    assert format_timestamp(instant) == "2018-05-17T09:06:45.5691610Z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "2018-05-17T09:06:45.5691611Z",
            datetime(2018, 5, 17, 9, 6, 45, 569161, tzinfo=UTC),
            id="Azure's seven digits are read to the microsecond",
        ),
        pytest.param(
            "2018-05-17T11:06:45+02:00",
            datetime(2018, 5, 17, 9, 6, 45, tzinfo=UTC),
            id="an offset is converted to UTC",
        ),
        pytest.param(
            "2018-05-17T09:06:45",
            datetime(2018, 5, 17, 9, 6, 45, tzinfo=UTC),
            id="a timestamp without zone is taken as UTC",
        ),
    ],
)
def test_client_timestamps_parse(text: str, expected: datetime) -> None:
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("tomorrow", id="words are not a timestamp"),
        pytest.param("2018-05-17", id="a date alone is not a timestamp"),
        pytest.param("2018-05-17T09:06:45.12x3Z", id="letters in the fraction are refused"),
    ],
)
def test_malformed_timestamps_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_timestamp(text)


def test_advancing_the_clock_moves_now_and_tells_listeners() -> None:
    clock = EmulatorClock()
    heard: list[timedelta] = []
    clock.subscribe(lambda: heard.append(clock.offset))
    before = clock.now()

    clock.advance(timedelta(hours=2))

    assert clock.now() - before >= timedelta(hours=2)
    assert heard == [timedelta(hours=2)]


def test_setting_now_pins_the_clock_to_an_instant() -> None:
    clock = EmulatorClock()

    clock.set_now(datetime(2018, 7, 12, 8, 53, tzinfo=UTC))

    assert abs(clock.now() - datetime(2018, 7, 12, 8, 53, tzinfo=UTC)) < timedelta(seconds=1)


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [
        pytest.param(
            "2022-11-17T11:44:50.5921811Z",
            "2022-11-17T11:44:50.5921811Z",
            id="seven digits come back exactly as sent",
        ),
        pytest.param(
            "2022-11-17T11:44:50.592181Z",
            "2022-11-17T11:44:50.5921810Z",
            id="six digits (what the SDK sends) gain Azure's seventh",
        ),
        pytest.param(
            "2022-11-17T13:44:50.59218119+02:00",
            "2022-11-17T11:44:50.5921811Z",
            id="an offset is converted and digits beyond 100 ns are dropped",
        ),
        pytest.param("2022-11-17T11:44:50Z", "2022-11-17T11:44:50.0000000Z", id="whole seconds"),
    ],
)
def test_a_sent_end_time_is_echoed_at_dotnet_precision(sent: str, echoed: str) -> None:
    assert format_sent_timestamp(sent) == echoed
