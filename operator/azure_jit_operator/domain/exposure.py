"""Effective exposure of a VM port: which sources its NSGs admit without any JIT grant.

Azure's evaluation ("How network security groups filter network traffic"): inbound traffic
to a private address passes the subnet's NSG, then the NIC's; both must allow, and a level
without an NSG allows everything. In each NSG the inbound rules are processed by priority,
lowest first, and the first rule matching protocol, source, source port, destination and
destination port decides. Every NSG ends with Azure's default inbound rules, which the
operator does not read and this module adds itself (:data:`DEFAULT_INBOUND_RULES`).

The question answered is "what reaches the port when no JIT grant is open": JIT's own allow
rules (``is_jit_allow``) are left out; its deny rules count as any deny. Everything is set
arithmetic over IPv4 intervals (:mod:`.address_sets`): each level is split into the part
each allow rule admits first, and the parts of both levels are intersected.

Where the truth cannot be known offline the evaluation over-reports, never under-reports.
A rule whose match is uncertain matches when it allows and does not when it denies (a
superset of the allows and a subset of the denies can only admit more, packet by packet):

- **source ports**: a rule limited to some source ports matches part of the traffic. An
  allow so limited still exposes the port; a deny so limited hides nothing.
- **unknown service tags** (``Storage``, ``AzureCloud``, ...): each is an opaque atom, no
  address. An allow naming it admits "tag X" (scope :attr:`Scope.SERVICE_TAG`); a deny naming
  it blocks only the atom, never an address. Atoms exist only for tags some allow rule that
  could match names (``*`` and ``Internet`` cover them too); ``0.0.0.0/0`` does not.
- **unknown VNet space** (``NicGuards.vnet_prefixes`` empty): ``VirtualNetwork`` in an allow
  matches every address, in a deny none; ``Internet`` in a deny matches only the atoms.
  Admitted addresses are then all reported as :attr:`Scope.INTERNET`, flagged
  ``vnet_space_known=False``.
- **destinations** that are tags other than ``VirtualNetwork``/``Internet``/
  ``AzureLoadBalancer``, unparseable ports or protocols: uncertain, as above.
- **an NSG on the path missing from** ``rules_by_nsg`` (not read): that level admits
  everything (rule ``None``) and the NSG is listed in ``PortExposure.unread_nsgs``.

IPv4 only (Azure JIT refuses IPv6, E14): IPv6 prefixes in rules match nothing. The
``VirtualNetwork`` tag is the VNet's address space (peerings, gateways and the host address
aside); ``AzureLoadBalancer`` is ``168.63.129.16``; ``Internet`` is every address outside the
VNet space, plus the tag atoms. A port's protocol ``*`` is evaluated for TCP and UDP (the
only protocols with ports); ICMP, ESP and AH rules never reach a port.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum

from .address_sets import SourceSet
from .nsg import NicGuards, SecurityRuleView, VmNetwork

AZURE_LOAD_BALANCER_ADDRESS = "168.63.129.16"
_LOAD_BALANCER = SourceSet.network(ipaddress.IPv4Network(AZURE_LOAD_BALANCER_ADDRESS))

# Azure's spellings of the tags with a known meaning, old (classic) names included.
_INTERNET = frozenset({"internet"})
_VIRTUAL_NETWORK = frozenset({"virtualnetwork", "virtual_network"})
_LOAD_BALANCER_TAG = frozenset({"azureloadbalancer", "azure_loadbalancer"})
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


class Scope(StrEnum):
    INTERNET = "Internet"  # addresses outside the VNet address space
    VIRTUAL_NETWORK = "VirtualNetwork"  # inside the VNet address space
    AZURE_LOAD_BALANCER = "AzureLoadBalancer"  # 168.63.129.16
    SERVICE_TAG = "ServiceTag"  # a service tag whose addresses we cannot know offline


_SCOPE_ORDER = {
    Scope.INTERNET: 0,
    Scope.SERVICE_TAG: 1,
    Scope.VIRTUAL_NETWORK: 2,
    Scope.AZURE_LOAD_BALANCER: 3,
}


@dataclass(frozen=True, slots=True)
class RuleRef:
    nsg_id: str
    name: str
    priority: int
    default: bool  # one of Azure's default rules


@dataclass(frozen=True, slots=True)
class Admission:
    """Some sources reach the port: which, in which scope, and by which rule at each level."""

    scope: Scope
    sources: tuple[str, ...]  # CIDRs (canonical, merged) or the tag name(s)
    subnet_rule: RuleRef | None  # None: no subnet NSG on this path (or it was not read)
    nic_rule: RuleRef | None  # None: no NIC NSG on this path (or it was not read)
    private_ip: str
    protocols: tuple[str, ...] = ()  # "TCP", "UDP": on which the same sources pass
    vnet_space_known: bool = True  # False: VNet addresses may hide in INTERNET


@dataclass(frozen=True, slots=True)
class PortExposure:
    port: int
    protocol: str
    admissions: tuple[Admission, ...]  # empty: nothing but JIT grants admits traffic
    unread_nsgs: tuple[str, ...] = ()  # on a path but not in rules_by_nsg: admitting all

    @property
    def exposed(self) -> bool:
        return bool(self.admissions)

    @property
    def internet(self) -> bool:
        """Some source outside the VNet reaches the port. Service tags count: their
        addresses are public ranges (``AzureCloud`` is every Azure customer), and what
        cannot be known must not read as safe."""
        return any(a.scope in (Scope.INTERNET, Scope.SERVICE_TAG) for a in self.admissions)

    @property
    def scopes(self) -> frozenset[Scope]:
        return frozenset(a.scope for a in self.admissions)


class _Match(Enum):
    NO = 0
    YES = 1
    MAYBE = 2  # the truth cannot be known offline: allows match, denies do not


def wire_protocols(protocol: str) -> tuple[str, ...]:
    """The protocols a JIT port rule's ``protocol`` (``TCP``/``UDP``/``*``) admits."""
    try:
        return _WIRE[protocol.lower()]
    except KeyError:
        raise ValueError(f"protocol {protocol!r}: use TCP, UDP or *") from None


def _ipv4(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def vnet_space(prefixes: Iterable[str]) -> SourceSet | None:
    """The VNet address space as a set; None when unknown (no IPv4 prefix could be read)."""
    space = SourceSet()
    for text in prefixes:
        network = _ipv4(text)
        if isinstance(network, ipaddress.IPv4Network):
            space = space | SourceSet.network(network)
    return space if space else None


def _is_ipv4_address(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _is_tag(text: str) -> bool:
    return text != _ANY and _ipv4(text) is None


def _port_match(ranges: Sequence[str], port: int) -> _Match:
    found = _Match.NO
    for raw in ranges:
        text = raw.strip()
        if text == _ANY:
            return _Match.YES
        low, _, high = text.partition("-")
        if low.isdigit() and (not high or high.isdigit()):
            if int(low) <= port <= int(high or low):
                return _Match.YES
        else:
            found = _Match.MAYBE
    return found


def _protocol_match(rule_protocol: str, wire: str) -> _Match:
    value = rule_protocol.strip().lower()
    if value == _ANY or value == wire.lower():
        return _Match.YES
    return _Match.NO if value in _OTHER_PROTOCOLS else _Match.MAYBE


def _destination_match(
    destinations: Sequence[str], private_ip: str, vnet: SourceSet | None
) -> _Match:
    address = int(ipaddress.IPv4Address(private_ip))
    found = _Match.NO
    for text in destinations:
        lowered = text.strip().lower()
        if lowered == _ANY:
            return _Match.YES
        network = _ipv4(text)
        if network is not None:
            if network.version == 4 and (
                int(network.network_address) <= address <= int(network.broadcast_address)
            ):
                return _Match.YES
            continue
        if lowered in _VIRTUAL_NETWORK or lowered in _INTERNET:
            if vnet is None:
                found = _Match.MAYBE
                continue
            inside = vnet.contains_address(address)
            if inside == (lowered in _VIRTUAL_NETWORK):
                return _Match.YES
            continue
        if lowered in _LOAD_BALANCER_TAG:
            if _LOAD_BALANCER.contains_address(address):
                return _Match.YES
            continue
        found = _Match.MAYBE  # another tag: it might contain the VM's address
    return found


def _source_ports_full(source_ports: Sequence[str]) -> bool:
    return not source_ports or any(p.strip() == _ANY for p in source_ports)


def _applies(
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
        _protocol_match(rule.protocol, wire),
        _port_match(rule.destination_ports, port),
        _destination_match(rule.destinations, private_ip, vnet),
    ):
        if match is _Match.NO or (match is _Match.MAYBE and not allow):
            return False
    # A deny limited to some source ports lets the other source ports through.
    return allow or _source_ports_full(rule.source_ports)


def _sources(rule: SecurityRuleView, *, vnet: SourceSet | None, atoms: frozenset[str]) -> SourceSet:
    """The sources ``rule`` matches (fail-safe where the truth is unknown)."""
    allow = rule.access.strip().lower() == "allow"
    matched = SourceSet()
    everything = SourceSet.all_addresses()
    for text in rule.sources:
        lowered = text.strip().lower()
        if lowered == _ANY:
            matched = matched | SourceSet.of(everything.intervals, atoms)
        elif lowered in _INTERNET:
            if vnet is not None:
                matched = matched | SourceSet.of((everything - vnet).intervals, atoms)
            else:
                matched = matched | SourceSet.of(everything.intervals if allow else (), atoms)
        elif lowered in _VIRTUAL_NETWORK:
            if vnet is not None:
                matched = matched | vnet
            elif allow:
                matched = matched | everything
        elif lowered in _LOAD_BALANCER_TAG:
            matched = matched | _LOAD_BALANCER
        else:
            network = _ipv4(text)
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


@dataclass(frozen=True, slots=True)
class _Level:
    """One NSG of a path: its rules in processing order, each with its reference."""

    rules: tuple[tuple[RuleRef, SecurityRuleView], ...]


def _level(nsg_id: str, custom: Sequence[SecurityRuleView]) -> _Level:
    ordered = sorted(custom, key=lambda r: (r.priority, r.name.lower()))
    refs = [(RuleRef(nsg_id, r.name, r.priority, False), r) for r in ordered]
    refs += [(RuleRef(nsg_id, r.name, r.priority, True), r) for r in default_rules(nsg_id)]
    return _Level(tuple(refs))


def _admitted_by_rule(
    level: _Level,
    *,
    universe: SourceSet,
    atoms: frozenset[str],
    wire: str,
    port: int,
    private_ip: str,
    vnet: SourceSet | None,
) -> list[tuple[RuleRef, SourceSet]]:
    """The sources each allow rule of ``level`` decides, first match wins."""
    remaining = universe
    admitted: list[tuple[RuleRef, SourceSet]] = []
    for ref, rule in level.rules:
        if not remaining:
            break
        if not _applies(rule, wire=wire, port=port, private_ip=private_ip, vnet=vnet):
            continue
        decided = remaining & _sources(rule, vnet=vnet, atoms=atoms)
        if not decided:
            continue
        remaining = remaining - decided
        if rule.access.strip().lower() == "allow":
            admitted.append((ref, decided))
    return admitted


def _tag_spellings(levels: Iterable[_Level]) -> dict[str, str]:
    spelled: dict[str, str] = {}
    for level in levels:
        for _, rule in level.rules:
            for text in rule.sources:
                if _is_tag(text):
                    spelled.setdefault(text.strip().lower(), text.strip())
    return spelled


def _atoms(
    levels: Iterable[_Level], *, wire: str, port: int, private_ip: str, vnet: SourceSet | None
) -> frozenset[str]:
    """The unknown tags some allow rule that could match names: the only atoms that can
    change an answer (a tag only a deny names is admitted by nothing but ``*``/Internet,
    whose addresses are reported anyway)."""
    known = _INTERNET | _VIRTUAL_NETWORK | _LOAD_BALANCER_TAG
    found: set[str] = set()
    for level in levels:
        for _, rule in level.rules:
            if rule.access.strip().lower() != "allow":
                continue
            if not _applies(rule, wire=wire, port=port, private_ip=private_ip, vnet=vnet):
                continue
            for text in rule.sources:
                lowered = text.strip().lower()
                if _is_tag(text) and lowered not in known:
                    found.add(lowered)
    return frozenset(found)


def _scoped(
    decided: SourceSet, *, vnet: SourceSet | None, spelled: Mapping[str, str]
) -> list[tuple[Scope, tuple[str, ...]]]:
    out: list[tuple[Scope, tuple[str, ...]]] = []
    addresses = decided.addresses()
    balancer = addresses & _LOAD_BALANCER
    rest = addresses - _LOAD_BALANCER
    if vnet is not None:
        inside, outside = rest & vnet, rest - vnet
    else:
        inside, outside = SourceSet(), rest
    if outside:
        out.append((Scope.INTERNET, outside.cidrs()))
    if decided.atoms:
        out.append((Scope.SERVICE_TAG, tuple(sorted(spelled.get(a, a) for a in decided.atoms))))
    if inside:
        out.append((Scope.VIRTUAL_NETWORK, inside.cidrs()))
    if balancer:
        out.append((Scope.AZURE_LOAD_BALANCER, balancer.cidrs()))
    return out


def _path_admissions(
    path: NicGuards,
    rules: Mapping[str, Sequence[SecurityRuleView]],
    *,
    port: int,
    wires: Sequence[str],
) -> list[tuple[Admission, str]]:
    vnet = vnet_space(path.vnet_prefixes)
    levels: list[tuple[str | None, _Level | None]] = []
    for nsg_id in (path.subnet_nsg, path.nic_nsg):
        if nsg_id is None or nsg_id.lower() not in rules:
            levels.append((nsg_id, None))
        else:
            levels.append((nsg_id, _level(nsg_id, rules[nsg_id.lower()])))
    present = [level for _, level in levels if level is not None]
    spelled = _tag_spellings(present)
    out: list[tuple[Admission, str]] = []
    for wire in wires:
        atoms = _atoms(present, wire=wire, port=port, private_ip=path.private_ip, vnet=vnet)
        universe = SourceSet.of(SourceSet.all_addresses().intervals, atoms)
        parts: list[list[tuple[RuleRef | None, SourceSet]]] = []
        for _, level in levels:
            if level is None:
                parts.append([(None, universe)])
            else:
                decided = _admitted_by_rule(
                    level,
                    universe=universe,
                    atoms=atoms,
                    wire=wire,
                    port=port,
                    private_ip=path.private_ip,
                    vnet=vnet,
                )
                parts.append(list(decided))
        for subnet_ref, subnet_set in parts[0]:
            for nic_ref, nic_set in parts[1]:
                both = subnet_set & nic_set
                if not both:
                    continue
                for scope, sources in _scoped(both, vnet=vnet, spelled=spelled):
                    admission = Admission(
                        scope=scope,
                        sources=sources,
                        subnet_rule=subnet_ref,
                        nic_rule=nic_ref,
                        private_ip=path.private_ip,
                        vnet_space_known=vnet is not None,
                    )
                    out.append((admission, wire))
    return out


def _order(admission: Admission) -> tuple[int, int, int, tuple[str, ...]]:
    def priority(ref: RuleRef | None) -> int:
        return -1 if ref is None else ref.priority

    return (
        _SCOPE_ORDER[admission.scope],
        priority(admission.subnet_rule),
        priority(admission.nic_rule),
        admission.sources,
    )


def port_exposure(
    network: VmNetwork,
    rules_by_nsg: Mapping[str, Sequence[SecurityRuleView]],
    *,
    port: int,
    protocol: str,
) -> PortExposure:
    """What reaches ``port`` (``protocol`` of the JIT port rule: ``TCP``/``UDP``/``*``) on
    every private address of the VM, leaving JIT's allow rules out; see the module doc.

    ``rules_by_nsg``: the custom ``securityRules`` of each guarding NSG, keyed by NSG id
    (compared case-insensitively); default rules are added here."""
    wires = wire_protocols(protocol)
    if not network.paths and network.private_ips:
        raise ValueError(
            f"VM {network.vm_id}: VmNetwork.paths is empty; the exposure needs each private "
            "address with its NIC and subnet NSGs"
        )
    rules = {nsg_id.lower(): list(found) for nsg_id, found in rules_by_nsg.items()}
    unread: dict[str, str] = {}
    ordered: list[Admission] = []
    for path in network.paths:
        if not _is_ipv4_address(path.private_ip):
            continue  # IPv6 configurations: JIT is IPv4 only
        for nsg_id in (path.subnet_nsg, path.nic_nsg):
            if nsg_id is not None and nsg_id.lower() not in rules:
                unread.setdefault(nsg_id.lower(), nsg_id)
        merged: dict[Admission, list[str]] = {}
        for admission, wire in _path_admissions(path, rules, port=port, wires=wires):
            merged.setdefault(admission, [])
            if wire not in merged[admission]:
                merged[admission].append(wire)
        with_protocols = [
            Admission(
                scope=a.scope,
                sources=a.sources,
                subnet_rule=a.subnet_rule,
                nic_rule=a.nic_rule,
                private_ip=a.private_ip,
                protocols=tuple(w),
                vnet_space_known=a.vnet_space_known,
            )
            for a, w in merged.items()
        ]
        ordered.extend(sorted(with_protocols, key=_order))
    return PortExposure(
        port=port,
        protocol=protocol,
        admissions=tuple(ordered),
        unread_nsgs=tuple(unread.values()),
    )
