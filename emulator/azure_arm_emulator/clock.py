"""The emulator's clock: real UTC time plus an offset that tests can move.

Everything time-dependent on the Azure side (request start times, ``endTimeUtc`` checks,
expiry of JIT allow rules) reads :meth:`EmulatorClock.now`. Moving the clock notifies the
listeners (the expiry task) so a jump past an ``endTimeUtc`` is acted on at once rather
than on the next periodic check. Timestamps are rendered the way Azure does:
ISO 8601 UTC with seven fractional digits and a ``Z``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

_FRACTION = re.compile(r"T\d{2}:\d{2}:\d{2}\.(\d+)", re.IGNORECASE)


class EmulatorClock:
    """``now()`` = wall clock + offset; changes of the offset are broadcast."""

    def __init__(self, *, offset: timedelta = timedelta(0)) -> None:
        self._offset = offset
        self._listeners: list[Callable[[], None]] = []

    @property
    def offset(self) -> timedelta:
        return self._offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def set_offset(self, offset: timedelta) -> None:
        self._offset = offset
        self._notify()

    def advance(self, delta: timedelta) -> None:
        """Jump forward (or back, with a negative delta)."""
        self.set_offset(self._offset + delta)

    def set_now(self, instant: datetime) -> None:
        """Make ``now()`` return ``instant`` at this moment; time keeps running from there."""
        if instant.tzinfo is None:
            instant = instant.replace(tzinfo=UTC)
        self.set_offset(instant - datetime.now(UTC))

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()


def format_timestamp(value: datetime) -> str:
    """``2018-05-17T09:06:45.5691610Z``: UTC, seven fractional digits, as Azure renders."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond:06d}0Z"


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO 8601 timestamp as clients send it (``Z`` or offset; 0..7+ digits).

    Raises ValueError for anything else. A timestamp without a zone is taken as UTC, as
    the JIT service does.
    """
    value = text.strip()
    if not value or "T" not in value.upper():
        raise ValueError(f"not an ISO 8601 date-time: {text!r}")
    if value[-1] in "zZ":
        value = value[:-1] + "+00:00"
    date_part, _, time_part = value.partition("T")
    zone = ""
    for sign in ("+", "-"):
        index = time_part.rfind(sign)
        if index > 0:
            time_part, zone = time_part[:index], time_part[index:]
            break
    if "." in time_part:
        whole, fraction = time_part.split(".", 1)
        if not fraction.isdigit():
            raise ValueError(f"not an ISO 8601 date-time: {text!r}")
        time_part = f"{whole}.{(fraction + '000000')[:6]}"
    parsed = datetime.fromisoformat(f"{date_part}T{time_part}{zone}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_sent_timestamp(text: str) -> str:
    """A client's timestamp as Azure echoes it: :func:`format_timestamp` at .NET's 100 ns
    precision, so ``2022-11-17T11:44:50.5921811Z`` comes back exactly as sent (E7) where
    Python's datetime alone would lose the seventh digit."""
    match = _FRACTION.search(text)
    seventh = match.group(1)[6] if match and len(match.group(1)) >= 7 else "0"
    return format_timestamp(parse_timestamp(text))[:-2] + seventh + "Z"
