"""Which NSG rules the operator treats as the JIT allow rule of a VM port, for both
generations of JIT rule names (azure-evidence.md E1-E4), and which it may ever delete."""

import pytest

from azure_jit_operator.domain.nsg import SecurityRuleView, VmNetwork, covers_port, jit_allow_rules

NET = VmNetwork(vm_id="vm", nsg_ids=("nsg",), private_ips=("10.0.0.4",))
GUID = "9EF6B1C2D3E4F5061728394A5B6C7D8E"
CURRENT_DESCRIPTION = (
    "MDC JIT Network Access rule created by an initiation request for policy 'default' of VM "
    "'vm-web-01'."
)
LEGACY_DESCRIPTION = (
    "ASC JIT Network Access rule created by an initiation request for policy 'default' of VM "
    "'vm-web-01'."
)


def rule(
    name: str,
    *,
    access: str = "Allow",
    direction: str = "Inbound",
    ports: tuple[str, ...] = ("22",),
    dest: str = "10.0.0.4",
    description: str = "",
) -> SecurityRuleView:
    return SecurityRuleView(
        nsg_id="nsg",
        name=name,
        access=access,
        direction=direction,
        sources=("198.51.100.7",),
        destinations=(dest,),
        destination_ports=ports,
        description=description,
    )


@pytest.mark.parametrize(
    ("name", "description"),
    [
        pytest.param(f"MicrosoftDefenderForCloud-JITRule-1105480617-{GUID}", "", id="current"),
        pytest.param(f"MicrosoftDefenderForCloud-JITRule--1105480617-{GUID}", "", id="negative"),
        pytest.param(f"SecurityCenter-JITRule-283746512-{GUID}", "", id="legacy"),
        pytest.param(f"SecurityCenter-JITRule--283746512-{GUID.lower()}", "", id="legacy neg."),
        pytest.param(
            "MicrosoftDefenderForCloud-JITRule-1-9ef6b1c2-d3e4-f506-1728-394a5b6c7d8e",
            "",
            id="a dashed GUID",
        ),
        pytest.param(
            "JITRule-renamed-again-2027", CURRENT_DESCRIPTION, id="renamed, current description"
        ),
        pytest.param("renamed", LEGACY_DESCRIPTION, id="renamed, legacy description"),
    ],
)
def test_jit_allow_rules_of_every_generation_are_seen(name: str, description: str) -> None:
    found = jit_allow_rules([rule(name, description=description)], port=22, network=NET)
    assert [r.name for r in found] == [name]


def test_only_a_rule_named_like_jits_own_is_ever_deleted() -> None:
    named = rule(f"MicrosoftDefenderForCloud-JITRule-7-{GUID}")
    described_only = rule("renamed-by-azure", description=CURRENT_DESCRIPTION)
    assert named.deletable
    assert described_only.is_jit_allow
    assert not described_only.deletable


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("allow-ssh-from-office", id="a customer rule"),
        pytest.param("SecurityCenter-JITRule-copy-of-ssh", id="a customer rule named alike"),
        pytest.param(f"MyMicrosoftDefenderForCloud-JITRule-1-{GUID}", id="a longer name"),
        pytest.param(f"MicrosoftDefenderForCloud-JITRule-1-{GUID}-old", id="a suffix"),
        pytest.param(f"MicrosoftDefenderForCloud-JITRule-1-{GUID[:-1]}", id="a short GUID"),
    ],
)
def test_customer_rules_are_not_jits_however_they_are_named(name: str) -> None:
    customer = rule(name, description="SSH for the office")
    assert not customer.is_jit
    assert not customer.deletable
    assert jit_allow_rules([customer], port=22, network=NET) == []


@pytest.mark.parametrize(
    ("name", "access", "direction"),
    [
        pytest.param(f"MicrosoftDefenderForCloud-JITRule_-1105480617_{GUID}", "Deny", "Inbound"),
        pytest.param(f"SecurityCenter-JITRule_283746512_{GUID}", "Deny", "Inbound"),
        pytest.param(f"SecurityCenter-JITRule_-283746512-{GUID}", "Deny", "Inbound"),
        # The separator never decides: an allow rule named with underscores is an allow rule,
        # a deny rule named with dashes is a deny rule.
        pytest.param(f"MicrosoftDefenderForCloud-JITRule-5-{GUID}", "Deny", "Inbound"),
        pytest.param(f"MicrosoftDefenderForCloud-JITRule-5-{GUID}", "Allow", "Outbound"),
    ],
)
def test_deny_and_outbound_rules_are_never_allow_rules(
    name: str, access: str, direction: str
) -> None:
    found = jit_allow_rules([rule(name, access=access, direction=direction)], port=22, network=NET)
    assert found == []


def test_an_allow_rule_named_with_underscores_is_still_an_allow_rule() -> None:
    underscored = rule(f"MicrosoftDefenderForCloud-JITRule_5_{GUID}")
    assert jit_allow_rules([underscored], port=22, network=NET) == [underscored]
    assert underscored.deletable


def test_a_multi_port_deny_rule_is_jits_but_not_an_allow_rule() -> None:
    deny = rule(
        f"MicrosoftDefenderForCloud-JITRule_-1105480617_{GUID}",
        access="Deny",
        ports=("22", "3389", "5985"),
        description=CURRENT_DESCRIPTION.replace(" created by an initiation request", ""),
    )
    assert deny.is_jit_deny
    assert not deny.is_jit_allow
    assert not deny.deletable


def test_only_jit_allow_rules_for_this_port_and_vm_are_selected() -> None:
    rules = [
        rule(f"MicrosoftDefenderForCloud-JITRule-1-{GUID}"),
        rule(f"MicrosoftDefenderForCloud-JITRule_1_{GUID}", access="Deny"),
        rule(f"MicrosoftDefenderForCloud-JITRule-2-{GUID}", ports=("443",)),
        rule(f"SecurityCenter-JITRule-3-{GUID}", dest="10.0.0.5"),
        rule("allow-ssh-from-office"),
    ]
    assert [r.name for r in jit_allow_rules(rules, port=22, network=NET)] == [
        f"MicrosoftDefenderForCloud-JITRule-1-{GUID}"
    ]


def test_a_rule_for_any_destination_or_a_service_tag_counts_as_targeting_the_vm() -> None:
    rules = [
        rule(f"MicrosoftDefenderForCloud-JITRule-1-{GUID}", dest="*"),
        rule(f"SecurityCenter-JITRule-2-{GUID}", dest="VirtualNetwork"),
    ]
    assert len(jit_allow_rules(rules, port=22, network=NET)) == 2


def test_port_ranges_and_wildcards_cover_ports() -> None:
    assert covers_port(["20-25"], 22)
    assert covers_port(["*"], 3389)
    assert not covers_port(["23-25", "443"], 22)
