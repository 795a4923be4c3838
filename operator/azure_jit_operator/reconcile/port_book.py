"""Who holds which VM port right now, in memory, and whose turn it is to initiate on a VM.

The book is the runtime truth for shared grants: a status write reaches Kubernetes (and any
watch) only after the Azure call, which is too late for the next request on the same port.
Before anyone reads or changes it, the book is seeded once, for every VM at once, from one
listing of the persisted state (every Active request's status: after a restart, the only
record of who holds what); from then on it is changed only here. A VM the listing did not
name starts empty: any claim on it since was made through the book.

Claims are read and changed synchronously, so a check-and-claim with no await in between is
atomic on the event loop and needs no lock. The one lock per VM only gives initiates turns
(see ``RequestWorker._initiate``); a close never takes it, and nobody sleeps holding it.

Concurrent first callers share one listing; a failed one is raised to all of them and
leaves the book unseeded, so the next caller lists again. When nobody uses the book any
more (every request worker stopped, e.g. while a peer operator is active), it forgets
everything and the next user seeds it afresh: a peer may have changed statuses meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from azure_jit_operator.domain.grants import Claim, RequestRef

ClaimsLoader = Callable[[], Awaitable[Mapping[str, Iterable[Claim]]]]


class NotSeededError(RuntimeError):
    """The book was read or changed before it was seeded from the persisted state."""


@dataclass(slots=True)
class _VmEntry:
    initiate_turn: asyncio.Lock = field(default_factory=asyncio.Lock)
    claims: dict[RequestRef, tuple[Claim, ...]] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    verified_at: datetime | None = None


class PortBook:
    def __init__(self) -> None:
        self._vms: dict[str, _VmEntry] = {}
        self._seeded = False
        self._seeding: asyncio.Task[None] | None = None
        self._users = 0

    @property
    def seeded(self) -> bool:
        return self._seeded

    @contextmanager
    def in_use(self) -> Iterator[None]:
        """Held by whoever may touch the book (a request's worker, a deletion); the book
        forgets what it knows when the last one leaves."""
        self._users += 1
        try:
            yield
        finally:
            self._users -= 1
            if self._users == 0:
                self._forget()

    async def seed(self, load: ClaimsLoader) -> None:
        """Fill every VM's claims from ``load`` (the persisted state), once: concurrent
        callers await the same load; when it fails, they all raise and the next caller
        loads again."""
        if self._seeded:
            return
        if self._seeding is None:
            self._seeding = asyncio.ensure_future(self._load(load))
            self._seeding.add_done_callback(self._seeding_done)
        # A caller cancelled (its daemon stopping) leaves the load running for the others.
        await asyncio.shield(self._seeding)

    async def _load(self, load: ClaimsLoader) -> None:
        snapshot = await load()
        for vm_id, claims in snapshot.items():
            entry = self._vms.setdefault(vm_id.lower(), _VmEntry())
            for claim in claims:
                entry.claims[claim.request] = (*entry.claims.get(claim.request, ()), claim)
        self._seeded = True

    def _seeding_done(self, task: asyncio.Task[None]) -> None:
        if self._seeding is task:
            self._seeding = None
        if not task.cancelled():
            task.exception()  # retrieved here too: every awaiting caller may have gone

    def _forget(self) -> None:
        if self._seeding is not None:
            self._seeding.cancel()
            self._seeding = None
        self._vms.clear()
        self._seeded = False

    def _entry(self, vm_id: str) -> _VmEntry:
        if not self._seeded:
            raise NotSeededError("the port book is used before it was seeded")
        return self._vms.setdefault(vm_id.lower(), _VmEntry())

    def initiating(self, vm_id: str) -> asyncio.Lock:
        """The VM's initiate turn: held around one initiate call, never by a close."""
        return self._entry(vm_id).initiate_turn

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
