from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from azure_jit_operator.domain.durations import (
    DurationError,
    format_iso_duration,
    format_kube_duration,
    parse_iso_duration,
    parse_kube_duration,
)

whole_seconds = st.integers(min_value=0, max_value=48 * 3600).map(lambda s: timedelta(seconds=s))


@pytest.mark.parametrize(
    ("kube", "iso"),
    [
        ("90m", "PT1H30M"),
        ("1h30m", "PT1H30M"),
        ("3h", "PT3H"),
        ("24h", "PT24H"),
        ("5m", "PT5M"),
        ("45s", "PT45S"),
        ("1h0m1s", "PT1H1S"),
    ],
    ids=lambda v: v,
)
def test_manifest_durations_become_the_iso_form_azure_expects(kube: str, iso: str) -> None:
    assert format_iso_duration(parse_kube_duration(kube)) == iso


@pytest.mark.parametrize(
    ("iso", "expected"),
    [("PT3H", timedelta(hours=3)), ("P1D", timedelta(days=1)), ("PT1H30M", timedelta(minutes=90))],
)
def test_azure_durations_are_read_back(iso: str, expected: timedelta) -> None:
    assert parse_iso_duration(iso) == expected


@given(whole_seconds)
def test_kubernetes_spelling_round_trips(value: timedelta) -> None:
    assert parse_kube_duration(format_kube_duration(value)) == value


@given(whole_seconds)
def test_iso_spelling_round_trips(value: timedelta) -> None:
    assert parse_iso_duration(format_iso_duration(value)) == value


@given(whole_seconds)
def test_kubernetes_to_iso_and_back_is_lossless(value: timedelta) -> None:
    kube = format_kube_duration(value)
    assert (
        format_kube_duration(parse_iso_duration(format_iso_duration(parse_kube_duration(kube))))
        == kube
    )


@pytest.mark.parametrize(
    "text",
    ["", "0", "1d", "1.5h", "90", "m", "30m1h", "-5m", "1h 30m", "PT1H", "1H"],
    ids=lambda t: f"{t!r} is not a manifest duration",
)
def test_bad_manifest_durations_are_refused_with_an_example(text: str) -> None:
    with pytest.raises(DurationError, match="such as 90m"):
        parse_kube_duration(text)


@pytest.mark.parametrize("text", ["", "P", "PT", "1H", "PT1.5H", "P1DT"])
def test_bad_iso_durations_are_refused(text: str) -> None:
    with pytest.raises(DurationError, match="PT3H"):
        parse_iso_duration(text)


def test_fractional_seconds_cannot_be_written() -> None:
    with pytest.raises(DurationError, match="whole number of seconds"):
        format_iso_duration(timedelta(milliseconds=1500))
