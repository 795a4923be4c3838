"""Reading network security groups: which rules are JIT allow rules for a VM port.

Azure JIT's rules come in two generations, both on real NSGs today (rules are not renamed
retroactively; ``azure-evidence.md`` E1, E2): ``MicrosoftDefenderForCloud-JITRule…`` since
2023, ``SecurityCenter-JITRule…`` before, each shaped ``…JITRule<sep><int32><sep><GUID>``
(``-`` for allow rules, ``_`` for deny rules in what was seen, the int possibly negative),
with descriptions ``MDC JIT Network Access rule …`` / ``ASC JIT Network Access rule …``.

Allow vs deny is decided by ``access`` and ``direction`` only, never by the separator. A
rule counts as JIT's when its name has that shape *or* its description does, so that one
more rename of either still leaves the operator seeing its rules (a close then reports the
port open rather than "confirmed gone"). A rule is deleted only when its *name* has the
shape: a customer rule that merely looks similar is never touched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .prefixes import PrefixError, parse_prefix

_JIT_NAME = re.compile(
    r"^(?:MicrosoftDefenderForCloud|SecurityCenter)-JITRule[-_]-?\d{1,10}[-_]"
    r"(?:[0-9A-Fa-f]{32}|[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12})$"
)
_JIT_DESCRIPTION = re.compile(r"^(?:MDC|ASC) JIT Network Access rule\b")


def has_jit_name(name: str) -> bool:
    return _JIT_NAME.match(name) is not None


def has_jit_description(description: str) -> bool:
    return _JIT_DESCRIPTION.match(description) is not None


@dataclass(frozen=True, slots=True)
class SecurityRuleView:
    """The fields of an NSG security rule that decide what it opens."""

    nsg_id: str
    name: str
    access: str
    direction: str
    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    destination_ports: tuple[str, ...]
    description: str = ""
    # What the exposure evaluation needs besides (domain.exposure); Azure's defaults.
    priority: int = 0
    protocol: str = "*"
    source_ports: tuple[str, ...] = ("*",)

    @property
    def is_jit(self) -> bool:
        """Written by Azure JIT, as far as its name or its description tell."""
        return has_jit_name(self.name) or has_jit_description(self.description)

    @property
    def is_jit_allow(self) -> bool:
        return (
            self.is_jit and self.access.lower() == "allow" and self.direction.lower() == "inbound"
        )

    @property
    def is_jit_deny(self) -> bool:
        return self.is_jit and self.access.lower() == "deny" and self.direction.lower() == "inbound"

    @property
    def deletable(self) -> bool:
        """A JIT allow rule whose name proves it is JIT's: the only kind ever deleted."""
        return self.is_jit_allow and has_jit_name(self.name)


@dataclass(frozen=True, slots=True)
class NicGuards:
    """One way into a VM: a private address of one of its NICs, and the NSGs traffic to it
    passes (inbound: the subnet's first, then the NIC's; either may be absent)."""

    private_ip: str
    nic_nsg: str | None
    subnet_nsg: str | None
    # The address space of the subnet's virtual network (what the VirtualNetwork tag means
    # for this VM, peerings aside); empty when it could not be read.
    vnet_prefixes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VmNetwork:
    """The NSGs that guard a VM (NIC and subnet) and its private addresses."""

    vm_id: str
    nsg_ids: tuple[str, ...]
    private_ips: tuple[str, ...]
    paths: tuple[NicGuards, ...] = ()


def covers_port(port_ranges: Iterable[str], port: int) -> bool:
    for text in port_ranges:
        if text == "*":
            return True
        low, _, high = text.partition("-")
        if low.isdigit() and int(low) <= port <= int(high or low):
            return True
    return False


def targets_vm(destinations: Iterable[str], private_ips: Iterable[str]) -> bool:
    """True unless every destination provably excludes the VM's addresses.

    Unknown forms (service tags) count as targeting the VM: when closing, it is safer to
    consider one rule too many than one too few.
    """
    ips = [parse_prefix(ip) for ip in private_ips]
    for destination in destinations:
        try:
            parsed = parse_prefix(destination)
        except PrefixError:
            return True
        if not ips or any(parsed.contains(ip) for ip in ips):
            return True
    return False


def jit_allow_rules(
    rules: Iterable[SecurityRuleView], *, port: int, network: VmNetwork
) -> list[SecurityRuleView]:
    """The JIT allow rules that open ``port`` on this VM."""
    return [
        rule
        for rule in rules
        if rule.is_jit_allow
        and covers_port(rule.destination_ports, port)
        and targets_vm(rule.destinations, network.private_ips)
    ]


def jit_deny_rules(
    rules: Iterable[SecurityRuleView], *, port: int, network: VmNetwork
) -> list[SecurityRuleView]:
    """The JIT deny rules that guard ``port`` on this VM (E4: one rule for all its ports)."""
    return [
        rule
        for rule in rules
        if rule.is_jit_deny
        and covers_port(rule.destination_ports, port)
        and targets_vm(rule.destinations, network.private_ips)
    ]
