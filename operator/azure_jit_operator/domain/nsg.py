"""Reading network security groups: which rules are JIT allow rules for a VM port.

Azure JIT names its allow rules ``SecurityCenter-JITRule-<n>-<guid>`` and its deny rules
``SecurityCenter-JITRule_-<n>-<guid>`` (note the underscore). The operator only ever
deletes allow rules, and only those for the VM port it is closing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .prefixes import PrefixError, parse_prefix

JIT_ALLOW_PREFIX = "SecurityCenter-JITRule-"
JIT_DENY_PREFIX = "SecurityCenter-JITRule_-"


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

    @property
    def is_jit_allow(self) -> bool:
        return (
            self.name.startswith(JIT_ALLOW_PREFIX)
            and self.access.lower() == "allow"
            and self.direction.lower() == "inbound"
        )


@dataclass(frozen=True, slots=True)
class VmNetwork:
    """The NSGs that guard a VM (NIC and subnet) and its private addresses."""

    vm_id: str
    nsg_ids: tuple[str, ...]
    private_ips: tuple[str, ...]


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
