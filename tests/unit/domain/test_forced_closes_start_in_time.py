"""A forced close must end inside the close grace: it starts half-way through the grace, or
earlier when what closes have taken on the subscription would not fit into the grace left."""

from datetime import UTC, datetime, timedelta

import pytest

from azure_jit_operator.domain.close_timing import (
    MIN_CLOSE_GRACE,
    PRIOR_CLOSE_SECONDS,
    SAFETY,
    SAMPLES,
    CloseTimings,
    force_close_at,
)

EXPIRES = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
SUB = "00000000-0000-0000-0000-000000000000"


@pytest.mark.parametrize(
    ("grace", "estimate", "wait"),
    [
        pytest.param(30, 1.5, 15, id="fast deletes: Azure gets half the grace"),
        pytest.param(30, 10, 10, id="slow deletes: start early enough for twice their time"),
        pytest.param(10, 5, 0, id="the prior at the minimum grace: delete at expiresAt"),
        pytest.param(10, 60, 0, id="deletes slower than the grace: never before expiresAt"),
    ],
)
def test_the_forced_close_starts_when_the_grace_left_covers_it(
    grace: int, estimate: float, wait: int
) -> None:
    start = force_close_at(EXPIRES, timedelta(seconds=grace), estimate)
    assert start == EXPIRES + timedelta(seconds=wait)


def test_closes_are_budgeted_with_the_prior_until_one_was_measured() -> None:
    timings = CloseTimings()
    assert timings.estimate(SUB) == PRIOR_CLOSE_SECONDS
    timings.record(SUB.upper(), 1.2)
    assert timings.estimate(SUB) == 1.2  # subscription ids compare case-folded


def test_one_slow_close_makes_the_next_ones_start_earlier_until_it_ages_out() -> None:
    timings = CloseTimings()
    timings.record(SUB, 9.0)
    for _ in range(SAMPLES - 1):
        timings.record(SUB, 1.0)
    assert timings.estimate(SUB) == 9.0
    timings.record(SUB, 1.0)
    assert timings.estimate(SUB) == 1.0
    assert timings.estimate("another-subscription") == PRIOR_CLOSE_SECONDS


def test_the_minimum_grace_fits_a_close_started_at_expiry_with_the_margin() -> None:
    assert MIN_CLOSE_GRACE.total_seconds() == SAFETY * PRIOR_CLOSE_SECONDS
    assert force_close_at(EXPIRES, MIN_CLOSE_GRACE, PRIOR_CLOSE_SECONDS) == EXPIRES
