"""The emulator's reachability answer over its admin API: what traffic gets through a VM's
NSGs, by which rule at each level, as a customer rule, JIT's deny and JIT's allow rules
change it (the same NSGs the operator reads through the real SDK)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network.models import SecurityRule
from azure.mgmt.security import SecurityCenter

from azure_arm_emulator.admin_client import AdminError, SyncAdminClient
from tests.integration.emulator.builders import LOCATION, RG, initiate_request, policy, port_rule
from tests.support.emulator import SUBSCRIPTION, EmulatorEndpoint

pytestmark = pytest.mark.integration

VM = "vm-web-01"  # NIC NSG nsg-vm-web-01 (allow-https-inbound from Internet), no subnet NSG
OPERATOR = "198.51.100.7"
STRANGER = "203.0.113.9"
NEIGHBOUR = "10.10.1.5"  # vm-web-02, same VNet


def ask(admin: SyncAdminClient, source: str, port: int, protocol: str = "TCP") -> dict[str, Any]:
    answer = admin.reachability(SUBSCRIPTION, RG, VM, source=source, port=port, protocol=protocol)
    [path] = answer["paths"]
    assert path["subnet"] is None  # snet-web has no NSG
    return dict(path["networkInterface"]) | {"reachable": answer["reachable"]}


def test_reachability_follows_customer_and_jit_rules(
    emulator_endpoint: EmulatorEndpoint,
    security: SecurityCenter,
    network: NetworkManagementClient,
) -> None:
    admin = emulator_endpoint.sync_admin()

    https = ask(admin, STRANGER, 443)
    assert (https["reachable"], https["rule"], https["priority"]) == (
        True,
        "allow-https-inbound",
        300,
    )
    assert ask(admin, STRANGER, 443, "UDP")["rule"] == "DenyAllInBound"  # the rule is Tcp only
    ssh = ask(admin, STRANGER, 22)
    assert (ssh["reachable"], ssh["rule"], ssh["default"]) == (False, "DenyAllInBound", True)
    vnet = ask(admin, NEIGHBOUR, 22)
    assert (vnet["reachable"], vnet["rule"]) == (True, "AllowVnetInBound")

    security.jit_network_access_policies.create_or_update(
        RG, LOCATION, "web-admins", policy((VM, [port_rule(22)]))
    )
    denied = ask(admin, NEIGHBOUR, 22)
    assert (denied["reachable"], denied["access"], denied["jit"]) == (False, "Deny", True)
    assert denied["priority"] == 4096

    security.jit_network_access_policies.initiate(
        RG,
        LOCATION,
        "web-admins",
        initiate_request(VM, (22, OPERATOR), end=datetime.now(UTC) + timedelta(hours=1)),
    )
    granted = ask(admin, OPERATOR, 22)
    assert (granted["reachable"], granted["access"], granted["jit"]) == (True, "Allow", True)
    assert not ask(admin, STRANGER, 22)["reachable"]

    network.security_rules.begin_create_or_update(
        RG,
        "nsg-vm-web-01",
        "allow-ssh-anywhere",
        SecurityRule(
            protocol="*",
            source_address_prefix="*",
            source_port_range="*",
            destination_address_prefix="*",
            destination_port_range="22",
            access="Allow",
            priority=200,
            direction="Inbound",
        ),
    ).result()
    exposed = ask(admin, STRANGER, 22)
    assert (exposed["reachable"], exposed["rule"], exposed["jit"]) == (
        True,
        "allow-ssh-anywhere",
        False,
    )
    assert admin.can_reach(SUBSCRIPTION, RG, VM, source="Storage", port=22)


def test_a_source_port_is_honoured_when_given(
    emulator_endpoint: EmulatorEndpoint, network: NetworkManagementClient
) -> None:
    admin = emulator_endpoint.sync_admin()
    network.security_rules.begin_create_or_update(
        RG,
        "nsg-vm-web-01",
        "allow-ssh-from-high-ports",
        SecurityRule(
            protocol="Tcp",
            source_address_prefix="*",
            source_port_range="1024-65535",
            destination_address_prefix="*",
            destination_port_range="22",
            access="Allow",
            priority=200,
            direction="Inbound",
        ),
    ).result()

    def reachable(source_port: int | None) -> bool:
        answer = admin.reachability(
            SUBSCRIPTION, RG, VM, source=STRANGER, port=22, source_port=source_port
        )
        return bool(answer["reachable"])

    assert reachable(40000)
    assert not reachable(80)
    assert reachable(None)  # from some source port


@pytest.mark.parametrize(
    ("query", "message"),
    [
        pytest.param({"source": "2001:db8::1", "port": 22}, "IPv4 only", id="an IPv6 source"),
        pytest.param({"source": "Internet", "port": 22}, "IPv4 address", id="a range for a source"),
        pytest.param({"source": OPERATOR, "port": 22, "protocol": "Icmp"}, "TCP or UDP", id="ICMP"),
        pytest.param({"source": OPERATOR, "port": 70000}, "65535", id="a port out of range"),
    ],
)
def test_a_question_that_cannot_be_answered_gets_a_400(
    emulator_endpoint: EmulatorEndpoint, query: dict[str, Any], message: str
) -> None:
    with pytest.raises(AdminError) as raised:
        emulator_endpoint.sync_admin().reachability(SUBSCRIPTION, RG, VM, **query)
    assert raised.value.status == 400
    assert message in str(raised.value.body)
