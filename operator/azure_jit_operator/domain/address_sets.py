"""Sets of traffic sources for the exposure evaluation: IPv4 intervals plus opaque tags.

A source is either an IPv4 address or a service tag whose addresses cannot be known offline
(``Storage``, ``AzureCloud.westeurope``, ...). Addresses are kept as sorted, disjoint,
half-open integer intervals, so a rule's prefixes, the VNet space or ``0.0.0.0/0`` cost a
handful of intervals rather than one entry per address; each unknown tag is one *atom*, a
member of no address range, so a set operation can neither confuse it with addresses nor
let a deny of addresses remove it (see :mod:`.exposure`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IPV4_SIZE = 1 << 32

Interval = tuple[int, int]  # [low, high): half-open, low < high


def _normalise(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    merged: list[Interval] = []
    for low, high in sorted(i for i in intervals if i[0] < i[1]):
        if merged and low <= merged[-1][1]:
            if high > merged[-1][1]:
                merged[-1] = (merged[-1][0], high)
        else:
            merged.append((low, high))
    return tuple(merged)


@dataclass(frozen=True, slots=True)
class SourceSet:
    """Addresses (normalised intervals) and tag atoms (lower-cased tag names)."""

    intervals: tuple[Interval, ...] = ()
    atoms: frozenset[str] = frozenset()

    @classmethod
    def of(cls, intervals: Iterable[Interval] = (), atoms: Iterable[str] = ()) -> SourceSet:
        return cls(_normalise(intervals), frozenset(atoms))

    @classmethod
    def network(cls, network: ipaddress.IPv4Network) -> SourceSet:
        low = int(network.network_address)
        return cls(((low, low + network.num_addresses),))

    @classmethod
    def all_addresses(cls) -> SourceSet:
        return cls(((0, IPV4_SIZE),))

    def __bool__(self) -> bool:
        return bool(self.intervals or self.atoms)

    def __or__(self, other: SourceSet) -> SourceSet:
        return SourceSet(_normalise(self.intervals + other.intervals), self.atoms | other.atoms)

    def __and__(self, other: SourceSet) -> SourceSet:
        out: list[Interval] = []
        mine, theirs = self.intervals, other.intervals
        i = j = 0
        # Both lists are sorted and disjoint: one linear sweep.
        while i < len(mine) and j < len(theirs):
            low = max(mine[i][0], theirs[j][0])
            high = min(mine[i][1], theirs[j][1])
            if low < high:
                out.append((low, high))
            if mine[i][1] < theirs[j][1]:
                i += 1
            else:
                j += 1
        return SourceSet(tuple(out), self.atoms & other.atoms)

    def __sub__(self, other: SourceSet) -> SourceSet:
        out: list[Interval] = []
        theirs = other.intervals
        j = 0
        for low, high in self.intervals:
            while j < len(theirs) and theirs[j][1] <= low:
                j += 1
            k = j
            cursor = low
            while k < len(theirs) and theirs[k][0] < high:
                if theirs[k][0] > cursor:
                    out.append((cursor, theirs[k][0]))
                cursor = max(cursor, theirs[k][1])
                k += 1
            if cursor < high:
                out.append((cursor, high))
        return SourceSet(tuple(out), self.atoms - other.atoms)

    def addresses(self) -> SourceSet:
        """Only the addresses (no atoms)."""
        return SourceSet(self.intervals)

    def contains_address(self, address: int) -> bool:
        return any(low <= address < high for low, high in self.intervals)

    def cidrs(self) -> tuple[str, ...]:
        """The addresses as the fewest CIDR blocks, in address order (``10.0.0.0/24``)."""
        blocks: list[str] = []
        for low, high in self.intervals:
            first = ipaddress.IPv4Address(low)
            last = ipaddress.IPv4Address(high - 1)
            blocks.extend(str(n) for n in ipaddress.summarize_address_range(first, last))
        return tuple(blocks)
