"""What reaches a JIT-protected VM port without a JIT grant, evaluated as Azure evaluates NSGs:
subnet NSG then NIC NSG, both must allow; rules by priority, first match wins; Azure's default
rules last (domain.exposure)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pytest

from azure_jit_operator.domain.exposure import PortExposure, Scope, port_exposure
from azure_jit_operator.domain.nsg import NicGuards, SecurityRuleView, VmNetwork
from tests.unit.domain.nsg_builders import (
    NIC_NSG,
    SUBNET_NSG,
    VM_IP,
    jit_allow,
    jit_deny,
    network,
    rule,
)

S, N = SUBNET_NSG, NIC_NSG
LB = "168.63.129.16/32"
VNET_CIDR = "10.10.0.0/16"


def outside(*excluded: str) -> tuple[str, ...]:
    """0.0.0.0/0 without ``excluded``, as merged CIDRs (computed with ipaddress alone)."""
    blocks = [ipaddress.IPv4Network("0.0.0.0/0")]
    for text in excluded:
        cut = ipaddress.IPv4Network(text)
        blocks = [
            part
            for block in blocks
            for part in (block.address_exclude(cut) if cut.subnet_of(block) else [block])
        ]
    return tuple(str(b) for b in ipaddress.collapse_addresses(sorted(blocks)))


INTERNET = outside(VNET_CIDR, LB)


@dataclass(frozen=True)
class Case:
    rules: dict[str, list[SecurityRuleView]]
    expected: list[tuple[Scope, tuple[str, ...], str | None, str | None]]
    port: int = 22
    protocol: str = "TCP"
    subnet: bool = True
    nic: bool = True
    vnet: tuple[str, ...] = (VNET_CIDR,)


def evaluate(case: Case) -> PortExposure:
    net = network(
        subnet_nsg=S if case.subnet else None, nic_nsg=N if case.nic else None, vnet=case.vnet
    )
    return port_exposure(net, case.rules, port=case.port, protocol=case.protocol)


def seen(exposure: PortExposure) -> list[tuple[Scope, tuple[str, ...], str | None, str | None]]:
    return [
        (
            a.scope,
            a.sources,
            a.subnet_rule.name if a.subnet_rule else None,
            a.nic_rule.name if a.nic_rule else None,
        )
        for a in exposure.admissions
    ]


ALLOW_ANY = rule(S, "allow-ssh-any", 200)
DEFAULTS_ONLY: list[tuple[Scope, tuple[str, ...], str | None, str | None]] = [
    (Scope.VIRTUAL_NETWORK, (VNET_CIDR,), "AllowVnetInBound", "AllowVnetInBound"),
    (
        Scope.AZURE_LOAD_BALANCER,
        (LB,),
        "AllowAzureLoadBalancerInBound",
        "AllowAzureLoadBalancerInBound",
    ),
]

CASES = {
    "allow 22 from * on the subnet, JIT's deny on the NIC: the NIC denies, not exposed": Case(
        {S: [ALLOW_ANY], N: [jit_deny(N)]}, []
    ),
    "allow 22 from * on the subnet, no NIC NSG: exposed to the Internet by that rule": Case(
        {S: [ALLOW_ANY, jit_deny(S)]},
        [
            (Scope.INTERNET, INTERNET, "allow-ssh-any", None),
            (Scope.VIRTUAL_NETWORK, (VNET_CIDR,), "allow-ssh-any", None),
            (Scope.AZURE_LOAD_BALANCER, (LB,), "allow-ssh-any", None),
        ],
        nic=False,
    ),
    "allow 22 from * on both levels above JIT's deny: exposed by both rules": Case(
        {S: [ALLOW_ANY, jit_deny(S)], N: [rule(N, "nic-ssh", 300), jit_deny(N)]},
        [
            (Scope.INTERNET, INTERNET, "allow-ssh-any", "nic-ssh"),
            (Scope.VIRTUAL_NETWORK, (VNET_CIDR,), "allow-ssh-any", "nic-ssh"),
            (Scope.AZURE_LOAD_BALANCER, (LB,), "allow-ssh-any", "nic-ssh"),
        ],
    ),
    "the subnet allows above its JIT deny, but the NIC's JIT deny still blocks": Case(
        {S: [ALLOW_ANY, jit_deny(S)], N: [jit_deny(N)]}, []
    ),
    "a rule admitting only VirtualNetwork exposes inside the VNet only": Case(
        {S: [rule(S, "allow-vnet", 200, sources=("VirtualNetwork",)), jit_deny(S)]},
        [(Scope.VIRTUAL_NETWORK, (VNET_CIDR,), "allow-vnet", None)],
        nic=False,
    ),
    "a deny of part of a range at a lower number wins over the allow of all of it": Case(
        {
            S: [
                rule(S, "deny-half", 200, access="Deny", sources=("198.51.100.128/25",)),
                rule(S, "allow-range", 300, sources=("198.51.100.0/24",)),
                jit_deny(S),
            ]
        },
        [(Scope.INTERNET, ("198.51.100.0/25",), "allow-range", None)],
        nic=False,
    ),
    "an allow at a lower number wins over a deny of part of its range": Case(
        {
            S: [
                rule(S, "allow-range", 200, sources=("198.51.100.0/24",)),
                rule(S, "deny-half", 300, access="Deny", sources=("198.51.100.128/25",)),
                jit_deny(S),
            ]
        },
        [(Scope.INTERNET, ("198.51.100.0/24",), "allow-range", None)],
        nic=False,
    ),
    "two allows overlapping: each source is the first match's": Case(
        {
            S: [
                rule(S, "narrow", 200, sources=("198.51.100.0/25", "203.0.113.7")),
                rule(S, "wide", 300, sources=("198.51.100.0/24",)),
                jit_deny(S),
            ]
        },
        [
            (Scope.INTERNET, ("198.51.100.0/25", "203.0.113.7/32"), "narrow", None),
            (Scope.INTERNET, ("198.51.100.128/25",), "wide", None),
        ],
        nic=False,
    ),
    "a deny of * shadows every allow after it": Case(
        {S: [rule(S, "deny-all", 150, access="Deny"), ALLOW_ANY], N: []}, []
    ),
    "a port range covering the port exposes it": Case(
        {S: [rule(S, "allow-range", 200, ports=("20-25",)), jit_deny(S)]},
        [
            (Scope.INTERNET, INTERNET, "allow-range", None),
            (Scope.VIRTUAL_NETWORK, (VNET_CIDR,), "allow-range", None),
            (Scope.AZURE_LOAD_BALANCER, (LB,), "allow-range", None),
        ],
        nic=False,
    ),
    "a port range not covering the port leaves it to JIT's deny": Case(
        {S: [rule(S, "allow-range", 200, ports=("80", "1000-2000")), jit_deny(S)]},
        [],
        nic=False,
    ),
    "a UDP rule does not expose a TCP port": Case(
        {S: [rule(S, "allow-udp", 200, protocol="Udp"), jit_deny(S)]}, [], nic=False
    ),
    "an ICMP rule reaches no port": Case(
        {S: [rule(S, "allow-icmp", 200, protocol="Icmp", ports=("*",)), jit_deny(S)]},
        [],
        nic=False,
        protocol="*",
    ),
    "JIT's deny shadows the default AllowAzureLoadBalancerInBound": Case(
        {S: [jit_deny(S)], N: [jit_deny(N)]}, []
    ),
    "a customer rule for the load balancer is reported in its own scope": Case(
        {S: [rule(S, "probe", 300, sources=("AzureLoadBalancer",)), jit_deny(S)]},
        [(Scope.AZURE_LOAD_BALANCER, (LB,), "probe", None)],
        nic=False,
    ),
    "JIT's deny missing: the default rules admit the VNet and the load balancer": Case(
        {S: [], N: []}, DEFAULTS_ONLY
    ),
    "JIT's deny missing on the NIC only: the subnet's deny still protects": Case(
        {S: [jit_deny(S)], N: []}, []
    ),
    "subnet and NIC admit overlapping ranges: their intersection, by both rules": Case(
        {
            S: [rule(S, "s-range", 200, sources=("198.51.100.0/24",)), jit_deny(S)],
            N: [
                rule(N, "n-range", 300, sources=("198.51.100.128/25", "192.0.2.0/24")),
                jit_deny(N),
            ],
        },
        [(Scope.INTERNET, ("198.51.100.128/25",), "s-range", "n-range")],
    ),
    "no subnet NSG: the NIC's rule alone decides": Case(
        {N: [rule(N, "n-range", 300, sources=("192.0.2.0/24",)), jit_deny(N)]},
        [(Scope.INTERNET, ("192.0.2.0/24",), None, "n-range")],
        subnet=False,
    ),
    "the subnet admits *, the NIC only the VNet: VNet only, by both": Case(
        {
            S: [ALLOW_ANY, jit_deny(S)],
            N: [rule(N, "n-vnet", 300, sources=("VirtualNetwork",)), jit_deny(N)],
        },
        [(Scope.VIRTUAL_NETWORK, (VNET_CIDR,), "allow-ssh-any", "n-vnet")],
    ),
    "JIT's own allow rule is left out: the port is protected": Case(
        {
            S: [jit_allow(S, "198.51.100.7"), jit_deny(S)],
            N: [jit_allow(N, "198.51.100.7"), jit_deny(N)],
        },
        [],
    ),
    "a rule for another destination does not expose the VM": Case(
        {S: [rule(S, "other-subnet", 200, destinations=("10.10.9.0/24",)), jit_deny(S)]},
        [],
        nic=False,
    ),
    "a rule for the VirtualNetwork destination targets the VM": Case(
        {
            S: [
                rule(S, "to-vnet", 200, sources=("Internet",), destinations=("VirtualNetwork",)),
                jit_deny(S),
            ]
        },
        [
            (Scope.INTERNET, INTERNET, "to-vnet", None),
            (Scope.AZURE_LOAD_BALANCER, (LB,), "to-vnet", None),
        ],
        nic=False,
    ),
    "an outbound rule does not admit inbound traffic": Case(
        {S: [rule(S, "out", 200, direction="Outbound"), jit_deny(S)]}, [], nic=False
    ),
    "an IPv6 source admits nothing (JIT is IPv4 only)": Case(
        {S: [rule(S, "v6", 200, sources=("2001:db8::/32",)), jit_deny(S)]}, [], nic=False
    ),
    "an allow limited to some source ports still exposes the port": Case(
        {S: [rule(S, "high-ports", 200, source_ports=("1024-65535",)), jit_deny(S)]},
        [
            (Scope.INTERNET, INTERNET, "high-ports", None),
            (Scope.VIRTUAL_NETWORK, (VNET_CIDR,), "high-ports", None),
            (Scope.AZURE_LOAD_BALANCER, (LB,), "high-ports", None),
        ],
        nic=False,
    ),
    "a deny limited to some source ports hides no exposure": Case(
        {
            S: [
                rule(S, "deny-low", 150, access="Deny", source_ports=("0-1023",)),
                rule(S, "allow-net", 200, sources=("192.0.2.0/24",)),
                jit_deny(S),
            ]
        },
        [(Scope.INTERNET, ("192.0.2.0/24",), "allow-net", None)],
        nic=False,
    ),
    "an allow for an unknown service tag is reported as that tag": Case(
        {S: [rule(S, "storage", 200, sources=("Storage.WestEurope",)), jit_deny(S)]},
        [(Scope.SERVICE_TAG, ("Storage.WestEurope",), "storage", None)],
        nic=False,
    ),
    "a deny of an unknown service tag hides no address": Case(
        {
            S: [
                rule(S, "deny-storage", 150, access="Deny", sources=("Storage",)),
                rule(S, "allow-net", 200, sources=("192.0.2.0/24",)),
                jit_deny(S),
            ]
        },
        [(Scope.INTERNET, ("192.0.2.0/24",), "allow-net", None)],
        nic=False,
    ),
    "an unknown service tag admitted on the subnet by * and on the NIC by name": Case(
        {
            S: [ALLOW_ANY, jit_deny(S)],
            N: [rule(N, "n-cloud", 300, sources=("AzureCloud",)), jit_deny(N)],
        },
        [(Scope.SERVICE_TAG, ("AzureCloud",), "allow-ssh-any", "n-cloud")],
    ),
}


@pytest.mark.parametrize("case", [pytest.param(c, id=i) for i, c in CASES.items()])
def test_exposure_follows_azure_nsg_evaluation(case: Case) -> None:
    exposure = evaluate(case)
    assert seen(exposure) == case.expected
    assert exposure.exposed == bool(case.expected)
    assert all(a.private_ip == VM_IP for a in exposure.admissions)


def test_exposure_is_told_apart_by_scope() -> None:
    internet = evaluate(
        CASES["allow 22 from * on the subnet, no NIC NSG: exposed to the Internet by that rule"]
    )
    vnet_only = evaluate(CASES["a rule admitting only VirtualNetwork exposes inside the VNet only"])
    tag = evaluate(CASES["an allow for an unknown service tag is reported as that tag"])
    assert internet.internet
    assert internet.exposed
    assert vnet_only.exposed
    assert not vnet_only.internet
    assert vnet_only.scopes == {Scope.VIRTUAL_NETWORK}
    assert tag.internet  # a tag's addresses cannot be shown to lie inside the VNet


def test_the_attributed_rules_say_where_they_live() -> None:
    exposure = evaluate(
        Case({S: [ALLOW_ANY, jit_deny(S)], N: [rule(N, "nic-ssh", 300), jit_deny(N)]}, [])
    )
    first = exposure.admissions[0]
    assert first.subnet_rule is not None
    assert first.nic_rule is not None
    assert (first.subnet_rule.nsg_id, first.subnet_rule.priority, first.subnet_rule.default) == (
        S,
        200,
        False,
    )
    assert (first.nic_rule.nsg_id, first.nic_rule.priority) == (N, 300)
    defaults = evaluate(Case({S: [], N: []}, [])).admissions[0]
    assert defaults.subnet_rule is not None
    assert defaults.subnet_rule.default
    assert defaults.subnet_rule.priority == 65000


def test_a_port_of_any_protocol_is_evaluated_for_tcp_and_udp() -> None:
    rules = {
        S: [
            rule(S, "tcp", 200, protocol="Tcp", sources=("192.0.2.0/24",)),
            rule(S, "udp", 210, protocol="Udp", sources=("192.0.2.0/24",)),
            rule(S, "both", 220, sources=("203.0.113.0/24",)),
            jit_deny(S),
        ]
    }
    exposure = port_exposure(network(nic_nsg=None), rules, port=22, protocol="*")
    assert [
        (a.subnet_rule.name if a.subnet_rule else None, a.protocols) for a in exposure.admissions
    ] == [("tcp", ("TCP",)), ("udp", ("UDP",)), ("both", ("TCP", "UDP"))]
    udp_only = port_exposure(network(nic_nsg=None), rules, port=22, protocol="UDP")
    assert {a.subnet_rule.name for a in udp_only.admissions if a.subnet_rule} == {"udp", "both"}


def test_an_unknown_vnet_space_never_reports_less() -> None:
    rules = {
        S: [
            rule(S, "allow-vnet", 200, sources=("VirtualNetwork",)),
            rule(S, "deny-internet", 210, access="Deny", sources=("Internet",)),
            rule(S, "allow-any", 220),
            jit_deny(S),
        ]
    }
    known = port_exposure(network(nic_nsg=None), rules, port=22, protocol="TCP")
    unknown = port_exposure(network(nic_nsg=None, vnet=()), rules, port=22, protocol="TCP")
    assert not known.internet
    assert unknown.internet
    assert all(not a.vnet_space_known for a in unknown.admissions)
    # Every address VirtualNetwork could stand for is reported, as Internet.
    assert unknown.admissions[0].sources == outside(LB)
    assert unknown.admissions[0].subnet_rule is not None
    assert unknown.admissions[0].subnet_rule.name == "allow-vnet"


def test_an_nsg_that_was_not_read_admits_everything_and_is_named() -> None:
    exposure = port_exposure(
        network(), {S.upper(): [ALLOW_ANY, jit_deny(S)]}, port=22, protocol="TCP"
    )
    assert exposure.unread_nsgs == (N,)
    assert exposure.internet
    assert all(a.nic_rule is None for a in exposure.admissions)


def test_nsg_ids_are_compared_case_insensitively() -> None:
    exposure = port_exposure(
        network(), {S.upper(): [ALLOW_ANY], N.lower(): [jit_deny(N)]}, port=22, protocol="TCP"
    )
    assert not exposure.exposed
    assert exposure.unread_nsgs == ()


def test_a_protocol_jit_does_not_know_is_refused() -> None:
    with pytest.raises(ValueError, match="use TCP, UDP or"):
        port_exposure(network(), {}, port=22, protocol="Icmp")


def test_each_admission_reads_as_a_sentence_a_person_can_act_on() -> None:
    exposure = evaluate(
        Case(
            {S: [ALLOW_ANY, jit_deny(S)], N: [rule(N, "nic-ssh", 300), jit_deny(N)]},
            [],
        )
    )
    internet, vnet, balancer = exposure.describe(limit=2)
    assert internet == (
        f"port 22/TCP of {VM_IP} is reachable from the Internet (0.0.0.0/5, 8.0.0.0/7 and "
        f"{len(INTERNET) - 2} more) through subnet NSG nsg-snet rule allow-ssh-any "
        "(priority 200) and NIC NSG nsg-nic rule nic-ssh (priority 300)"
    )
    assert "inside the VNet (10.10.0.0/16)" in vnet
    assert "Azure's load balancer (168.63.129.16/32)" in balancer
    defaults = evaluate(Case({S: [], N: []}, [])).describe()
    assert "subnet NSG nsg-snet default rule AllowVnetInBound (priority 65000)" in defaults[0]
    unread = port_exposure(network(), {S: [ALLOW_ANY]}, port=22, protocol="TCP").describe()
    assert "no NIC NSG" in unread[0]
    assert unread[-1] == "NSG nsg-nic could not be read: counted as admitting everything"
    unknown = port_exposure(
        network(nic_nsg=None, vnet=()), {S: [ALLOW_ANY]}, port=22, protocol="TCP"
    )
    assert "VNet's address space is unknown" in unknown.describe()[0]


def test_every_private_address_of_the_vm_is_its_own_way_in() -> None:
    guarded = NicGuards(VM_IP, nic_nsg=N, subnet_nsg=None, vnet_prefixes=(VNET_CIDR,))
    second = NicGuards("10.10.3.9", nic_nsg=None, subnet_nsg=S, vnet_prefixes=(VNET_CIDR,))
    ipv6 = NicGuards("fd00::4", nic_nsg=None, subnet_nsg=None, vnet_prefixes=("fd00::/64",))
    net = VmNetwork("vm", (N, S), (VM_IP, "10.10.3.9", "fd00::4"), (guarded, second, ipv6))
    rules = {
        N: [jit_deny(N)],
        S: [rule(S, "allow-net", 200, sources=("192.0.2.0/24",)), jit_deny(S, ip="10.10.3.9")],
    }
    exposure = port_exposure(net, rules, port=22, protocol="TCP")
    # The first NIC is protected; the second address is exposed by its subnet's rule; the
    # IPv6 configuration is not evaluated (JIT is IPv4 only).
    assert [
        (a.private_ip, a.sources, a.subnet_rule.name if a.subnet_rule else None)
        for a in exposure.admissions
    ] == [("10.10.3.9", ("192.0.2.0/24",), "allow-net")]


def test_a_network_without_paths_is_refused_rather_than_called_safe() -> None:
    with pytest.raises(ValueError, match="paths is empty"):
        port_exposure(VmNetwork("vm", (N,), (VM_IP,)), {N: []}, port=22, protocol="TCP")
    assert not port_exposure(VmNetwork("vm", (), ()), {}, port=22, protocol="TCP").exposed
