"""Break-glass: emergency requests that open without approval, never silently, and the
after-the-fact review they need.

A JitPolicy allows them with ``spec.breakGlass: {maxDuration}``. An emergency request
(``spec.emergency: true``) under such a policy skips the approval step even when the policy
is Manual, for at most ``maxDuration`` (and still within the port's own maximum, which Azure
enforces). Under a policy without ``breakGlass`` it is Denied. Once it opened, it carries
``ReviewRequired=True`` until an approver (RBAC verb ``approve`` on the JitPolicy, checked at
admission like approvals) who is not the requester records a review in ``status.reviews``;
reviews are permanent and possible after the request finished.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .approvals import Requester
from .conditions import FALSE, TRUE, Condition
from .durations import format_kube_duration
from .request_rules import Denial
from .specs import BreakGlassPolicy
from .timestamps import format_timestamp, parse_timestamp

REVIEW_REQUIRED = "ReviewRequired"
BREAK_GLASS_NOT_ALLOWED = "BreakGlassNotAllowed"
BREAK_GLASS_TOO_LONG = "EmergencyDurationExceedsMaximum"
BREAK_GLASS_NEEDS_WEBHOOKS = "BreakGlassNeedsWebhooks"
EMERGENCY_APPROVAL_REASON = "BreakGlass"


@dataclass(frozen=True, slots=True)
class ReviewRecord:
    user: str
    time: datetime | None = None
    comment: str = ""

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ReviewRecord:
        return cls(
            user=str(raw.get("user", "")),
            time=parse_timestamp(str(raw["time"])) if raw.get("time") else None,
            comment=str(raw.get("comment") or ""),
        )


def parse_reviews(raw: Sequence[Mapping[str, Any]] | None) -> tuple[ReviewRecord, ...]:
    return tuple(ReviewRecord.from_dict(r) for r in raw or () if isinstance(r, Mapping))


def check_emergency(
    duration: timedelta,
    break_glass: BreakGlassPolicy | None,
    *,
    policy_name: str,
    webhooks: str,
) -> Denial | None:
    """Why an emergency request may not skip approval under this policy, or None."""
    if break_glass is None:
        return Denial(
            BREAK_GLASS_NOT_ALLOWED,
            f"JitPolicy {policy_name!r} does not allow emergency (break-glass) requests: it has "
            "no spec.breakGlass; remove spec.emergency and ask for approval, or have the "
            "policy's owners add spec.breakGlass",
        )
    if webhooks == "off":
        # Without the webhooks nobody vouches for spec.requester nor guards status.reviews:
        # the review (the price of skipping approval) would be forgeable.
        return Denial(
            BREAK_GLASS_NEEDS_WEBHOOKS,
            f"JitPolicy {policy_name!r} allows break-glass, which needs the operator's "
            "admission webhooks (AZURE_JIT_WEBHOOKS=managed or external) so that its review "
            "cannot be forged",
        )
    if duration > break_glass.max_duration:
        return Denial(
            BREAK_GLASS_TOO_LONG,
            f"an emergency request may last at most "
            f"{format_kube_duration(break_glass.max_duration)} under JitPolicy "
            f"{policy_name!r} (spec.breakGlass.maxDuration), not "
            f"{format_kube_duration(duration)}",
        )
    return None


def valid_reviews(
    reviews: Sequence[ReviewRecord], requester: Requester | None
) -> list[ReviewRecord]:
    """Reviews that count: by someone other than the requester (the webhook refuses the
    requester's own; this is a backstop)."""
    me = requester.username if requester else None
    return [r for r in reviews if r.user and r.user != me]


def review_condition(
    *,
    emergency: bool,
    opened: bool,
    reviews: Sequence[ReviewRecord],
    requester: Requester | None,
    request_name: str,
) -> Condition | None:
    """``ReviewRequired`` for an emergency request that opened (None otherwise)."""
    if not emergency or not opened:
        return None
    counted = valid_reviews(reviews, requester)
    if counted:
        first = counted[0]
        when = f" at {format_timestamp(first.time)}" if first.time else ""
        return Condition(REVIEW_REQUIRED, FALSE, "Reviewed", f"reviewed by {first.user}{when}")
    return Condition(
        REVIEW_REQUIRED,
        TRUE,
        "EmergencyAccess",
        "opened without approval under the policy's break-glass rule; an approver other than "
        f"the requester must review it: kubectl jit review {request_name}",
    )


def needs_review(
    *, emergency: bool, opened: bool, reviews: Sequence[ReviewRecord], requester: Requester | None
) -> bool:
    return emergency and opened and not valid_reviews(reviews, requester)


def check_new_reviews(
    old: Sequence[ReviewRecord],
    new: Sequence[ReviewRecord],
    *,
    user: str,
    requester: Requester | None,
    emergency: bool,
) -> str | None:
    """Why a change to the recorded reviews must be refused, or None when it is fine."""
    if list(new[: len(old)]) != list(old):
        return "recorded reviews are permanent: existing entries cannot be changed or removed"
    added = new[len(old) :]
    if added and not emergency:
        return "only emergency (break-glass) requests are reviewed; this one is not"
    reviewed = {r.user for r in old}
    for entry in added:
        if entry.user != user:
            return f"you are {user!r} and can only record your own review, not {entry.user!r}'s"
        if requester is not None and user == requester.username:
            return "the requester cannot review their own emergency request"
        if user in reviewed:
            return f"{user!r} has already reviewed this request"
        reviewed.add(user)
    return None
