"""Per-attempt pipeline policies added to every ARM client.

- ``ArmCallObserver`` times and counts each HTTP attempt by ARM operation and status code
  (bounded labels: operation ids derived from the URL shape, never names from it) and logs
  Azure's request ids for correlation. Headers are never logged.
- ``SubscriptionThrottle`` holds back further calls to a subscription that ARM throttled
  until its Retry-After has passed, so one throttled subscription neither hammers ARM nor
  delays calls to the others (each subscription has its own instance), per ARM rate-limit
  bucket (reads, writes, deletes).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import AsyncHTTPPolicy

from azure_jit_operator.metrics import AZURE_API_DURATION_SECONDS, AZURE_API_REQUESTS_TOTAL

log = logging.getLogger("azure_jit_operator.azure")

_OPERATIONS: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile(p, re.IGNORECASE), op)
    for m, p, op in [
        ("POST", r"/jitNetworkAccessPolicies/[^/]+/initiate$", "JitNetworkAccessPolicies_Initiate"),
        ("GET", r"/jitNetworkAccessPolicies/[^/]+$", "JitNetworkAccessPolicies_Get"),
        ("PUT", r"/jitNetworkAccessPolicies/[^/]+$", "JitNetworkAccessPolicies_CreateOrUpdate"),
        ("DELETE", r"/jitNetworkAccessPolicies/[^/]+$", "JitNetworkAccessPolicies_Delete"),
        ("GET", r"/jitNetworkAccessPolicies$", "JitNetworkAccessPolicies_List"),
        ("GET", r"/securityRules/[^/]+$", "SecurityRules_Get"),
        ("PUT", r"/securityRules/[^/]+$", "SecurityRules_CreateOrUpdate"),
        ("DELETE", r"/securityRules/[^/]+$", "SecurityRules_Delete"),
        ("GET", r"/securityRules$", "SecurityRules_List"),
        ("GET", r"/networkSecurityGroups/[^/]+$", "NetworkSecurityGroups_Get"),
        ("GET", r"/networkInterfaces/[^/]+$", "NetworkInterfaces_Get"),
        ("GET", r"/virtualNetworks/[^/]+/subnets/[^/]+$", "Subnets_Get"),
        ("GET", r"/virtualNetworks/[^/]+$", "VirtualNetworks_Get"),
        ("GET", r"/virtualMachines/[^/]+$", "VirtualMachines_Get"),
        ("GET", r"/virtualMachines$", "VirtualMachines_List"),
        ("GET", r"/providers/Microsoft\.Security/pricings/[^/]+$", "Pricings_Get"),
        (
            "GET",
            r"/operations/[^/]+$|/operationResults/[^/]+$|/asyncoperations/",
            "LongRunningOperation_Poll",
        ),
    ]
]


def operation_of(method: str, url: str) -> str:
    path = url.split("?", 1)[0].rstrip("/")
    for wanted_method, pattern, operation in _OPERATIONS:
        if method.upper() == wanted_method and pattern.search(path):
            return operation
    return "Other"


# The writes that change JIT's deny rules: a JIT policy's PUT or DELETE.
_POLICY_WRITES = frozenset(
    {"JitNetworkAccessPolicies_CreateOrUpdate", "JitNetworkAccessPolicies_Delete"}
)


class WriteEpoch:
    """Counts the ARM writes of one identity's clients, at their start and at their end, so
    that a cached read can tell whether a write overlapped or followed it. ``value`` counts
    every write (a policy PUT, an initiate, a rule DELETE: allow rules change); ``policies``
    only the policy writes (deny rules change), which is all an exposure check must see."""

    def __init__(self) -> None:
        self.value = 0
        self.policies = 0

    def bump(self, operation: str) -> None:
        self.value += 1
        if operation in _POLICY_WRITES:
            self.policies += 1


class ArmCallObserver(AsyncHTTPPolicy):  # type: ignore[type-arg]
    def __init__(self, writes: WriteEpoch | None = None) -> None:
        super().__init__()
        self._writes = writes

    async def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        http = request.http_request
        operation = operation_of(http.method, http.url)
        started = time.perf_counter()
        code = "error"
        writing = self._writes is not None and http.method.upper() not in ("GET", "HEAD")
        if writing and self._writes is not None:
            self._writes.bump(operation)
        try:
            response = await self.next.send(request)
            code = str(response.http_response.status_code)
            headers = response.http_response.headers
            # Writes and failures are the audit trail (with Azure's ids for support cases);
            # successful reads would drown it.
            failed = not code.isdigit() or int(code) >= 400
            level = logging.DEBUG if http.method == "GET" and not failed else logging.INFO
            log.log(
                level,
                "ARM %s -> %s",
                operation,
                code,
                extra={
                    "azure_operation": operation,
                    "azure_status": code,
                    "azure_request_id": headers.get("x-ms-request-id"),
                    "azure_correlation_id": headers.get("x-ms-correlation-request-id"),
                },
            )
            return response
        finally:
            if writing and self._writes is not None:
                self._writes.bump(operation)
            AZURE_API_REQUESTS_TOTAL.labels(operation=operation, code=code).inc()
            AZURE_API_DURATION_SECONDS.labels(operation=operation).observe(
                time.perf_counter() - started
            )


def rate_limit_bucket(method: str) -> str:
    """ARM counts reads, writes and deletes against separate per-subscription limits (its
    ``x-ms-ratelimit-remaining-subscription-{reads,writes,deletes}`` headers)."""
    verb = method.upper()
    if verb in ("GET", "HEAD"):
        return "reads"
    if verb == "DELETE":
        return "deletes"
    return "writes"


class ThrottleState:
    """When ARM last told one subscription to back off, per rate-limit bucket; shared by the
    subscription's three clients. Buckets are separate so that a throttled initiate (a write)
    never holds back the rule DELETE that closes another request's port."""

    def __init__(self, *, max_hold: float = 60.0) -> None:
        self._hold_until: dict[str, float] = {}
        self._max_hold = max_hold

    def held_for(self, bucket: str | None = None) -> float:
        """Seconds still held back in ``bucket`` (None: the longest of any bucket)."""
        now = time.monotonic()
        if bucket is None:
            return max((max(0.0, until - now) for until in self._hold_until.values()), default=0.0)
        return max(0.0, self._hold_until.get(bucket, 0.0) - now)

    def throttled(self, retry_after: float, bucket: str) -> None:
        self._hold_until[bucket] = max(
            self._hold_until.get(bucket, 0.0), time.monotonic() + min(retry_after, self._max_hold)
        )


class SubscriptionThrottle(AsyncHTTPPolicy):  # type: ignore[type-arg]
    """One instance per client pipeline (policies are chained), sharing a ThrottleState."""

    def __init__(self, state: ThrottleState) -> None:
        super().__init__()
        self._state = state

    async def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        bucket = rate_limit_bucket(request.http_request.method)
        wait = self._state.held_for(bucket)
        if wait > 0:
            await asyncio.sleep(wait)
        response = await self.next.send(request)
        if response.http_response.status_code == 429:
            retry_after = _seconds(response.http_response.headers.get("Retry-After"))
            self._state.throttled(retry_after, bucket)
        return response


def _seconds(raw: str | None) -> float:
    try:
        return max(0.0, float(raw)) if raw is not None else 1.0
    except ValueError:
        return 1.0
