"""Which NSG rules the operator treats as the JIT allow rule of a VM port."""

from azure_jit_operator.domain.nsg import SecurityRuleView, VmNetwork, covers_port, jit_allow_rules

NET = VmNetwork(vm_id="vm", nsg_ids=("nsg",), private_ips=("10.0.0.4",))


def rule(
    name: str, *, access: str = "Allow", ports: tuple[str, ...] = ("22",), dest: str = "10.0.0.4"
) -> SecurityRuleView:
    return SecurityRuleView(
        nsg_id="nsg",
        name=name,
        access=access,
        direction="Inbound",
        sources=("198.51.100.7",),
        destinations=(dest,),
        destination_ports=ports,
    )


def test_only_jit_allow_rules_for_this_port_and_vm_are_selected() -> None:
    rules = [
        rule("SecurityCenter-JITRule-1-abc"),
        rule("SecurityCenter-JITRule_-1-abc", access="Deny"),
        rule("SecurityCenter-JITRule-2-def", ports=("443",)),
        rule("SecurityCenter-JITRule-3-ghi", dest="10.0.0.5"),
        rule("allow-ssh-from-office"),
    ]
    assert [r.name for r in jit_allow_rules(rules, port=22, network=NET)] == [
        "SecurityCenter-JITRule-1-abc"
    ]


def test_a_rule_for_any_destination_or_a_service_tag_counts_as_targeting_the_vm() -> None:
    rules = [
        rule("SecurityCenter-JITRule-1-a", dest="*"),
        rule("SecurityCenter-JITRule-2-b", dest="VirtualNetwork"),
    ]
    assert len(jit_allow_rules(rules, port=22, network=NET)) == 2


def test_port_ranges_and_wildcards_cover_ports() -> None:
    assert covers_port(["20-25"], 22)
    assert covers_port(["*"], 3389)
    assert not covers_port(["23-25", "443"], 22)
