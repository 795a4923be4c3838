"""ISO 8601 durations as the JIT service reads them (.NET ``XmlConvert.ToTimeSpan``: days,
hours, minutes and seconds, seconds possibly fractional, no sign): ``PT3H``, ``P1D``,
``PT1H30M``, ``PT90.5S``.

The emulator's own parser, not the operator's ``domain.durations``, for the same reason as
:mod:`.jit_prefixes`: a mistake in the operator's reading must not be shared by its Azure.
"""

from __future__ import annotations

import re
from datetime import timedelta

_ISO = re.compile(
    r"P(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)


class JitDurationError(ValueError):
    """Not an ISO 8601 duration the service reads."""


def parse_duration(text: str) -> timedelta:
    match = _ISO.fullmatch(text)
    if match is None or text == "P" or not any(match.groupdict().values()):
        raise JitDurationError(
            f"'{text}' is not a valid ISO 8601 duration (for example PT3H, PT30M or P1D)."
        )
    parts = match.groupdict()
    return timedelta(
        days=int(parts["days"] or 0),
        hours=int(parts["hours"] or 0),
        minutes=int(parts["minutes"] or 0),
        seconds=float(parts["seconds"] or 0),
    )
