"""The interval sets under the exposure evaluation (domain.address_sets) behave as Python
sets of the addresses and tags they hold, and print as the fewest CIDR blocks."""

from __future__ import annotations

import ipaddress
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from azure_jit_operator.domain.address_sets import IPV4_SIZE, SourceSet

BASE = int(ipaddress.IPv4Address("198.51.100.0"))
interval = st.tuples(st.integers(0, 64), st.integers(0, 64)).map(
    lambda t: (BASE + min(t), BASE + max(t))
)
source_sets = st.builds(
    SourceSet.of,
    st.lists(interval, max_size=5),
    st.frozensets(st.sampled_from(("storage", "sql", "azurecloud")), max_size=2),
)


def members(found: SourceSet) -> set[int | str]:
    return {a for low, high in found.intervals for a in range(low, high)} | set(found.atoms)


@given(source_sets, source_sets)
def test_union_intersection_and_difference_are_those_of_sets(a: SourceSet, b: SourceSet) -> None:
    assert members(a | b) == members(a) | members(b)
    assert members(a & b) == members(a) & members(b)
    assert members(a - b) == members(a) - members(b)
    for result in (a | b, a & b, a - b):
        lows = [low for low, _ in result.intervals]
        assert lows == sorted(lows)
        assert all(low < high for low, high in result.intervals)
        assert all(x[1] < y[0] for x, y in pairwise(result.intervals))  # merged


@given(source_sets)
def test_cidrs_cover_exactly_the_addresses_with_the_fewest_blocks(a: SourceSet) -> None:
    blocks = [ipaddress.IPv4Network(c) for c in a.cidrs()]
    assert {int(x) for b in blocks for x in b} == members(a.addresses())
    assert blocks == list(ipaddress.collapse_addresses(blocks))


def test_all_addresses_is_zero_slash_zero() -> None:
    assert SourceSet.all_addresses().cidrs() == ("0.0.0.0/0",)
    assert SourceSet.all_addresses().intervals == ((0, IPV4_SIZE),)
    assert not SourceSet()
