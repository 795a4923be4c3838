"""Azure failures, classified once so callers decide by kind, never by parsing text.

Kinds map to what the reconciler does: ``throttled`` and ``transient`` are retried with
backoff (honouring Retry-After); ``not_found``, ``forbidden``, ``invalid``, ``auth`` and
``plan`` are reported on the object's status with Azure's own code and message.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)


class FailureKind(StrEnum):
    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"
    THROTTLED = "throttled"
    TRANSIENT = "transient"
    INVALID = "invalid"
    CONFLICT = "conflict"
    AUTH = "auth"
    PLAN = "plan"


RETRYABLE = frozenset({FailureKind.THROTTLED, FailureKind.TRANSIENT})

# ARM codes that mean "Defender for Servers is not enabled": JIT needs the plan.
_PLAN_CODES = frozenset(
    {"PricingTierNotSupported", "SubscriptionNotRegistered", "StandardTierRequired"}
)


@dataclass(frozen=True, slots=True)
class AzureError(Exception):
    kind: FailureKind
    code: str
    message: str
    status: int | None = None
    retry_after: float | None = None

    def __str__(self) -> str:
        status = f" (HTTP {self.status})" if self.status else ""
        return f"{self.code}{status}: {self.message}"

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE


def classify(exc: BaseException) -> AzureError:
    """Turn any exception raised by an SDK call into an AzureError."""
    if isinstance(exc, AzureError):
        return exc
    if isinstance(exc, ClientAuthenticationError) and exc.status_code in (None, 401):
        return AzureError(
            FailureKind.AUTH,
            "AuthenticationFailed",
            _first_line(exc.message or str(exc)),
            status=exc.status_code,
        )
    if isinstance(exc, HttpResponseError):
        return _from_response(exc)
    if isinstance(exc, ServiceRequestError | ServiceResponseError | TimeoutError):
        return AzureError(FailureKind.TRANSIENT, "ConnectionError", _first_line(str(exc)))
    if isinstance(exc, asyncio.CancelledError):
        raise exc
    return AzureError(FailureKind.TRANSIENT, type(exc).__name__, _first_line(str(exc)))


def _from_response(exc: HttpResponseError) -> AzureError:
    status = exc.status_code
    code = (exc.error.code if exc.error and exc.error.code else None) or exc.reason or "Unknown"
    message = _first_line(exc.error.message if exc.error and exc.error.message else exc.message)
    retry_after = _retry_after(exc)
    kind: FailureKind
    if status == 429:
        kind = FailureKind.THROTTLED
    elif status is not None and (status >= 500 or status == 408):
        kind = FailureKind.TRANSIENT
    elif status == 404:
        kind = FailureKind.NOT_FOUND
    elif status == 403:
        kind = FailureKind.FORBIDDEN
    elif status == 401:
        kind = FailureKind.AUTH
    elif status == 409:
        kind = FailureKind.CONFLICT
    elif code in _PLAN_CODES:
        kind = FailureKind.PLAN
    else:
        kind = FailureKind.INVALID
    if code in _PLAN_CODES:
        kind = FailureKind.PLAN
    return AzureError(kind, code, message, status=status, retry_after=retry_after)


def _retry_after(exc: HttpResponseError) -> float | None:
    response: Any = exc.response
    if response is None:
        return None
    raw = response.headers.get("Retry-After")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def _first_line(text: str | None) -> str:
    # SDK messages append multi-line request dumps; status and Events want one sentence.
    return (text or "").strip().splitlines()[0] if text and text.strip() else ""
