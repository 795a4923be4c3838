"""A keyed work queue in the shape of client-go's ``workqueue`` (as controller-runtime uses it).

- **Dedup**: a key is queued at most once; adding it again keeps the earlier due time.
- **Delayed re-queue**: ``add(key, at=...)``; a reconcile returns when to look again.
- **Due-time order**: the earliest due key runs first, so after a restart the closes that are
  overdue (due at their ``expiresAt``, in the past) run before routine checks (due now).
  Ties run in the order they were added, so a flood of new keys cannot starve older ones.
- **Per-key serialisation**: a key is handed to one worker at a time; added while it runs, it
  is queued again when that run ends (never two reconciles of one VM at once).
- **Rate-limited retries**: a reconcile that raises :class:`RetryLater` (or fails) is queued
  again after a per-key exponential back-off (reset when the key next succeeds), never later
  than the ``not_after`` it names: a close's retry stays within its grace.
- **Bounded pool**: ``workers`` coroutines, whatever the number of keys.

Time comes from a clock (``now`` and an interruptible ``sleep_until``), so tests drive it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar

log = logging.getLogger("azure_jit_operator.queue")

K = TypeVar("K", bound=Hashable)


class QueueClock(Protocol):
    def now(self) -> datetime: ...

    async def sleep_until(
        self, deadline: datetime, *, interrupt: Awaitable[object] | None = None
    ) -> bool: ...


class RetryLater(Exception):  # noqa: N818 - control flow, not an error
    """Raised by a reconcile: look again after the key's back-off (or ``retry_after``
    seconds, as Azure asked), and in any case no later than ``not_after``."""

    def __init__(
        self, reason: str, *, retry_after: float | None = None, not_after: datetime | None = None
    ) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.not_after = not_after


Reconcile = Callable[[K], Awaitable[datetime | None]]


@dataclass(frozen=True, slots=True)
class Backoff:
    base_seconds: float = 1.0
    max_seconds: float = 60.0

    def delay(self, failures: int) -> float:
        return float(min(self.max_seconds, self.base_seconds * 2 ** max(0, failures - 1)))


class WorkQueue(Generic[K]):
    def __init__(self, clock: QueueClock, *, backoff: Backoff | None = None) -> None:
        self._clock = clock
        self._backoff = backoff or Backoff()
        self._heap: list[tuple[datetime, int, K]] = []
        self._due: dict[K, tuple[datetime, int]] = {}  # the live heap entry of each key
        self._running: set[K] = set()
        self._again: dict[K, datetime] = {}  # added while running: queued when the run ends
        self._failures: dict[K, int] = {}
        self._seq = itertools.count()
        self._changed = asyncio.Event()
        self._shutting_down = False

    # -- adding --------------------------------------------------------------------

    def add(self, key: K, at: datetime | None = None) -> None:
        """Queue ``key`` to run at ``at`` (default: now); the earlier time wins."""
        when = at if at is not None else self._clock.now()
        if key in self._running:
            known = self._again.get(key)
            if known is None or when < known:
                self._again[key] = when
            return
        known_entry = self._due.get(key)
        if known_entry is not None and known_entry[0] <= when:
            return
        seq = next(self._seq)
        self._due[key] = (when, seq)
        heapq.heappush(self._heap, (when, seq, key))
        self._wake()

    def add_after(self, key: K, seconds: float) -> None:
        self.add(key, self._clock.now() + timedelta(seconds=max(0.0, seconds)))

    def discard(self, key: K) -> None:
        """Forget a key entirely (its object is gone); a run in progress finishes."""
        self._due.pop(key, None)
        self._again.pop(key, None)
        self._failures.pop(key, None)

    def clear(self) -> None:
        """Drop every queued key (the operator pauses for a peer); runs in progress finish."""
        self._heap.clear()
        self._due.clear()
        self._again.clear()
        self._failures.clear()

    def shut_down(self) -> None:
        """Hand out no more keys: idle workers end, busy ones end after their reconcile."""
        self._shutting_down = True
        self._wake()

    # -- introspection ---------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._due)

    def due_at(self, key: K) -> datetime | None:
        entry = self._due.get(key)
        return entry[0] if entry else self._again.get(key)

    def failures(self, key: K) -> int:
        return self._failures.get(key, 0)

    @property
    def running(self) -> frozenset[K]:
        return frozenset(self._running)

    # -- running -----------------------------------------------------------------------

    async def run(self, reconcile: Reconcile[K], *, workers: int) -> None:
        """Run ``workers`` workers until cancelled, or until shut down and every reconcile in
        progress has finished."""
        self._shutting_down = False
        tasks = [asyncio.create_task(self._worker(reconcile)) for _ in range(workers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _worker(self, reconcile: Reconcile[K]) -> None:
        while True:
            # Yield once per item: a reconcile that needed no I/O must not let this worker
            # loop without ever giving the event loop (watches, other workers) a turn.
            await asyncio.sleep(0)
            key = await self._take()
            if key is None:
                return
            try:
                next_at = await reconcile(key)
            except asyncio.CancelledError:
                self._finish(key, self._clock.now())  # picked up again by whoever runs next
                raise
            except RetryLater as retry:
                self._finish(key, self._retry_at(key, retry.retry_after, retry.not_after))
            except Exception:
                log.exception("reconcile of %s failed; retrying with back-off", key)
                self._finish(key, self._retry_at(key, None, None))
            else:
                self._failures.pop(key, None)
                self._finish(key, next_at)

    def _retry_at(self, key: K, retry_after: float | None, not_after: datetime | None) -> datetime:
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay = retry_after if retry_after is not None else self._backoff.delay(failures)
        at = self._clock.now() + timedelta(seconds=delay)
        return min(at, not_after) if not_after is not None else at

    def _finish(self, key: K, next_at: datetime | None) -> None:
        self._running.discard(key)
        again = self._again.pop(key, None)
        times = [t for t in (next_at, again) if t is not None]
        if times:
            self.add(key, min(times))

    async def _take(self) -> K | None:
        while True:
            if self._shutting_down:
                return None
            now = self._clock.now()
            while self._heap:
                when, seq, key = self._heap[0]
                if self._due.get(key) != (when, seq):
                    heapq.heappop(self._heap)  # superseded by an earlier add, or discarded
                    continue
                if when > now:
                    break
                heapq.heappop(self._heap)
                del self._due[key]
                self._running.add(key)
                return key
            changed = self._changed
            if self._heap:
                await self._clock.sleep_until(self._heap[0][0], interrupt=changed.wait())
            else:
                await changed.wait()

    def _wake(self) -> None:
        # Wake every idle worker to look at the new head, then arm a fresh event.
        self._changed.set()
        self._changed = asyncio.Event()
