"""Who asked and who approved: the approval rules of a JitPolicy, applied to a request's
recorded decisions.

RBAC decides *who* may approve (the ``approve`` verb on the JitPolicy, checked at admission);
these rules decide *whether* a request is approved: enough distinct approvers other than the
requester, no denial, and all before the approval timeout. Decisions are permanent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from azure_jit_operator.domain.notify import NotifyTarget
from azure_jit_operator.domain.timestamps import parse_timestamp

APPROVED = "Approved"
DENIED = "Denied"


class ApprovalMode(StrEnum):
    AUTOMATIC = "Automatic"
    MANUAL = "Manual"


@dataclass(frozen=True, slots=True)
class ApprovalPolicy:
    mode: ApprovalMode = ApprovalMode.AUTOMATIC
    required: int = 1
    timeout: timedelta = timedelta(hours=1)
    notify: NotifyTarget | None = None  # spec.approval.notify: post to approvers' webhook


@dataclass(frozen=True, slots=True)
class Requester:
    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> Requester | None:
        if not raw or not raw.get("username"):
            return None
        return cls(
            username=str(raw["username"]),
            uid=str(raw.get("uid") or ""),
            groups=tuple(str(g) for g in raw.get("groups") or ()),
        )

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"username": self.username, "groups": list(self.groups)}
        if self.uid:
            body["uid"] = self.uid
        return body


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    user: str
    decision: str
    reason: str = ""
    time: datetime | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ApprovalRecord:
        return cls(
            user=str(raw.get("user", "")),
            decision=str(raw.get("decision", "")),
            reason=str(raw.get("reason") or ""),
            time=parse_timestamp(str(raw["time"])) if raw.get("time") else None,
        )


def parse_records(raw: Sequence[Mapping[str, Any]] | None) -> tuple[ApprovalRecord, ...]:
    return tuple(ApprovalRecord.from_dict(r) for r in raw or ())


@dataclass(frozen=True, slots=True)
class ApprovalVerdict:
    """``approved`` / ``pending`` / ``denied``, with the condition reason and a sentence."""

    state: str
    reason: str
    message: str


def approval_verdict(
    policy: ApprovalPolicy,
    *,
    requester: Requester | None,
    records: Sequence[ApprovalRecord],
    created: datetime,
    now: datetime,
    request_name: str,
) -> ApprovalVerdict:
    if policy.mode is ApprovalMode.AUTOMATIC:
        return ApprovalVerdict(
            "approved", "AutoApproved", "the policy approves requests automatically"
        )
    if requester is None:
        return ApprovalVerdict(
            "denied",
            "RequesterUnknown",
            "the policy requires approval but spec.requester was not stamped at admission; "
            "make sure the operator's admission webhook is installed, then create the request "
            "again",
        )
    # The requester's own decisions never count (the webhook refuses them; this is a backstop).
    others = [r for r in records if r.user and r.user != requester.username]
    denial = next((r for r in others if r.decision == DENIED), None)
    if denial is not None:
        why = f": {denial.reason}" if denial.reason else ""
        return ApprovalVerdict("denied", "DeniedByApprover", f"denied by {denial.user}{why}")
    approvers = list(dict.fromkeys(r.user for r in others if r.decision == APPROVED))
    if len(approvers) >= policy.required:
        return ApprovalVerdict("approved", "Approved", f"approved by {', '.join(approvers)}")
    if now - created >= policy.timeout:
        return ApprovalVerdict(
            "denied",
            "ApprovalTimeout",
            f"not approved within {_human(policy.timeout)} "
            f"({len(approvers)} of {policy.required} approvals); create a new request",
        )
    got = f" (approved by {', '.join(approvers)})" if approvers else ""
    return ApprovalVerdict(
        "pending",
        "WaitingForApproval",
        f"waiting for approval: {len(approvers)} of {policy.required}{got}; an approver runs "
        f"`kubectl jit approve {request_name}`",
    )


def check_new_decisions(
    old: Sequence[ApprovalRecord],
    new: Sequence[ApprovalRecord],
    *,
    user: str,
    requester: Requester | None,
) -> str | None:
    """Why a change to the recorded decisions must be refused, or None when it is fine.

    Decisions are permanent and personal: earlier entries stay exactly as they were, and
    every added entry is the acting user's own, made once, never by the requester.
    """
    if list(new[: len(old)]) != list(old):
        return "recorded approvals are permanent: existing entries cannot be changed or removed"
    decided = {r.user for r in old}
    for entry in new[len(old) :]:
        problem = _entry_problem(entry, user=user, requester=requester, decided=decided)
        if problem is not None:
            return problem
        decided.add(user)
    return None


def _entry_problem(
    entry: ApprovalRecord, *, user: str, requester: Requester | None, decided: set[str]
) -> str | None:
    if entry.user != user:
        return f"you are {user!r} and can only record your own decision, not {entry.user!r}'s"
    if requester is not None and user == requester.username:
        return "the requester cannot approve or deny their own request"
    if entry.decision not in (APPROVED, DENIED):
        return "decision must be Approved or Denied"
    if entry.decision == DENIED and not entry.reason:
        return "a denial needs a reason"
    if user in decided:
        return f"{user!r} has already decided on this request"
    return None


def _human(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"
