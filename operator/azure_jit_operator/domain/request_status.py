"""A JitAccessRequest's status as a value, and the transitions that change it.

Conditions follow Kubernetes conventions and kstatus so that kubectl, Argo CD and Flux can
judge health: ``Ready`` (True once the request did what it was for), ``Open`` (ports open
right now), ``Denied``, plus ``Reconciling`` while pending and ``Stalled`` when terminal
without success. ``phase`` is the summary shown by ``kubectl get``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from .conditions import FALSE, TRUE, Condition, parse_conditions, remove_condition, set_condition
from .grants import Claim, RequestRef
from .lifecycle import Phase, check_transition, parse_phase
from .prefixes import canonical_prefix
from .timestamps import format_timestamp, parse_timestamp

OPEN = "Open"
CLOSED = "Closed"
# Conditions whose flips the reconciles announce with an Event of their own (EmergencyAccess,
# Reviewed), rather than repeating the phase's Event.
OWN_EVENTS = frozenset({"ReviewRequired"})


@dataclass(frozen=True, slots=True)
class PortState:
    number: int
    source_prefix: str
    state: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "sourceAddressPrefix": self.source_prefix,
            "state": self.state,
        }


@dataclass(frozen=True, slots=True)
class AzureRecord:
    """What a restarted operator needs to resume: where it initiated, and its marker."""

    policy_id: str = ""
    vm_id: str = ""
    initiation_id: str = ""
    initiated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RequestStatus:
    phase: Phase = Phase.PENDING
    reason: str = ""
    message: str = ""
    conditions: tuple[Condition, ...] = ()
    start_time: datetime | None = None
    expires_at: datetime | None = None
    closed_at: datetime | None = None
    ports: tuple[PortState, ...] = ()
    azure: AzureRecord = field(default_factory=AzureRecord)
    extends: str = ""  # the predecessor, once this extension opened
    chain_start: datetime | None = None  # the chain's first start (extensions only)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> RequestStatus:
        raw = raw or {}
        azure = raw.get("azure") or {}
        conditions = parse_conditions(raw.get("conditions"))
        ready = next((c for c in conditions if c.type == "Ready"), None)
        return cls(
            phase=parse_phase(raw.get("phase")),
            reason=ready.reason if ready else "",
            message=str(raw.get("message") or ""),
            conditions=conditions,
            start_time=_time(raw.get("startTime")),
            expires_at=_time(raw.get("expiresAt")),
            closed_at=_time(raw.get("closedAt")),
            ports=tuple(
                PortState(
                    number=int(p["number"]),
                    source_prefix=canonical_prefix(str(p.get("sourceAddressPrefix", ""))),
                    state=str(p.get("state", CLOSED)),
                )
                for p in raw.get("ports") or ()
            ),
            azure=AzureRecord(
                policy_id=str(azure.get("policyId") or ""),
                vm_id=str(azure.get("virtualMachineId") or ""),
                initiation_id=str(azure.get("initiationId") or ""),
                initiated_at=_time(azure.get("initiatedAt")),
            ),
            extends=str(raw.get("extends") or ""),
            chain_start=_time(raw.get("chainStartTime")),
        )

    def to_dict(self, *, generation: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "phase": self.phase.value,
            "message": self.message,
            "conditions": [c.to_dict() for c in self.conditions],
            "startTime": _text(self.start_time),
            "expiresAt": _text(self.expires_at),
            "closedAt": _text(self.closed_at),
            "ports": [p.to_dict() for p in self.ports],
            "azure": {
                "policyId": self.azure.policy_id or None,
                "virtualMachineId": self.azure.vm_id or None,
                "initiationId": self.azure.initiation_id or None,
                "initiatedAt": _text(self.azure.initiated_at),
            },
        }
        if self.extends:
            body["extends"] = self.extends
            body["chainStartTime"] = _text(self.chain_start)
        if generation is not None:
            body["observedGeneration"] = generation
        return body


def active_claims(
    request: RequestRef, raw_status: Mapping[str, Any] | None
) -> tuple[str, tuple[Claim, ...]] | None:
    """The VM (its id lower-cased) and the port claims an Active request's persisted status
    holds; None for any other phase, or an Active status without its Azure record."""
    raw_status = raw_status or {}
    if parse_phase(raw_status.get("phase")) is not Phase.ACTIVE:
        return None
    status = RequestStatus.from_dict(raw_status)
    if not status.azure.vm_id or status.expires_at is None:
        return None
    return status.azure.vm_id.lower(), tuple(
        Claim(request, p.number, p.source_prefix, status.expires_at) for p in status.ports
    )


def claims_by_vm(objects: Iterable[Mapping[str, Any]]) -> dict[str, list[Claim]]:
    """Every Active request's claims, per VM (ids lower-cased), from JitAccessRequest objects
    as the Kubernetes API lists them (``metadata`` and ``status`` are all that is read)."""
    found: dict[str, list[Claim]] = {}
    for obj in objects:
        meta = obj.get("metadata") or {}
        ref = RequestRef(
            str(meta.get("namespace") or ""),
            str(meta.get("name") or ""),
            str(meta.get("uid") or ""),
        )
        held = active_claims(ref, obj.get("status"))
        if held is not None:
            vm_id, claims = held
            found.setdefault(vm_id, []).extend(claims)
    return found


@dataclass(frozen=True, slots=True)
class Transition:
    """The outcome of entering a phase: the new status and the Event to emit, if any."""

    status: RequestStatus
    event_type: str | None
    event_reason: str
    event_message: str


def enter(
    status: RequestStatus,
    phase: Phase,
    *,
    reason: str,
    message: str,
    now: datetime,
    extra: tuple[Condition, ...] = (),
    **changes: Any,
) -> Transition:
    """Move to ``phase`` (or stay, with a new reason); an Event only when something flipped.

    ``extra`` conditions (e.g. ``Approved``) are set alongside the phase's own.
    """
    check_transition(status.phase, phase)
    conditions = status.conditions
    ready, open_, denied = _conditions_for(phase, reason, message)
    flipped_any = False
    for condition in (ready, open_, denied, *extra):
        if condition is not None:
            conditions, flipped = set_condition(conditions, condition, now=now)
            flipped_any = flipped_any or (flipped and condition.type not in OWN_EVENTS)
    conditions = _kstatus(conditions, phase, reason, message, now=now)
    changed = phase != status.phase or reason != status.reason
    new = replace(
        status, phase=phase, reason=reason, message=message, conditions=conditions, **changes
    )
    if not (changed or flipped_any):
        return Transition(new, None, reason, message)
    warning = phase in (Phase.DENIED, Phase.FAILED)
    return Transition(new, "Warning" if warning else "Normal", reason, message)


def _conditions_for(
    phase: Phase, reason: str, message: str
) -> tuple[Condition, Condition | None, Condition | None]:
    if phase is Phase.PENDING:
        return Condition("Ready", FALSE, reason, message), None, None
    if phase is Phase.ACTIVE:
        return (
            Condition("Ready", TRUE, reason, message),
            Condition("Open", TRUE, reason, message),
            None,
        )
    if phase in (Phase.EXPIRED, Phase.REVOKED):
        return (
            Condition("Ready", TRUE, reason, message),
            Condition("Open", FALSE, reason, message),
            None,
        )
    if phase is Phase.DENIED:
        return (
            Condition("Ready", FALSE, reason, message),
            None,
            Condition("Denied", TRUE, reason, message),
        )
    return Condition("Ready", FALSE, reason, message), None, None


def _kstatus(
    conditions: tuple[Condition, ...], phase: Phase, reason: str, message: str, *, now: datetime
) -> tuple[Condition, ...]:
    """Reconciling while pending, Stalled when terminal without success, neither otherwise."""
    wanted = {Phase.PENDING: "Reconciling", Phase.DENIED: "Stalled", Phase.FAILED: "Stalled"}.get(
        phase
    )
    for kind in ("Reconciling", "Stalled"):
        if kind == wanted:
            conditions, _ = set_condition(
                conditions, Condition(kind, TRUE, reason, message), now=now
            )
        else:
            conditions = remove_condition(conditions, kind)
    return conditions


def _time(raw: object) -> datetime | None:
    return parse_timestamp(str(raw)) if raw else None


def _text(moment: datetime | None) -> str | None:
    return format_timestamp(moment) if moment else None
