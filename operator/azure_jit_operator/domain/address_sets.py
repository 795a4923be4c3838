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
from bisect import bisect_right
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
        small, large = sorted((self.intervals, other.intervals), key=len)
        out: list[Interval] = []
        # A rule's few prefixes against a level's many fragments: bisect, do not sweep.
        for low, high in small:
            k = max(bisect_right(large, (low, IPV4_SIZE + 1)) - 1, 0)
            while k < len(large) and large[k][0] < high:
                cut_low, cut_high = max(low, large[k][0]), min(high, large[k][1])
                if cut_low < cut_high:
                    out.append((cut_low, cut_high))
                k += 1
        return SourceSet(tuple(out), self.atoms & other.atoms)

    def __sub__(self, other: SourceSet) -> SourceSet:
        kept = list(self.intervals)
        for low, high in other.intervals:
            first = max(bisect_right(kept, (low, IPV4_SIZE + 1)) - 1, 0)
            last = first
            pieces: list[Interval] = []
            while last < len(kept) and kept[last][0] < high:
                k_low, k_high = kept[last]
                if k_high <= low:
                    pieces.append((k_low, k_high))
                else:
                    if k_low < low:
                        pieces.append((k_low, low))
                    if high < k_high:
                        pieces.append((high, k_high))
                last += 1
            kept[first:last] = pieces
        return SourceSet(tuple(kept), self.atoms - other.atoms)

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
