"""Kubernetes-style status conditions as plain values (API conventions + kstatus).

``lastTransitionTime`` changes only when a condition's status flips; a changed reason or
message alone keeps the old time. Callers learn whether anything flipped so that Events
are emitted on transitions only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from .timestamps import format_timestamp

TRUE = "True"
FALSE = "False"
UNKNOWN = "Unknown"


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: str
    reason: str
    message: str
    last_transition_time: str = ""
    observed_generation: int | None = None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "lastTransitionTime": self.last_transition_time,
        }
        if self.observed_generation is not None:
            body["observedGeneration"] = self.observed_generation
        return body

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> Condition:
        generation = body.get("observedGeneration")
        return cls(
            type=str(body.get("type", "")),
            status=str(body.get("status", UNKNOWN)),
            reason=str(body.get("reason", "")),
            message=str(body.get("message", "")),
            last_transition_time=str(body.get("lastTransitionTime", "")),
            observed_generation=int(generation) if generation is not None else None,
        )


def parse_conditions(raw: Iterable[Mapping[str, Any]] | None) -> tuple[Condition, ...]:
    return tuple(Condition.from_dict(c) for c in raw or ())


def find(conditions: Sequence[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def is_true(conditions: Sequence[Condition], type_: str) -> bool:
    found = find(conditions, type_)
    return found is not None and found.status == TRUE


def set_condition(
    conditions: Sequence[Condition], new: Condition, *, now: datetime
) -> tuple[tuple[Condition, ...], bool]:
    """Return the conditions with ``new`` set, and whether its status flipped."""
    old = find(conditions, new.type)
    flipped = old is None or old.status != new.status
    stamped = replace(
        new,
        last_transition_time=(
            format_timestamp(now) if flipped or old is None else old.last_transition_time
        ),
    )
    if old is None:
        return (*conditions, stamped), True
    return tuple(stamped if c.type == new.type else c for c in conditions), flipped


def remove_condition(conditions: Sequence[Condition], type_: str) -> tuple[Condition, ...]:
    return tuple(c for c in conditions if c.type != type_)
