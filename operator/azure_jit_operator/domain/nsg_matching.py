"""How one NSG rule matches a class of packets, for the exposure evaluation (:mod:`.exposure`).

A packet class is (protocol on the wire, destination port, the VM's private address); a
rule *applies* when its direction, access, protocol, destination and destination ports
match it, and then matches the sources :func:`rule_sources` gives. Where the truth cannot be
known offline (a tag as destination, a garbled port or protocol, source-port limits, an
unknown VNet space) the answer is read in the fail-safe direction: an allow matches, a deny
does not, so the evaluation can only report more exposure than the truth, never less.
Also here: Azure's default inbound rules, which the operator does not read from the NSG.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from enum import Enum
from functools import lru_cache

from .address_sets import SourceSet
from .nsg import SecurityRuleView

AZURE_LOAD_BALANCER_ADDRESS = "168.63.129.16"
LOAD_BALANCER = SourceSet.network(ipaddress.IPv4Network(AZURE_LOAD_BALANCER_ADDRESS))

# Azure's spellings of the tags with a known meaning, old (classic) names included.
INTERNET_TAG = frozenset({"internet"})
VIRTUAL_NETWORK_TAG = frozenset({"virtualnetwork", "virtual_network"})
LOAD_BALANCER_TAG = frozenset({"azureloadbalancer", "azure_loadbalancer"})
_ANY = "*"

# What a port's protocol means on the wire: only TCP and UDP carry ports.
_WIRE = {"tcp": ("TCP",), "udp": ("UDP",), "*": ("TCP", "UDP")}
_OTHER_PROTOCOLS = frozenset({"icmp", "esp", "ah", "tcp", "udp"})

DEFAULT_INBOUND_RULES: tuple[tuple[str, int, str, str, str], ...] = (
    # name, priority, source, destination, access (protocol and ports "*")
    ("AllowVnetInBound", 65000, "VirtualNetwork", "VirtualNetwork", "Allow"),
    ("AllowAzureLoadBalancerInBound", 65001, "AzureLoadBalancer", "*", "Allow"),
    ("DenyAllInBound", 65500, "*", "*", "Deny"),
)


class Match(Enum):
    NO = 0
    YES = 1
    MAYBE = 2  # the truth cannot be known offline: allows match, denies do not


def wire_protocols(protocol: str) -> tuple[str, ...]:
    """The protocols a JIT port rule's ``protocol`` (``TCP``/``UDP``/``*``) admits."""
    try:
        return _WIRE[protocol.lower()]
    except KeyError:
        raise ValueError(f"protocol {protocol!r}: use TCP, UDP or *") from None


@lru_cache(maxsize=8192)
def parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def vnet_space(prefixes: Iterable[str]) -> SourceSet | None:
    """The VNet address space as a set; None when unknown (no IPv4 prefix could be read)."""
    space = SourceSet()
    for text in prefixes:
        network = parse_network(text)
        if isinstance(network, ipaddress.IPv4Network):
            space = space | SourceSet.network(network)
    return space if space else None


@lru_cache(maxsize=1024)
def address_int(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def is_ipv4_address(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def is_tag(text: str) -> bool:
    return text != _ANY and parse_network(text) is None


def port_match(ranges: Sequence[str], port: int) -> Match:
    found = Match.NO
    for raw in ranges:
        text = raw.strip()
        if text == _ANY:
            return Match.YES
        low, _, high = text.partition("-")
        if low.isdigit() and (not high or high.isdigit()):
            if int(low) <= port <= int(high or low):
                return Match.YES
        else:
            found = Match.MAYBE
    return found


def protocol_match(rule_protocol: str, wire: str) -> Match:
    value = rule_protocol.strip().lower()
    if value == _ANY or value == wire.lower():
        return Match.YES
    return Match.NO if value in _OTHER_PROTOCOLS else Match.MAYBE


def destination_match(
    destinations: Sequence[str], private_ip: str, vnet: SourceSet | None
) -> Match:
    address = address_int(private_ip)
    found = Match.NO
    for text in destinations:
        lowered = text.strip().lower()
        if lowered == _ANY:
            return Match.YES
        network = parse_network(text)
        if network is not None:
            if network.version == 4 and (
                int(network.network_address) <= address <= int(network.broadcast_address)
            ):
                return Match.YES
            continue
        if lowered in VIRTUAL_NETWORK_TAG or lowered in INTERNET_TAG:
            if vnet is None:
                found = Match.MAYBE
                continue
            inside = vnet.contains_address(address)
            if inside == (lowered in VIRTUAL_NETWORK_TAG):
                return Match.YES
            continue
        if lowered in LOAD_BALANCER_TAG:
            if LOAD_BALANCER.contains_address(address):
                return Match.YES
            continue
        found = Match.MAYBE  # another tag: it might contain the VM's address
    return found


def all_source_ports(source_ports: Sequence[str]) -> bool:
    return not source_ports or any(p.strip() == _ANY for p in source_ports)


def applies(
    rule: SecurityRuleView, *, wire: str, port: int, private_ip: str, vnet: SourceSet | None
) -> bool:
    """Whether ``rule`` takes part at all for this packet class (direction, access,
    protocol, destination, ports), with uncertain parts read in the fail-safe direction."""
    if rule.direction.strip().lower() != "inbound" or rule.is_jit_allow:
        return False
    access = rule.access.strip().lower()
    if access not in ("allow", "deny"):
        return False
    allow = access == "allow"
    for match in (
        protocol_match(rule.protocol, wire),
        port_match(rule.destination_ports, port),
        destination_match(rule.destinations, private_ip, vnet),
    ):
        if match is Match.NO or (match is Match.MAYBE and not allow):
            return False
    # A deny limited to some source ports lets the other source ports through.
    return allow or all_source_ports(rule.source_ports)


def rule_sources(
    rule: SecurityRuleView, vnet: SourceSet | None, atoms: frozenset[str]
) -> SourceSet:
    """The sources ``rule`` matches (fail-safe where the truth is unknown)."""
    allow = rule.access.strip().lower() == "allow"
    matched = SourceSet()
    everything = SourceSet.all_addresses()
    for text in rule.sources:
        lowered = text.strip().lower()
        if lowered == _ANY:
            matched = matched | SourceSet.of(everything.intervals, atoms)
        elif lowered in INTERNET_TAG:
            if vnet is not None:
                matched = matched | SourceSet.of((everything - vnet).intervals, atoms)
            else:
                matched = matched | SourceSet.of(everything.intervals if allow else (), atoms)
        elif lowered in VIRTUAL_NETWORK_TAG:
            if vnet is not None:
                matched = matched | vnet
            elif allow:
                matched = matched | everything
        elif lowered in LOAD_BALANCER_TAG:
            matched = matched | LOAD_BALANCER
        else:
            network = parse_network(text)
            if isinstance(network, ipaddress.IPv4Network):
                matched = matched | SourceSet.network(network)
            elif network is None:
                matched = matched | SourceSet.of(atoms=(lowered,))
            # IPv6: nothing (JIT is IPv4 only).
    return matched


def default_rules(nsg_id: str) -> tuple[SecurityRuleView, ...]:
    """Azure's default inbound rules of an NSG, as rule views."""
    return tuple(
        SecurityRuleView(
            nsg_id=nsg_id,
            name=name,
            access=access,
            direction="Inbound",
            sources=(source,),
            destinations=(destination,),
            destination_ports=("*",),
            priority=priority,
            protocol="*",
        )
        for name, priority, source, destination, access in DEFAULT_INBOUND_RULES
    )
