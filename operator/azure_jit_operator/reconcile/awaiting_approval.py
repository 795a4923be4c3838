"""The gauge of requests waiting for an approver, per namespace and JitPolicy, kept from the
statuses the operator writes (a request counts while its last write said WaitingForApproval).

Its series are withdrawn when the last waiting request of a (namespace, policy) stops
waiting, and all of them when the controller pauses for a peer (the peer reports them)."""

from __future__ import annotations

from azure_jit_operator.domain.grants import RequestRef
from azure_jit_operator.metrics import REQUESTS_AWAITING_APPROVAL

WAITING_FOR_APPROVAL = "WaitingForApproval"


class AwaitingApproval:
    def __init__(self) -> None:
        self._waiting: dict[RequestRef, tuple[str, str]] = {}
        self._counts: dict[tuple[str, str], int] = {}

    def update(self, request: RequestRef, *, namespace: str, policy: str, waiting: bool) -> None:
        """The request's latest status: waiting for approval under ``policy``, or not."""
        previous = self._waiting.get(request)
        current = (namespace, policy) if waiting else None
        if previous == current:
            return
        if previous is not None:
            del self._waiting[request]
            self._change(previous, -1)
        if current is not None:
            self._waiting[request] = current
            self._change(current, +1)

    def forget(self, request: RequestRef) -> None:
        previous = self._waiting.pop(request, None)
        if previous is not None:
            self._change(previous, -1)

    def clear(self) -> None:
        for key in list(self._counts):
            REQUESTS_AWAITING_APPROVAL.remove(*key)
        self._waiting.clear()
        self._counts.clear()

    def count(self, namespace: str, policy: str) -> int:
        return self._counts.get((namespace, policy), 0)

    def _change(self, key: tuple[str, str], delta: int) -> None:
        count = self._counts.get(key, 0) + delta
        if count > 0:
            self._counts[key] = count
            REQUESTS_AWAITING_APPROVAL.labels(*key).set(count)
        else:
            self._counts.pop(key, None)
            REQUESTS_AWAITING_APPROVAL.remove(*key)
