"""The keyed work queue that drives every reconcile: dedup, delayed re-queue, retry back-off,
per-key serialisation and fairness, on a clock the test moves (no wall-clock waits)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import pytest

from azure_jit_operator.reconcile.work_queue import Backoff, RetryLater, WorkQueue
from tests.support.manual_clock import ManualClock, settle

Outcome = Callable[[str], datetime | None]


class Recorder:
    """A reconcile that records its calls and answers what the test tells it to."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.calls: list[tuple[str, datetime]] = []
        self.answer: dict[str, Callable[[], datetime | None]] = {}
        self.gates: dict[str, asyncio.Event] = {}
        self.running: set[str] = set()
        self.overlaps = 0

    async def __call__(self, key: str) -> datetime | None:
        if key in self.running:
            self.overlaps += 1
        self.running.add(key)
        try:
            self.calls.append((key, self.clock.now()))
            gate = self.gates.get(key)
            if gate is not None:
                await gate.wait()
            answer = self.answer.get(key)
            return answer() if answer else None
        finally:
            self.running.discard(key)

    def order(self) -> list[str]:
        return [k for k, _ in self.calls]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def queue(clock: ManualClock) -> WorkQueue[str]:
    return WorkQueue(clock, backoff=Backoff(base_seconds=1.0, max_seconds=8.0))


@pytest.fixture
async def recorder(clock: ManualClock, queue: WorkQueue[str]) -> AsyncIterator[Recorder]:
    rec = Recorder(clock)
    task = asyncio.create_task(queue.run(rec, workers=2))
    yield rec
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_key_added_many_times_runs_once(queue: WorkQueue[str], recorder: Recorder) -> None:
    for _ in range(5):
        queue.add("vm-1")
    await settle()
    assert recorder.order() == ["vm-1"]
    assert len(queue) == 0


async def test_a_delayed_key_runs_when_its_time_comes_and_not_before(
    clock: ManualClock, queue: WorkQueue[str], recorder: Recorder
) -> None:
    queue.add_after("vm-1", 30)
    await settle()
    assert recorder.order() == []
    clock.advance(29)
    await settle()
    assert recorder.order() == []
    clock.advance(1)
    await settle()
    assert recorder.order() == ["vm-1"]


async def test_an_earlier_add_moves_a_delayed_key_forward_and_a_later_one_does_not(
    clock: ManualClock, queue: WorkQueue[str], recorder: Recorder
) -> None:
    queue.add_after("vm-1", 60)
    queue.add_after("vm-1", 90)  # later: ignored
    assert queue.due_at("vm-1") == clock.now() + timedelta(seconds=60)
    queue.add_after("vm-1", 10)  # earlier: wins
    clock.advance(10)
    await settle()
    assert recorder.order() == ["vm-1"]
    clock.advance(100)
    await settle()
    assert recorder.order() == ["vm-1"]  # the superseded entries do not run it again


async def test_the_time_a_reconcile_returns_is_when_it_runs_again(
    clock: ManualClock, queue: WorkQueue[str], recorder: Recorder
) -> None:
    recorder.answer["vm-1"] = lambda: clock.now() + timedelta(seconds=5)
    queue.add("vm-1")
    await settle()
    clock.advance(5)
    await settle()
    clock.advance(5)
    await settle()
    assert [t for _, t in recorder.calls] == [
        recorder.calls[0][1] + timedelta(seconds=s) for s in (0, 5, 10)
    ]


async def test_overdue_keys_run_before_keys_due_now_in_due_order(
    clock: ManualClock, queue: WorkQueue[str]
) -> None:
    rec = Recorder(clock)
    now = clock.now()
    queue.add("routine-a", now)
    queue.add("overdue-late", now - timedelta(seconds=5))
    queue.add("routine-b", now)
    queue.add("overdue-early", now - timedelta(seconds=50))
    task = asyncio.create_task(queue.run(rec, workers=1))
    await settle()
    task.cancel()
    assert rec.order() == ["overdue-early", "overdue-late", "routine-a", "routine-b"]


async def test_one_key_never_runs_twice_at_once_and_an_add_meanwhile_runs_after(
    queue: WorkQueue[str], recorder: Recorder
) -> None:
    recorder.gates["vm-1"] = asyncio.Event()
    queue.add("vm-1")
    await settle()
    assert recorder.running == {"vm-1"}
    queue.add("vm-1")  # while it runs: a second worker is free but must not take it
    queue.add("vm-2")
    await settle()
    assert recorder.order() == ["vm-1", "vm-2"]
    assert recorder.overlaps == 0
    recorder.gates["vm-1"].set()
    await settle()
    assert recorder.order() == ["vm-1", "vm-2", "vm-1"]
    assert recorder.overlaps == 0


async def test_a_failing_key_backs_off_exponentially_up_to_the_cap_and_resets(
    clock: ManualClock, queue: WorkQueue[str], recorder: Recorder
) -> None:
    failing = True

    def answer() -> datetime | None:
        if failing:
            raise RetryLater("azure unavailable")
        return None

    recorder.answer["vm-1"] = answer
    queue.add("vm-1")
    await settle()
    delays = []
    for _ in range(5):
        due = queue.due_at("vm-1")
        assert due is not None
        delays.append((due - clock.now()).total_seconds())
        clock.advance(delays[-1])
        await settle()
    assert delays == [1, 2, 4, 8, 8]
    failing = False
    due = queue.due_at("vm-1")
    assert due is not None
    clock.advance((due - clock.now()).total_seconds())
    await settle()
    assert queue.failures("vm-1") == 0
    assert queue.due_at("vm-1") is None


async def test_a_retry_honours_retry_after_but_never_passes_its_deadline(
    clock: ManualClock, queue: WorkQueue[str], recorder: Recorder
) -> None:
    deadline = clock.now() + timedelta(seconds=25)
    retries = [
        RetryLater("throttled", retry_after=20.0),
        RetryLater("throttled", retry_after=20.0, not_after=deadline),
    ]

    def answer() -> datetime | None:
        if retries:
            raise retries.pop(0)
        return None

    recorder.answer["vm-1"] = answer
    queue.add("vm-1")
    await settle()
    assert queue.due_at("vm-1") == clock.now() + timedelta(seconds=20)
    clock.advance(20)
    await settle()
    assert queue.due_at("vm-1") == deadline  # not now + 20: the deadline comes first
    clock.advance(5)
    await settle()
    assert len(recorder.calls) == 3


async def test_an_unexpected_error_is_retried_with_back_off_not_lost(
    clock: ManualClock, queue: WorkQueue[str], recorder: Recorder
) -> None:
    calls = 0

    def answer() -> datetime | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("bug")
        return None

    recorder.answer["vm-1"] = answer
    queue.add("vm-1")
    await settle()
    assert queue.due_at("vm-1") == clock.now() + timedelta(seconds=1)
    clock.advance(1)
    await settle()
    assert calls == 2


async def test_a_flood_of_new_keys_does_not_starve_a_key_that_was_due_first(
    clock: ManualClock, queue: WorkQueue[str]
) -> None:
    rec = Recorder(clock)
    queue.add("close-vm-7")
    for n in range(1000):
        queue.add(f"new-{n}")
    task = asyncio.create_task(queue.run(rec, workers=2))
    await settle(rounds=20)
    task.cancel()
    assert rec.order()[0] == "close-vm-7"
    # the flood itself runs first in, first out
    assert rec.order()[1:6] == [f"new-{n}" for n in range(5)]


async def test_a_hot_key_re_added_while_running_cannot_starve_the_others(
    clock: ManualClock, queue: WorkQueue[str], recorder: Recorder
) -> None:
    # vm-hot asks to run again at once every time; the others still get their turn.
    recorder.answer["vm-hot"] = clock.now
    queue.add("vm-hot")
    for n in range(10):
        queue.add(f"vm-{n}")
    await settle(rounds=200)
    others = [k for k in recorder.order() if k != "vm-hot"]
    assert sorted(others) == sorted(f"vm-{n}" for n in range(10))


async def test_a_discarded_key_does_not_run(
    clock: ManualClock, queue: WorkQueue[str], recorder: Recorder
) -> None:
    queue.add_after("vm-1", 5)
    queue.discard("vm-1")
    clock.advance(10)
    await settle()
    assert recorder.order() == []
