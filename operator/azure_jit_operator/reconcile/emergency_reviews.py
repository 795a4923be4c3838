"""Break-glass requests as the reconciles see them: whether one opened, its ReviewRequired
condition, and the gauge of those still awaiting review (what the alert watches).

The gauge is rebuilt from the cache: every request is noted when it is routed (the fill after
a start lists them all) and after each status write, and forgotten when it is deleted."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from azure_jit_operator.domain.break_glass import (
    REVIEW_REQUIRED,
    needs_review,
    parse_reviews,
    review_condition,
)
from azure_jit_operator.domain.conditions import FALSE, Condition, find
from azure_jit_operator.domain.grants import RequestRef
from azure_jit_operator.metrics import EMERGENCY_REQUESTS_UNREVIEWED
from azure_jit_operator.reconcile.tracked import Tracked


def is_emergency(tracked: Tracked) -> bool:
    return tracked.obj.spec.get("emergency") is True


def opened(tracked: Tracked, *, start_time: datetime | None = None) -> bool:
    """An emergency request needs review once anything was initiated for it."""
    return (start_time or tracked.status.start_time) is not None


def condition_for(tracked: Tracked, *, start_time: datetime | None = None) -> Condition | None:
    if not is_emergency(tracked):
        return None  # the common case, on every status write: no spec parsed
    spec = tracked.spec()
    return review_condition(
        emergency=is_emergency(tracked),
        opened=opened(tracked, start_time=start_time),
        reviews=parse_reviews(tracked.obj.status.get("reviews")),
        requester=spec.requester if spec else None,
        request_name=tracked.obj.name,
    )


def stale(tracked: Tracked) -> bool:
    """The recorded ReviewRequired condition is not what the reviews now say."""
    wanted = condition_for(tracked)
    if wanted is None:
        return False
    current = find(tracked.status.conditions, wanted.type)
    return current is None or (current.status, current.reason) != (wanted.status, wanted.reason)


def recorded(tracked: Tracked) -> Condition | None:
    """The ReviewRequired condition as last written to the status."""
    return find(tracked.status.conditions, REVIEW_REQUIRED)


def reviewed(tracked: Tracked) -> bool:
    """The status records the review (ReviewRequired=False)."""
    condition = recorded(tracked) if is_emergency(tracked) else None
    return condition is not None and condition.status == FALSE


def awaiting_review(tracked: Tracked) -> bool:
    if not is_emergency(tracked):
        return False
    spec = tracked.spec()
    return needs_review(
        emergency=is_emergency(tracked),
        opened=opened(tracked),
        reviews=parse_reviews(tracked.obj.status.get("reviews")),
        requester=spec.requester if spec else None,
    )


@dataclass(slots=True)
class UnreviewedEmergencies:
    """``azure_jit_emergency_requests_unreviewed{namespace, policy}``, kept from the cache."""

    _members: dict[RequestRef, tuple[str, str]] = field(default_factory=dict)

    def note(self, tracked: Tracked, *, policy: str) -> None:
        ref = tracked.ref
        before = self._members.get(ref)
        if before is None and not is_emergency(tracked):
            return  # called on every routing: routine requests cost one dict lookup
        if awaiting_review(tracked):
            self._members[ref] = (tracked.obj.namespace, policy)
        else:
            self._members.pop(ref, None)
        after = self._members.get(ref)
        if before != after:
            for labels in {before, after} - {None}:
                assert labels is not None
                self._publish(labels)

    def forget(self, ref: RequestRef) -> None:
        labels = self._members.pop(ref, None)
        if labels is not None:
            self._publish(labels)

    def forget_all(self) -> None:
        labels = set(self._members.values())
        self._members.clear()
        for pair in labels:
            self._publish(pair)

    def _publish(self, labels: tuple[str, str]) -> None:
        count = sum(1 for v in self._members.values() if v == labels)
        namespace, policy = labels
        EMERGENCY_REQUESTS_UNREVIEWED.labels(namespace=namespace, policy=policy).set(count)
