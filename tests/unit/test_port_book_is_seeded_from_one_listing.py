"""The PortBook is seeded once, for every VM at once, from one load of the persisted claims
shared by all first callers; a failed load seeds nothing and is retried by the next caller;
the book forgets everything once nobody uses it (a peer operator may change statuses)."""

import asyncio
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import pytest

from azure_jit_operator.domain.grants import Claim, RequestRef
from azure_jit_operator.reconcile.port_book import NotSeededError, PortBook

VM = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-01"
OTHER_VM = VM.replace("vm-01", "vm-02")
EXPIRES = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
ALICE = RequestRef("team-web", "alice", "uid-a")
BOB = RequestRef("team-web", "bob", "uid-b")
ALICE_22 = Claim(ALICE, 22, "198.51.100.7/32", EXPIRES)
ALICE_3389 = Claim(ALICE, 3389, "198.51.100.7/32", EXPIRES)
DEADLINE = 5.0


class Listing:
    """A load the test releases (or fails) by hand, counting how often it was called."""

    def __init__(self, snapshot: Mapping[str, Iterable[Claim]]) -> None:
        self.snapshot = snapshot
        self.calls = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.failure: Exception | None = None

    async def __call__(self) -> Mapping[str, Iterable[Claim]]:
        self.calls += 1
        self.started.set()
        await self.release.wait()
        if self.failure is not None:
            raise self.failure
        return self.snapshot


async def started(listing: Listing) -> None:
    async with asyncio.timeout(DEADLINE):
        await listing.started.wait()


async def test_concurrent_first_callers_share_one_load_that_seeds_every_vm() -> None:
    book = PortBook()
    listing = Listing({VM.upper(): [ALICE_22, ALICE_3389]})
    with book.in_use():
        callers = [asyncio.create_task(book.seed(listing)) for _ in range(10)]
        await started(listing)
        assert not book.seeded
        listing.release.set()
        async with asyncio.timeout(DEADLINE):
            await asyncio.gather(*callers)
        assert listing.calls == 1
        assert book.seeded
        assert book.claims(VM) == [ALICE_22, ALICE_3389]
        assert book.holds(VM.lower(), ALICE)
        # A VM the listing did not name is known to hold nothing, without loading again.
        assert book.claims(OTHER_VM) == []
        await book.seed(listing)
        assert listing.calls == 1


async def test_a_failed_load_seeds_nothing_and_the_next_caller_loads_again() -> None:
    book = PortBook()
    listing = Listing({VM: [ALICE_22]})
    listing.failure = ConnectionError("apiserver unreachable")
    with book.in_use():
        callers = [asyncio.create_task(book.seed(listing)) for _ in range(3)]
        await started(listing)
        listing.release.set()
        async with asyncio.timeout(DEADLINE):
            outcomes = await asyncio.gather(*callers, return_exceptions=True)
        assert all(isinstance(o, ConnectionError) for o in outcomes), outcomes
        assert not book.seeded
        with pytest.raises(NotSeededError):
            book.claims(VM)

        listing.failure = None
        async with asyncio.timeout(DEADLINE):
            await book.seed(listing)
        assert listing.calls == 2
        assert book.claims(VM) == [ALICE_22]


async def test_a_caller_that_stops_waiting_leaves_the_load_to_the_others() -> None:
    book = PortBook()
    listing = Listing({VM: [ALICE_22]})
    with book.in_use():
        first = asyncio.create_task(book.seed(listing))
        second = asyncio.create_task(book.seed(listing))
        await started(listing)
        first.cancel()  # e.g. its daemon is stopped
        listing.release.set()
        async with asyncio.timeout(DEADLINE):
            await second
        assert first.cancelled()
        assert listing.calls == 1
        assert book.claims(VM) == [ALICE_22]


async def test_the_book_is_never_read_or_changed_before_it_is_seeded() -> None:
    book = PortBook()
    with book.in_use():
        for touch in (
            lambda: book.claims(VM),
            lambda: book.holds(VM, ALICE),
            lambda: book.initiating(VM),
            lambda: book.put(VM, BOB, []),
            lambda: book.drop(VM, ALICE),
        ):
            with pytest.raises(NotSeededError):
                touch()


async def test_the_book_forgets_when_its_last_user_leaves_and_loads_afresh() -> None:
    book = PortBook()
    listing = Listing({VM: [ALICE_22]})
    listing.release.set()
    with book.in_use():
        with book.in_use():
            await book.seed(listing)
            book.put(VM, BOB, [Claim(BOB, 22, "198.51.100.7/32", EXPIRES)])
        # One user is still here: the book keeps what it knows.
        assert book.seeded
        assert {c.request for c in book.claims(VM)} == {ALICE, BOB}
    assert not book.seeded

    # Meanwhile (a peer operator active) Alice's request ended and Bob's never opened.
    listing.snapshot = {OTHER_VM: [Claim(BOB, 22, "203.0.113.9/32", EXPIRES)]}
    with book.in_use():
        await book.seed(listing)
        assert listing.calls == 2
        assert book.claims(VM) == []
        assert book.claims(OTHER_VM) == [Claim(BOB, 22, "203.0.113.9/32", EXPIRES)]


async def test_a_load_still_running_when_the_last_user_leaves_is_abandoned() -> None:
    book = PortBook()
    listing = Listing({VM: [ALICE_22]})
    with book.in_use():
        waiting = asyncio.create_task(book.seed(listing))
        await started(listing)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    listing.release.set()
    with book.in_use():
        async with asyncio.timeout(DEADLINE):
            await book.seed(listing)
        assert listing.calls == 2
        assert book.claims(VM) == [ALICE_22]
