"""The emulator's own reading of ISO 8601 durations (policy maxima, initiate durations), as
.NET reads them for the JIT service: days, hours, minutes, (fractional) seconds."""

from __future__ import annotations

from datetime import timedelta

import pytest

from azure_arm_emulator.jit_durations import JitDurationError, parse_duration


@pytest.mark.parametrize(
    ("text", "value"),
    [
        pytest.param("PT3H", timedelta(hours=3), id="hours"),
        pytest.param("P1D", timedelta(days=1), id="a day"),
        pytest.param("PT1H30M", timedelta(minutes=90), id="hours and minutes"),
        pytest.param("P1DT1H", timedelta(hours=25), id="a day and an hour"),
        pytest.param("PT90.5S", timedelta(seconds=90.5), id="fractional seconds"),
    ],
)
def test_durations_read(text: str, value: timedelta) -> None:
    assert parse_duration(text) == value


@pytest.mark.parametrize("text", ["P", "PT", "PT1H30", "P1W", "-PT1H", "three hours", "pt3h"])
def test_what_is_not_a_duration_is_refused(text: str) -> None:
    with pytest.raises(JitDurationError):
        parse_duration(text)
