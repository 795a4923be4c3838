"""Who holds which VM port right now, in memory, with one lock per VM.

The book is the runtime truth for shared grants: a status patch reaches kopf's index only
after a watch event, which is too late for the next request on the same port. Each VM's
claims are seeded once from the index (rebuilt from every request's status after a
restart) and from then on changed only here, under that VM's lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from azure_jit_operator.domain.grants import Claim, RequestRef


@dataclass(slots=True)
class _VmEntry:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    claims: dict[RequestRef, tuple[Claim, ...]] = field(default_factory=dict)
    seeded: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    verified_at: datetime | None = None


class PortBook:
    def __init__(self) -> None:
        self._vms: dict[str, _VmEntry] = {}

    def _entry(self, vm_id: str) -> _VmEntry:
        return self._vms.setdefault(vm_id.lower(), _VmEntry())

    def lock(self, vm_id: str) -> asyncio.Lock:
        return self._entry(vm_id).lock

    def seed(self, vm_id: str, load: Callable[[], Iterable[Claim]]) -> None:
        """Fill a VM's claims from persisted state the first time the VM is touched."""
        entry = self._entry(vm_id)
        if entry.seeded:
            return
        for claim in load():
            entry.claims[claim.request] = (*entry.claims.get(claim.request, ()), claim)
        entry.seeded = True

    def claims(self, vm_id: str, *, excluding: RequestRef | None = None) -> list[Claim]:
        entry = self._entry(vm_id)
        return [c for ref, cs in entry.claims.items() if ref != excluding for c in cs]

    def holds(self, vm_id: str, request: RequestRef) -> bool:
        return request in self._entry(vm_id).claims

    def put(self, vm_id: str, request: RequestRef, claims: Iterable[Claim]) -> None:
        entry = self._entry(vm_id)
        entry.claims[request] = tuple(claims)
        self._notify(entry)

    def drop(self, vm_id: str, request: RequestRef) -> None:
        entry = self._entry(vm_id)
        if entry.claims.pop(request, None) is not None:
            self._notify(entry)

    async def wait_for_change(self, vm_id: str) -> None:
        """Return when any claim on the VM changes (callers bound the wait themselves)."""
        await self._entry(vm_id).changed.wait()

    def verified_since(self, vm_id: str, moment: datetime) -> bool:
        verified = self._entry(vm_id).verified_at
        return verified is not None and verified >= moment

    def mark_verified(self, vm_id: str, moment: datetime) -> None:
        self._entry(vm_id).verified_at = moment

    def _notify(self, entry: _VmEntry) -> None:
        # Wake current waiters, then arm a fresh event for the next change.
        entry.changed.set()
        entry.changed = asyncio.Event()
