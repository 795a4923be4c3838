"""The emulated data plane: can traffic from a source reach a VM's port, and through which rules.

Azure's inbound evaluation ("How network security groups filter network traffic"), packet by
packet: for each private address of the VM, the subnet's NSG decides first, then the NIC's;
a level without an NSG lets everything through. Each NSG processes its inbound rules by
priority, lowest first, then Azure's default rules (:data:`~.nsg_rules.DEFAULT_RULES`); the
first rule matching protocol, source, source port, destination and destination port decides.
Every rule present counts, JIT's allow rules included (this is what the traffic meets); a
rule being written counts as written, a rule being deleted until its deletion completes.

A source is an IPv4 address or the name of a service tag. The emulator knows no tag's
addresses: a tag source matches ``*``, ``Internet`` and rules naming that tag, no address
prefix. ``VirtualNetwork`` is the address space of the subnet's VNet (no peerings),
``AzureLoadBalancer`` is ``168.63.129.16``, ``Internet`` is every address outside the VNet
space, tag sources included. A destination tag other than these three never holds a VM's
private address. IPv6 prefixes match nothing (JIT is IPv4 only). Without a source port the
question is "from some source port": every source port range boundary of the NSGs is tried.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from azure_arm_emulator import ids
from azure_arm_emulator.model import Nic, Nsg, Vm
from azure_arm_emulator.nsg_rules import DEFAULT_RULES
from azure_arm_emulator.store import Store

LOAD_BALANCER = ipaddress.IPv4Address("168.63.129.16")
_PROTOCOLS = {"tcp": "Tcp", "udp": "Udp"}
_INTERNET = frozenset({"internet"})
_VIRTUAL_NETWORK = frozenset({"virtualnetwork", "virtual_network"})
_LOAD_BALANCER = frozenset({"azureloadbalancer", "azure_loadbalancer"})

Source = ipaddress.IPv4Address | str  # an address, or a service tag (lower case)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The rule of one NSG that decided a packet."""

    nsg: Nsg
    rule: str
    priority: int
    access: str  # Allow | Deny
    default: bool
    jit: bool  # written by the emulated JIT

    def to_dict(self) -> dict[str, Any]:
        return {
            "networkSecurityGroup": self.nsg.id,
            "rule": self.rule,
            "priority": self.priority,
            "access": self.access,
            "default": self.default,
            "jit": self.jit,
        }


@dataclass(frozen=True, slots=True)
class PathAnswer:
    """One private address of the VM: each level's verdict (None: no NSG at that level)."""

    private_ip: str
    source_port: int
    subnet: Verdict | None
    nic: Verdict | None

    @property
    def reachable(self) -> bool:
        return all(v is None or v.access == "Allow" for v in (self.subnet, self.nic))

    def to_dict(self) -> dict[str, Any]:
        return {
            "privateIpAddress": self.private_ip,
            "reachable": self.reachable,
            "sourcePort": self.source_port,
            "subnet": self.subnet.to_dict() if self.subnet else None,
            "networkInterface": self.nic.to_dict() if self.nic else None,
        }


@dataclass(frozen=True, slots=True)
class _Rule:
    name: str
    props: dict[str, Any]
    default: bool
    jit: bool


def parse_source(text: str) -> Source:
    """An IPv4 address or a service tag name (``AzureLoadBalancer`` is its address);
    IPv6 is refused (JIT is IPv4 only), and so are ``Internet`` and ``VirtualNetwork``,
    which are address ranges: ask for one of their addresses."""
    lowered = text.lower()
    if lowered in _LOAD_BALANCER:
        return LOAD_BALANCER
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        if (
            lowered in _INTERNET | _VIRTUAL_NETWORK
            or not lowered.replace(".", "").replace("_", "").isalnum()
        ):
            raise ValueError(
                f"source {text!r}: give an IPv4 address (198.51.100.7) or a service tag name "
                "such as Storage"
            ) from None
        return lowered
    if not isinstance(address, ipaddress.IPv4Address):
        raise ValueError(f"source {text!r}: IPv4 only (Azure JIT does not support IPv6)")
    return address


def parse_protocol(text: str) -> str:
    try:
        return _PROTOCOLS[text.lower()]
    except KeyError:
        raise ValueError(f"protocol {text!r}: use TCP or UDP (only they carry ports)") from None


def _values(props: dict[str, Any], single: str, plural: str) -> list[str]:
    found = [str(v) for v in props.get(plural) or []]
    if props.get(single):
        found.append(str(props[single]))
    return found


def _ports(ranges: list[str], port: int) -> bool:
    for text in ranges:
        if text == "*":
            return True
        low, _, high = text.partition("-")
        if int(low) <= port <= int(high or low):
            return True
    return False


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _in_space(address: ipaddress.IPv4Address, space: list[ipaddress.IPv4Network]) -> bool:
    return any(address in network for network in space)


def _source_matches(term: str, source: Source, space: list[ipaddress.IPv4Network]) -> bool:
    lowered = term.lower()
    if lowered == "*":
        return True
    if isinstance(source, str):
        return lowered in _INTERNET or (
            lowered == source and _network(term) is None and lowered not in _VIRTUAL_NETWORK
        )
    if lowered in _INTERNET:
        return not _in_space(source, space)
    if lowered in _VIRTUAL_NETWORK:
        return _in_space(source, space)
    if lowered in _LOAD_BALANCER:
        return source == LOAD_BALANCER
    network = _network(term)
    return isinstance(network, ipaddress.IPv4Network) and source in network


def _destination_matches(
    term: str, address: ipaddress.IPv4Address, space: list[ipaddress.IPv4Network]
) -> bool:
    lowered = term.lower()
    if lowered == "*":
        return True
    if lowered in _INTERNET:
        return not _in_space(address, space)
    if lowered in _VIRTUAL_NETWORK:
        return _in_space(address, space)
    if lowered in _LOAD_BALANCER:
        return address == LOAD_BALANCER
    network = _network(term)
    return isinstance(network, ipaddress.IPv4Network) and address in network


@dataclass(frozen=True, slots=True)
class _Packet:
    source: Source
    source_port: int
    destination: ipaddress.IPv4Address
    port: int
    protocol: str  # Tcp | Udp


def _matches(rule: _Rule, packet: _Packet, space: list[ipaddress.IPv4Network]) -> bool:
    props = rule.props
    if str(props.get("direction", "")).lower() != "inbound":
        return False
    if str(props.get("protocol", "")).lower() not in ("*", packet.protocol.lower()):
        return False
    if not _ports(_values(props, "destinationPortRange", "destinationPortRanges"), packet.port):
        return False
    if not _ports(_values(props, "sourcePortRange", "sourcePortRanges"), packet.source_port):
        return False
    destinations = _values(props, "destinationAddressPrefix", "destinationAddressPrefixes")
    if not any(_destination_matches(d, packet.destination, space) for d in destinations):
        return False
    sources = _values(props, "sourceAddressPrefix", "sourceAddressPrefixes")
    return any(_source_matches(s, packet.source, space) for s in sources)


def _rules(nsg: Nsg) -> list[_Rule]:
    custom = sorted(
        nsg.rules.values(), key=lambda r: (int(r.properties.get("priority", 0)), r.name.lower())
    )
    rules = [_Rule(r.name, r.properties, False, r.jit_policy is not None) for r in custom]
    for name, _, source, destination, access, priority, direction in DEFAULT_RULES:
        props = {
            "protocol": "*",
            "sourcePortRange": "*",
            "destinationPortRange": "*",
            "sourceAddressPrefix": source,
            "destinationAddressPrefix": destination,
            "access": access,
            "priority": priority,
            "direction": direction,
        }
        rules.append(_Rule(name, props, True, False))
    return rules


def _decide(nsg: Nsg, packet: _Packet, space: list[ipaddress.IPv4Network]) -> Verdict:
    for rule in _rules(nsg):
        if _matches(rule, packet, space):
            return Verdict(
                nsg=nsg,
                rule=rule.name,
                priority=int(rule.props["priority"]),
                access="Allow" if str(rule.props.get("access")).lower() == "allow" else "Deny",
                default=rule.default,
                jit=rule.jit,
            )
    raise AssertionError("DenyAllInBound matches every inbound packet")


def _source_port_candidates(nsgs: list[Nsg]) -> list[int]:
    """One source port of each stretch that every rule treats alike."""
    candidates = {0}
    for nsg in nsgs:
        for rule in nsg.rules.values():
            for text in _values(rule.properties, "sourcePortRange", "sourcePortRanges"):
                if text == "*":
                    continue
                low, _, high = text.partition("-")
                candidates.add(int(low))
                if int(high or low) < 65535:
                    candidates.add(int(high or low) + 1)
    return sorted(candidates)


def _vnet_space(store: Store, nic: Nic) -> list[ipaddress.IPv4Network]:
    subnet = store.subnets.get(nic.subnet)
    if subnet is None:
        return []
    vnet = store.vnets.get(
        ids.key(ids.vnet_id(subnet.subscription, subnet.resource_group, subnet.vnet))
    )
    if vnet is None:
        return []
    space = [_network(prefix) for prefix in vnet.address_space]
    return [n for n in space if isinstance(n, ipaddress.IPv4Network)]


def path_answer(
    store: Store,
    nic: Nic,
    *,
    source: Source,
    port: int,
    protocol: str,
    source_port: int | None = None,
) -> PathAnswer | None:
    """The verdicts for traffic to one NIC's private address (None when it is not IPv4)."""
    try:
        destination = ipaddress.IPv4Address(nic.private_ip)
    except ValueError:
        return None
    subnet = store.subnets.get(nic.subnet)
    subnet_nsg = store.nsgs.get(subnet.nsg) if subnet is not None and subnet.nsg else None
    nic_nsg = store.nsgs.get(nic.nsg) if nic.nsg else None
    space = _vnet_space(store, nic)
    present = [n for n in (subnet_nsg, nic_nsg) if n is not None]
    ports = [source_port] if source_port is not None else _source_port_candidates(present)
    first: PathAnswer | None = None
    for candidate in ports:
        packet = _Packet(source, candidate, destination, port, protocol)
        answer = PathAnswer(
            private_ip=nic.private_ip,
            source_port=candidate,
            subnet=_decide(subnet_nsg, packet, space) if subnet_nsg else None,
            nic=_decide(nic_nsg, packet, space) if nic_nsg else None,
        )
        if answer.reachable:
            return answer
        first = first or answer
    return first


def reachability(
    store: Store,
    vm: Vm,
    *,
    source: str,
    port: int,
    protocol: str,
    source_port: int | None = None,
) -> dict[str, Any]:
    """``{"reachable", "paths": [...]}`` for traffic from ``source`` to ``port`` of ``vm``."""
    parsed = parse_source(source)
    wire = parse_protocol(protocol)
    if not 0 <= port <= 65535 or (source_port is not None and not 0 <= source_port <= 65535):
        raise ValueError("ports lie between 0 and 65535")
    paths = []
    for nic_key in vm.nics:
        nic = store.nics.get(nic_key)
        if nic is None:
            continue
        answer = path_answer(
            store, nic, source=parsed, port=port, protocol=wire, source_port=source_port
        )
        if answer is not None:
            paths.append(answer)
    return {
        "vm": vm.id,
        "source": source,
        "port": port,
        "protocol": wire.upper(),
        "reachable": any(p.reachable for p in paths),
        "paths": [p.to_dict() for p in paths],
    }
