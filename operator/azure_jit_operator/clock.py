"""The operator's notion of time.

Production uses the system clock. Tests shift it (together with the emulator's clock) to
reach an expiry without waiting; every sleeper wakes on a shift and re-reads the time, so a
jump past a deadline acts at once. Shifts may come from another thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

# Sleepers re-read the clock at least this often, so a wrong wake-up can never be far off.
MAX_NAP_SECONDS = 30.0


class Clock:
    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._lock = threading.Lock()
        self._sleepers: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def shift(self, delta: timedelta) -> None:
        """Move time forward (tests only); wakes every sleeper."""
        with self._lock:
            self._offset += delta
            sleepers = list(self._sleepers)
        for loop, event in sleepers:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    async def sleep_until(
        self, deadline: datetime, *, interrupt: Awaitable[object] | None = None
    ) -> bool:
        """Sleep until ``deadline``; False if ``interrupt`` completed first."""
        interrupted: asyncio.Future[object] | None = (
            asyncio.ensure_future(interrupt) if interrupt is not None else None
        )
        event = asyncio.Event()
        entry = (asyncio.get_running_loop(), event)
        with self._lock:
            self._sleepers.add(entry)
        try:
            while True:
                remaining = (deadline - self.now()).total_seconds()
                if remaining <= 0:
                    return True
                if interrupted is not None and interrupted.done():
                    return False
                event.clear()
                waiting = asyncio.ensure_future(event.wait())
                pending: set[asyncio.Future[Any]] = {waiting}
                if interrupted is not None:
                    pending.add(interrupted)
                await asyncio.wait(
                    pending,
                    timeout=min(remaining, MAX_NAP_SECONDS),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                waiting.cancel()
        finally:
            with self._lock:
                self._sleepers.discard(entry)
            if interrupted is not None and not interrupted.done():
                interrupted.cancel()

    async def sleep(self, seconds: float, *, interrupt: Awaitable[object] | None = None) -> bool:
        return await self.sleep_until(self.now() + timedelta(seconds=seconds), interrupt=interrupt)
