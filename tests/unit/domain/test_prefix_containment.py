import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from azure_jit_operator.domain.prefixes import PrefixError, contained_in_any, parse_prefix

ipv4_networks = st.builds(
    lambda addr, length: ipaddress.ip_network(
        f"{ipaddress.IPv4Address(addr)}/{length}", strict=False
    ),
    st.integers(min_value=0, max_value=2**32 - 1),
    st.integers(min_value=0, max_value=32),
)


@given(ipv4_networks, st.integers(min_value=0, max_value=32))
def test_every_subnet_lies_inside_its_supernet(network: ipaddress.IPv4Network, extra: int) -> None:
    new_length = min(32, network.prefixlen + extra)
    subnet = next(network.subnets(new_prefix=new_length))
    assert parse_prefix(str(network)).contains(parse_prefix(str(subnet)))


@given(ipv4_networks)
def test_a_supernet_never_lies_inside_a_strictly_smaller_prefix(
    network: ipaddress.IPv4Network,
) -> None:
    if network.prefixlen == 0:
        return
    assert not parse_prefix(str(network)).contains(parse_prefix(str(network.supernet())))


@given(ipv4_networks)
def test_any_contains_everything_but_nothing_specific_contains_any(
    network: ipaddress.IPv4Network,
) -> None:
    assert parse_prefix("*").contains(parse_prefix(str(network)))
    assert not parse_prefix(str(network)).contains(parse_prefix("*"))


def test_a_single_address_is_a_host_prefix() -> None:
    assert parse_prefix("198.51.100.0/24").contains(parse_prefix("198.51.100.7"))
    assert parse_prefix("198.51.100.7").contains(parse_prefix("198.51.100.7/32"))
    assert not parse_prefix("198.51.100.7").contains(parse_prefix("198.51.100.0/31"))


def test_ipv6_and_ipv4_never_contain_each_other() -> None:
    assert not parse_prefix("::/0").contains(parse_prefix("198.51.100.7"))
    assert not parse_prefix("0.0.0.0/0").contains(parse_prefix("2001:db8::1"))


def test_containment_in_any_of_several() -> None:
    allowed = (parse_prefix("198.51.100.0/24"), parse_prefix("203.0.113.0/24"))
    assert contained_in_any(parse_prefix("203.0.113.9"), allowed)
    assert not contained_in_any(parse_prefix("192.0.2.1"), allowed)


@pytest.mark.parametrize(
    "text",
    ["", "any", "198.51.100.7/24", "300.1.1.1", "10.0.0.0/33", "Internet", "10.0.0.*"],
    ids=lambda t: f"{t!r} is not a prefix",
)
def test_bad_prefixes_are_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(PrefixError, match=r"use '\*', an IP address"):
        parse_prefix(text)


@given(ipv4_networks)
def test_each_ipv4_network_has_one_spelling_however_it_is_written(
    network: ipaddress.IPv4Network,
) -> None:
    spellings = {str(network), f"::ffff:{network.network_address}/{network.prefixlen + 96}"}
    if network.prefixlen == 32:
        spellings.add(str(network.network_address))
    assert {parse_prefix(s).text for s in spellings} == {str(network)}


def test_ipv6_prefixes_keep_their_compressed_spelling() -> None:
    assert parse_prefix("2001:0db8:0000::/32").text == "2001:db8::/32"
    assert parse_prefix("*").text == "*"
