"""Security rule bodies are checked the way Microsoft.Network checks them."""

from __future__ import annotations

from typing import Any

import pytest

from azure_arm_emulator.errors import ArmError
from azure_arm_emulator.model import Nsg, SecurityRule
from azure_arm_emulator.nsg_rules import check_conflicts, free_priority, validate_rule


def _props(**changes: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "protocol": "Tcp",
        "sourcePortRange": "*",
        "destinationPortRange": "22",
        "sourceAddressPrefix": "198.51.100.0/24",
        "destinationAddressPrefix": "*",
        "access": "Allow",
        "priority": 100,
        "direction": "Inbound",
    }
    props.update(changes)
    return {key: value for key, value in props.items() if value is not None}


def test_enums_are_accepted_in_any_case_and_stored_in_azure_spelling() -> None:
    props = validate_rule("r", {"properties": _props(protocol="TCP", access="allow")})

    assert (props["protocol"], props["access"]) == ("Tcp", "Allow")


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        pytest.param({"priority": 4097}, "SecurityRuleInvalidPriority", id="priority above 4096"),
        pytest.param({"priority": "100"}, "SecurityRuleInvalidPriority", id="priority as text"),
        pytest.param(
            {"destinationPortRange": "70000"},
            "SecurityRuleInvalidPortRange",
            id="a port above 65535",
        ),
        pytest.param(
            {"destinationPortRange": "30-20"},
            "SecurityRuleInvalidPortRange",
            id="a port range running backwards",
        ),
        pytest.param(
            {"sourceAddressPrefix": "300.1.1.1"},
            "SecurityRuleInvalidAddressPrefix",
            id="an address that is not one",
        ),
        pytest.param(
            {"sourceAddressPrefix": None},
            "SecurityRuleInvalidAddressPrefix",
            id="no source at all",
        ),
        pytest.param(
            {"sourceAddressPrefixes": ["10.0.0.0/8"]},
            "SecurityRuleParameterContainsUnsupportedValue",
            id="a single and a list of sources together",
        ),
        pytest.param(
            {"direction": "Sideways"},
            "SecurityRuleParameterContainsUnsupportedValue",
            id="an unknown direction",
        ),
        pytest.param({"access": None}, "InvalidRequestFormat", id="no access"),
    ],
)
def test_invalid_rules_are_refused_with_network_codes(changes: dict[str, Any], code: str) -> None:
    with pytest.raises(ArmError) as caught:
        validate_rule("r", {"properties": _props(**changes)})

    assert (caught.value.status, caught.value.code) == (400, code)


def test_service_tags_and_port_lists_are_valid() -> None:
    props = validate_rule(
        "r",
        {
            "properties": _props(
                sourceAddressPrefix="AzureLoadBalancer",
                destinationPortRange=None,
                destinationPortRanges=["22", "3389", "5985-5986"],
            )
        },
    )

    assert props["destinationPortRanges"] == ["22", "3389", "5985-5986"]


def test_same_priority_and_direction_conflict() -> None:
    nsg = Nsg("s", "rg", "nsg", "westeurope")
    nsg.rules["a"] = SecurityRule("a", validate_rule("a", {"properties": _props()}))

    with pytest.raises(ArmError) as caught:
        check_conflicts(nsg, "b", validate_rule("b", {"properties": _props()}))
    check_conflicts(nsg, "c", validate_rule("c", {"properties": _props(direction="Outbound")}))

    assert caught.value.code == "SecurityRuleConflict"


def test_free_priority_skips_taken_ones_in_its_direction() -> None:
    nsg = Nsg("s", "rg", "nsg", "westeurope")
    for name, priority in (("a", 4096), ("b", 4095), ("c", 100)):
        nsg.rules[name] = SecurityRule(name, _props(priority=priority))

    assert free_priority(nsg, direction="Inbound", start=4096, step=-1) == 4094
    assert free_priority(nsg, direction="Inbound", start=100, step=1) == 101
    assert free_priority(nsg, direction="Outbound", start=100, step=1) == 100
