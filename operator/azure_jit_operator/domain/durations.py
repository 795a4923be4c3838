"""Durations in the two spellings the operator meets.

Manifests use Kubernetes/Go style (``90m``, ``1h30m``, ``45s``); Azure uses ISO 8601
(``PT1H30M``). Both are restricted to whole hours, minutes and seconds, which is all that
JIT access needs and keeps the CRD's pattern and this parser in agreement.
"""

from __future__ import annotations

import re
from datetime import timedelta

# Must stay equal to the pattern in the CRDs (crds/*.yaml): components in h, m, s order.
KUBE_DURATION_PATTERN = r"^([0-9]{1,5}h)?([0-9]{1,5}m)?([0-9]{1,5}s)?$"
_KUBE = re.compile(KUBE_DURATION_PATTERN)
_ISO = re.compile(
    r"^P(?:(?P<days>[0-9]+)D)?"
    r"(?:T(?:(?P<hours>[0-9]+)H)?(?:(?P<minutes>[0-9]+)M)?(?:(?P<seconds>[0-9]+)S)?)?$"
)


class DurationError(ValueError):
    """A duration string that cannot be parsed; the message says what is accepted."""


def parse_kube_duration(text: str) -> timedelta:
    """Parse ``90m`` / ``1h30m`` / ``45s`` into a timedelta."""
    match = _KUBE.match(text)
    if not text or match is None:
        raise DurationError(
            f"invalid duration {text!r}: use hours, minutes and seconds such as 90m, 1h30m or 45s"
        )
    hours, minutes, seconds = (int(g[:-1]) if g else 0 for g in match.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def format_kube_duration(value: timedelta) -> str:
    """The shortest ``1h30m`` style spelling; zero is ``0s``."""
    total = _whole_seconds(value)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    text = "".join(
        f"{amount}{unit}"
        for amount, unit in ((hours, "h"), (minutes, "m"), (seconds, "s"))
        if amount
    )
    return text or "0s"


def parse_iso_duration(text: str) -> timedelta:
    """Parse Azure's ISO 8601 durations such as ``PT3H`` or ``P1D``."""
    match = _ISO.match(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        raise DurationError(f"invalid ISO 8601 duration {text!r}: expected a form such as PT3H")
    parts = {name: int(value) for name, value in match.groupdict().items() if value}
    return timedelta(
        days=parts.get("days", 0),
        hours=parts.get("hours", 0),
        minutes=parts.get("minutes", 0),
        seconds=parts.get("seconds", 0),
    )


def format_iso_duration(value: timedelta) -> str:
    """``PT1H30M`` style, hours not folded into days (Azure's own examples say PT3H)."""
    total = _whole_seconds(value)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    text = "".join(
        f"{amount}{unit}"
        for amount, unit in ((hours, "H"), (minutes, "M"), (seconds, "S"))
        if amount
    )
    return "PT" + (text or "0S")


def _whole_seconds(value: timedelta) -> int:
    if value < timedelta(0):
        raise DurationError(f"negative duration {value}")
    if value.microseconds:
        raise DurationError(f"duration {value} is not a whole number of seconds")
    return int(value.total_seconds())
