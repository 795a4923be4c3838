"""A clock that moves only when a test says so: sleepers wake when time is advanced past
their deadline (or when their interrupt completes), never on their own."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta

START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class ManualClock:
    def __init__(self, start: datetime = START) -> None:
        self._now = start
        self._moved = asyncio.Event()

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._moved.set()
        self._moved = asyncio.Event()

    async def sleep_until(
        self, deadline: datetime, *, interrupt: Awaitable[object] | None = None
    ) -> bool:
        interrupted = asyncio.ensure_future(interrupt) if interrupt is not None else None
        try:
            while self._now < deadline:
                if interrupted is not None and interrupted.done():
                    return False
                moved = asyncio.ensure_future(self._moved.wait())
                waiting: set[asyncio.Future[object]] = {moved}
                if interrupted is not None:
                    waiting.add(interrupted)
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                moved.cancel()
            return True
        finally:
            if interrupted is not None and not interrupted.done():
                interrupted.cancel()


async def settle(rounds: int = 50) -> None:
    """Let every task that can run do so (no wall-clock wait: the loop is only yielded)."""
    for _ in range(rounds):
        await asyncio.sleep(0)  # yields the loop, waits no time (noqa: sleep-ok)
