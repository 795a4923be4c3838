"""The emulator's data plane (azure_arm_emulator.reachability) and the operator's exposure
evaluation (azure_jit_operator.domain.exposure) are two implementations of Azure's NSG
evaluation; on random rule sets stored in the emulator they agree, packet by packet.

JIT's allow rules count in the emulator (it is the data plane) and are left out by the
domain ("what reaches the port without a grant"), so the emulator is asked with them
removed. Where the domain is conservative by design (a rule limited to some source ports, a
service tag as a destination) the emulator's answer must lie inside the domain's; elsewhere
they are equal: same sources admitted, same deciding rule at each level."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azure_arm_emulator import ids
from azure_arm_emulator.model import Nic, SecurityRule
from azure_arm_emulator.nsg_rules import render_rule, validate_rule
from azure_arm_emulator.reachability import path_answer
from azure_arm_emulator.store import Store
from azure_arm_emulator.world import parse_world
from azure_jit_operator.domain.exposure import Admission, PortExposure, Scope, port_exposure
from azure_jit_operator.domain.nsg import NicGuards, VmNetwork
from tests.unit.domain.nsg_builders import GUID, rule_view

pytestmark = pytest.mark.integration

SUB = "00000000-0000-0000-0000-000000000000"
RG = "rg-x"
WORLD = parse_world(
    {
        "subscriptions": [
            {
                "id": SUB,
                "displayName": "agreement",
                "resourceGroups": [
                    {
                        "name": RG,
                        "location": "westeurope",
                        "virtualNetworks": [
                            {
                                "name": "vnet-x",
                                "addressSpace": ["10.10.0.0/27"],
                                "subnets": [
                                    {
                                        "name": "snet-guarded",
                                        "addressPrefix": "10.10.0.0/28",
                                        "networkSecurityGroup": "nsg-snet",
                                    },
                                    {"name": "snet-open", "addressPrefix": "10.10.0.16/28"},
                                ],
                            }
                        ],
                        "networkSecurityGroups": [{"name": "nsg-snet"}, {"name": "nsg-nic"}],
                        "virtualMachines": [
                            {
                                "name": "vm-both",
                                "subnet": "vnet-x/snet-guarded",
                                "privateIpAddress": "10.10.0.4",
                                "networkSecurityGroup": "nsg-nic",
                            },
                            {
                                "name": "vm-subnet-nsg",
                                "subnet": "vnet-x/snet-guarded",
                                "privateIpAddress": "10.10.0.5",
                            },
                            {
                                "name": "vm-nic-nsg",
                                "subnet": "vnet-x/snet-open",
                                "privateIpAddress": "10.10.0.20",
                                "networkSecurityGroup": "nsg-nic",
                            },
                        ],
                    }
                ],
            }
        ]
    }
)
STORE = Store.from_world(WORLD, now=datetime.now(UTC))
NSGS = {name: STORE.nsgs[ids.key(ids.nsg_id(SUB, RG, name))] for name in ("nsg-snet", "nsg-nic")}
VMS = ("vm-both", "vm-subnet-nsg", "vm-nic-nsg")

NETWORKS = ("10.10.0.0/28", "10.10.0.16/28", "198.51.100.0/28", "203.0.113.0/28")
ADDRESSES = (
    *(str(a) for n in NETWORKS for a in ipaddress.IPv4Network(n)),
    "168.63.129.16",
)
TAGS = ("Storage", "Sql")
SOURCE_TERMS = (
    "*", "Internet", "VirtualNetwork", "AzureLoadBalancer", *TAGS, *NETWORKS,
    "10.10.0.0/27", "198.51.100.8/29", "203.0.113.5", "10.10.0.4", "0.0.0.0/0",
    "2001:db8::/32",
)  # fmt: skip
CERTAIN_DESTINATIONS = (
    "*", "10.10.0.4", "10.10.0.5", "10.10.0.20", "10.10.0.0/28", "10.10.0.16/28",
    "VirtualNetwork", "Internet",
)  # fmt: skip
PORT_TERMS = ("*", "22", "20-23", "24-25", "80")


@dataclass(frozen=True)
class Body:
    name: str
    properties: dict[str, Any]
    jit: bool


def _one_or_many(single: str, plural: str, values: list[str]) -> dict[str, Any]:
    return {single: values[0]} if len(values) == 1 else {plural: values}


@st.composite
def rule_bodies(draw: st.DrawFn, *, certain: bool) -> list[Body]:
    count = draw(st.integers(0, 6))
    priorities = draw(st.lists(st.integers(100, 4096), min_size=count, max_size=count, unique=True))
    destinations = CERTAIN_DESTINATIONS if certain else (*CERTAIN_DESTINATIONS, "Storage")
    source_ports = ("*",) if certain else ("*", "1024-65535", "0-1023")
    bodies = []
    for index, priority in enumerate(priorities):
        access = draw(st.sampled_from(("Allow", "Deny")))
        jit = draw(st.integers(0, 4)) == 0
        sep = "-" if access == "Allow" else "_"
        name = f"MicrosoftDefenderForCloud-JITRule{sep}{index}{sep}{GUID}" if jit else f"r{index}"
        props = {
            "protocol": draw(st.sampled_from(("*", "Tcp", "Udp", "Icmp"))),
            "access": access,
            "priority": priority,
            "direction": draw(st.sampled_from(("Inbound", "Inbound", "Inbound", "Outbound"))),
            **_one_or_many(
                "sourceAddressPrefix",
                "sourceAddressPrefixes",
                draw(st.lists(st.sampled_from(SOURCE_TERMS), min_size=1, max_size=2, unique=True)),
            ),
            **_one_or_many(
                "destinationAddressPrefix",
                "destinationAddressPrefixes",
                draw(st.lists(st.sampled_from(destinations), min_size=1, max_size=2, unique=True)),
            ),
            **_one_or_many(
                "destinationPortRange",
                "destinationPortRanges",
                draw(st.lists(st.sampled_from(PORT_TERMS), min_size=1, max_size=2, unique=True)),
            ),
            "sourcePortRange": draw(st.sampled_from(source_ports)),
        }
        bodies.append(Body(name, validate_rule(name, {"properties": props}), jit))
    return bodies


@dataclass(frozen=True)
class Scenario:
    rules: dict[str, list[Body]]
    vm: str
    port: int
    protocol: str  # of the JIT port rule


def scenarios(*, certain: bool) -> st.SearchStrategy[Scenario]:
    return st.builds(
        Scenario,
        rules=st.fixed_dictionaries(
            {name: rule_bodies(certain=certain) for name in ("nsg-snet", "nsg-nic")}
        ),
        vm=st.sampled_from(VMS),
        port=st.sampled_from(range(20, 26)),
        protocol=st.sampled_from(("TCP", "UDP", "*")),
    )


def store_rules(rules: dict[str, list[Body]], *, with_jit_allow: bool) -> None:
    for name, nsg in NSGS.items():
        nsg.rules = {
            body.name.lower(): SecurityRule(
                body.name, dict(body.properties), jit_policy="policy" if body.jit else None
            )
            for body in rules[name]
            if with_jit_allow or not (body.jit and body.properties["access"] == "Allow")
        }


def nic_of(vm: str) -> Nic:
    [nic_key] = STORE.vms[ids.key(ids.vm_id(SUB, RG, vm))].nics
    return STORE.nics[nic_key]


def domain_view(nic: Nic) -> tuple[VmNetwork, dict[str, list[Any]]]:
    """The VM's network and NSG rules as the operator's adapter reads them (REST shape)."""
    subnet = STORE.subnets[nic.subnet]
    subnet_nsg = STORE.nsgs[subnet.nsg].id if subnet.nsg else None
    nic_nsg = STORE.nsgs[nic.nsg].id if nic.nsg else None
    path = NicGuards(nic.private_ip, nic_nsg, subnet_nsg, ("10.10.0.0/27",))
    net = VmNetwork("vm", tuple(n for n in (nic_nsg, subnet_nsg) if n), (nic.private_ip,), (path,))
    rules = {
        nsg.id: [rule_view(nsg.id, render_rule(nsg, r)) for r in nsg.rules.values()]
        for nsg in NSGS.values()
    }
    return net, rules


def domain_answer(
    exposure: PortExposure, source: str, wire: str
) -> tuple[tuple[str, str] | None, tuple[str, str] | None] | None:
    def holds(admission: Admission) -> bool:
        if admission.scope is Scope.SERVICE_TAG:
            return source.lower() in {s.lower() for s in admission.sources}
        if source in TAGS:
            return False
        address = ipaddress.IPv4Address(source)
        return any(address in ipaddress.IPv4Network(c) for c in admission.sources)

    found = [a for a in exposure.admissions if wire in a.protocols and holds(a)]
    assert len(found) <= 1
    if not found:
        return None
    subnet, nic = found[0].subnet_rule, found[0].nic_rule
    return (
        (subnet.nsg_id.lower(), subnet.name) if subnet else None,
        (nic.nsg_id.lower(), nic.name) if nic else None,
    )


def emulator_answer(
    nic: Nic, source: str, port: int, wire: str
) -> tuple[tuple[str, str] | None, tuple[str, str] | None] | None:
    parsed = source.lower() if source in TAGS else ipaddress.IPv4Address(source)
    answer = path_answer(STORE, nic, source=parsed, port=port, protocol=wire.title())
    assert answer is not None
    if not answer.reachable:
        return None
    return (
        (answer.subnet.nsg.id.lower(), answer.subnet.rule) if answer.subnet else None,
        (answer.nic.nsg.id.lower(), answer.nic.rule) if answer.nic else None,
    )


def names_tag(rule_ref: tuple[str, str] | None, tag: str) -> bool:
    if rule_ref is None:
        return False
    for nsg in NSGS.values():
        rule = nsg.rules.get(rule_ref[1].lower())
        if nsg.id.lower() == rule_ref[0] and rule is not None:
            props = rule.properties
            named = [props.get("sourceAddressPrefix"), *props.get("sourceAddressPrefixes", [])]
            return tag.lower() in {str(n).lower() for n in named if n}
    return False


def compared(scenario: Scenario) -> Iterator[tuple[str, str, Any, Any]]:
    """(source, protocol, domain's answer, emulator's answer) for every sampled source."""
    nic = nic_of(scenario.vm)
    store_rules(scenario.rules, with_jit_allow=True)
    net, rules = domain_view(nic)
    exposure = port_exposure(net, rules, port=scenario.port, protocol=scenario.protocol)
    store_rules(scenario.rules, with_jit_allow=False)
    for wire in ("TCP", "UDP") if scenario.protocol == "*" else (scenario.protocol,):
        for source in (*ADDRESSES, *TAGS):
            yield (
                source,
                wire,
                domain_answer(exposure, source, wire),
                emulator_answer(nic, source, scenario.port, wire),
            )


@settings(max_examples=120, deadline=None)
@given(scenario=scenarios(certain=True))
def test_emulator_and_domain_agree_packet_by_packet(scenario: Scenario) -> None:
    for source, wire, domain, emulator in compared(scenario):
        if source in TAGS and domain is None and emulator is not None:
            # The domain has an atom for a tag only when an allow rule names it; otherwise
            # the tag's traffic is what ``*``/Internet admit, reported as addresses.
            assert not any(names_tag(ref, source) for ref in emulator), (source, wire)
            continue
        assert domain == emulator, (source, wire)


@settings(max_examples=80, deadline=None)
@given(scenario=scenarios(certain=False))
def test_the_domain_never_reports_less_than_the_emulator_lets_through(scenario: Scenario) -> None:
    for source, wire, domain, emulator in compared(scenario):
        if source in TAGS and domain is None and emulator is not None:
            assert not any(names_tag(ref, source) for ref in emulator), (source, wire)
            continue
        if emulator is not None:
            assert domain is not None, (source, wire)
