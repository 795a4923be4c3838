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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from .address_sets import SourceSet
from .nsg import NicGuards, SecurityRuleView, VmNetwork
from .nsg_matching import (
    AZURE_LOAD_BALANCER_ADDRESS,
    DEFAULT_INBOUND_RULES,
    INTERNET_TAG,
    LOAD_BALANCER,
    LOAD_BALANCER_TAG,
    VIRTUAL_NETWORK_TAG,
    applies,
    default_rules,
    is_ipv4_address,
    is_tag,
    rule_sources,
    vnet_space,
    wire_protocols,
)

__all__ = [
    "AZURE_LOAD_BALANCER_ADDRESS",
    "DEFAULT_INBOUND_RULES",
    "Admission",
    "PortExposure",
    "RuleRef",
    "Scope",
    "describe_admission",
    "port_exposure",
    "wire_protocols",
]


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

    def describe(self, *, limit: int = 3) -> list[str]:
        """One line per admission a person can act on (at most ``limit`` sources named
        each), then one per NSG that could not be read."""
        lines = [describe_admission(a, port=self.port, limit=limit) for a in self.admissions]
        lines += [
            f"NSG {_short(nsg)} could not be read: counted as admitting everything"
            for nsg in self.unread_nsgs
        ]
        return lines


_SCOPE_TEXT = {
    Scope.INTERNET: "the Internet",
    Scope.VIRTUAL_NETWORK: "inside the VNet",
    Scope.AZURE_LOAD_BALANCER: "Azure's load balancer",
    Scope.SERVICE_TAG: "service tag",
}


def _short(nsg_id: str) -> str:
    return nsg_id.rstrip("/").rsplit("/", 1)[-1]


def _rule_text(level: str, ref: RuleRef | None) -> str:
    if ref is None:
        return f"no {level} NSG"
    kind = "default rule" if ref.default else "rule"
    return f"{level} NSG {_short(ref.nsg_id)} {kind} {ref.name} (priority {ref.priority})"


def describe_admission(admission: Admission, *, port: int, limit: int = 3) -> str:
    """E.g. ``port 22/TCP of 10.10.2.4 is reachable from the Internet (0.0.0.0/5,
    8.0.0.0/7, 11.0.0.0/8 and 27 more) through subnet NSG nsg-snet rule allow-ssh
    (priority 200) and no NIC NSG``."""
    sources = ", ".join(admission.sources[:limit])
    if len(admission.sources) > limit:
        sources += f" and {len(admission.sources) - limit} more"
    where = _SCOPE_TEXT[admission.scope]
    if not admission.vnet_space_known and admission.scope is Scope.INTERNET:
        where += " (the VNet's address space is unknown, so VNet addresses may be among them)"
    protocols = "/".join(admission.protocols) or "?"
    return (
        f"port {port}/{protocols} of {admission.private_ip} is reachable from {where} "
        f"({sources}) through {_rule_text('subnet', admission.subnet_rule)} and "
        f"{_rule_text('NIC', admission.nic_rule)}"
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
        if not applies(rule, wire=wire, port=port, private_ip=private_ip, vnet=vnet):
            continue
        decided = remaining & rule_sources(rule, vnet, atoms)
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
                if is_tag(text):
                    spelled.setdefault(text.strip().lower(), text.strip())
    return spelled


def _atoms(
    levels: Iterable[_Level], *, wire: str, port: int, private_ip: str, vnet: SourceSet | None
) -> frozenset[str]:
    """The unknown tags some allow rule that could match names: the only atoms that can
    change an answer (a tag only a deny names is admitted by nothing but ``*``/Internet,
    whose addresses are reported anyway)."""
    known = INTERNET_TAG | VIRTUAL_NETWORK_TAG | LOAD_BALANCER_TAG
    found: set[str] = set()
    for level in levels:
        for _, rule in level.rules:
            if rule.access.strip().lower() != "allow":
                continue
            if not applies(rule, wire=wire, port=port, private_ip=private_ip, vnet=vnet):
                continue
            for text in rule.sources:
                lowered = text.strip().lower()
                if is_tag(text) and lowered not in known:
                    found.add(lowered)
    return frozenset(found)


def _scoped(
    decided: SourceSet, *, vnet: SourceSet | None, spelled: Mapping[str, str]
) -> list[tuple[Scope, tuple[str, ...]]]:
    out: list[tuple[Scope, tuple[str, ...]]] = []
    addresses = decided.addresses()
    balancer = addresses & LOAD_BALANCER
    rest = addresses - LOAD_BALANCER
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


_Part = tuple[RuleRef | None, SourceSet]


def _intersections(
    first: Sequence[_Part], second: Sequence[_Part]
) -> list[tuple[tuple[RuleRef | None, RuleRef | None], SourceSet]]:
    """Each pair of parts that share sources, with what they share. The parts of one level
    are disjoint, so one sweep over both levels' intervals finds every pair (rather than
    intersecting every part of one level with every part of the other)."""

    def flat(parts: Sequence[_Part]) -> list[tuple[int, int, int]]:
        return sorted(
            (low, high, index)
            for index, (_, found) in enumerate(parts)
            for low, high in found.intervals
        )

    shared: dict[tuple[int, int], list[tuple[int, int]]] = {}
    mine, theirs = flat(first), flat(second)
    i = j = 0
    while i < len(mine) and j < len(theirs):
        low, high = max(mine[i][0], theirs[j][0]), min(mine[i][1], theirs[j][1])
        if low < high:
            shared.setdefault((mine[i][2], theirs[j][2]), []).append((low, high))
        if mine[i][1] < theirs[j][1]:
            i += 1
        else:
            j += 1
    atoms: dict[tuple[int, int], set[str]] = {}
    in_second = {atom: b for b, (_, found) in enumerate(second) for atom in found.atoms}
    for a, (_, found) in enumerate(first):
        for atom in found.atoms:
            if atom in in_second:
                atoms.setdefault((a, in_second[atom]), set()).add(atom)
    pairs = sorted(set(shared) | set(atoms))
    return [
        (
            (first[a][0], second[b][0]),
            SourceSet.of(shared.get((a, b), ()), atoms.get((a, b), ())),
        )
        for a, b in pairs
    ]


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
        for (subnet_ref, nic_ref), both in _intersections(parts[0], parts[1]):
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
        if not is_ipv4_address(path.private_ip):
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
