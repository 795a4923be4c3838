"""JitAccessSchedule: its spec, and the window math that decides which window opens when.

A schedule's windows start at the times its cron expression names, read in its time zone
(Debian cron's rules across DST, as cronsim implements them: a start inside a spring-forward
gap runs once when the gap ends, a start inside a fall-back fold runs once, at its first
occurrence; an hourly expression runs at both 02:00s). Each window ends at its start plus
``duration``, however late it was opened: a window opened after downtime gets only what is
left of it, never a shifted full window. No I/O here; the schedule reconcile acts on what
:func:`decide` says.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from azure_jit_operator.domain.approvals import (
    APPROVED,
    ApprovalPolicy,
    ApprovalRecord,
    ApprovalVerdict,
    Requester,
    approval_verdict,
)
from azure_jit_operator.domain.specs import (
    MIN_REQUEST_DURATION,
    JitAccessRequestSpec,
    SpecError,
    parse_request_spec,
)
from azure_jit_operator.domain.timestamps import parse_timestamp

# CronJob's macros; cronsim reads only the five fields.
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# Windows counted as missed after downtime are only reported; counting stops here so a
# minutely schedule after a week down costs no more than this (CronJob stops at 100 too).
MISSED_COUNT_LIMIT = 100
DEFAULT_SUCCESSFUL_HISTORY = 3
DEFAULT_FAILED_HISTORY = 1
MAX_HISTORY = 100
TEMPLATE_FIELDS = ("policyName", "virtualMachine", "ports", "justification")
# Spec fields an approval does not cover: pausing a schedule or trimming its history changes
# nothing about the access it opens, so it keeps its approval.
UNAPPROVED_FIELDS = frozenset(
    {"suspend", "successfulRequestsHistoryLimit", "failedRequestsHistoryLimit"}
)


@dataclass(frozen=True, slots=True)
class Window:
    """One scheduled window, in UTC."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    schedule: str
    time_zone: str
    duration: timedelta
    request: JitAccessRequestSpec  # the template, with the full duration
    suspend: bool = False
    starting_deadline: timedelta | None = None
    successful_history: int = DEFAULT_SUCCESSFUL_HISTORY
    failed_history: int = DEFAULT_FAILED_HISTORY
    requester: Requester | None = None

    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def latest_start(self, at: datetime) -> datetime:
        """The latest window start at or before ``at`` (cronsim's reverse walk is strict)."""
        local = (at + timedelta(microseconds=1)).astimezone(self._zone())
        return next(CronSim(_expression(self.schedule), local, reverse=True)).astimezone(UTC)

    def next_start(self, after: datetime) -> datetime:
        """The first window start strictly after ``after``."""
        local = after.astimezone(self._zone())
        return next(CronSim(_expression(self.schedule), local)).astimezone(UTC)

    def window(self, start: datetime) -> Window:
        return Window(start=start, end=start + self.duration)


@dataclass(frozen=True, slots=True)
class Decision:
    """What a schedule does now. ``open``: the window to create a request for (it ends at
    ``open.end``); ``skipped``: the latest due window that will not open, with ``why``;
    ``missed``: how many earlier starts went by unopened (capped); ``next_start``: when to
    look again."""

    next_start: datetime
    open: Window | None = None
    skipped: Window | None = None
    why: str = ""
    missed: int = 0


def decide(spec: ScheduleSpec, *, since: datetime, now: datetime) -> Decision:
    """The window due at ``now``, given that every start up to ``since`` (the last window
    handled, or the schedule's creation) is dealt with. The latest due start is the one
    that may open; earlier ones that went by are counted as missed, as CronJob does."""
    next_start = spec.next_start(now)
    latest = spec.latest_start(now)
    if latest <= since:
        return Decision(next_start=next_start)
    window = spec.window(latest)
    missed = _count_starts(spec, after=since, before=latest)
    late = now - window.start
    if spec.suspend:
        return Decision(next_start, skipped=window, why="the schedule is suspended", missed=missed)
    if spec.starting_deadline is not None and late > spec.starting_deadline:
        why = (
            f"its start was missed by {_human(late)}, more than startingDeadlineSeconds "
            f"({int(spec.starting_deadline.total_seconds())}s)"
        )
        return Decision(next_start, skipped=window, why=why, missed=missed)
    if window.end - now < MIN_REQUEST_DURATION:
        why = "less than a minute of it was left when the operator got to it"
        return Decision(next_start, skipped=window, why=why, missed=missed)
    return Decision(next_start, open=window, missed=missed)


def remaining_duration(window: Window, now: datetime) -> timedelta:
    """How long a request created now for ``window`` may last: up to the window's end, in
    whole seconds (the request's duration field has no fractions)."""
    left = window.end - max(now, window.start)
    return timedelta(seconds=int(left.total_seconds()))


def request_name(schedule: str, start: datetime) -> str:
    """The one name a window's request can have (so a restart cannot open a window twice)."""
    return f"{schedule}-{start.astimezone(UTC):%Y%m%d%H%M}"


def parse_schedule_spec(spec: Mapping[str, Any]) -> ScheduleSpec:
    """Parse a JitAccessSchedule ``spec``; raises SpecError naming the field."""
    raw_schedule = spec.get("schedule")
    if not isinstance(raw_schedule, str) or not raw_schedule.strip():
        raise SpecError("spec.schedule", "is required: a cron expression such as '0 9 * * 1-5'")
    schedule = " ".join(raw_schedule.split())
    time_zone = str(spec.get("timeZone") or "UTC")
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SpecError(
            "spec.timeZone",
            f"{time_zone!r} is not an IANA time zone; use a name such as Europe/Berlin or UTC",
        ) from None
    try:
        CronSim(_expression(schedule), datetime.now(zone))
    except CronSimError as exc:
        raise SpecError(
            "spec.schedule",
            f"{schedule!r} is not a cron expression ({exc}); use five fields "
            "(minute hour day-of-month month day-of-week) such as '0 9 * * 1-5', or @daily",
        ) from None
    template = spec.get("requestTemplate")
    if not isinstance(template, Mapping):
        raise SpecError("spec.requestTemplate", "is required: what each window opens")
    body = {k: template[k] for k in TEMPLATE_FIELDS if k in template}
    body["duration"] = spec.get("duration")
    try:
        request = parse_request_spec(body)
    except SpecError as exc:
        # The template's fields live under spec.requestTemplate; the duration does not.
        field = exc.field
        if field != "spec.duration":
            field = field.replace("spec.", "spec.requestTemplate.", 1)
        raise SpecError(field, exc.message) from None
    deadline = spec.get("startingDeadlineSeconds")
    if deadline is not None and (
        isinstance(deadline, bool) or not isinstance(deadline, int) or deadline < 0
    ):
        raise SpecError("spec.startingDeadlineSeconds", "must be a whole number of seconds >= 0")
    return ScheduleSpec(
        schedule=schedule,
        time_zone=time_zone,
        duration=request.duration,
        request=request,
        suspend=spec.get("suspend") is True,
        starting_deadline=timedelta(seconds=deadline) if deadline is not None else None,
        successful_history=_limit(
            spec, "successfulRequestsHistoryLimit", DEFAULT_SUCCESSFUL_HISTORY
        ),
        failed_history=_limit(spec, "failedRequestsHistoryLimit", DEFAULT_FAILED_HISTORY),
        requester=Requester.from_dict(spec.get("requester")),
    )


def template_matches(schedule: ScheduleSpec, request: JitAccessRequestSpec) -> bool:
    """A request is the schedule's own kind: same policy, VM, ports and justification, and
    no longer than a window."""
    wanted = schedule.request
    return (
        request.policy_name == wanted.policy_name
        and request.virtual_machine == wanted.virtual_machine
        and request.ports == wanted.ports
        and request.justification == wanted.justification
        and request.duration <= schedule.duration
    )


# -- approval of a schedule -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScheduleApproval:
    """One approver's decision on a schedule, for the generation (spec) it was made on."""

    record: ApprovalRecord
    generation: int

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ScheduleApproval:
        generation = raw.get("generation")
        return cls(
            record=ApprovalRecord(
                user=str(raw.get("user", "")),
                decision=str(raw.get("decision", "")),
                reason=str(raw.get("reason") or ""),
                time=parse_timestamp(str(raw["time"])) if raw.get("time") else None,
            ),
            generation=generation if isinstance(generation, int) else 0,
        )


def parse_schedule_approvals(
    raw: Sequence[Mapping[str, Any]] | None,
) -> tuple[ScheduleApproval, ...]:
    return tuple(ScheduleApproval.from_dict(r) for r in raw or ())


def schedule_approval_verdict(
    policy: ApprovalPolicy,
    *,
    requester: Requester | None,
    approvals: Sequence[ScheduleApproval],
    generation: int,
    schedule_name: str,
) -> ApprovalVerdict:
    """The request rules (N distinct approvers, none the requester, no denial), applied to
    the decisions made on the schedule's current generation only: a changed spec needs new
    approvals. A schedule has no approval timeout: until approved, its windows stay shut."""
    current = [a.record for a in approvals if a.generation == generation]
    verdict = approval_verdict(
        policy,
        requester=requester,
        records=current,
        created=datetime.max.replace(tzinfo=UTC),  # never times out
        now=datetime.max.replace(tzinfo=UTC),
        request_name=schedule_name,
    )
    if verdict.state == "pending":
        approvers = sorted({r.user for r in current if r.decision == APPROVED})
        got = f" (approved by {', '.join(approvers)})" if approvers else ""
        return ApprovalVerdict(
            "pending",
            "WaitingForApproval",
            f"waiting for approval of generation {generation}: {len(approvers)} of "
            f"{policy.required}{got}; an approver runs "
            f"`kubectl jit approve schedule/{schedule_name}`",
        )
    return verdict


def approval_digest(spec: Mapping[str, Any]) -> str:
    """A digest of what an approval of the schedule approves: the spec without the fields
    that change nothing about the access (suspend, history limits)."""
    approved = {k: v for k, v in spec.items() if k not in UNAPPROVED_FIELDS}
    canonical = json.dumps(approved, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _expression(schedule: str) -> str:
    return MACROS.get(schedule.lower(), schedule)


def _count_starts(spec: ScheduleSpec, *, after: datetime, before: datetime) -> int:
    count = 0
    start = spec.next_start(after)
    while start < before and count < MISSED_COUNT_LIMIT:
        count += 1
        start = spec.next_start(start)
    return count


def _limit(spec: Mapping[str, Any], key: str, default: int) -> int:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_HISTORY:
        raise SpecError(f"spec.{key}", f"must be a number from 0 to {MAX_HISTORY}")
    return value


def _human(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{n}{u}" for n, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if n) or "0s"
