"""How a policy reports its ports from the NSG rules actually there: Protected when only JIT
grants admit, Exposed (Internet before VNet) with the rule and NSG that admit, Unprotected
when JIT's deny rule is gone; a condition message a person can act on, the status bounded,
and Events only on transitions."""

from __future__ import annotations

import pytest

from azure_jit_operator.domain.nsg import NicGuards, SecurityRuleView, VmNetwork
from azure_jit_operator.domain.protection import (
    MAX_LISTED,
    PortProtection,
    Protection,
    port_protection,
    report,
    transitions,
)

SUBNET_NSG = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/nsg-snet"
)
IP = "10.10.2.4"
NET = VmNetwork(
    vm_id="vm",
    nsg_ids=(SUBNET_NSG,),
    private_ips=(IP,),
    paths=(NicGuards(IP, nic_nsg=None, subnet_nsg=SUBNET_NSG, vnet_prefixes=("10.10.0.0/16",)),),
)
JIT_DENY = SecurityRuleView(
    nsg_id=SUBNET_NSG,
    name="MicrosoftDefenderForCloud-JITRule_-1105480617_9EF6BA5F5F2F4E4C8E2D1C0B9A887766",
    access="Deny",
    direction="Inbound",
    sources=("*",),
    destinations=(IP,),
    destination_ports=("22", "3389"),
    priority=4096,
)


def allow(name: str, source: str, priority: int, port: str = "22") -> SecurityRuleView:
    return SecurityRuleView(
        nsg_id=SUBNET_NSG,
        name=name,
        access="Allow",
        direction="Inbound",
        sources=(source,),
        destinations=("*",),
        destination_ports=(port,),
        priority=priority,
        protocol="Tcp",
    )


def judge(*rules: SecurityRuleView, port: int = 22, vm: str = "vm-db-01") -> PortProtection:
    return port_protection(vm, NET, {SUBNET_NSG.upper(): rules}, port=port, protocol="TCP")


def test_only_jit_admitting_is_protected() -> None:
    judged = judge(JIT_DENY, allow("allow-https", "Internet", 300, port="443"))
    assert judged.state is Protection.PROTECTED
    outcome = report([judged])
    assert (outcome.condition_status, outcome.reason) == ("False", "OnlyJitAdmits")
    assert outcome.status == {"protected": 1, "exposed": 0, "unprotected": 0, "ports": []}


def test_a_customer_rule_above_the_deny_rule_exposes_the_port_to_the_internet() -> None:
    judged = judge(JIT_DENY, allow("allow-ssh-anywhere", "*", 200))
    assert judged.state is Protection.EXPOSED
    assert judged.internet
    outcome = report([judged])
    assert (outcome.condition_status, outcome.reason) == ("True", "InternetExposed")
    assert "vm-db-01 port 22/TCP" in outcome.message
    assert "allow-ssh-anywhere (priority 200, NSG nsg-snet)" in outcome.message
    assert "never changes rules it does not own" in outcome.message
    [entry] = outcome.status["ports"]
    assert entry["state"] == "Exposed"
    assert entry["internet"] is True
    assert {(a["rule"], a["scope"]) for a in entry["admittedBy"]} >= {
        ("allow-ssh-anywhere", "Internet")
    }


def test_a_rule_for_the_virtual_network_only_is_not_internet_exposure() -> None:
    judged = judge(JIT_DENY, allow("allow-ssh-vnet", "VirtualNetwork", 200))
    assert judged.state is Protection.EXPOSED
    assert not judged.internet
    outcome = report([judged])
    assert outcome.reason == "ExposedOutsideJit"
    assert "from inside the virtual network" in outcome.message
    [entry] = outcome.status["ports"]
    assert {a["scope"] for a in entry["admittedBy"]} == {"VirtualNetwork"}


def test_a_customer_rule_below_the_deny_rule_exposes_nothing() -> None:
    assert judge(JIT_DENY, allow("allow-ssh-late", "*", 4000 + 97)).state is Protection.PROTECTED


def test_a_missing_deny_rule_is_unprotected_and_the_default_vnet_rule_is_named() -> None:
    judged = judge()
    assert judged.state is Protection.UNPROTECTED
    assert judged.deny_missing
    outcome = report([judged])
    assert outcome.reason == "DenyRuleMissing"
    assert outcome.condition_status == "True"  # the VNet gets in through AllowVnetInBound
    assert "docs/nsg-as-code.md" in outcome.message
    [entry] = outcome.status["ports"]
    assert entry["denyRuleMissing"] is True
    assert any(a["defaultRule"] and a["rule"] == "AllowVnetInBound" for a in entry["admittedBy"])


def test_internet_exposure_is_listed_first_and_the_list_is_bounded() -> None:
    many = [
        judge(JIT_DENY, allow("vnet", "VirtualNetwork", 200), vm=f"vm-{i:03}") for i in range(80)
    ]
    internet = judge(JIT_DENY, allow("any", "*", 200), vm="vm-zzz")
    outcome = report([*many, internet])
    assert outcome.status["exposed"] == 81
    assert len(outcome.status["ports"]) == MAX_LISTED
    assert outcome.status["ports"][0]["vm"] == "vm-zzz"
    assert "and 78 more" in outcome.message


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ([], judge(JIT_DENY, allow("any", "*", 200)), ["PortExposed"]),
        (
            [{"vm": "vm-db-01", "port": 22, "protocol": "TCP", "state": "Exposed"}],
            judge(JIT_DENY),
            ["PortProtected"],
        ),
        (
            [{"vm": "vm-db-01", "port": 22, "protocol": "TCP", "state": "Exposed"}],
            judge(JIT_DENY, allow("any", "*", 200)),
            [],
        ),
        ([], judge(), ["DenyRuleMissing"]),
        ([], judge(JIT_DENY), []),
    ],
    ids=[
        "a port newly exposed is told once",
        "a port that clears is told once",
        "a port exposed as before is not told again",
        "a deny rule that went missing is told",
        "a port protected as before says nothing",
    ],
)
def test_events_are_posted_only_on_transitions(
    before: list[dict[str, object]], after: PortProtection, expected: list[str]
) -> None:
    assert [t.reason for t in transitions(before, [after], listed_all=True)] == expected


def test_a_port_beyond_the_listed_ones_is_not_told_as_a_transition() -> None:
    assert transitions([], [judge(JIT_DENY, allow("any", "*", 200))], listed_all=False) == []
