"""Fault injection and call counting, per ARM operation id.

A fault matches an operation id (``JitNetworkAccessPolicies_Initiate``, ``SecurityRules_Delete``,
… or ``*``), optionally an HTTP method and one ``subscription``, fires ``times`` times (or until
cleared) and is one of:

- ``status``: answer with an error status instead of doing the work (429 carries
  ``Retry-After`` and ARM's throttling body; 500/503 and others their ARM shapes);
- ``latency``: wait ``latency_seconds`` before handling;
- ``drop``: close the connection without an answer.

``phase: after`` makes a ``status`` or ``drop`` fault happen *after* the operation took effect
(the client never learns that it did), which is how lost responses are tested.
The Entra endpoints (:mod:`.entra`) count and fault under ``Entra_*`` operation ids, which
``*`` does not match: an ARM outage and an identity platform outage are separate events.
The :class:`CallCounter` counts every routed ARM call by operation id, method and status.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from azure_arm_emulator import errors

FaultKind = Literal["status", "latency", "drop"]
Phase = Literal["before", "after"]
_KINDS = ("status", "latency", "drop")
_PHASES = ("before", "after")


class FaultError(ValueError):
    """A fault definition that cannot be used."""


@dataclass
class Fault:
    id: int
    operation: str
    kind: FaultKind
    times: int | None = 1
    method: str | None = None
    status: int = 500
    code: str | None = None
    message: str | None = None
    retry_after: int | None = None
    latency_seconds: float = 0.0
    phase: Phase = "before"
    fired: int = 0
    subscription: str | None = None  # only calls to this subscription (None: any)

    def matches(
        self,
        operation: str,
        method: str,
        phase: Phase,
        *,
        wildcard: bool = True,
        subscription: str = "",
    ) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        if self.subscription is not None and self.subscription.lower() != subscription.lower():
            return False
        if self.operation == "*" and not wildcard:
            return False
        if self.operation != "*" and self.operation.lower() != operation.lower():
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.phase == phase or self.kind == "latency"

    def error(self, subscription: str) -> errors.ArmError:
        if self.code or self.message:
            headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
            return errors.ArmError(
                self.status,
                self.code or "InjectedFault",
                self.message or "Fault injected by the emulator.",
                headers=headers,
            )
        if self.status == 429:
            retry_after = 1 if self.retry_after is None else self.retry_after
            return errors.throttled(subscription_id=subscription, retry_after=retry_after)
        if self.status == 503:
            return errors.service_unavailable(self.retry_after)
        if self.status == 500:
            error = errors.internal_server_error()
        else:
            error = errors.ArmError(self.status, "InjectedFault", "Fault injected by the emulator.")
        if self.retry_after is not None:
            error.headers["Retry-After"] = str(self.retry_after)
        return error

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "operation": self.operation,
            "kind": self.kind,
            "times": self.times,
            "method": self.method,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "retry_after": self.retry_after,
            "latency_seconds": self.latency_seconds,
            "phase": self.phase,
            "fired": self.fired,
            "subscription": self.subscription,
        }


@dataclass
class Decision:
    """What the faults say about one call in one phase."""

    latency: float = 0.0
    fault: Fault | None = None


@dataclass
class FaultInjector:
    faults: list[Fault] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add(self, spec: dict[str, Any]) -> Fault:
        fault = _parse(spec, next(self._ids))
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        self.faults.clear()

    def decide(
        self,
        operation: str,
        method: str,
        phase: Phase,
        *,
        wildcard: bool = True,
        subscription: str = "",
    ) -> Decision:
        """Latency and the first fault due for this call (``wildcard=False``: ignore ``*``)."""
        decision = Decision()
        for fault in self.faults:
            if not fault.matches(
                operation, method, phase, wildcard=wildcard, subscription=subscription
            ):
                continue
            if fault.kind == "latency":
                if phase == "before":
                    fault.fired += 1
                    decision.latency += fault.latency_seconds
                continue
            if decision.fault is None:
                fault.fired += 1
                decision.fault = fault
        return decision

    def to_list(self) -> list[dict[str, Any]]:
        return [fault.to_dict() for fault in self.faults]


def _parse(spec: dict[str, Any], fault_id: int) -> Fault:
    known = {
        "operation",
        "kind",
        "times",
        "method",
        "status",
        "code",
        "message",
        "retry_after",
        "latency_seconds",
        "phase",
        "subscription",
    }
    unknown = sorted(set(spec) - known)
    if unknown:
        raise FaultError(f"unknown fault fields {unknown}; known: {sorted(known)}")
    operation = spec.get("operation")
    kind = spec.get("kind")
    if not isinstance(operation, str) or not operation:
        raise FaultError("'operation' must be an operation id such as SecurityRules_Delete or '*'")
    if kind not in _KINDS:
        raise FaultError(f"'kind' must be one of {list(_KINDS)}")
    phase = spec.get("phase", "before")
    if phase not in _PHASES:
        raise FaultError(f"'phase' must be one of {list(_PHASES)}")
    times = spec.get("times", 1)
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise FaultError("'times' must be a positive integer or null (until cleared)")
    status = spec.get("status", 429 if kind == "status" else 500)
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        raise FaultError("'status' must be an HTTP error status (400..599)")
    retry_after = spec.get("retry_after")
    if retry_after is not None and (
        isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0
    ):
        raise FaultError("'retry_after' must be whole seconds >= 0")
    latency = spec.get("latency_seconds", 0.0)
    if isinstance(latency, bool) or not isinstance(latency, int | float) or latency < 0:
        raise FaultError("'latency_seconds' must be a number >= 0")
    method = spec.get("method")
    subscription = spec.get("subscription")
    if subscription is not None and (not isinstance(subscription, str) or not subscription):
        raise FaultError("'subscription' must be a subscription id")
    return Fault(
        id=fault_id,
        operation=operation,
        kind=kind,
        times=times,
        method=str(method).upper() if method else None,
        status=status,
        code=spec.get("code"),
        message=spec.get("message"),
        retry_after=retry_after,
        latency_seconds=float(latency),
        phase=phase,
        subscription=subscription,
    )


@dataclass
class CallCounter:
    """Routed ARM calls by operation id: total, per method and per response status."""

    by_operation: Counter[str] = field(default_factory=Counter)
    by_method: dict[str, Counter[str]] = field(default_factory=dict)
    by_status: dict[str, Counter[str]] = field(default_factory=dict)

    def record(self, operation: str, method: str, status: int | str) -> None:
        self.by_operation[operation] += 1
        self.by_method.setdefault(operation, Counter())[method.upper()] += 1
        self.by_status.setdefault(operation, Counter())[str(status)] += 1

    def reset(self) -> None:
        self.by_operation.clear()
        self.by_method.clear()
        self.by_status.clear()

    def to_dict(self) -> dict[str, Any]:
        return {
            operation: {
                "total": total,
                "by_method": dict(self.by_method.get(operation, {})),
                "by_status": dict(self.by_status.get(operation, {})),
            }
            for operation, total in sorted(self.by_operation.items())
        }
