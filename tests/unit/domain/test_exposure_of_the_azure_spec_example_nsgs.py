"""The exposure evaluation on the NSGs of Azure's published REST examples (the copies in
tests/golden/azure-specs, byte for byte those of ../shared/specs/azure): their default rules
are the ones the evaluator adds, and their rule sets expose what Azure's semantics say."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from azure_jit_operator.domain.exposure import DEFAULT_INBOUND_RULES, Scope, port_exposure
from azure_jit_operator.domain.nsg import SecurityRuleView
from tests.unit.domain.nsg_builders import jit_deny, network, rule_view

EXAMPLES = Path(__file__).resolve().parents[2] / "golden" / "azure-specs" / "network"
LB = "168.63.129.16/32"
VNET = "10.10.0.0/16"


def example(relative: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / relative).read_text(encoding="utf-8"))
    return data


def example_nsgs() -> list[dict[str, Any]]:
    """Every NSG body in the examples' 200 responses (single NSGs and lists)."""
    found: list[dict[str, Any]] = []
    for path in sorted(EXAMPLES.glob("*/examples/NetworkSecurityGroup*.json")):
        body = example(str(path.relative_to(EXAMPLES))).get("responses", {}).get("200", {})
        body = body.get("body") or {}
        for nsg in body.get("value", [body]):
            if "defaultSecurityRules" in nsg.get("properties", {}):
                found.append(nsg)
    return found


def custom_rules(nsg: dict[str, Any], *, as_id: str | None = None) -> list[SecurityRuleView]:
    nsg_id = as_id or nsg["id"]
    return [rule_view(nsg_id, r) for r in nsg["properties"].get("securityRules", [])]


WITH_RULE = example("2025-07-01/examples/NetworkSecurityGroupCreateWithRule.json")["responses"][
    "200"
]["body"]
GET = example("2025-07-01/examples/NetworkSecurityGroupGet.json")["responses"]["200"]["body"]
RULE_CREATE = example("2024-07-01/examples/NetworkSecurityGroupRuleCreate.json")["responses"][
    "200"
]["body"]
DEFAULTS_ONLY = example("2024-07-01/examples/NetworkSecurityGroupList.json")["responses"]["200"][
    "body"
]["value"][0]


def test_the_examples_have_nsgs_to_check() -> None:
    assert len(example_nsgs()) >= 4


@pytest.mark.parametrize(
    "nsg", [pytest.param(n, id=f"{n['id'].split('/')[4]}/{n['name']}") for n in example_nsgs()]
)
def test_the_default_inbound_rules_are_azures(nsg: dict[str, Any]) -> None:
    inbound = [
        (
            r["name"],
            r["properties"]["priority"],
            r["properties"]["sourceAddressPrefix"],
            r["properties"]["destinationAddressPrefix"],
            r["properties"]["access"],
        )
        for r in nsg["properties"]["defaultSecurityRules"]
        if r["properties"]["direction"] == "Inbound"
    ]
    assert tuple(inbound) == DEFAULT_INBOUND_RULES
    for r in nsg["properties"]["defaultSecurityRules"]:
        props = r["properties"]
        assert (props["protocol"], props["sourcePortRange"], props["destinationPortRange"]) == (
            "*",
            "*",
            "*",
        )


def scopes_and_rules(exposure: Any) -> list[tuple[Scope, str | None, str | None]]:
    return [
        (
            a.scope,
            a.subnet_rule.name if a.subnet_rule else None,
            a.nic_rule.name if a.nic_rule else None,
        )
        for a in exposure.admissions
    ]


def test_rule1_allowing_port_80_from_any_exposes_80_to_the_internet_on_the_subnet() -> None:
    subnet = "/x/subnet-nsg"
    rules = {subnet: custom_rules(WITH_RULE, as_id=subnet)}
    exposure = port_exposure(
        network(subnet_nsg=subnet, nic_nsg=None), rules, port=80, protocol="TCP"
    )
    assert scopes_and_rules(exposure) == [
        (Scope.INTERNET, "rule1", None),
        (Scope.VIRTUAL_NETWORK, "rule1", None),
        (Scope.AZURE_LOAD_BALANCER, "rule1", None),
    ]
    assert exposure.admissions[0].subnet_rule is not None
    assert exposure.admissions[0].subnet_rule.priority == 130


def test_rule1_leaves_port_22_to_the_default_rules() -> None:
    subnet = "/x/subnet-nsg"
    rules = {subnet: custom_rules(GET, as_id=subnet)}
    exposure = port_exposure(
        network(subnet_nsg=subnet, nic_nsg=None), rules, port=22, protocol="TCP"
    )
    assert [(a.scope, a.sources) for a in exposure.admissions] == [
        (Scope.VIRTUAL_NETWORK, (VNET,)),
        (Scope.AZURE_LOAD_BALANCER, (LB,)),
    ]
    assert not exposure.internet


def test_rule1_on_the_subnet_and_a_defaults_only_nsg_on_the_nic_keep_the_internet_out() -> None:
    subnet, nic = "/x/subnet-nsg", "/x/nic-nsg"
    rules = {
        subnet: custom_rules(WITH_RULE, as_id=subnet),
        nic: custom_rules(DEFAULTS_ONLY, as_id=nic),
    }
    exposure = port_exposure(
        network(subnet_nsg=subnet, nic_nsg=nic), rules, port=80, protocol="TCP"
    )
    assert scopes_and_rules(exposure) == [
        (Scope.VIRTUAL_NETWORK, "rule1", "AllowVnetInBound"),
        (Scope.AZURE_LOAD_BALANCER, "rule1", "AllowAzureLoadBalancerInBound"),
    ]


def test_rule1_on_both_levels_exposes_80_by_both() -> None:
    subnet, nic = "/x/subnet-nsg", "/x/nic-nsg"
    rules = {subnet: custom_rules(GET, as_id=subnet), nic: custom_rules(GET, as_id=nic)}
    exposure = port_exposure(network(subnet_nsg=subnet, nic_nsg=nic), rules, port=80, protocol="*")
    assert exposure.internet
    assert scopes_and_rules(exposure)[0] == (Scope.INTERNET, "rule1", "rule1")
    assert exposure.admissions[0].protocols == ("TCP", "UDP")


def test_an_outbound_deny_of_8080_changes_nothing_inbound() -> None:
    nic = "/x/nic-nsg"
    rules = {nic: [rule_view(nic, RULE_CREATE)]}
    assert rules[nic][0].direction == "Outbound"
    exposure = port_exposure(
        network(subnet_nsg=None, nic_nsg=nic), rules, port=8080, protocol="TCP"
    )
    assert scopes_and_rules(exposure) == [
        (Scope.VIRTUAL_NETWORK, None, "AllowVnetInBound"),
        (Scope.AZURE_LOAD_BALANCER, None, "AllowAzureLoadBalancerInBound"),
    ]


@pytest.mark.parametrize("port", [80, 22], ids=["port 80 that rule1 opens", "port 22"])
def test_jits_deny_below_rule1_protects_every_port_but_rule1s(port: int) -> None:
    subnet = "/x/subnet-nsg"
    rules = {subnet: [*custom_rules(GET, as_id=subnet), jit_deny(subnet, ports=("22", "80"))]}
    exposure = port_exposure(
        network(subnet_nsg=subnet, nic_nsg=None), rules, port=port, protocol="TCP"
    )
    assert exposure.exposed == (port == 80)
    assert {a.subnet_rule.name for a in exposure.admissions if a.subnet_rule} <= {"rule1"}
