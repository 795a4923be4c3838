"""The emulator's own reading of JIT source prefixes (not the operator's code): IPv4 only,
``*`` for any source, a single address as a /32, host bits refused, IPv6 refused as JIT
refuses it (E14)."""

from __future__ import annotations

import ipaddress

import pytest

from azure_arm_emulator.jit_prefixes import SourcePrefixError, parse_source, within


@pytest.mark.parametrize(
    ("text", "network"),
    [
        pytest.param("*", None, id="any source"),
        pytest.param("198.51.100.7", ipaddress.IPv4Network("198.51.100.7/32"), id="an address"),
        pytest.param("198.51.100.0/24", ipaddress.IPv4Network("198.51.100.0/24"), id="a block"),
    ],
)
def test_accepted_sources(text: str, network: ipaddress.IPv4Network | None) -> None:
    assert parse_source(text) == network


@pytest.mark.parametrize(
    ("text", "ipv6"),
    [
        pytest.param("198.51.100.1/24", False, id="host bits set"),
        pytest.param("Internet", False, id="a service tag"),
        pytest.param("2001:db8::1", True, id="an IPv6 address"),
        pytest.param("::ffff:198.51.100.7", True, id="an IPv4-mapped IPv6 address is IPv6 too"),
    ],
)
def test_refused_sources(text: str, ipv6: bool) -> None:
    with pytest.raises(SourcePrefixError) as caught:
        parse_source(text)

    assert caught.value.ipv6 is ipv6
    if ipv6:
        assert "IPv6 format, which is unsupported by Just-In-Time Network Access" in str(
            caught.value
        )


@pytest.mark.parametrize(
    ("source", "allowed", "inside"),
    [
        pytest.param("198.51.100.7", ["198.51.100.0/24"], True, id="an address in the block"),
        pytest.param("198.51.100.0/28", ["198.51.100.0/24"], True, id="a narrower block"),
        pytest.param("198.51.0.0/16", ["198.51.100.0/24"], False, id="a wider block"),
        pytest.param("192.0.2.1", ["198.51.100.0/24", "*"], True, id="any source allowed"),
        pytest.param("*", ["198.51.100.0/24"], False, id="any source, not allowed"),
    ],
)
def test_a_source_lies_within_the_allowed_prefixes(
    source: str, allowed: list[str], inside: bool
) -> None:
    assert within(source, allowed) is inside
