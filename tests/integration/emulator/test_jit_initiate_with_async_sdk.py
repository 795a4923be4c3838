"""Initiating JIT access through the async azure-mgmt-security client: the request answer,
the policy's request history, the allow rules on the NSGs, and supersede."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from azure.mgmt.network.aio import NetworkManagementClient
from azure.mgmt.security.aio import SecurityCenter

from tests.integration.emulator.builders import (
    JIT_RULE_PREFIXES,
    LOCATION,
    RG,
    initiate_request,
    policy,
    port_rule,
    vm_id,
)
from tests.support.emulator import SUBSCRIPTION, EmulatorHandle

pytestmark = pytest.mark.integration


async def _allow_rules(network: NetworkManagementClient, nsg: str) -> list[object]:
    return [
        rule
        async for rule in network.security_rules.list(RG, nsg)
        if rule.name.startswith(JIT_RULE_PREFIXES) and rule.access == "Allow"
    ]


@pytest.fixture
async def web_admins(security_aio: SecurityCenter) -> None:
    await security_aio.jit_network_access_policies.create_or_update(
        RG,
        LOCATION,
        "web-admins",
        policy(
            ("vm-web-01", [port_rule(22)]),
            ("vm-web-02", [port_rule(22), port_rule(8443, prefixes=["203.0.113.0/24"])]),
        ),
    )


@pytest.mark.usefixtures("web_admins")
async def test_initiate_answers_accepted_with_the_request(security_aio: SecurityCenter) -> None:
    end = datetime.now(UTC) + timedelta(hours=1)

    answer = await security_aio.jit_network_access_policies.initiate(
        RG, LOCATION, "web-admins", initiate_request("vm-web-01", (22, "198.51.100.7"), end=end)
    )

    assert answer.justification == "INC-4711"
    assert answer.requestor
    [vm] = answer.virtual_machines
    assert vm.id == vm_id("vm-web-01")
    [port] = vm.ports
    # Accepted, not yet in effect, as real Azure answers (E7).
    assert (port.number, port.status, port.status_reason) == (22, "Initiating", "UserRequested")
    assert port.allowed_source_address_prefix == "198.51.100.7"
    assert abs(port.end_time_utc - end) < timedelta(milliseconds=1)


@pytest.mark.usefixtures("web_admins")
async def test_initiate_opens_a_high_precedence_allow_rule_for_the_source(
    security_aio: SecurityCenter, network_aio: NetworkManagementClient
) -> None:
    await security_aio.jit_network_access_policies.initiate(
        RG, LOCATION, "web-admins", initiate_request("vm-web-01", (22, "198.51.100.7"))
    )

    [allow] = await _allow_rules(network_aio, "nsg-vm-web-01")
    assert allow.access == "Allow"
    assert allow.priority == 100
    assert allow.direction == "Inbound"
    assert allow.protocol == "Tcp"
    assert allow.destination_port_range == "22"
    assert allow.source_address_prefix == "198.51.100.7"
    assert allow.destination_address_prefix == "10.10.1.4"
    assert "initiation request for policy 'web-admins'" in allow.description


@pytest.mark.usefixtures("web_admins")
async def test_policy_keeps_the_request_in_its_history(security_aio: SecurityCenter) -> None:
    policies = security_aio.jit_network_access_policies
    await policies.initiate(
        RG, LOCATION, "web-admins", initiate_request("vm-web-02", (8443, "203.0.113.9"))
    )

    fetched = await policies.get(RG, LOCATION, "web-admins")

    [request] = fetched.requests
    assert request.justification == "INC-4711"
    assert request.start_time_utc <= datetime.now(UTC)
    [port] = request.virtual_machines[0].ports
    assert (port.number, port.status) == (8443, "Initiated")


@pytest.mark.usefixtures("web_admins")
async def test_newer_request_for_the_same_port_revokes_the_older_one(
    security_aio: SecurityCenter, network_aio: NetworkManagementClient
) -> None:
    policies = security_aio.jit_network_access_policies
    await policies.initiate(
        RG, LOCATION, "web-admins", initiate_request("vm-web-01", (22, "198.51.100.7"))
    )
    [first_rule] = await _allow_rules(network_aio, "nsg-vm-web-01")

    await policies.initiate(
        RG, LOCATION, "web-admins", initiate_request("vm-web-01", (22, "198.51.100.8"))
    )

    older, newer = (await policies.get(RG, LOCATION, "web-admins")).requests
    assert older.virtual_machines[0].ports[0].status == "Revoked"
    assert older.virtual_machines[0].ports[0].status_reason == "NewerRequestInitiated"
    assert newer.virtual_machines[0].ports[0].status == "Initiated"
    [rule] = await _allow_rules(network_aio, "nsg-vm-web-01")
    assert rule.name != first_rule.name
    assert rule.source_address_prefix == "198.51.100.8"


@pytest.mark.usefixtures("web_admins")
async def test_requests_for_other_ports_stay_open_side_by_side(
    security_aio: SecurityCenter, network_aio: NetworkManagementClient
) -> None:
    policies = security_aio.jit_network_access_policies
    await policies.initiate(
        RG, LOCATION, "web-admins", initiate_request("vm-web-02", (22, "198.51.100.7"))
    )
    await policies.initiate(
        RG, LOCATION, "web-admins", initiate_request("vm-web-02", (8443, "203.0.113.9"))
    )

    rules = await _allow_rules(network_aio, "nsg-vm-web-02")

    assert sorted((r.destination_port_range, r.priority) for r in rules) == [
        ("22", 100),
        ("8443", 101),
    ]


async def test_allow_rules_land_on_every_nsg_guarding_the_vm(
    security_aio: SecurityCenter, network_aio: NetworkManagementClient, emulator: EmulatorHandle
) -> None:
    policies = security_aio.jit_network_access_policies
    await policies.create_or_update(
        RG, LOCATION, "app-admins", policy(("vm-app-01", [port_rule(22, prefix="*")]))
    )

    await policies.initiate(
        RG, LOCATION, "app-admins", initiate_request("vm-app-01", (22, "192.0.2.1"))
    )

    access = await emulator.admin.vm_access(SUBSCRIPTION, RG, "vm-app-01")
    assert sorted(p["networkSecurityGroup"].rsplit("/", 1)[1] for p in access["openPorts"]) == [
        "nsg-snet-app",
        "nsg-vm-app-01",
    ]
