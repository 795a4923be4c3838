"""The gauges of live requests, kept from what the operator observed: open ports, ports open
past expiry, and the oldest Pending request per reason.

``open_ports`` is set from NSG reads, not from intentions: a request's port counts as open
when its worker last *observed* the allow rule (on activation, on each verification, while
closing), and 0 once the close is confirmed. One exception errs on the safe side: a grant
re-initiated because Azure closed it early counts as open as soon as Azure accepts the
initiate. Requests from the same source share a port, so a series stays 1 while any request
observes it open. After a restart the series are rebuilt as Active requests resume and
re-read their NSGs; a worker that stops without closing (operator stopping, or pausing for
a peer) withdraws its series, so a standby replica reports nothing rather than a stale 1.

``ports_open_past_expiry`` counts the ports whose rule was still on an NSG when read after
expiresAt + close grace, and those whose NSG could not be read then (cannot tell = open).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from azure_jit_operator.domain.grants import RequestRef
from azure_jit_operator.metrics import OLDEST_PENDING_REQUEST, OPEN_PORTS, PORTS_OPEN_PAST_EXPIRY

PortKey = tuple[str, str, str, str]  # namespace, policy, vm, port


@dataclass(slots=True)
class _Held:
    keys: frozenset[PortKey]  # every port of the request
    open: set[PortKey] = field(default_factory=set)  # those last observed open


class OpenPorts:
    def __init__(self) -> None:
        self._requests: dict[RequestRef, _Held] = {}
        self._holders: dict[PortKey, set[RequestRef]] = {}
        # Requests whose worker stopped without closing: closed() still knows their ports.
        self._retired: dict[RequestRef, frozenset[PortKey]] = {}
        self._past_expiry: dict[RequestRef, int] = {}
        self._pending: dict[RequestRef, tuple[str, str, float]] = {}  # namespace, reason, since
        # Per (namespace, reason), a min-heap of (since, tie, request), pruned lazily: the
        # oldest Pending request without scanning every Pending request on each change
        # (a burst of N new requests would otherwise cost N^2).
        self._oldest: dict[tuple[str, str], list[tuple[float, int, RequestRef]]] = {}
        self._tie = itertools.count()

    # -- open ports ----------------------------------------------------------------

    def observed(
        self,
        request: RequestRef,
        *,
        namespace: str,
        policy: str,
        vm: str,
        ports: Iterable[int],
        open_ports: Iterable[int],
    ) -> None:
        """Record one NSG read: which of the request's ``ports`` were seen open."""
        keys = frozenset((namespace, policy, vm, str(port)) for port in ports)
        now_open = {str(port) for port in open_ports}
        seen = {key for key in keys if key[3] in now_open}
        held = self._requests.setdefault(request, _Held(keys))
        held.keys = keys
        self._retired.pop(request, None)
        for key in seen - held.open:
            self._holders.setdefault(key, set()).add(request)
            OPEN_PORTS.labels(*key).set(1)
        for key in held.open - seen:
            self._release(key, request, closed=True)
        held.open = seen

    def knows(self, request: RequestRef) -> bool:
        """Whether the request's ports were observed since this worker started."""
        return request in self._requests

    def closed(self, request: RequestRef) -> None:
        """The request's rules are confirmed gone from the NSGs (expired or revoked)."""
        held = self._requests.pop(request, None)
        keys = held.keys if held is not None else self._retired.pop(request, frozenset())
        for key in keys:
            self._release(key, request, closed=True)
        self._past_expiry.pop(request, None)
        self._refresh_past_expiry()
        self.settled(request)

    def forget(self, request: RequestRef) -> None:
        """The request's worker stopped without closing: withdraw what it reported."""
        held = self._requests.pop(request, None)
        if held is not None:
            self._retired[request] = held.keys
            for key in held.open:
                self._release(key, request, closed=False)
        if self._past_expiry.pop(request, None) is not None:
            self._refresh_past_expiry()
        self.settled(request)

    def _release(self, key: PortKey, request: RequestRef, *, closed: bool) -> None:
        holders = self._holders.get(key, set())
        holders.discard(request)
        if holders:
            return
        self._holders.pop(key, None)
        if closed:
            OPEN_PORTS.labels(*key).set(0)
        else:
            OPEN_PORTS.remove(*key)  # absent: this replica no longer knows

    # -- past expiry ---------------------------------------------------------------

    def past_expiry(self, request: RequestRef, ports: int) -> None:
        """How many of the request's ports were observed open past expiresAt + grace."""
        if ports:
            self._past_expiry[request] = ports
        else:
            self._past_expiry.pop(request, None)
        self._refresh_past_expiry()

    def _refresh_past_expiry(self) -> None:
        PORTS_OPEN_PAST_EXPIRY.set(sum(self._past_expiry.values()))

    # -- pending -------------------------------------------------------------------

    def waiting(self, request: RequestRef, *, namespace: str, reason: str, since: datetime) -> None:
        """The request is Pending for ``reason``; ``since`` is its creation time."""
        previous = self._pending.get(request)
        entry = (namespace, reason, since.timestamp())
        self._pending[request] = entry
        if previous != entry:
            heap = self._oldest.setdefault((namespace, reason), [])
            heapq.heappush(heap, (entry[2], next(self._tie), request))
        if previous is not None and previous[:2] != (namespace, reason):
            self._refresh_pending(*previous[:2])
        self._refresh_pending(namespace, reason)

    def settled(self, request: RequestRef) -> None:
        """The request left Pending (or its worker stopped)."""
        previous = self._pending.pop(request, None)
        if previous is not None:
            self._refresh_pending(*previous[:2])

    def _refresh_pending(self, namespace: str, reason: str) -> None:
        heap = self._oldest.get((namespace, reason), [])
        while heap:
            since, _, request = heap[0]
            if self._pending.get(request) == (namespace, reason, since):
                OLDEST_PENDING_REQUEST.labels(namespace, reason).set(since)
                if len(heap) > 2 * len(self._pending) + 64:  # drop stale entries below the top
                    live = [e for e in heap if self._pending.get(e[2]) == (namespace, reason, e[0])]
                    heapq.heapify(live)
                    self._oldest[(namespace, reason)] = live
                return
            heapq.heappop(heap)
        self._oldest.pop((namespace, reason), None)
        OLDEST_PENDING_REQUEST.remove(namespace, reason)
