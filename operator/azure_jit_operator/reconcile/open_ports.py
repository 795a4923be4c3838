"""The open-port gauges, kept from what the operator confirmed on the NSGs.

``open_ports`` is 1 for a VM port while at least one request holds it open (requests from
the same source share a port); after a restart it is rebuilt as Active requests resume and
re-verify. ``ports_open_past_expiry`` counts requests whose rule was still observed on an
NSG after expiresAt + close grace.
"""

from __future__ import annotations

from collections.abc import Iterable

from azure_jit_operator.domain.grants import RequestRef
from azure_jit_operator.metrics import OPEN_PORTS, PORTS_OPEN_PAST_EXPIRY

PortKey = tuple[str, str, str, str]  # namespace, policy, vm, port


class OpenPorts:
    def __init__(self) -> None:
        self._holders: dict[PortKey, set[RequestRef]] = {}
        self._held_by: dict[RequestRef, list[PortKey]] = {}
        self._past_expiry: set[RequestRef] = set()

    def opened(
        self, request: RequestRef, namespace: str, policy: str, vm: str, ports: Iterable[int]
    ) -> None:
        if request in self._held_by:
            return
        keys = [(namespace, policy, vm, str(port)) for port in ports]
        self._held_by[request] = keys
        for key in keys:
            self._holders.setdefault(key, set()).add(request)
            OPEN_PORTS.labels(*key).set(1)

    def closed(self, request: RequestRef) -> None:
        for key in self._held_by.pop(request, []):
            holders = self._holders.get(key, set())
            holders.discard(request)
            if not holders:
                self._holders.pop(key, None)
                OPEN_PORTS.labels(*key).set(0)

    def past_expiry(self, request: RequestRef, is_open: bool) -> None:
        if is_open:
            self._past_expiry.add(request)
        else:
            self._past_expiry.discard(request)
        PORTS_OPEN_PAST_EXPIRY.set(len(self._past_expiry))
