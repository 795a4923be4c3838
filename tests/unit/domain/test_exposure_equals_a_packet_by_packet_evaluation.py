"""The interval evaluation of exposure equals a brute-force one that decides every packet of a
small universe alone: a few /28 networks inside and outside the VNet, the load balancer's
address and two service tags as sources, ports 20-25, TCP and UDP, random rules on zero to
two NSGs. Same admitted sources, same first-matching rule at each level, same scope.

The brute force restates the documented semantics packet by packet (domain.exposure):
uncertain matches (source-port limits, tags as destinations, an unknown VNet space) match
when the rule allows and not when it denies; a tag is an atom no address belongs to, in play
when some allow rule that could match names it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from azure_jit_operator.domain.exposure import Admission, PortExposure, Scope, port_exposure
from azure_jit_operator.domain.nsg import SecurityRuleView
from tests.unit.domain.nsg_builders import GUID, NIC_NSG, SUBNET_NSG, network, rule

VM_IP = "10.10.0.4"
VNET = ("10.10.0.0/27",)
LB = "168.63.129.16"
NETWORKS = ("10.10.0.0/28", "10.10.0.16/28", "198.51.100.0/28", "203.0.113.0/28")
TAGS = ("Storage", "Sql")
ADDRESSES = (
    *(int(a) for n in NETWORKS for a in ipaddress.IPv4Network(n)),
    int(ipaddress.IPv4Address(LB)),
)
PORTS = range(20, 26)
DEFAULTS = (
    ("AllowVnetInBound", 65000, "VirtualNetwork", "VirtualNetwork", "Allow"),
    ("AllowAzureLoadBalancerInBound", 65001, "AzureLoadBalancer", "*", "Allow"),
    ("DenyAllInBound", 65500, "*", "*", "Deny"),
)

SOURCE_TERMS = (
    "*",
    "Internet",
    "VirtualNetwork",
    "AzureLoadBalancer",
    "internet",
    *TAGS,
    "storage",
    *NETWORKS,
    "10.10.0.0/27",
    "198.51.100.0/27",
    "198.51.100.8/29",
    "203.0.113.5",
    "10.10.0.7/32",
    "168.63.129.16",
    "0.0.0.0/0",
    "2001:db8::/32",
)
DESTINATION_TERMS = (
    "*",
    VM_IP,
    "10.10.0.0/28",
    "10.10.0.16/28",
    "VirtualNetwork",
    "Internet",
    "Storage",
)
PORT_TERMS = ("*", "22", "20-23", "24-25", "80", "21")
PROTOCOLS = ("*", "Tcp", "Udp", "Icmp", "TCP")


# --------------------------------------------------------------------------- brute force

Source = int | str  # an address, or a tag atom (lower case)


@cache
def bounds(text: str) -> tuple[int, int] | None:
    """First and last address of an IPv4 network; None for IPv6."""
    network = ipaddress.ip_network(text, strict=False)
    if network.version != 4:
        return None
    return int(network.network_address), int(network.broadcast_address)


def in_network(address: int, text: str) -> bool:
    found = bounds(text)
    return found is not None and found[0] <= address <= found[1]


@cache
def is_tag(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return text != "*"
    return False


@dataclass(frozen=True)
class Packet:
    source: Source
    wire: str  # "TCP" | "UDP"
    port: int


def tri_destination(term: str, vnet: tuple[str, ...]) -> bool | None:
    """Does the destination term contain the VM's address? None: cannot be known."""
    vm = int(ipaddress.IPv4Address(VM_IP))
    lowered = term.lower()
    if lowered == "*":
        return True
    if lowered in ("virtualnetwork", "internet"):
        if not vnet:
            return None
        inside = any(in_network(vm, v) for v in vnet)
        return inside if lowered == "virtualnetwork" else not inside
    if lowered == "azureloadbalancer":
        return VM_IP == LB
    if is_tag(term):
        return None
    return in_network(vm, term)


def tri_source(term: str, source: Source, vnet: tuple[str, ...]) -> bool | None:  # noqa: PLR0911
    lowered = term.lower()
    if lowered == "*":
        return True
    if isinstance(source, str):  # an atom
        if lowered == "internet":
            return True
        return (
            lowered == source
            if is_tag(term) and lowered not in ("virtualnetwork", "azureloadbalancer")
            else False
        )
    if lowered == "internet":
        if not vnet:
            return None
        return not any(in_network(source, v) for v in vnet)
    if lowered == "virtualnetwork":
        if not vnet:
            return None
        return any(in_network(source, v) for v in vnet)
    if lowered == "azureloadbalancer":
        return source == int(ipaddress.IPv4Address(LB))
    if is_tag(term):
        return False
    return in_network(source, term)


def matches(rule_: SecurityRuleView, packet: Packet, vnet: tuple[str, ...]) -> bool:
    """First-match test of one rule against one packet, uncertain parts fail-safe."""
    if rule_.direction.lower() != "inbound" or rule_.is_jit_allow:
        return False
    allow = rule_.access.lower() == "allow"

    def decide(value: bool | None) -> bool:
        return allow if value is None else value

    protocol = rule_.protocol.lower()
    if protocol not in ("*", packet.wire.lower()):
        return False
    if not any(
        p == "*" or int(p.partition("-")[0]) <= packet.port <= int(p.partition("-")[2] or p)
        for p in rule_.destination_ports
    ):
        return False
    if not decide(
        True
        if any(tri_destination(d, vnet) for d in rule_.destinations)
        else (None if any(tri_destination(d, vnet) is None for d in rule_.destinations) else False)
    ):
        return False
    if "*" not in rule_.source_ports and not allow:
        return False  # a deny for some source ports lets the others through
    values = [tri_source(s, packet.source, vnet) for s in rule_.sources]
    return decide(True if any(values) else (None if None in values else False))


def defaults(nsg_id: str) -> list[SecurityRuleView]:
    return [
        rule(
            nsg_id, name, priority, access=access, sources=(src,), destinations=(dst,), ports=("*",)
        )
        for name, priority, src, dst, access in DEFAULTS
    ]


def brute_level(
    rules_: list[SecurityRuleView], nsg_id: str, packet: Packet, vnet: tuple[str, ...]
) -> tuple[str, str] | None:
    """The allow rule admitting ``packet`` at this NSG, or None when it is denied."""
    for candidate in sorted(rules_, key=lambda r: (r.priority, r.name.lower())) + defaults(nsg_id):
        if matches(candidate, packet, vnet):
            return (nsg_id, candidate.name) if candidate.access.lower() == "allow" else None
    raise AssertionError("DenyAllInBound matches everything")


def atoms_in_play(
    levels: dict[str, list[SecurityRuleView]], wire: str, port: int, vnet: tuple[str, ...]
) -> set[str]:
    found: set[str] = set()
    for rules_ in levels.values():
        for r in rules_:
            if r.access.lower() != "allow":
                continue
            probe = Packet(source=-1, wire=wire, port=port)  # sources aside: does it apply?
            if not matches(with_any_source(r), probe, vnet):
                continue
            found |= {s.lower() for s in r.sources if is_tag(s)} - {
                "internet",
                "virtualnetwork",
                "azureloadbalancer",
            }
    return found


def with_any_source(r: SecurityRuleView) -> SecurityRuleView:
    """``r`` with source ``*``: matches a packet exactly when everything but the source does."""
    return rule(
        r.nsg_id,
        r.name,
        r.priority,
        access=r.access,
        sources=("*",),
        destinations=r.destinations,
        ports=r.destination_ports,
        protocol=r.protocol,
        source_ports=r.source_ports,
        direction=r.direction,
    )


def scope_of(source: Source, vnet: tuple[str, ...]) -> Scope:
    if isinstance(source, str):
        return Scope.SERVICE_TAG
    if source == int(ipaddress.IPv4Address(LB)):
        return Scope.AZURE_LOAD_BALANCER
    if vnet and any(in_network(source, v) for v in vnet):
        return Scope.VIRTUAL_NETWORK
    return Scope.INTERNET


# --------------------------------------------------------------------------- comparison


def holds(admission: Admission, source: Source) -> bool:
    if isinstance(source, str):
        return admission.scope is Scope.SERVICE_TAG and source in {
            s.lower() for s in admission.sources
        }
    return admission.scope is not Scope.SERVICE_TAG and any(
        in_network(source, cidr) for cidr in admission.sources
    )


def ref(r: object) -> tuple[str, str] | None:
    return None if r is None else (r.nsg_id, r.name)  # type: ignore[attr-defined]


def interval_answer(
    exposure: PortExposure, source: Source, wire: str
) -> tuple[Scope, tuple[str, str] | None, tuple[str, str] | None] | None:
    found = [a for a in exposure.admissions if wire in a.protocols and holds(a, source)]
    assert len(found) <= 1, f"{source!r} in several admissions: {found}"
    if not found:
        return None
    return (found[0].scope, ref(found[0].subnet_rule), ref(found[0].nic_rule))


# --------------------------------------------------------------------------- strategies


@st.composite
def rule_sets(draw: st.DrawFn, nsg_id: str) -> list[SecurityRuleView]:
    count = draw(st.integers(0, 6))
    priorities = draw(st.lists(st.integers(100, 4096), min_size=count, max_size=count, unique=True))
    out = []
    for index, priority in enumerate(priorities):
        access = draw(st.sampled_from(("Allow", "Deny")))
        kind = draw(st.sampled_from(("customer", "customer", "customer", "jit")))
        if kind == "jit":
            sep = "-" if access == "Allow" else "_"
            name = f"MicrosoftDefenderForCloud-JITRule{sep}{index}{sep}{GUID}"
        else:
            name = f"rule-{index}"
        out.append(
            rule(
                nsg_id,
                name,
                priority,
                access=access,
                sources=tuple(
                    draw(st.lists(st.sampled_from(SOURCE_TERMS), min_size=1, max_size=2))
                ),
                destinations=tuple(
                    draw(st.lists(st.sampled_from(DESTINATION_TERMS), min_size=1, max_size=2))
                ),
                ports=tuple(draw(st.lists(st.sampled_from(PORT_TERMS), min_size=1, max_size=2))),
                protocol=draw(st.sampled_from(PROTOCOLS)),
                source_ports=draw(st.sampled_from((("*",), ("*",), ("1024-65535",)))),
                direction=draw(st.sampled_from(("Inbound", "Inbound", "Inbound", "Outbound"))),
            )
        )
    return out


@settings(max_examples=250, deadline=None)
@given(
    subnet=st.one_of(st.none(), rule_sets(SUBNET_NSG)),
    nic=st.one_of(st.none(), rule_sets(NIC_NSG)),
    vnet=st.sampled_from((VNET, VNET, ())),
    port=st.sampled_from(PORTS),
    protocol=st.sampled_from(("TCP", "UDP", "*")),
)
def test_interval_evaluation_equals_packet_by_packet(
    subnet: list[SecurityRuleView] | None,
    nic: list[SecurityRuleView] | None,
    vnet: tuple[str, ...],
    port: int,
    protocol: str,
) -> None:
    levels = {k: v for k, v in ((SUBNET_NSG, subnet), (NIC_NSG, nic)) if v is not None}
    net = network(
        subnet_nsg=SUBNET_NSG if subnet is not None else None,
        nic_nsg=NIC_NSG if nic is not None else None,
        ip=VM_IP,
        vnet=vnet,
    )
    exposure = port_exposure(net, levels, port=port, protocol=protocol)
    for wire in ("TCP", "UDP") if protocol == "*" else (protocol,):
        sources: list[Source] = [*ADDRESSES, *sorted(atoms_in_play(levels, wire, port, vnet))]
        for source in sources:
            packet = Packet(source=source, wire=wire, port=port)
            decisions: list[tuple[str, tuple[str, str] | None]] = []
            for nsg_id, rules_ in ((SUBNET_NSG, subnet), (NIC_NSG, nic)):
                if rules_ is None:
                    decisions.append(("absent", None))
                else:
                    decided = brute_level(rules_, nsg_id, packet, vnet)
                    decisions.append(("allow" if decided else "deny", decided))
            if any(kind == "deny" for kind, _ in decisions):
                expected = None
            else:
                scope = scope_of(source, vnet)
                expected = (scope, decisions[0][1], decisions[1][1])
            assert interval_answer(exposure, source, wire) == expected, (source, wire)
    for admission in exposure.admissions:
        assert admission.vnet_space_known == bool(vnet)
